"""`deepfield tour`: every domain's leg on embedded data, and one report.

Each registered domain declares its legs (`Domain.tour_legs`). Each leg trains into
`runs/tour/<leg>` from scratch, evaluates, and contributes a row and a section to
`runs/tour/REPORT.md` (metrics as tables, key plots inline) and to `runs/tour/REPORT.html`
(the same as one self-contained page with the plots embedded; see report_html). A full tour in which a leg misses its target
raises TargetMissed (exit code 3); `--quick` has no targets.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from pathlib import Path

from pipelines.domains import all_domains
from pipelines.report_html import (
    key_plots,
    leg_facts,
    leg_status,
    main_metrics,
    render_html,
    target_text,
)
from pipelines.run import Run
from pipelines.runs import format_number, format_seconds
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
    """Run every leg into `out`, write `out/REPORT.md` and `out/REPORT.html`; returns the
    Markdown report's path."""
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
    write_atomic(report, render_report(rows, quick, out))
    page = out / "REPORT.html"
    write_atomic(page, render_html(rows, out, quick))
    print(summary_table(rows, quick))
    print(f"report: {report}")
    print(f"page:   {page} (plots embedded; opens offline)")
    missed = [leg.name for leg, run, _ in rows if not quick and not met_target(leg, run)]
    if missed:
        raise TargetMissed(
            f"tour leg{'s' if len(missed) > 1 else ''} {', '.join(missed)} missed "
            f"{'their targets' if len(missed) > 1 else 'its target'}; see {report}"
        )
    return report


def met_target(leg: TourLeg, run: Run) -> bool:
    return leg_status(leg, run.metrics, quick=False) in ("pass", "none")


def render_report(rows, quick: bool, out: Path | None = None) -> str:
    """REPORT.md: a summary table, then per leg its facts, a metrics table and its key
    plots inline (the others linked); paths are relative to the report's folder."""
    out = Path(out) if out is not None else Path(".")
    mode = " (quick mode: few epochs, no targets)" if quick else ""
    lines = [
        "# Deepfield tour report",
        "",
        f"Generated {time.strftime('%Y-%m-%d %H:%M')}{mode}. "
        "The same report with its plots embedded: [REPORT.html](REPORT.html).",
        "",
        "| leg | what | metric | value | target | status | time |",
        "|---|---|---|--:|---|---|--:|",
    ]
    for leg, run, seconds in rows:
        metrics = run.metrics
        status = leg_status(leg, metrics, quick)
        lines.append(
            f"| [{leg.name}](#{leg.name}) | {_cell(leg.description)} | {leg.headline} | "
            f"{format_number(metrics.get(leg.headline))} | {target_text(leg)} | "
            f"{STATUS_TEXT.get(status, status)} | {format_seconds(seconds)} |"
        )
    for leg, run, _ in rows:
        path = Path(getattr(run, "path", None) or out / leg.name)
        summary, facts = leg_facts(path)
        lines += ["", f"## {leg.name}", "", leg.description, ""]
        if summary:
            lines += [summary, ""]
        lines += ["| | |", "|---|---|"]
        lines += [f"| {k} | {_cell(v)} |" for k, v in facts]
        lines += [
            f"| run | [{leg.name}/]({leg.name}/), [MODEL_CARD.md]({leg.name}/MODEL_CARD.md) |",
            "",
        ]
        shown, left_out = main_metrics(run.metrics, [leg.headline])
        if shown:
            lines += ["| metric | value |", "|---|--:|"]
            lines += [f"| {k} | {format_number(v)} |" for k, v in shown]
            if left_out:
                lines += ["", f"{left_out} more in [metrics.json]({leg.name}/metrics.json)."]
            lines.append("")
        plots, others = key_plots([Path(p) for p in run.plots])
        for plot in plots:
            lines += [f"![{leg.name}: {plot.stem}]({leg.name}/plots/{plot.name})", ""]
        if others:
            links = ", ".join(f"[{p.stem}]({leg.name}/plots/{p.name})" for p in others)
            lines += [f"Other plots: {links}.", ""]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).rstrip() + "\n"


STATUS_TEXT = {"pass": "pass", "miss": "**MISS**", "quick": "quick", "none": "-"}


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def summary_table(rows, quick: bool) -> str:
    header = f"{'leg':<10} {'headline':<22} {'target':<10} {'status':<8} {'time':>7}"
    lines = ["", header, "-" * len(header)]
    for leg, run, seconds in rows:
        value = run.metrics.get(leg.headline)
        status = leg_status(leg, run.metrics, quick)
        met = {"pass": "ok", "miss": "MISSED", "none": "quick"}.get(status, status)
        lines.append(
            f"{leg.name:<10} {leg.headline + ' ' + format_number(value):<22} "
            f"{target_text(leg):<10} {met:<8} {seconds:>6.0f}s"
        )
    return "\n".join(lines)
