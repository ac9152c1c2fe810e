"""A toy domain that is not part of the product: it proves a domain plugs in by itself.

tests/pipelines/test_toy_domain.py puts this folder's parent on PYTHONPATH; `pipelines`
then finds it like any other domain (CLI group, Python API, Run verbs).
"""

from __future__ import annotations

import json
from typing import Literal

import numpy as np

from shared.config import ConfigModel
from shared.domain import Domain, Option, Verb, register_domain
from shared.errors import UserError
from shared.training import RuntimeConfig


class ToyData(ConfigModel):
    source: str = "builtin:line"
    rows: int = 64


class ToyTrain(ConfigModel):
    epochs: int = 40
    learning_rate: float = 0.1


class ToyConfig(ConfigModel):
    task: Literal["regress"] = "regress"
    data: ToyData = ToyData()
    train: ToyTrain = ToyTrain()
    runtime: RuntimeConfig = RuntimeConfig()


def line(source: str, rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    if source != "builtin:line":
        raise UserError(f"toy reads builtin:line only (got --data {source})")
    x = np.random.default_rng(seed).uniform(-1, 1, (rows, 1)).astype("float32")
    return x, 2 * x + 1


@register_domain
class ToyDomain(Domain):
    name = "toy"
    summary = "A toy regression domain for the contract tests."
    tasks = ("regress",)
    config_class = ToyConfig
    data_specs = ("builtin", "csv")
    strategies = ("auto", "default")
    extra_verbs = (Verb("double", "Twice the model's prediction.", (Option("--x", "x", "float"),)),)

    def train(self, config, run):
        import keras

        from shared.model_io import save_model

        x, y = line(config.data.source, config.data.rows)
        model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
        model.compile(keras.optimizers.SGD(config.train.learning_rate), "mse")
        model.fit(x, y, epochs=config.train.epochs, batch_size=16, verbose=0)
        save_model(model, run.model_path)
        return self.evaluate(run, config, None, "test", None)

    def evaluate(self, run, config, data, split, out, **options):
        from shared.model_io import load_model

        x, y = line(data or config.data.source, 32, seed=1)
        error = float(np.mean((load_model(run.model_path).predict(x, verbose=0) - y) ** 2))
        metrics = {
            "loss": error,
            "split": split,
            "num_examples": 32,
            "task": "regress",
            "domain": "toy",
        }
        run.write_metrics(metrics, path=out)
        return metrics

    def predict(self, run, config, inputs, **options):
        from shared.model_io import load_model

        try:
            x = np.array([[float(json.loads(text))] for text in inputs], "float32")
        except (ValueError, TypeError):
            raise UserError(f"toy inputs are numbers (got {inputs})") from None
        y = load_model(run.model_path).predict(x, verbose=0)[:, 0]
        return [{"input": t, "y": round(float(v), 4)} for t, v in zip(inputs, y, strict=True)]

    def double(self, run, config, x: float = 1.0):
        return {"x": x, "double": 2 * self.predict(run, config, [str(x)])[0]["y"]}

    def serving_spec(self, run, config):
        import tensorflow as tf

        from shared.export import ServingSpec
        from shared.model_io import load_model

        module = tf.Module()
        module.model = load_model(run.model_path)
        module.serve = tf.function(
            lambda x: {"y": module.model(x, training=False)},
            input_signature=[tf.TensorSpec([None, 1], tf.float32, name="x")],
        )
        warmup = [{"x": np.array([[0.5]], "float32")}]
        expected = [{"y": module.model(warmup[0]["x"]).numpy()}]
        return ServingSpec(
            module, {"serving_default": module.serve}, warmup, expected, {"domain": "toy"}
        )
