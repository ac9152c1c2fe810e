"""`deepfield runs list | compare`: the runs under a folder, as a table, without TensorFlow.

A run is a folder holding `config.yaml` and `status.json` (see shared.run_dir); folders
inside a run (checkpoints/, tensorboard/, plots/) are not searched. Every file is read
defensively: a run whose files are missing or broken is listed with what could be read
and a `problem`, never an exception, since a folder of runs often holds a run still
being written or one that a kill cut short.

`pipelines.runs()` is `runs()` below (a pandas DataFrame); helpers are imported with
`from pipelines.runs import ...`, since the package attribute is the function.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from pipelines.table import aligned, clip, format_number, format_seconds
from shared.errors import UserError

NOT_METRICS = frozenset({"split", "task", "domain"})
# Headline metrics by task, after the domain's own tour-leg headline; then the generic
# order below fills up to HEADLINE_COUNT.
TASK_HEADLINES = {
    "classify": ("accuracy", "roc_auc", "f1"),
    "segment": ("dice", "hd95"),
    "translate": ("bleu", "chrf"),
    "lm": ("perplexity", "accuracy"),
    "generate": ("frechet_classifier_distance",),
    "control": ("mean_return", "std_return"),
}
GENERIC_HEADLINES = (
    "roc_auc",
    "pr_auc",
    "accuracy",
    "f1",
    "dice",
    "hd95",
    "map",
    "map_50",
    "miou",
    "bleu",
    "perplexity",
    "mean_return",
    "loss",
)
HEADLINE_COUNT = 3
# A metric is lower-is-better when one of its `_`-separated words is one of these (or it
# counts false positives/negatives); everything else sorts higher-is-better.
LOWER_IS_BETTER = frozenset(
    {"loss", "error", "hd95", "perplexity", "ece", "brier", "cost", "distance", "divergence"}
    | {"mae", "mse", "rmse", "diff", "fid", "kid"}
)


# === Reading runs ===
def find_runs(root: Path) -> list[Path]:
    """Every run folder under `root` (itself included), in path order."""
    found = []
    for folder, subfolders, files in os.walk(root, onerror=lambda err: None):
        if "config.yaml" in files and "status.json" in files:
            found.append(Path(folder))
            subfolders.clear()  # a run's own folders hold no runs
        else:
            subfolders[:] = sorted(s for s in subfolders if not s.startswith("."))
    return sorted(found)


def _read_json(path: Path) -> tuple[dict[str, Any], str | None]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}, None
    except (OSError, ValueError):
        return {}, f"{path.name} is not valid JSON"
    if not isinstance(data, dict):
        return {}, f"{path.name} is not a JSON object"
    return data, None


def _read_config(path: Path) -> tuple[dict[str, Any], str | None]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return {}, "config.yaml is not valid YAML"
    if not isinstance(data, dict):
        return {}, "config.yaml is not a mapping"
    return data, None


def _data_spec(config: dict[str, Any]) -> str | None:
    source = (
        (config.get("data") or {}).get("source") if isinstance(config.get("data"), dict) else None
    )
    if isinstance(source, list):
        return ", ".join(str(s) for s in source)
    return None if source is None else str(source)


def _model_name(config: dict[str, Any]) -> str | None:
    for section in ("model", "agent"):
        part = config.get(section)
        if isinstance(part, dict) and part.get("name") is not None:
            return str(part["name"])
    return None


def _wall_seconds(status: dict[str, Any]) -> float | None:
    if isinstance(status.get("wall_seconds"), int | float):
        return float(status["wall_seconds"])
    try:
        started = datetime.fromisoformat(status["started"])
        return (datetime.fromisoformat(status["finished"]) - started).total_seconds()
    except (KeyError, TypeError, ValueError):
        return None


def _date(status: dict[str, Any], path: Path) -> str | None:
    try:
        when = datetime.fromisoformat(str(status["started"]))
    except (KeyError, ValueError):
        try:
            when = datetime.fromtimestamp((path / "config.yaml").stat().st_mtime)
        except OSError:
            return None
    return when.isoformat(timespec="seconds")


def _numbers(metrics: dict[str, Any]) -> dict[str, float | int | None]:
    """The metrics proper: numbers (None for NaN, which run_dir writes as null)."""
    return {
        key: None if isinstance(value, float) and not math.isfinite(value) else value
        for key, value in metrics.items()
        if key not in NOT_METRICS
        and (value is None or (isinstance(value, int | float) and not isinstance(value, bool)))
    }


def headline_metrics(domain: str | None, task: str | None, metrics: dict[str, Any]) -> list[str]:
    """The few metrics a person looks at first for this kind of run (those it has)."""
    wanted = [
        *_leg_headlines(domain, task),
        *TASK_HEADLINES.get(task or "", ()),
        *GENERIC_HEADLINES,
    ]
    shown: list[str] = []
    for name in wanted:
        if name in metrics and name not in shown:
            shown.append(name)
    return shown[:HEADLINE_COUNT]


def _leg_headlines(domain: str | None, task: str | None) -> list[str]:
    """The headline of the domain's tour leg for this task (the registry, no TensorFlow)."""
    from pipelines.domains import discover
    from shared.domain import DOMAINS

    if not domain or domain not in discover():
        return []
    cls = DOMAINS.get(domain)
    by_config = {config: name for name, config in cls.task_configs.items()}
    first_task = cls.tasks[0] if cls.tasks else None
    return [
        leg.headline
        for leg in cls.tour_legs
        if (leg.task or by_config.get(leg.config, first_task)) == task
    ]


def read_run(path: Path, root: Path | None = None) -> dict[str, Any]:
    """One row: what the run's files say, with `problem` naming any file that is broken."""
    status, status_problem = _read_json(path / "status.json")
    config, config_problem = _read_config(path / "config.yaml")
    raw_metrics, metrics_problem = _read_json(path / "metrics.json")
    problems = [p for p in (status_problem, config_problem, metrics_problem) if p]
    state = str(status.get("state") or "unknown")
    if state == "complete" and not (path / "model.keras").is_file():
        state = "incomplete"
        problems.append("model.keras is missing")
    if state == "complete" and not raw_metrics and not metrics_problem:
        problems.append("metrics.json is missing")
    domain = status.get("domain") or raw_metrics.get("domain")
    task = status.get("task") or raw_metrics.get("task") or config.get("task")
    domain, task = (None if v is None else str(v) for v in (domain, task))
    metrics = _numbers(raw_metrics)
    try:
        name = path.relative_to(root).as_posix() if root else str(path)
    except ValueError:
        name = str(path)
    return {
        "run": str(path),
        "name": path.name if name == "." else name,
        "domain": domain,
        "task": task,
        "data": _data_spec(config),
        "model": _model_name(config),
        "status": "broken" if status_problem or config_problem else state,
        "headline": headline_metrics(domain, task, metrics),
        "wall_seconds": _wall_seconds(status),
        "date": _date(status, path),
        "split": raw_metrics.get("split"),
        "metrics": metrics,
        "problem": "; ".join(problems) or None,
    }


# === Listing ===
def lower_is_better(metric: str) -> bool:
    """Loss, error, distance and calibration-gap metrics (`loss`, `val_loss`, `hd95`,
    `perplexity`, `ece`, `brier`, `cost`, `fairness_tpr_diff`, ...) sort ascending."""
    words = metric.split("_")
    return metric.startswith("false_") or any(w in LOWER_IS_BETTER for w in words)


def sort_rows(rows: list[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """Best first by `metric` (see lower_is_better); runs without it last, in path order."""
    sign = 1.0 if lower_is_better(metric) else -1.0

    def key(row):
        value = row["metrics"].get(metric)
        missing = value is None or (isinstance(value, float) and math.isnan(value))
        return (missing, 0.0 if missing else sign * value)

    return sorted(rows, key=key)


def list_runs(
    root: str | os.PathLike = "runs",
    *,
    domain: str | None = None,
    task: str | None = None,
    sort: str | None = None,
) -> list[dict[str, Any]]:
    """The rows of `runs list` (JSON-able dicts), filtered and sorted."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root} is not a folder (runs are listed from a folder of runs)")
    rows = [read_run(path, root) for path in find_runs(root)]
    rows = [r for r in rows if (domain is None or r["domain"] == domain)]
    rows = [r for r in rows if (task is None or r["task"] == task)]
    if sort:
        known = sorted({m for r in rows for m in r["metrics"]})
        if rows and sort not in known:
            raise UserError(
                f"no run here has metric {sort!r}; metrics these runs have: {', '.join(known)}"
            )
        rows = sort_rows(rows, sort)
    return rows


def runs(
    dir: str | os.PathLike = "runs",  # noqa: A002 - the name the API documents
    domain: str | None = None,
    task: str | None = None,
    sort: str | None = None,
):
    """The runs under `dir` as a pandas DataFrame: one row per run, one column per metric.

    `pipelines.runs(sort="roc_auc").iloc[0]` is the best run by ROC AUC (see lower_is_better).
    """
    import pandas as pd

    rows = list_runs(dir, domain=domain, task=task, sort=sort)
    fixed = ["run", "name", "domain", "task", "data", "model", "status", "wall_seconds"]
    records = []
    for row in rows:
        record = {k: row[k] for k in fixed}
        record["date"] = pd.Timestamp(row["date"]) if row["date"] else pd.NaT
        record.update({k: v for k, v in row["metrics"].items() if k not in record})
        record["problem"] = row["problem"]
        records.append(record)
    frame = pd.DataFrame.from_records(
        records, columns=None if records else [*fixed, "date", "problem"]
    )
    return frame[[c for c in frame.columns if c != "problem"] + ["problem"]]


# === Printing ===
def runs_table(
    rows: list[dict[str, Any]], sort: str | None = None, width: int | None = None
) -> str:
    """An aligned plain-text table that fits `width` columns (by default the terminal's,
    or $COLUMNS; unlimited when the output is not a terminal).

    Long data specs and model names are shortened first, then the date loses its time;
    on a narrow terminal the date, data, model and domain columns are left out in that
    order. The metrics column (last) shows as many headline metrics as fit, at least one.
    """
    width = width or shutil.get_terminal_size((10_000, 24)).columns
    header = ["run", "domain", "task", "data", "model", "status"]
    header += [sort] if sort else []
    header += ["wall", "date"]
    body = []
    for row in rows:
        cells = [row["name"], row["domain"] or "-", row["task"] or "-", row["data"] or "-"]
        cells += [row["model"] or "-", row["status"]]
        cells += [format_number(row["metrics"].get(sort))] if sort else []
        date = (row["date"] or "-").replace("T", " ")[:16]
        body.append([*cells, format_seconds(row["wall_seconds"]), date])

    def used() -> int:  # the fixed columns' width, with the gap before the metrics
        return sum(max(len(r[i]) for r in [header, *body]) + 2 for i in range(len(header)))

    def pairs(row) -> list[str]:
        shown = [m for m in row["headline"] if m != sort]
        return [f"{m} {format_number(row['metrics'][m])}" for m in shown]

    wanted = max((len("  ".join(pairs(row))) for row in rows), default=0)
    date = header.index("date")
    for column, floor in (("data", 24), ("model", 12), ("date", 10), ("data", 16)):
        i = header.index(column)
        over = used() + wanted - width
        widest = max(len(r[i]) for r in [header, *body])
        if over > 0 and widest > floor:
            for r in body:
                cut = max(floor, widest - over)
                r[i] = r[i][:floor] if i == date else clip(r[i], cut, middle=column == "data")
    # Still too wide for one metric: leave out whole columns, least needed first.
    first = max((len(pairs(row)[0]) for row in rows if pairs(row)), default=0)
    for column in ("date", "data", "model", "domain"):
        if used() + first <= width:
            break
        i = header.index(column)
        del header[i]
        for r in body:
            del r[i]
    room = width - used()
    for row, cells in zip(rows, body, strict=True):
        shown = ""
        for pair in pairs(row):
            if shown and len(shown) + 2 + len(pair) > room:
                break
            shown = f"{shown}  {pair}" if shown else pair
        cells.append(shown)
    right = {header.index("wall")} | ({header.index(sort)} if sort else set())
    return aligned([*header, "metrics"], body, right)


def print_listing(rows: list[dict[str, Any]], root: Path, sort: str | None) -> str:
    """The full `runs list` text: the table, then any broken runs' problems."""
    if not rows:
        return f"no runs under {root}"
    text = [runs_table(rows, sort)]
    problems = [f"  {r['name']}: {r['problem']}" for r in rows if r["problem"]]
    if problems:
        text += ["", "problems:", *problems]
    suffix = f", best first by {sort}" if sort else ""
    text += ["", f"{len(rows)} run{'s' if len(rows) != 1 else ''} under {root}{suffix}"]
    return "\n".join(text)


# === Comparing ===
def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists stay whole values."""
    if not isinstance(config, dict) or (prefix and not config):
        return {prefix.rstrip("."): config} if prefix else {}
    flat: dict[str, Any] = {}
    for key, value in config.items():
        flat.update(flatten(value, f"{prefix}{key}."))
    return flat


def resolve_run(run: str | os.PathLike, root: str | os.PathLike = "runs") -> Path:
    """A run folder as given, or as `runs list` names it (relative to `root`)."""
    for path in (Path(run), Path(root) / run):
        if (path / "config.yaml").is_file() and (path / "status.json").is_file():
            return path
    raise UserError(f"{run} is not a run folder (no config.yaml and status.json there)")


def _labels(paths: list[Path]) -> list[str]:
    """The shortest trailing parts of each path that tell the runs apart."""
    parts = [p.resolve().parts for p in paths]
    for depth in range(1, max(len(p) for p in parts) + 1):
        labels = ["/".join(p[-depth:]) for p in parts]
        if len(set(labels)) == len(labels):
            return labels
    return [str(p) for p in paths]  # the same folder given twice


def compare_runs(
    run_paths: list[str | os.PathLike], root: str | os.PathLike = "runs"
) -> dict[str, Any]:
    """What differs between runs: config keys (each run's value) and metrics side by side.

    Keys every run has are compared; keys only some runs have (runs of different
    domains or tasks) are listed under `only_in_some` with the runs that have them.
    """
    if len(run_paths) < 2:
        raise UserError("runs compare takes at least two runs")
    paths = [resolve_run(p, root) for p in run_paths]
    rows = [read_run(p) for p in paths]
    configs = [flatten(_read_config(p / "config.yaml")[0]) for p in paths]
    labels = _labels(paths)
    keys = list(dict.fromkeys(k for c in configs for k in c))
    shared = [k for k in keys if all(k in c for c in configs)]
    differ = {
        k: [c[k] for c in configs]
        for k in shared
        if any(c[k] != configs[0][k] for c in configs[1:])
    }
    only_in_some = {
        k: {label: c[k] for label, c in zip(labels, configs, strict=True) if k in c}
        for k in keys
        if k not in shared
    }
    # Headline metrics first, then those every run has, then the rest.
    names = list(dict.fromkeys(m for r in rows for m in r["headline"]))
    everywhere = [m for m in rows[0]["metrics"] if all(m in r["metrics"] for r in rows)]
    names = list(dict.fromkeys([*names, *everywhere, *(m for r in rows for m in r["metrics"])]))
    metrics = {m: [r["metrics"].get(m) for r in rows] for m in names}
    domains = sorted({r["domain"] or "unknown" for r in rows})
    tasks = sorted({f"{r['domain'] or 'unknown'}/{r['task'] or 'unknown'}" for r in rows})
    notes = []
    if len(domains) > 1:
        notes.append(
            f"runs of different domains ({', '.join(domains)}): {len(shared)} config keys "
            f"are shared and compared, {len(only_in_some)} exist in only some runs; "
            "metrics a run lacks show as -"
        )
    elif len(tasks) > 1:
        notes.append(f"runs of different tasks ({', '.join(tasks)})")
    notes += [
        f"{label}: {r['problem']}" for label, r in zip(labels, rows, strict=True) if r["problem"]
    ]
    return {
        "runs": [
            {
                "label": label,
                **{k: r[k] for k in ("run", "domain", "task", "data", "model", "status")},
            }
            for label, r in zip(labels, rows, strict=True)
        ],
        "config": {"compared": len(shared), "differ": differ, "only_in_some": only_in_some},
        "metrics": metrics,
        "notes": notes,
    }


def _value(value: Any, width: int = 28) -> str:
    if isinstance(value, list | dict):
        return clip(json.dumps(value, separators=(",", ":")), width)
    if isinstance(value, str):
        return clip(value, width)
    return format_number(value) if value is not None else "null"


def comparison_text(result: dict[str, Any], shown_only: int = 8) -> str:
    """`runs compare` as text: the runs, config differences, then metrics side by side."""
    runs_ = result["runs"]
    labels = [r["label"] for r in runs_]
    lines = [
        aligned(
            ["run", "domain", "task", "data", "model", "status"],
            [
                [r["label"], r["domain"] or "-", r["task"] or "-", clip(r["data"] or "-", 32)]
                + [r["model"] or "-", r["status"]]
                for r in runs_
            ],
        )
    ]
    lines += [f"note: {note}" for note in result["notes"]]
    differ, partial = result["config"]["differ"], result["config"]["only_in_some"]
    lines.append("")
    if differ:
        lines.append("config keys that differ:")
        rows = [[key, *(_value(v) for v in values)] for key, values in differ.items()]
        lines.append(aligned(["key", *labels], rows))
    elif result["config"]["compared"]:
        lines.append(f"config: the {result['config']['compared']} keys all runs have are equal")
    else:
        lines.append("config: no key is in every run")
    if partial:
        lines += ["", "config keys only some runs have:"]
        for label in labels:
            own = [k for k, where in partial.items() if label in where]
            if own:
                more = f" (+{len(own) - shown_only} more)" if len(own) > shown_only else ""
                lines.append(f"  {label}: {', '.join(own[:shown_only])}{more}")
    lines += ["", "metrics:"]
    if result["metrics"]:
        rows = [[name, *(format_number(v) for v in vs)] for name, vs in result["metrics"].items()]
        lines.append(aligned(["metric", *labels], rows, right=set(range(1, len(labels) + 1))))
    else:
        lines.append("  none of these runs has metrics yet")
    return "\n".join(lines)
