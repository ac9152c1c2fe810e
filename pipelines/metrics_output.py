"""How a command prints a run's metrics: a short aligned table of the headline ones and
where the run is, or (`--json`) every metric as one JSON line."""

from __future__ import annotations

import json
import math

import click

from pipelines.table import aligned, format_number, plain

# A few well-known metrics shown after the run's headline ones (pipelines.runs), then
# the counts; the rest are in metrics.json and `--json`.
WELL_KNOWN = (
    "accuracy",
    "roc_auc",
    "pr_auc",
    "f1",
    "map",
    "map_50",
    "miou",
    "dice",
    "bleu",
    "perplexity",
    "mean_return",
    "loss",
)
SHOWN_METRICS = 5
COUNTS = ("num_examples", "episodes")


def shown_metrics(domain: str, metrics: dict) -> list[str]:
    """The metrics `train` and `evaluate` print: the run's headline metrics (its tour
    leg's, then its task's, as `runs list` shows them), a few well-known ones, counts."""
    from pipelines.runs import headline_metrics

    numbers = {k: v for k, v in metrics.items() if _is_number(v)}
    names = headline_metrics(domain, metrics.get("task"), numbers)
    names += [m for m in WELL_KNOWN if m in numbers and m not in names]
    if not names:
        names = [m for m in numbers if m not in COUNTS]
    return names[:SHOWN_METRICS] + [m for m in COUNTS if m in numbers]


def _is_number(value) -> bool:
    value = plain(value)
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def metrics_text(domain: str, where, metrics: dict, label: str = "run") -> str:
    """A short aligned table of the headline metrics, then where the run (or the
    exported model, `label`) is."""
    names = shown_metrics(domain, metrics)
    title = " ".join(str(metrics[k]) for k in ("domain", "task") if metrics.get(k)) or domain
    if metrics.get("split"):
        title += f" ({metrics['split']} split)"
    rows = [[name, format_number(metrics[name])] for name in names]
    lines = [title, aligned(["metric", "value"], rows, right={1})]
    hidden = sum(1 for k, v in metrics.items() if _is_number(v) and k not in names)
    if hidden:
        lines.append(f"(+{hidden} more metric{'s' if hidden != 1 else ''}: --json prints all)")
    lines.append(f"{label}: {where}")
    return "\n".join(lines)


def metrics_json(where, metrics: dict, label: str = "run") -> str:
    """Every metric as one JSON line, with the run's path under `label` (NaN as null)."""

    def clean(value):
        value = plain(value)
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return value

    return json.dumps({label: str(where), **{k: clean(v) for k, v in metrics.items()}}, default=str)


def print_metrics(
    domain: str, where, metrics: dict, as_json: bool = False, label: str = "run"
) -> None:
    if as_json:
        click.echo(metrics_json(where, metrics, label))
    else:
        click.echo(metrics_text(domain, where, metrics, label))
