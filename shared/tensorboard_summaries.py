"""All of a run in TensorBoard: its config, final metrics, plots, model card and graph.

During training, Keras's TensorBoard callback (or RL's loop) writes the per-epoch
scalars under `tensorboard/train` and `tensorboard/validation`. When a run completes,
the runner calls `write_run_summaries`, which adds to `tensorboard/` itself:

- HParams: the config flattened to dotted keys (`train.learning_rate`), plus the
  domain, as one HParams session, so `tensorboard --logdir runs` compares every run
  in the HParams dashboard's table and parallel-coordinates views;
- scalars: the final metrics of metrics.json as `<split>/<metric>` (`test/accuracy`),
  at the run's last epoch (or env step);
- images: every PNG under plots/ as `plots/<name>`;
- text: MODEL_CARD.md as `model_card` and config.yaml as `config`;
- graph: the saved model's inference graph, traced once from model.keras.

No experiment config (`hp.hparams_config`) is written: TensorBoard takes one such
config arbitrarily from all runs under the logdir, which would hide the hparams and
metrics of runs of other domains. Without one, the plugin builds the experiment from
every run's session and takes each scalar under a session folder as a metric
(`test/accuracy`, and the `train`/`validation` groups' `epoch_*` curves).

`write_evaluation_summaries` adds an `evaluate` verb's metrics (and the plots it
rewrote) the same way. Neither ever fails a run: an error is a logged warning.
"""

from __future__ import annotations

import csv
import json
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from shared.run_dir import RunDir

LOG = logging.getLogger("deepfield")
TAG_UNSAFE = re.compile(r"[^\w./-]+")


# === What is written ===
def flatten_config(config: Any, prefix: str = "") -> dict[str, bool | int | float | str]:
    """Dotted keys to HParams values: numbers, strings and bools as they are, None as
    "none", lists and other values as their JSON text."""
    if isinstance(config, dict):
        if not config and prefix:
            return {prefix.rstrip("."): "{}"}
        flat: dict[str, bool | int | float | str] = {}
        for key, value in config.items():
            flat.update(flatten_config(value, f"{prefix}{key}."))
        return flat
    key = prefix.rstrip(".")
    if config is None:
        return {key: "none"}
    if isinstance(config, bool | int | float | str):
        return {key: config}
    return {key: json.dumps(config, default=str)}


def run_hparams(run: RunDir) -> dict[str, bool | int | float | str]:
    """The run's HParams: its flattened config.yaml, plus `domain` from its status."""
    config = yaml.safe_load(run.config_path.read_text()) if run.config_path.is_file() else {}
    hparams = flatten_config(config or {})
    domain = run.status().get("domain")
    if domain and "domain" not in hparams:
        hparams = {"domain": str(domain), **hparams}
    return hparams


def final_step(run: RunDir) -> int:
    """The last epoch (Keras runs, 0-based as in the epoch curves) or env step (RL)."""
    if not run.history_path.is_file():
        return 0
    with run.history_path.open() as handle:
        rows = list(csv.DictReader(handle))
    for column in ("epoch", "step"):
        values = [row.get(column) for row in rows if row.get(column) not in (None, "")]
        if values:
            return int(float(values[-1]))
    return 0


def metric_scalars(metrics: dict[str, Any], prefix: str) -> dict[str, float]:
    """`<prefix>/<metric>` for every number of a metrics dict (descriptive keys and
    nulls left out)."""
    scalars = {}
    for key, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            try:
                value = float(value)  # a NumPy number
            except (TypeError, ValueError):
                continue
        scalars[f"{prefix}/{key}"] = float(value)
    return scalars


def tag_part(text: str) -> str:
    return TAG_UNSAFE.sub("_", text).strip("_") or "data"


# === Writing ===
def write_run_summaries(run: RunDir) -> bool:
    """Everything of a completed run under its tensorboard/ folder.

    Never raises an Exception: each part that fails is a warning in the log (the run
    stays complete). Returns whether every part was written.
    """
    try:
        import tensorflow as tf

        metrics = run.read_metrics()
        step = final_step(run)
        split = str(metrics.get("split") or "test")
        writer = tf.summary.create_file_writer(str(run.tensorboard))
    except Exception as err:  # noqa: BLE001 - summaries never fail a run
        LOG.warning("TensorBoard summaries of %s not written: %s", run.path, _describe(err))
        return False
    parts: list[tuple[str, Callable[[], Any]]] = [
        ("hparams", lambda: _write_hparams(run)),
        ("metrics", lambda: _write_scalars(metric_scalars(metrics, tag_part(split)), step)),
        ("plots", lambda: _write_images(run.plot_paths(), step)),
        ("text", lambda: _write_text(run, step)),
        ("graph", lambda: _write_graph(run)),
    ]
    with writer.as_default():
        written = _write_parts(run, parts)
    writer.close()
    return written


def write_evaluation_summaries(
    run: RunDir, metrics: dict[str, Any], *, data: str | None = None, since: float | None = None
) -> bool:
    """An evaluation's metrics as `<split>/<metric>` (`<split>_<data>/...` on another
    source), with the plots written since `since`. Never raises an Exception."""
    try:
        import tensorflow as tf

        split = str(metrics.get("split") or "test")
        prefix = tag_part(split if data is None else f"{split}_{data}")
        step = final_step(run)
        # A second's slack: file times come from a coarser clock than time.time().
        plots = [p for p in run.plot_paths() if since is None or p.stat().st_mtime >= since - 1]
        writer = tf.summary.create_file_writer(str(run.tensorboard))
    except Exception as err:  # noqa: BLE001 - summaries never fail an evaluation
        LOG.warning("TensorBoard summaries of %s not written: %s", run.path, _describe(err))
        return False
    parts: list[tuple[str, Callable[[], Any]]] = [
        ("metrics", lambda: _write_scalars(metric_scalars(metrics, prefix), step)),
        ("plots", lambda: _write_images(plots, step)),
    ]
    with writer.as_default():
        written = _write_parts(run, parts)
    writer.close()
    return written


def _write_parts(run: RunDir, parts: list[tuple[str, Callable[[], Any]]]) -> bool:
    written = True
    for name, write in parts:
        try:
            write()
        except Exception as err:  # noqa: BLE001 - one part failing leaves the others
            LOG.warning("TensorBoard %s of %s not written: %s", name, run.path, _describe(err))
            written = False
    return written


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def _write_hparams(run: RunDir) -> None:
    from tensorboard.plugins.hparams import api as hp

    started = run.status().get("started")
    start = time.mktime(time.strptime(started, "%Y-%m-%dT%H:%M:%S")) if started else None
    hp.hparams(run_hparams(run), start_time_secs=start)


def _write_scalars(scalars: dict[str, float], step: int) -> None:
    import tensorflow as tf

    for tag, value in scalars.items():
        tf.summary.scalar(tag, value, step=step)


def _write_images(paths: list[Path], step: int) -> None:
    import tensorflow as tf

    for path in paths:
        image = tf.io.decode_png(path.read_bytes())
        if image.shape[-1] == 2:  # grey and alpha: TensorBoard takes 1, 3 or 4 channels
            image = tf.io.decode_png(path.read_bytes(), channels=4)
        tf.summary.image(f"plots/{tag_part(path.stem)}", image[None], step=step)


def _write_text(run: RunDir, step: int) -> None:
    import tensorflow as tf

    if run.model_card_path.is_file():
        tf.summary.text("model_card", run.model_card_path.read_text(), step=step)
    if run.config_path.is_file():
        # Indented four spaces: a markdown code block, shown as the YAML it is.
        block = "\n".join(f"    {line}" for line in run.config_path.read_text().splitlines())
        tf.summary.text("config", block, step=step)


def _write_graph(run: RunDir) -> None:
    """The inference graph of model.keras, traced once (Keras 3's callback writes no
    op graph); skipped with a note for a model without symbolic inputs."""
    import keras
    import tensorflow as tf

    from shared import model_io

    if not run.model_path.is_file():
        LOG.info("no model graph in TensorBoard: %s has no model.keras", run.path)
        return
    model = model_io.load_model(run.model_path)
    try:
        inputs = model.input
    except (AttributeError, ValueError):
        LOG.info("no model graph in TensorBoard: the model has no symbolic inputs")
        return
    specs = keras.tree.map_structure(
        lambda tensor: tf.TensorSpec(tensor.shape, tensor.dtype, name=tensor.name), inputs
    )
    traced = tf.function(lambda x: model(x, training=False)).get_concrete_function(specs)
    tf.summary.graph(traced.graph)
