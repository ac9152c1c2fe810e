"""MODEL_CARD.md for a run: what was trained on what, how well, and for what use."""

from __future__ import annotations

from typing import Any

from shared.run_dir import RunDir, write_atomic


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
{table(metrics)}

## Plots
{plots}

## Intended use
{intended_use}

## Limitations
{chr(10).join(f"- {item}" for item in limitations)}
"""
    write_atomic(run.model_card_path, text)
