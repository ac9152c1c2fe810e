"""`deepfield tour`: every domain's leg on embedded data, and one report.

Each registered domain declares its legs (`Domain.tour_legs`). Each leg trains into
`runs/tour/<leg>` from scratch, evaluates, and contributes a row to `runs/tour/REPORT.md`
with its metrics and links to its plots. A full tour in which a leg misses its target
raises TargetMissed (exit code 3); `--quick` has no targets.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from pipelines.domains import all_domains
from pipelines.run import Run
from shared.domain import TourLeg
from shared.errors import TargetMissed
from shared.run_dir import write_atomic

LOG = logging.getLogger("deepfield.tour")


def legs() -> list[tuple[str, TourLeg]]:
    """(domain, leg) for every registered domain's tour legs, in listing order."""
    return [(domain.name, leg) for domain in all_domains() for leg in domain.tour_legs]


def run_leg(domain: str, leg: TourLeg, path: Path, quick: bool) -> Run:
    """Train one leg into `path` from its named config and embedded data."""
    from pipelines.api import api_for

    overrides = [*leg.overrides, *(leg.quick if quick else leg.full)]
    return api_for(domain).train(
        config=leg.config, task=leg.task, data=leg.data, overrides=overrides, run_dir=path
    )


def run_tour(out: Path, quick: bool = False) -> Path:
    """Run every leg into `out` and write `out/REPORT.md`; returns the report's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for domain, leg in legs():
        path = out / leg.name
        shutil.rmtree(path, ignore_errors=True)  # the tour shows a fresh run every time
        LOG.info("tour: %s leg (%s)", leg.name, leg.description)
        start = time.perf_counter()
        run = run_leg(domain, leg, path, quick)
        seconds = time.perf_counter() - start
        rows.append((leg, run, seconds))
    report = out / "REPORT.md"
    write_atomic(report, render_report(rows, quick))
    print(summary_table(rows, quick))
    print(f"report: {report}")
    missed = [leg.name for leg, run, _ in rows if not quick and not met_target(leg, run)]
    if missed:
        raise TargetMissed(
            f"tour leg{'s' if len(missed) > 1 else ''} {', '.join(missed)} missed "
            f"{'their targets' if len(missed) > 1 else 'its target'}; see {report}"
        )
    return report


def met_target(leg: TourLeg, run: Run) -> bool:
    value = run.metrics.get(leg.headline)
    return leg.target is None or (isinstance(value, int | float) and value >= leg.target)


def _metric_text(metrics: dict) -> str:
    return ", ".join(
        f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float) and k != "num_examples"
    )


def render_report(rows, quick: bool) -> str:
    lines = [
        "# Deepfield tour report",
        "",
        f"Generated {time.strftime('%Y-%m-%d %H:%M')}{' (quick mode: few epochs)' if quick else ''}.",
        "",
        "| leg | what | headline | target | metrics | time |",
        "|---|---|---|---|---|---|",
    ]
    for leg, run, seconds in rows:
        metrics = run.metrics
        value = metrics.get(leg.headline)
        target = f">= {leg.target}" if leg.target is not None else "-"
        lines.append(
            f"| [{leg.name}]({leg.name}/) | {leg.description} | {leg.headline} {value:.4f} | "
            f"{target} | {_metric_text(metrics)} | {seconds:.0f} s |"
        )
    for leg, run, _ in rows:
        lines += [
            "",
            f"## {leg.name}",
            "",
            f"Run: [{leg.name}/]({leg.name}/), "
            f"model card: [{leg.name}/MODEL_CARD.md]({leg.name}/MODEL_CARD.md)",
            "",
        ]
        lines += [f"![{p.stem}]({leg.name}/plots/{p.name})" for p in run.plots]
    return "\n".join(lines) + "\n"


def summary_table(rows, quick: bool) -> str:
    header = f"{'leg':<10} {'headline':<22} {'target':<10} {'status':<8} {'time':>7}"
    lines = ["", header, "-" * len(header)]
    for leg, run, seconds in rows:
        value = run.metrics.get(leg.headline)
        value = float("nan") if value is None else value
        met = (
            "quick" if quick or leg.target is None else ("ok" if met_target(leg, run) else "MISSED")
        )
        target = f">= {leg.target}" if leg.target is not None else "-"
        lines.append(
            f"{leg.name:<10} {leg.headline + f' {value:.4f}':<22} {target:<10} {met:<8} {seconds:>6.0f}s"
        )
    return "\n".join(lines)
