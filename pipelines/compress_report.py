"""What `compress` reports: the table it prints, its model-card section, and the
record they are read from (`compression.json`, written by pipelines.compress)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipelines.run import Run
from pipelines.table import aligned, format_number
from shared.run_dir import RunDir, write_atomic

RECORD = "compression.json"
ROWS = (
    ("size_bytes", "size, zipped (bytes)"),
    ("parameters", "parameters"),
    ("nonzero_parameters", "non-zero parameters"),
    ("sparsity", "kernel sparsity"),
    ("latency_ms", "latency, batch 1 (ms)"),
)


def comparison_rows(record: dict[str, Any]) -> list[list[str]]:
    headline = record.get("headline")
    rows = [(headline, headline)] if headline else []
    before, after = record.get("original", {}), record.get("compressed", {})
    return [
        [label, format_number(before.get(key)), format_number(after.get(key))]
        for key, label in [*rows, *ROWS]
    ]


def table(run: Run | RunDir) -> str:
    """The aligned table `compress` prints: original vs compressed, then what was done."""
    path = Path(run.path)
    record = json.loads((path / RECORD).read_text())
    lines = [aligned(["", "original", "compressed"], comparison_rows(record), right={1, 2})]
    lines += [f"{line}" for line in summary_lines(record)]
    lines.append(f"run: {path}")
    return "\n".join(lines)


def summary_lines(record: dict[str, Any]) -> list[str]:
    lines = []
    if "prune" in record:
        p = record["prune"]
        lines.append(f"pruned: {p['global']:.1%} of kernel weights zero (target {p['target']:.0%})")
    if "distill" in record:
        d = record["distill"]
        lines.append(
            f"distilled: {d['student']} {json.dumps(d['student_options'])} from "
            f"{d['teacher_run']} (alpha {d['alpha']}, temperature {d['temperature']})"
        )
    if "quantize" in record:
        q = record["quantize"]
        lines.append(f"quantized ({q['mode']}): {', '.join(q['changed'])}")
        if q.get("note"):
            lines.append(f"note: {q['note']}")
    return lines


def append_card(run: RunDir, record: dict[str, Any]) -> None:
    """A Compression section at the end of the model card the domain wrote (or copied)."""
    rows = ["| | original | compressed |", "|---|---:|---:|"]
    rows += [
        f"| {label} | {before} | {after} |" for label, before, after in comparison_rows(record)
    ]
    text = run.model_card_path.read_text() if run.model_card_path.is_file() else "# Model card\n"
    split = record.get("original", {}).get("split")
    where = f" (the original's figure from its metrics.json, {split} split)" if split else ""
    section = (
        "\n## Compression\n"
        f"Compressed from run `{record['source_run']}` with `deepfield compress`{where}. "
        "Size is the model saved as .keras without optimizer state, zip-compressed; latency is the median of batch-1 forward "
        "passes in one process; sparsity counts every convolution and Dense kernel.\n\n"
        + "\n".join(rows)
        + "\n\n"
        + "\n".join(f"- {line}" for line in summary_lines(record))
        + "\n"
    )
    write_atomic(run.model_card_path, text.rstrip() + "\n" + section)
