"""`deepfield tour`: every domain's leg on embedded data, and one report.

Each leg trains into `runs/tour/<leg>` from scratch, evaluates, and contributes a row to
`runs/tour/REPORT.md` with its metrics and links to its plots. Later domains add legs.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipelines.run import Run
from shared.run_dir import write_atomic

LOG = logging.getLogger("deepfield.tour")


@dataclass
class Leg:
    name: str
    description: str
    headline: str  # the metric the summary shows first
    target: float | None  # what the leg must reach in a full (not --quick) tour
    run: Callable[[Path, bool], Run]


def vision_leg(path: Path, quick: bool) -> Run:
    from pipelines import vision

    return vision.train(
        config="digits", data="builtin:digits", run_dir=path, epochs=3 if quick else None
    )


def rl_leg(path: Path, quick: bool) -> Run:
    from pipelines import rl

    quick_settings = ["evaluate.episodes=10", "train.eval_interval=2048"] if quick else []
    return rl.train(
        config="cartpole_ppo",
        run_dir=path,
        total_steps=4096 if quick else 30_000,
        overrides=quick_settings,
    )


def finance_leg(path: Path, quick: bool) -> Run:
    from pipelines import finance

    return finance.train(config="credit", run_dir=path, epochs=5 if quick else None)


def fraud_leg(path: Path, quick: bool) -> Run:
    from pipelines import finance

    return finance.train(config="fraud", run_dir=path, epochs=2 if quick else None)


LEGS = [
    Leg(
        "vision",
        "small CNN on scikit-learn digits (8x8, 10 classes)",
        "accuracy",
        0.985,
        vision_leg,
    ),
    Leg(
        "rl",
        "PPO on Gymnasium CartPole-v1, 30k env steps (RL Zoo hyperparameters)",
        "mean_return",
        475.0,
        rl_leg,
    ),
    Leg(
        "finance",
        "credit scoring on UCI German credit: FeatureSpace MLP, calibrated, scorecard",
        "roc_auc",
        0.75,
        finance_leg,
    ),
    Leg(
        "fraud",
        "fraud detection on the synthetic transaction stream (0.44% fraud), split by time",
        "pr_auc",
        0.8,
        fraud_leg,
    ),
]


def run_tour(out: Path, quick: bool = False) -> Path:
    """Run every leg into `out` and write `out/REPORT.md`; returns the report's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for leg in LEGS:
        path = out / leg.name
        shutil.rmtree(path, ignore_errors=True)  # the tour shows a fresh run every time
        LOG.info("tour: %s leg (%s)", leg.name, leg.description)
        start = time.perf_counter()
        run = leg.run(path, quick)
        seconds = time.perf_counter() - start
        rows.append((leg, run, seconds))
    report = out / "REPORT.md"
    write_atomic(report, render_report(rows, quick))
    print(summary_table(rows, quick))
    print(f"report: {report}")
    return report


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
        value = run.metrics.get(leg.headline, float("nan"))
        met = (
            "quick" if quick or leg.target is None else ("ok" if value >= leg.target else "MISSED")
        )
        target = f">= {leg.target}" if leg.target is not None else "-"
        lines.append(
            f"{leg.name:<10} {leg.headline + f' {value:.4f}':<22} {target:<10} {met:<8} {seconds:>6.0f}s"
        )
    return "\n".join(lines)
