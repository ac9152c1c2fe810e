"""What the CLI prints: the headline-metrics table and --json of train/evaluate, `zoo list`
streamed from the catalogue with its filters, and a description, an example and option
help on every command's --help (checked without importing TensorFlow)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from pipelines import domain_cli
from pipelines.metrics_output import metrics_text, shown_metrics
from pipelines.table import aligned, format_number
from tests.conftest import REPO

CREDIT = {
    "loss": 0.51234567,
    "roc_auc": 0.83123456,
    "pr_auc": 0.6299999999999999,
    "accuracy": 0.7,
    "cost": 132.0,
    "brier": np.float32(0.17),
    "ece": float("nan"),
    "split": "test",
    "num_examples": 200.0,
    "task": "credit",
    "domain": "finance",
}


# === Numbers and tables ===
def test_numbers_integers_as_integers_floats_to_four_significant_digits() -> None:
    assert [format_number(v) for v in (57.0, 57, np.int64(5), 200.0)] == ["57", "57", "5", "200"]
    assert format_number(0.83123456) == "0.8312" and format_number(np.float32(0.25)) == "0.25"
    assert format_number(12345.678) == "12346" and format_number(1.23456e-5) == "1.235e-05"
    assert format_number(float("nan")) == "-" and format_number(None) == "-"
    assert format_number(float("inf")) == "inf" and format_number("test") == "test"


def test_aligned_pads_columns_and_right_aligns_numbers() -> None:
    lines = aligned(["metric", "value"], [["roc_auc", "0.8312"], ["num_examples", "200"]], {1})
    lines = lines.splitlines()
    assert lines[0].startswith("metric        ")  # padded to the widest cell, num_examples
    assert len({len(line) for line in lines}) == 1  # right-aligned: every line ends together
    assert lines[2].endswith("   200")


def test_metrics_table_shows_the_headline_first_and_the_run_last() -> None:
    text = metrics_text("finance", "runs/finance/credit/1", CREDIT).splitlines()
    assert text[0] == "finance credit (test split)"
    rows = [line.split() for line in text[2:-2]]
    assert rows[0] == ["roc_auc", "0.8312"]  # the credit tour leg's headline
    assert ["num_examples", "200"] in rows  # a count, not 200.0000
    assert ["accuracy", "0.7"] in rows and ["loss", "0.5123"] in rows
    assert len(rows) <= 6 and all(len(line) == len(text[1]) for line in text[2:-2])
    hidden = len([k for k, v in CREDIT.items() if not isinstance(v, str)]) - len(rows)
    assert text[-2] == f"(+{hidden} more metrics: --json prints all)"
    assert text[-1] == "run: runs/finance/credit/1"


def test_shown_metrics_fall_back_to_what_the_run_has() -> None:
    assert shown_metrics("toy", {"loss": 0.1, "mae": 0.2}) == ["loss"]
    assert shown_metrics("toy", {"mae": 0.2, "num_examples": 9}) == ["mae", "num_examples"]


class FakeRun:
    def __init__(self, path):
        self.path = path
        self.metrics = dict(CREDIT)


def test_train_prints_the_table_or_every_metric_as_json(cli, monkeypatch, tmp_path) -> None:
    class API:  # the Python API's train, without training: what the CLI prints of a Run
        def train(self, **kwargs):
            assert kwargs["task"] == "credit"
            return FakeRun(tmp_path / "run")

    monkeypatch.setattr(domain_cli, "_api", lambda domain: API())
    code, out, err = cli("finance", "train", "--task", "credit")
    assert code == 0, err
    assert out.splitlines()[-1] == f"run: {tmp_path / 'run'}" and "200.0" not in out
    code, out, err = cli("finance", "train", "--task", "credit", "--json")
    assert code == 0, err
    printed = json.loads(out)  # one JSON object, NaN as null
    assert printed["run"] == str(tmp_path / "run") and printed["ece"] is None
    assert printed["brier"] == pytest.approx(0.17) and printed["num_examples"] == 200
    assert set(printed) == {"run", *CREDIT}


def test_evaluate_json_of_a_real_run(domain_run, cli, tmp_path) -> None:
    run = domain_run("finance")  # the session's tiny run, shared with the harness
    out = tmp_path / "metrics.json"
    code, stdout, err = cli("finance", "evaluate", "--run", str(run.path), "--out", str(out))
    assert code == 0, err
    assert stdout.splitlines()[-1] == f"run: {run.path}"
    count = next(line for line in stdout.splitlines() if line.startswith("num_examples"))
    assert count.split()[1].isdigit()
    code, stdout, err = cli(
        "finance", "evaluate", "--run", str(run.path), "--out", str(out), "--json"
    )
    assert code == 0, err
    printed = json.loads(stdout)
    written = json.loads(out.read_text())
    assert printed.pop("run") == str(run.path)
    assert printed.keys() == written.keys() and printed["num_examples"] == written["num_examples"]


# === zoo list ===
def test_zoo_list_streams_its_rows_before_tensorflow_is_needed() -> None:
    """The header comes while the process is still working (the line was flushed), and
    the catalogue's rows need no TensorFlow: `--measure lenet5` imports it only after
    the header, a plain listing never."""
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "zoo", "list", "--measure", "lenet5"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        header = process.stdout.readline()
        first_line_s = time.monotonic() - started
        running = process.poll() is None
        rest = process.stdout.read().splitlines()
    finally:
        process.wait(timeout=120)
    assert header.split()[:3] == ["model", "kind", "input"]
    assert first_line_s < 15 and running  # printed before the model was built and measured
    assert process.returncode == 0 and rest[1].split()[:4] == [
        "lenet5",
        "image_classifier",
        "32x32x1",
        "10",
    ]

    script = textwrap.dedent(
        """
        import sys, time
        started = time.monotonic()
        from pipelines.cli import main
        code = main(["zoo", "list"])
        print("EXIT", code, "tensorflow" in sys.modules, time.monotonic() - started)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    lines = done.stdout.splitlines()
    _, code, tensorflow, seconds = lines[-1].split()
    assert (code, tensorflow) == ("0", "False"), done.stderr
    assert float(seconds) < 15
    names = [line.split()[0] for line in lines[2:-1]]
    from shared.model_catalog import entries

    assert names == sorted(entries())


def test_zoo_list_filters_by_kind_and_name(cli) -> None:
    code, out, err = cli("zoo", "list", "--kind", "image_classifier")
    assert code == 0, err
    rows = [line.split() for line in out.splitlines()[2:]]
    assert rows and all(row[1] == "image_classifier" for row in rows)
    assert "lenet5" in [row[0] for row in rows] and "gpt" not in out
    code, out, _ = cli("zoo", "list", "resnet*")
    assert [line.split()[0] for line in out.splitlines()[2:]] == [
        "resnet",
        "resnet18",
        "resnet34",
        "resnet3d",
        "resnet50",
    ]
    code, out, _ = cli("zoo", "list", "--kind", "image_classifier", "--name", "vgg")
    assert [line.split()[0] for line in out.splitlines()[2:]] == ["vgg", "vgg16"]


def test_zoo_list_bad_filters_are_one_error_line(cli) -> None:
    code, out, err = cli("zoo", "list", "--kind", "imageclassifier")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("error: unknown model kind 'imageclassifier'; kinds: ")
    assert "image_classifier" in err and "detector" in err
    code, out, err = cli("zoo", "list", "--kind", "detector", "resnet")
    assert code == 2 and out == "" and "no model matches 'resnet'; detector models: fcos" in err
    code, _, err = cli("zoo", "list", "lenet", "--name", "vgg")
    assert code == 2 and "PATTERN or --name" in err


# Builds three zoo models to measure them (about 11 s): with the `large` tests, beside the
# catalogue test of every model's kind in tests/shared/zoo/test_zoo_list.py.
@pytest.mark.large
def test_catalogue_figures_are_what_measuring_gives() -> None:
    """Every model has stored figures, and a few cheap ones measure the same now (the
    whole zoo, about a minute, is `python -m shared.model_catalog`)."""
    from shared.model_catalog import PRESET_KEYS, entries, measure, preset

    assert all(set(PRESET_KEYS) <= set(entry.get("preset", {})) for entry in entries().values())
    for name in ("lenet5", "tabular_mlp", "vae"):
        assert preset(name) == measure(name), f"run `python -m shared.model_catalog {name}`"


# === --help everywhere ===
HELP_WALK = textwrap.dedent(
    r"""
    import json, re, sys
    import click
    from pipelines.cli import cli

    problems, seen = [], []

    def walk(command, name, parent):
        ctx = click.Context(command, info_name=name, parent=parent)
        path = ctx.command_path
        seen.append(path)
        text = command.help or ""
        lines = text.strip().splitlines()
        if not lines or not lines[0].strip():
            problems.append(f"{path}: no description")
        if "Example:" not in text:
            problems.append(f"{path}: no Example line")
        rendered = command.get_help(ctx)
        if not re.search(r"Example:\s+deepfield ", rendered):
            problems.append(f"{path}: --help shows no example")
        for param in command.params:
            if isinstance(param, click.Option) and not (param.help or "").strip():
                problems.append(f"{path} {param.opts[0]}: no help text")
        if isinstance(command, click.Group):
            for sub in command.list_commands(ctx):
                walk(command.get_command(ctx, sub), sub, ctx)

    walk(cli, "deepfield", None)
    print(json.dumps({"problems": problems, "seen": seen, "tf": "tensorflow" in sys.modules}))
    """
)


def test_every_command_has_a_description_an_example_and_option_help() -> None:
    done = subprocess.run(
        [sys.executable, "-c", HELP_WALK], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["problems"] == []
    assert result["tf"] is False  # help is generated from metadata only
    seen = set(result["seen"])
    from pipelines.domains import all_domains

    for domain in all_domains():
        assert {f"deepfield {domain.name} {verb}" for verb in domain.verbs()} <= seen
    assert {"deepfield tour", "deepfield zoo list", "deepfield zoo show"} <= seen
    assert {"deepfield runs list", "deepfield runs compare"} <= seen
