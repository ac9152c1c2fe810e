"""The tour's REPORT.html (one self-contained page) and REPORT.md, from a fake tour.

No training: `tour.legs` and `tour.run_leg` are replaced by two fake legs whose run
folders hold the files a real run writes (config.yaml, status.json, metrics.json,
MODEL_CARD.md, plots/*.png), so the report is built exactly as `deepfield tour` builds it.
"""

from __future__ import annotations

import base64
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from PIL import Image

from shared.domain import TourLeg
from shared.errors import TargetMissed

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Page(HTMLParser):
    """Sections (id -> text), images (section id, src, alt), every href, all text."""

    def __init__(self):
        super().__init__()
        self.sections: dict[str, list[str]] = {}
        self.images: list[tuple[str | None, str, str]] = []
        self.hrefs: list[str] = []
        self.tags: set[str] = set()
        self.text: list[str] = []
        self.section: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.add(tag)
        if tag == "section":
            self.section = attrs["id"]
            self.sections[self.section] = []
        elif tag == "img":
            self.images.append((self.section, attrs["src"], attrs.get("alt", "")))
        if "href" in attrs:
            self.hrefs.append(attrs["href"])

    def handle_endtag(self, tag):
        if tag == "section":
            self.section = None

    def handle_data(self, data):
        self.text.append(data)
        if self.section:
            self.sections[self.section].append(data)


def _png(path: Path, size: tuple[int, int], color: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


def _fake_run(path: Path, domain: str, task: str, metrics: dict, plots: dict) -> SimpleNamespace:
    path.mkdir(parents=True)
    config = {
        "task": task,
        "model": {"name": "small_cnn"},
        "data": {"source": f"builtin:{domain}-data"},
        "train": {"epochs": 3, "batch_size": 32, "learning_rate": 0.001},
        "runtime": {"seed": 7},
    }
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    status = {"state": "complete", "domain": domain, "task": task, "wall_seconds": 12.5}
    (path / "status.json").write_text(json.dumps(status))
    (path / "model.keras").write_bytes(b"")
    full = {**metrics, "split": "test", "num_examples": 200, "task": task, "domain": domain}
    (path / "metrics.json").write_text(json.dumps(full))
    (path / "MODEL_CARD.md").write_text(
        f"# Model card\n\nA small_cnn trained on `builtin:{domain}-data`.\n\n"
        "## Model\n| item | value |\n|---|---|\n| parameters | 1,234 |\n"
    )
    for name, size in plots.items():
        _png(path / "plots" / f"{name}.png", size, "steelblue")
    return SimpleNamespace(path=path, metrics=full, plots=sorted((path / "plots").glob("*.png")))


def test_tour_writes_a_self_contained_html_page_with_every_leg_and_plot(
    tmp_path, monkeypatch, capsys
):
    from pipelines import report_html, tour

    legs = [
        TourLeg("alpha", "a CNN on <digits> & friends", "accuracy", 0.9, config="default"),
        TourLeg("beta", "fraud on transactions", "pr_auc", 0.8, config="fraud"),
    ]
    plots = {
        "alpha": {
            "training_curves": (40, 20),
            "confusion_matrix": (20, 20),
            "gradcam": (30, 10),
            "misclassified": (10, 10),
            "zz_extra": (10, 10),  # a fifth plot: named, not embedded (MAX_PLOTS = 4)
        },
        "beta": {"pr_roc_curves": (report_html.MAX_WIDTH + 200, 30)},  # shrunk to MAX_WIDTH
    }
    metrics = {
        "alpha": {"loss": 0.25, "accuracy": 0.95, "f1": 0.9412},
        "beta": {"pr_auc": 0.5, "roc_auc": 0.9, "true_positives": 58.0},
    }

    def run_leg(domain, leg, path, quick):
        return _fake_run(Path(path), domain, "classify", metrics[leg.name], plots[leg.name])

    monkeypatch.setattr(tour, "legs", lambda: [("vision", legs[0]), ("finance", legs[1])])
    monkeypatch.setattr(tour, "run_leg", run_leg)
    out = tmp_path / "tour"
    with pytest.raises(TargetMissed, match="beta missed its target"):
        tour.run_tour(out)  # beta misses its target: the reports are written first
    assert "page:" in capsys.readouterr().out

    text = (out / "REPORT.html").read_text()
    page = Page()
    page.feed(text)
    page.close()
    assert set(page.sections) == {"leg-alpha", "leg-beta"}
    assert not page.tags & {"script", "link", "iframe", "object"}  # nothing fetched
    assert all(h.startswith("#") for h in page.hrefs), page.hrefs  # in-page links only
    assert not re.search(r"(?:src|href)\s*=\s*[\"']?\s*(?:https?:|//)", text)
    assert "http" not in "".join(page.text)

    # Every key plot embedded as a PNG, in its leg's section, capped and shrunk.
    by_leg: dict[str, list[str]] = {}
    for section, src, alt in page.images:
        assert src.startswith("data:image/png;base64,"), src[:40]
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data.startswith(PNG_MAGIC)
        with Image.open(io.BytesIO(data)) as image:
            width = image.width
        name = alt.split(": ", 1)[1]
        by_leg.setdefault(section, []).append(name)
        if name == "pr_roc_curves":
            assert width == report_html.MAX_WIDTH
        else:
            assert width == plots[section.removeprefix("leg-")][name][0]
    assert by_leg == {
        "leg-alpha": ["training_curves", "confusion_matrix", "gradcam", "misclassified"],
        "leg-beta": ["pr_roc_curves"],
    }

    alpha = " ".join(page.sections["leg-alpha"])
    assert "a CNN on <digits> & friends" in alpha  # escaped in the file, text when parsed
    assert "a CNN on &lt;digits&gt; &amp; friends" in text
    for fact in ("builtin:vision-data", "small_cnn", "1,234", "test (200 examples)", "12s"):
        assert fact in alpha, fact
    assert "zz_extra.png" in alpha
    beta = " ".join(page.sections["leg-beta"])
    assert "missed" in beta and "true_positives" in beta
    assert re.search(r"true_positives\s+58(?!\.)", beta)  # integers as integers

    # Summary table: leg, metric, value, target, status.
    rows = re.findall(r"<tr><td><a href=\"#leg-\w+\">.*?</tr>", text)
    cells = [re.sub(r"(?:<[^>]+>)+", "|", row).strip("|") for row in rows]
    cells = [row.rsplit("|", 1)[0] for row in cells]  # without the time, this run's own
    assert cells == [
        "alpha|a CNN on &lt;digits&gt; &amp; friends|accuracy|0.95|&gt;= 0.9|pass",
        "beta|fraud on transactions|pr_auc|0.5|&gt;= 0.8|MISS",
    ]

    # REPORT.md: a metrics table per leg and the key plots inline.
    md = (out / "REPORT.md").read_text()
    assert (
        "| [alpha](#alpha) | a CNN on <digits> & friends | accuracy | 0.95 | >= 0.9 | pass |" in md
    )
    assert "| [beta](#beta) | fraud on transactions | pr_auc | 0.5 | >= 0.8 | **MISS** |" in md
    assert "| true_positives | 58 |" in md and "| accuracy | 0.95 |" in md
    for link in re.findall(r"!\[[^]]*\]\(([^)]+\.png)\)", md):
        assert (out / link).is_file(), link
    assert "![alpha: training_curves](alpha/plots/training_curves.png)" in md
    assert "[zz_extra](alpha/plots/zz_extra.png)" in md  # linked, not shown


def test_html_report_of_a_missing_run_folder_still_has_its_section(tmp_path):
    from pipelines.report_html import render_html

    leg = TourLeg("gone", "a leg whose folder vanished", "accuracy", None, config="default")
    run = SimpleNamespace(metrics={}, plots=[])
    page = Page()
    page.feed(render_html([(leg, run, 1.0)], tmp_path, quick=True))
    assert list(page.sections) == ["leg-gone"] and page.images == []
    assert "not checked" in " ".join(page.sections["leg-gone"])
