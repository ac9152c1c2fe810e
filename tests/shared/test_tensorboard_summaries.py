"""All of a run in TensorBoard, read back from the event files: the config as an
HParams session, the final metrics as scalars, every plot as an image, the model card
as text, the model graph; and a failing summary is a warning, never a failed run."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from shared.run_dir import RunDir
from shared.tensorboard_summaries import final_step, flatten_config, run_hparams, tag_part

# finance: a Keras fit of tabular data; rl: its own training loop (no Keras fit).
DOMAINS = ("finance", "rl")


def read_events(folder: Path) -> tuple[dict, dict, list]:
    """The summaries written directly in `folder` (not its train/ or validation/):
    {tag: [(step, tensor proto)]}, {tag: plugin name and content}, [graph defs]."""
    import tensorflow as tf

    values, metadata, graphs = defaultdict(list), {}, []
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            if event.HasField("graph_def"):
                graphs.append(event.graph_def)
            for value in event.summary.value:
                values[value.tag].append((event.step, value.tensor))
                if value.metadata.plugin_data.plugin_name and value.tag not in metadata:
                    metadata[value.tag] = value.metadata.plugin_data
    return values, metadata, graphs


@pytest.mark.parametrize("domain", DOMAINS)
def test_a_run_is_all_in_tensorboard(domain, domain_run):
    import tensorflow as tf
    from tensorboard.plugins.hparams import metadata as hp_metadata

    run = RunDir(domain_run(domain).path)
    values, metadata, graphs = read_events(run.tensorboard)
    step = final_step(run)
    assert step > 0

    # HParams: one session whose values are the config's, under dotted keys.
    start = hp_metadata.parse_session_start_info_plugin_data(
        metadata[hp_metadata.SESSION_START_INFO_TAG].content
    )
    hparams = dict(start.hparams)
    config = yaml.safe_load(run.config_path.read_text())
    assert hparams["domain"].string_value == domain
    assert hparams["task"].string_value == config["task"]
    assert hparams["data.source"].string_value == config["data"]["source"]
    assert hparams["runtime.seed"].number_value == config["runtime"]["seed"]
    assert set(hparams) == set(run_hparams(run))
    assert not any(hp_metadata.EXPERIMENT_TAG in tag for tag in values)  # see the module

    # Final metrics: `<split>/<metric>` at the last epoch (env step), as in metrics.json
    # (`test/auc`; RL's split is its evaluation seeds).
    metrics = run.read_metrics()
    numbers = {k: v for k, v in metrics.items() if isinstance(v, int | float)}
    split = {"finance": "test", "rl": "evaluation_seeds"}[domain]
    assert numbers and tag_part(metrics["split"]) == split
    for key, value in numbers.items():
        (written_step, tensor), *_ = values[f"{split}/{key}"]
        assert written_step == step and metadata[f"{split}/{key}"].plugin_name == "scalars"
        assert float(tf.make_ndarray(tensor)) == pytest.approx(value, rel=1e-6)

    # Every plot an image (TF2 images: width, height, PNG).
    plots = run.plot_paths()
    assert plots
    for path in plots:
        *_, (_, tensor) = values[f"plots/{path.stem}"]  # evaluate may add a later one
        assert metadata[f"plots/{path.stem}"].plugin_name == "images"
        width, height, png = tf.make_ndarray(tensor)[:3]
        image = tf.io.decode_png(png)
        assert (int(width), int(height)) == (image.shape[1], image.shape[0])

    # The model card and config as text, and the model's graph.
    *_, (_, card) = values["model_card"]
    assert metadata["model_card"].plugin_name == "text"
    assert tf.make_ndarray(card).item().decode() == run.model_card_path.read_text()
    assert "runtime:" in tf.make_ndarray(values["config"][0][1]).item().decode()
    assert graphs and len(tf.compat.v1.GraphDef.FromString(graphs[0]).node) > 1


def test_evaluate_adds_its_split_metrics(domain_run):
    import tensorflow as tf

    import pipelines

    run = domain_run("finance")
    before = json.loads(RunDir(run.path).metrics_path.read_text())
    metrics = pipelines.finance.evaluate(run, split="validation", out=run.path / "val.json")
    assert json.loads(RunDir(run.path).metrics_path.read_text()) == before  # --out
    values, _, _ = read_events(RunDir(run.path).tensorboard)
    numbers = {k: v for k, v in metrics.items() if isinstance(v, int | float)}
    for key, value in numbers.items():
        assert float(tf.make_ndarray(values[f"validation/{key}"][-1][1])) == pytest.approx(value)


def test_flatten_config_keeps_hparams_types():
    config = {"a": {"b": 1, "c": [1, 2], "d": None, "e": {}}, "f": True, "g": "x", "h": 0.5}
    assert flatten_config(config) == {
        "a.b": 1,
        "a.c": "[1, 2]",
        "a.d": "none",
        "a.e": "{}",
        "f": True,
        "g": "x",
        "h": 0.5,
    }


def test_a_failing_summary_is_a_warning_and_the_run_completes(tmp_path, monkeypatch, caplog):
    import shared.tensorboard_summaries as summaries
    from pipelines.runner import execute
    from shared.config import ConfigModel
    from shared.training import RuntimeConfig

    class Config(ConfigModel):
        task: str = "t"
        runtime: RuntimeConfig = RuntimeConfig()

    def train(config, run):
        run.write_metrics({"accuracy": 0.75, "split": "test"})
        run.model_path.write_bytes(b"not a model")  # its graph cannot be traced
        return {}

    def fail(run):
        raise RuntimeError("hparams plugin broke")

    monkeypatch.setattr(summaries, "_write_hparams", fail)
    with caplog.at_level(logging.WARNING, logger="deepfield"):
        run = execute("toy", Config(), tmp_path / "run", train)
    assert run.is_complete()
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("TensorBoard hparams" in m and "hparams plugin broke" in m for m in warned)
    assert any("TensorBoard graph" in m for m in warned)
    assert "TensorBoard hparams" in run.log_path.read_text()
    values, _, _ = read_events(run.tensorboard)  # the other parts are still written
    assert "test/accuracy" in values and "config" in values

    # Even TensorFlow failing to open the writer leaves the caller running.
    monkeypatch.setattr(summaries, "final_step", lambda run: 1 / 0)
    assert summaries.write_run_summaries(run) is False
    assert summaries.write_evaluation_summaries(run, {"accuracy": 1.0}) is False
