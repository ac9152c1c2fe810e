"""The tour's report: REPORT.html (one self-contained page) and the parts REPORT.md shares.

The page is for a person who ran `deepfield tour` and wants to see what happened
without opening folders: a summary table (leg, headline metric, value, target, pass or
miss), then one section per leg saying what was trained on what, its main metrics and
its key plots. Everything is inline (CSS in a <style> element, the PNGs as base64
`data:` URIs), so the file opens offline, from an e-mail attachment or a CI artifact,
and refers to nothing on the network. Standard library only; Pillow (a matplotlib
dependency) is imported only to shrink a plot wider than MAX_WIDTH pixels.

Every run file is read defensively (`pipelines.runs.read_run`): a leg whose run folder
is missing or half-written still gets its section, with what could be read.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import re
import struct
import time
from pathlib import Path
from typing import Any

from pipelines.runs import format_number, format_seconds, read_run

LOG = logging.getLogger("deepfield.tour")

MAX_PLOTS = 4  # key plots shown per leg; the others are named
MAX_METRICS = 12  # rows of a leg's metrics table; the rest stay in metrics.json
MAX_WIDTH = 1600  # pixels; a wider plot is scaled down before it is embedded
# The plots a person looks at first, in this order; a leg's other plots follow by name.
KEY_PLOTS = (
    "training_curves",
    "learning_curve",
    "eval_returns",
    "confusion_matrix",
    "pr_roc_curves",
    "roc",
    "reliability",
    "overlays",
    "samples",
    "reconstructions",
    "gradcam",
    "attention",
    "cross_attention",
)
NOT_SHOWN = frozenset({"split", "task", "domain", "num_examples"})

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1100px; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.8em 0; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.7em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pass { color: #176b2c; font-weight: 600; }
.miss { color: #b00020; font-weight: 600; }
.quick, .none { color: #666; }
.muted { color: #666; font-size: 0.9em; }
.facts th { width: 12em; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
code { background: #f4f4f4; padding: 0 0.2em; }
"""


# === What each leg shows (shared with REPORT.md) ===
def leg_status(leg: Any, metrics: dict[str, Any], quick: bool) -> str:
    """`pass` or `miss` against the leg's target; `quick` (no targets) or `none` (no target)."""
    if quick:
        return "quick"
    if leg.target is None:
        return "none"
    value = metrics.get(leg.headline)
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= leg.target
    return "pass" if ok else "miss"


def key_plots(plots: list[Path], limit: int = MAX_PLOTS) -> tuple[list[Path], list[Path]]:
    """(shown, others): the first `limit` plots in KEY_PLOTS order, then by name."""
    rank = {name: i for i, name in enumerate(KEY_PLOTS)}
    ordered = sorted(plots, key=lambda p: (rank.get(p.stem, len(rank)), p.name))
    return ordered[:limit], ordered[limit:]


def main_metrics(
    metrics: dict[str, Any], headline: list[str], limit: int = MAX_METRICS
) -> tuple[list[tuple[str, Any]], int]:
    """(rows, left_out): headline metrics first, then the others in metrics.json order."""
    numbers = {
        k: v
        for k, v in metrics.items()
        if k not in NOT_SHOWN
        and (v is None or (isinstance(v, int | float) and not isinstance(v, bool)))
    }
    order = list(dict.fromkeys([*(k for k in headline if k in numbers), *numbers]))
    return [(k, numbers[k]) for k in order[:limit]], max(0, len(order) - limit)


def target_text(leg: Any) -> str:
    return "-" if leg.target is None else f">= {format_number(leg.target)}"


def _card_facts(card: str) -> tuple[str | None, dict[str, str]]:
    """The model card's opening sentence and its `| item | value |` rows."""
    summary = None
    for block in card.split("\n\n"):
        text = block.strip()
        if text and not text.startswith(("#", "|")):
            summary = " ".join(text.split())
            break
    rows = {}
    for match in re.finditer(r"^\|\s*([^|]+?)\s*\|\s*([^|]+?)\s*\|\s*$", card, re.MULTILINE):
        key, value = match.groups()
        if key != "item" and not set(key) <= set("-: ") and key not in rows:
            rows[key] = value
    return summary, rows


def leg_facts(path: Path) -> tuple[str | None, list[tuple[str, str]]]:
    """(model card summary, [(fact, value)]): what was trained on what, from the run's files."""
    row = read_run(path)
    config = _read_config(path / "config.yaml")
    try:
        card = (path / "MODEL_CARD.md").read_text()
    except (OSError, UnicodeDecodeError):
        card = ""
    summary, card_rows = _card_facts(card)
    train = config.get("train") if isinstance(config.get("train"), dict) else {}
    agent = config.get("agent") if isinstance(config.get("agent"), dict) else {}
    runtime = config.get("runtime") if isinstance(config.get("runtime"), dict) else {}
    metrics_split = row["split"]
    examples = row["metrics"].get("num_examples")
    evaluated = None
    if metrics_split is not None:
        evaluated = str(metrics_split)
        if examples is not None:
            evaluated += f" ({format_number(examples)} examples)"
    facts = [
        ("domain / task", " / ".join(str(x) for x in (row["domain"], row["task"]) if x)),
        ("data", row["data"] or card_rows.get("environment") or card_rows.get("source")),
        ("model", row["model"]),
        ("parameters", card_rows.get("parameters")),
        ("epochs", _plain(train.get("epochs")) if not agent else None),
        ("env steps", _plain(agent.get("total_steps"))),
        ("batch size", _plain(train.get("batch_size")) if not agent else None),
        ("learning rate", _plain(train.get("learning_rate")) if not agent else None),
        ("seed", _plain(runtime.get("seed"))),
        ("evaluated on", evaluated),
        ("status", row["status"] + (f" ({row['problem']})" if row["problem"] else "")),
        ("wall time", format_seconds(row["wall_seconds"]) if row["wall_seconds"] else None),
    ]
    return summary, [(k, str(v)) for k, v in facts if v not in (None, "", "-")]


def _read_config(path: Path) -> dict[str, Any]:
    import yaml

    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return config if isinstance(config, dict) else {}


def _plain(value: Any) -> str | None:
    return None if value is None else format_number(value)


# === Images ===
def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk; None when `data` is not a PNG."""
    if len(data) < 24 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])


def png_data_uri(path: Path, max_width: int | None = None) -> tuple[str, tuple[int, int]] | None:
    """The PNG as a `data:image/png;base64,` URI (scaled to `max_width` if wider) and its
    size; None when the file cannot be read or is not a PNG."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    size = png_size(data)
    max_width = max_width or MAX_WIDTH
    if size is None:
        return None
    if size[0] > max_width:
        try:
            from PIL import Image

            with Image.open(io.BytesIO(data)) as image:
                height = max(1, round(image.height * max_width / image.width))
                small = image.resize((max_width, height), Image.LANCZOS)
                buffer = io.BytesIO()
                small.save(buffer, format="PNG", optimize=True)
            data, size = buffer.getvalue(), (max_width, height)
        except Exception as err:  # embedding the original is better than no plot
            LOG.warning("could not shrink %s (%s); embedding it as it is", path, err)
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii"), size


# === The page ===
def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def anchor(name: str) -> str:
    return "leg-" + re.sub(r"[^A-Za-z0-9_-]+", "-", name)


def _status_cell(status: str) -> str:
    label = {"pass": "pass", "miss": "MISS", "quick": "quick (no target)", "none": "no target"}
    return f'<td class="{_e(status)}">{_e(label.get(status, status))}</td>'


def render_html(rows: list[tuple[Any, Any, float]], out: Path, quick: bool) -> str:
    """The page for the tour's (leg, run, seconds) rows; each leg's run is `out/<leg>`
    unless its run object has a `path`."""
    out = Path(out)
    mode = " (quick mode: few epochs, no targets)" if quick else ""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>Deepfield tour report</title>",
        f"<style>{CSS}</style></head>",
        "<body>",
        "<h1>Deepfield tour report</h1>",
        f'<p class="muted">Generated {_e(time.strftime("%Y-%m-%d %H:%M"))}{_e(mode)}. '
        f"Each leg trained from scratch on embedded data into <code>{_e(out)}/&lt;leg&gt;/</code>.</p>",
        '<table class="summary">',
        "<tr><th>leg</th><th>what</th><th>metric</th><th>value</th><th>target</th>"
        "<th>status</th><th>time</th></tr>",
    ]
    for leg, run, seconds in rows:
        metrics = _metrics(run)
        parts.append(
            f'<tr><td><a href="#{anchor(leg.name)}">{_e(leg.name)}</a></td>'
            f"<td>{_e(leg.description)}</td><td>{_e(leg.headline)}</td>"
            f'<td class="num">{_e(format_number(metrics.get(leg.headline)))}</td>'
            f"<td>{_e(target_text(leg))}</td>{_status_cell(leg_status(leg, metrics, quick))}"
            f'<td class="num">{_e(format_seconds(seconds))}</td></tr>'
        )
    parts.append("</table>")
    for leg, run, _ in rows:
        parts += _leg_section(leg, run, out, quick)
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def _metrics(run: Any) -> dict[str, Any]:
    try:
        metrics = run.metrics
    except Exception:  # a half-written run: its section says so
        return {}
    return metrics if isinstance(metrics, dict) else {}


def _run_path(run: Any, out: Path, leg: Any) -> Path:
    path = getattr(run, "path", None)
    return Path(path) if path is not None else out / leg.name


def _leg_section(leg: Any, run: Any, out: Path, quick: bool) -> list[str]:
    path = _run_path(run, out, leg)
    metrics = _metrics(run)
    status = leg_status(leg, metrics, quick)
    value = format_number(metrics.get(leg.headline))
    summary, facts = leg_facts(path)
    try:
        folder = path.relative_to(out).as_posix()
    except ValueError:
        folder = str(path)
    parts = [
        f'<section id="{anchor(leg.name)}" class="leg">',
        f"<h2>{_e(leg.name)}</h2>",
        f"<p>{_e(leg.description)}</p>",
        f"<p><strong>{_e(leg.headline)} {_e(value)}</strong> against a target of "
        f'{_e(target_text(leg))}: <span class="{_e(status)}">'
        f"{_e({'pass': 'met', 'miss': 'missed'}.get(status, 'not checked'))}</span>.</p>",
    ]
    if summary:
        parts.append(f'<p class="muted">{_e(summary.replace("`", ""))}</p>')
    parts.append('<table class="facts">')
    parts += [f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts]
    parts.append(f"<tr><th>run folder</th><td><code>{_e(folder)}/</code></td></tr>")
    parts.append("</table>")
    shown, left_out = main_metrics(metrics, [leg.headline, *read_run(path)["headline"]])
    if shown:
        parts.append('<table class="metrics"><tr><th>metric</th><th>value</th></tr>')
        parts += [
            f'<tr><td>{_e(k)}</td><td class="num">{_e(format_number(v))}</td></tr>'
            for k, v in shown
        ]
        parts.append("</table>")
        if left_out:
            parts.append(
                f'<p class="muted">{left_out} more metrics in <code>{_e(folder)}'
                "/metrics.json</code>.</p>"
            )
    plots, others = key_plots(list(_plots(run, path)))
    for plot in plots:
        embedded = png_data_uri(plot)
        if embedded is None:
            parts.append(f'<p class="muted">{_e(plot.name)}: not a readable PNG.</p>')
            continue
        uri, (width, height) = embedded
        parts.append(
            f'<figure><img src="{uri}" alt="{_e(leg.name)}: {_e(plot.stem)}" '
            f'width="{width}" height="{height}"><figcaption>{_e(plot.stem)}</figcaption></figure>'
        )
    if others:
        names = ", ".join(p.name for p in others)
        parts.append(
            f'<p class="muted">Other plots in <code>{_e(folder)}/plots/</code>: {_e(names)}.</p>'
        )
    parts.append("</section>")
    return parts


def _plots(run: Any, path: Path) -> list[Path]:
    plots = getattr(run, "plots", None)
    if plots:
        return [Path(p) for p in plots]
    folder = path / "plots"
    return sorted(folder.glob("*.png")) if folder.is_dir() else []
