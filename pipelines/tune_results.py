"""A search's results: the table `tune` prints and the `TuneResult` it returns, read from
`search.json` (which `pipelines.tune` writes after every trial)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.run import Run
from pipelines.table import aligned, format_number, format_seconds

if TYPE_CHECKING:
    import pandas as pd

SEARCH = "search.json"


@dataclass
class TuneResult:
    """A finished (or stopped) search: its folder, the best trial's run, every trial."""

    path: Path
    objective: str
    direction: str
    best: Run | None
    trials: pd.DataFrame
    search: dict[str, Any]

    def table(self) -> str:
        return search_table(self.search)

    def __repr__(self) -> str:
        best = self.search.get("best") or {}
        return (
            f"TuneResult({str(self.path)!r}, {len(self.trials)} trials, "
            f"best {self.objective}={best.get('objective')} in {best.get('run')})"
        )


def short(value: Any) -> str:
    """A trial value as the table shows it."""
    return format_number(value) if isinstance(value, float) else str(value)


def search_table(data: dict[str, Any]) -> str:
    """A short table: one row per trial (best marked), then the best run."""
    keys = list(data.get("space", {}))
    keys += sorted({k for r in data["trials"] for k in r["values"] if k not in keys})  # budget
    best = (data.get("best") or {}).get("id")
    header = ["trial", "status", data["objective"], "time", *[k.split(".")[-1] for k in keys]]
    rows = []
    for row in data["trials"]:
        values = row["values"]
        rows.append(
            [
                row["id"] + (" *" if row["id"] == best else ""),
                row["status"],
                format_number(row["objective"]),
                format_seconds(row.get("wall_seconds")),
                *[short(values[k]) if k in values else "-" for k in keys],
            ]
        )
    lines = [
        f"{data['domain']} {data['task']}: {data['algorithm']} search, "
        f"{len(rows)} trials, {data['objective']} ({data['direction']})",
        aligned(header, rows, right={2, 3}),
    ]
    failed = [r for r in data["trials"] if r["status"] == "failed"]
    for row in failed:
        lines.append(f"trial {row['id']} failed: {row.get('error', 'see its log.txt')}")
    if data.get("best"):
        lines.append(
            f"best: trial {best}, {data['objective']} {format_number(data['best']['objective'])}"
        )
        lines.append(f"run: {data['best']['run']}")
    else:
        lines.append("best: none (no trial completed)")
    return "\n".join(lines)


def result_of(path: str | Path) -> TuneResult:
    """The TuneResult of a search folder (as `tune` returns it)."""
    import pandas as pd

    path = Path(path)
    data = json.loads((path / SEARCH).read_text())
    frame = pd.DataFrame(
        [
            {
                "trial": r["id"],
                "status": r["status"],
                data["objective"]: r["objective"],
                "wall_seconds": r.get("wall_seconds"),
                **r["values"],
                "run": r["run"],
                "error": r.get("error"),
            }
            for r in data["trials"]
        ]
    )
    best = Run(data["best"]["run"]) if data.get("best") else None
    return TuneResult(path, data["objective"], data["direction"], best, frame, data)
