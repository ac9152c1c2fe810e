"""Plain-text tables for the CLI: numbers as a person reads them, columns aligned.

One formatter for every listing (`runs list`, `runs compare`, the metrics that `train`
and `evaluate` print, `zoo list`), so a number looks the same wherever it is shown.
No TensorFlow, no pandas.
"""

from __future__ import annotations

import math
from typing import Any


def plain(value: Any) -> Any:
    """A NumPy scalar as the Python number it holds; anything else unchanged."""
    if not isinstance(value, bool | int | float | str) and hasattr(value, "item"):
        try:
            return value.item()
        except (TypeError, ValueError):
            return value
    return value


def format_number(value: Any) -> str:
    """Integers as integers, large numbers rounded, the rest to 4 significant digits."""
    value = plain(value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.0f}" if abs(value) >= 1e4 else f"{value:.4g}"


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def clip(text: str, width: int, *, middle: bool = False) -> str:
    """`text` in at most `width` characters; `middle` keeps both ends (a path's file name)."""
    if len(text) <= width:
        return text
    if middle and width >= 16 and "/" in text:
        head = (width - 3) // 2
        return text[:head] + "..." + text[len(text) - (width - 3 - head) :]
    return text[: max(width - 3, 0)] + "..."


def aligned(header: list[str], rows: list[list[str]], right: set[int] = frozenset()) -> str:
    """Columns padded to their widest cell, two spaces apart; `right` columns right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for cells in [header, *rows]:
        padded = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def row_format(widths: list[int], right: set[int] = frozenset()) -> Any:
    """A function that lays out one row at fixed `widths` (as `aligned` does), for tables
    printed a row at a time, before the later rows (and their widths) are known."""

    def line(cells: list[str]) -> str:
        padded = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(padded).rstrip()

    return line
