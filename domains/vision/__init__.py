"""Vision: image classification and generation on the shared zoo, data sources and trainer.

The domain's contract (`shared.domain.Domain`); its verbs import their TensorFlow
modules (`task`, `generate`, `export`) only when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from domains.vision.config import VisionConfig
from shared.domain import (
    Domain,
    Option,
    SmokeRun,
    TourLeg,
    register_domain,
    tflite_export_options,
)


@register_domain
class VisionDomain(Domain):
    name = "vision"
    summary = "Image classification and generation: train, evaluate, predict, explain, export."
    tasks = ("classify", "generate")
    config_class = VisionConfig
    data_specs = ("builtin", "folder", "idx", "npz", "tfds")
    train_shortcuts = {"init_from": "transfer.init_from"}
    verb_options = {
        "train": (
            Option(
                "--init-from",
                "init_from",
                "path",
                "transfer learning: start from this run's backbone",
            ),
        ),
        "export": tflite_export_options(("none", "dynamic", "float16", "int8")),
    }
    tour_legs = (
        TourLeg(
            "vision",
            "small CNN on scikit-learn digits (8x8, 10 classes)",
            "accuracy",
            0.985,
            config="digits",
            data="builtin:digits",
            quick=("train.epochs=3",),
        ),
    )
    # Two quick epochs of a narrow CNN on scikit-learn digits: far above chance in seconds.
    smoke_run = SmokeRun(
        "digits",
        (
            "train.epochs=2",
            "train.batch_size=64",
            "train.learning_rate=0.01",
            "train.warmup_epochs=0",
            "model.filters=[8, 16]",
        ),
    )
    compress_methods = {  # both trained through shared.training.trainer.fit
        "classify": ("prune", "quantize", "distill"),
        "generate": ("prune", "quantize"),  # its losses are its own (ELBO, adversarial)
    }
    task_module = "domains.vision.task"
    order = 10
    notebook_run = "digits"

    def check(self, config: VisionConfig) -> None:
        """The model fits the task (from the zoo's catalogue) and a folder source lists
        at least two classes of images, both before TensorFlow starts."""
        super().check(config)
        from domains.vision.config import model_fits
        from shared.model_catalog import check_model

        task = config.task
        check_model(
            config.model.name,
            lambda kind, modalities: model_fits(task, kind, modalities),
            f"vision --task {task}",
        )
        kind, rest = self.check_data_spec(config.data.source)
        if kind == "folder":
            from shared.data.folder_layout import list_folder

            list_folder(rest)

    def load_data(self, config: VisionConfig):
        """The `ImageData` both tasks train on: the configured source, seeded splits."""
        from domains.vision.data import load

        return load(config.data, config.runtime.seed)

    def serving_spec(self, run, config):
        from domains.vision import export

        return export.build_spec(run, config)

    def export_tflite(self, run, config, to, name, quantize, overwrite):
        """A TFLite file and its `.json` report (`--format tflite`)."""
        from domains.vision import export

        return export.export_tflite(run, config, Path(to), name, quantize, overwrite)

    def evaluate_exported(self, model, data, split, out) -> dict[str, Any]:
        from domains.vision import export

        return export.evaluate_exported(model, data, split, out)

    def predict_exported(self, model, inputs) -> list[dict]:
        from domains.vision import export

        return export.predict_exported(model, inputs)
