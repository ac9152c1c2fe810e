"""MODEL_CARD.md for a run: what was trained on what, how well, and for what use."""

from __future__ import annotations

from typing import Any

from shared.run_dir import RunDir, write_atomic


def environment_rows(run: RunDir) -> dict[str, Any]:
    """Versions, commit, command line and training wall time, from the run's status."""
    import time

    status = run.status()
    env = status.get("environment") or {}
    rows = {k: v for k, v in env.items() if v is not None}
    started = status.get("started")
    if started:
        elapsed = time.time() - time.mktime(time.strptime(started, "%Y-%m-%dT%H:%M:%S"))
        rows["training wall time"] = f"{elapsed + status.get('wall_seconds', 0.0):.0f} s"
    return rows or {"recorded": "no"}


def training_rows(train: Any, runtime: Any, **extra: Any) -> dict[str, Any]:
    """The training section every Keras-fit domain shares (TrainConfig, RuntimeConfig)."""
    return {
        "epochs": train.epochs,
        "batch size": train.batch_size,
        "optimizer": train.optimizer,
        "learning rate": train.learning_rate,
        "schedule": train.lr_schedule,
        "precision": train.precision,
        "strategy": runtime.strategy,
        "seed": runtime.seed,
        **extra,
    }


def write_model_card(
    run: RunDir,
    *,
    title: str,
    summary: str,
    data: dict[str, Any],
    model: dict[str, Any],
    training: dict[str, Any],
    metrics: dict[str, Any],
    intended_use: str,
    limitations: list[str],
) -> None:
    """Write the card; sections follow Mitchell et al.'s "Model Cards for Model Reporting"."""

    def table(rows: dict[str, Any]) -> str:
        lines = ["| item | value |", "|---|---|"]
        for key, value in rows.items():
            shown = f"{value:.4f}" if isinstance(value, float) else str(value)
            shown = shown.replace("|", "\\|")  # a command line may hold pipes
            lines.append(f"| {key} | {shown} |")
        return "\n".join(lines)

    plots = "\n".join(f"- [{p.name}](plots/{p.name})" for p in run.plot_paths()) or "- none"
    text = f"""# Model card: {title}

{summary}

## Model
{table(model)}

## Training data
{table(data)}

## Training
{table(training)}

## Evaluation
{table({k: v for k, v in metrics.items() if k not in ("task", "domain")})}

## Plots
{plots}

## Environment
{table(environment_rows(run))}

## Intended use
{intended_use}

## Limitations
{chr(10).join(f"- {item}" for item in limitations)}
"""
    write_atomic(run.model_card_path, text)
