"""Attention heatmaps of the nlp models (BERT classifiers, the GPT language model).

One figure: a row per text, the mean over heads and then the first heads, each a
heatmap of attending token (rows) against attended token (columns).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared import plots

SHOWN_HEADS = 4


def attention_grid(
    maps: list[dict[str, Any]],
    path: Path,
    *,
    shown_tokens: int,
    title: str,
    last: bool = False,
    label: Callable[[str], str] = str,
    name_rows: bool = False,
    panel: tuple[float, float] = (3.8, 4.0),
) -> Path:
    """`maps`: dicts of "text", "tokens" and "attention" (heads, tokens, tokens).

    Draws each text's first `shown_tokens` tokens (its last with `last`), tokens shown
    through `label`, and with `name_rows` the text beside its row.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    window = slice(-shown_tokens, None) if last else slice(None, shown_tokens)
    heads = min(SHOWN_HEADS, maps[0]["attention"].shape[0])
    fig, axes = plt.subplots(
        len(maps),
        heads + 1,
        figsize=(panel[0] * (heads + 1), panel[1] * len(maps)),
        squeeze=False,
    )
    for row, item in zip(axes, maps, strict=True):
        attention = item["attention"][:, window, window]
        labels = [label(t) for t in item["tokens"][window]]
        panels = [("mean over heads", attention.mean(0))]
        panels += [(f"head {h}", attention[h]) for h in range(heads)]
        for ax, (name, values) in zip(row, panels, strict=True):
            ax.imshow(values, cmap="viridis", vmin=0, vmax=max(float(values.max()), 1e-6))
            ticks = range(len(labels))
            ax.set_xticks(ticks, labels, fontsize=6, rotation=90)
            ax.set_yticks(ticks, labels, fontsize=6)
            ax.set_title(name, fontsize=9)
        if name_rows:
            text = item["text"] if len(item["text"]) <= 60 else item["text"][:57] + "..."
            row[0].set_ylabel(f"{text}\nattending token", fontsize=7)
        else:
            row[0].set_ylabel("attending token", fontsize=8)
    axes[-1, 0].set_xlabel("attended token", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.99))
    return plots.save(fig, path)
