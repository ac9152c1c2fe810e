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
PARETO_PLOT = "pareto.png"
# --size-objective -> the trial field (search.json, the table, the plot) it is read from
SIZE_COLUMNS = {"parameters": "parameters", "latency": "latency_ms"}
SIZE_LABELS = {"parameters": "parameters", "latency_ms": "batch-1 latency (ms)"}


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

    def save_preset(self, name: str, trial: str | None = None, force: bool = False) -> Path:
        """Save a trial's config (default: the best) as named config `name` of the
        domain, which `config=NAME` (`--config NAME`) then finds; returns the file
        (pipelines.presets)."""
        from pipelines.presets import save_preset

        return save_preset(self.path, name, trial=trial, force=force)

    def __repr__(self) -> str:
        best = self.search.get("best") or {}
        return (
            f"TuneResult({str(self.path)!r}, {len(self.trials)} trials, "
            f"best {self.objective}={best.get('objective')} in {best.get('run')})"
        )


# === The second objective: model size or latency ===
def size_column(data: dict[str, Any]) -> str:
    """The trial field the search's second objective reads (searches from before
    --size-objective counted parameters)."""
    return SIZE_COLUMNS[data.get("size_objective", "parameters")]


def pareto_front(rows: list[dict[str, Any]], direction: str, size: str = "parameters") -> list[str]:
    """Ids of the completed trials no other trial beats on both the objective and the
    `size` field (parameters, or latency_ms): at least as good on both, better on one;
    best objective first."""
    done = [
        r
        for r in rows
        if r["status"] == "complete" and r.get("objective") is not None and r.get(size) is not None
    ]
    sign = 1.0 if direction == "max" else -1.0

    def beats(a, b) -> bool:
        better_or_equal = sign * a["objective"] >= sign * b["objective"] and a[size] <= b[size]
        return better_or_equal and (
            sign * a["objective"] > sign * b["objective"] or a[size] < b[size]
        )

    front = [r for r in done if not any(beats(other, r) for other in done)]
    front.sort(key=lambda r: -sign * r["objective"])
    return [r["id"] for r in front]


def pareto_plot(data: dict[str, Any], path: Path) -> Path:
    """Objective against size (parameters, log scale; or latency) for every completed
    trial, the front joined."""
    from shared import plots
    from shared.plots import plt

    size = size_column(data)
    rows = {r["id"]: r for r in data["trials"] if r.get(size) is not None}
    done = [r for r in rows.values() if r["status"] == "complete" and r["objective"] is not None]
    front = [rows[i] for i in data["pareto"]]
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    ax.scatter([r[size] for r in done], [r["objective"] for r in done], c="grey", label="trials")
    front = sorted(front, key=lambda r: r[size])
    ax.plot(
        [r[size] for r in front],
        [r["objective"] for r in front],
        "o-",
        c="red",
        label="Pareto front",
    )
    for r in front:
        ax.annotate(r["id"], (r[size], r["objective"]), fontsize=7)
    ax.set(xlabel=SIZE_LABELS[size], ylabel=data["objective"])
    if size == "parameters":
        ax.set_xscale("log")
    ax.set_title(
        f"{data['domain']} {data['task']}: {data['objective']} ({data['direction']}) vs "
        f"{SIZE_LABELS[size]}",
        fontsize=9,
    )
    ax.legend(fontsize=8)
    return plots.save(fig, path)


def short(value: Any) -> str:
    """A trial value as the table shows it."""
    return format_number(value) if isinstance(value, float) else str(value)


def search_table(data: dict[str, Any]) -> str:
    """A short table: one row per trial (best marked), then the best run."""
    keys = list(data.get("space", {}))
    keys += sorted({k for r in data["trials"] for k in r["values"] if k not in keys})  # budget
    best = (data.get("best") or {}).get("id")
    size = size_column(data)
    sizes = ["parameters"] + (["latency_ms"] if size == "latency_ms" else [])
    workers = sorted({r["worker"] for r in data["trials"] if r.get("worker")})
    shown = ["worker"] if len(workers) > 1 else []  # which worker ran it, when several did
    header = [
        "trial",
        "status",
        data["objective"],
        "time",
        *["latency (ms)" if s == "latency_ms" else s for s in sizes],
        *shown,
        *[k.split(".")[-1] for k in keys],
    ]
    rows = []
    for row in data["trials"]:
        values = row["values"]
        rows.append(
            [
                row["id"] + (" *" if row["id"] == best else ""),
                row["status"],
                format_number(row["objective"]),
                format_seconds(row.get("wall_seconds")),
                *[format_number(row.get(s)) for s in sizes],
                *[row.get(s) or "-" for s in shown],
                *[short(values[k]) if k in values else "-" for k in keys],
            ]
        )
    lines = [
        f"{data['domain']} {data['task']}: {data['algorithm']} search, "
        f"{len(rows)} trials, {data['objective']} ({data['direction']})",
        aligned(header, rows, right=set(range(2, 4 + len(sizes)))),
    ]
    failed = [r for r in data["trials"] if r["status"] == "failed"]
    for row in failed:
        lines.append(f"trial {row['id']} failed: {row.get('error', 'see its log.txt')}")
    if data.get("pareto"):
        unit = "parameters" if size == "parameters" else "ms"
        by_id = {r["id"]: r.get(size) for r in data["trials"]}
        front = ", ".join(f"{i} ({format_number(by_id[i])} {unit})" for i in data["pareto"])
        lines.append(f"Pareto front ({data['objective']} vs {SIZE_LABELS[size]}): {front}")
    if data.get("best"):
        lines.append(
            f"best: trial {best}, {data['objective']} {format_number(data['best']['objective'])}"
        )
        if data.get("cv"):
            folds = ", ".join(format_number(v) for v in data["best"].get("folds") or [])
            lines.append(f"{data['cv']}-fold cross-validation, folds: {folds}")
        refit = current_refit(data)
        if refit:
            lines.append(f"run: {refit['run']} (refit on the usual split)")
        else:
            lines.append(f"run: {data['best']['run']}")
    else:
        lines.append("best: none (no trial completed)")
    return "\n".join(lines)


def current_refit(data: dict[str, Any]) -> dict[str, Any] | None:
    """--cv: search.json's refit (the best trial trained on the usual split), or None if
    there is none or it is of an earlier best (a resumed search, not refit yet)."""
    refit = data.get("refit")
    best = (data.get("best") or {}).get("id")
    return refit if refit and best is not None and refit.get("trial") == best else None


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
                "parameters": r.get("parameters"),
                "latency_ms": r.get("latency_ms"),
                "worker": r.get("worker"),
                **r["values"],
                "run": r["run"],
                "error": r.get("error"),
            }
            for r in data["trials"]
        ]
    )
    refit = current_refit(data)
    best = Run(refit["run"] if refit else data["best"]["run"]) if data.get("best") else None
    return TuneResult(path, data["objective"], data["direction"], best, frame, data)
