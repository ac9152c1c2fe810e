"""The `train` and `runtime` config sections, spelled the same in every domain."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.config import ConfigModel


class TrainConfig(ConfigModel):
    """How to fit: epochs, batch, optimiser, schedule, precision, compilation."""

    epochs: int = Field(10, ge=1)
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    lr_schedule: Literal["constant", "cosine", "exponential", "step"] = "constant"
    warmup_epochs: int = Field(0, ge=0)
    early_stopping_patience: int = Field(0, ge=0, description="0 turns early stopping off")
    precision: Literal["float32", "mixed_bfloat16", "mixed_float16"] = "float32"
    jit: bool = False
    steps_per_epoch: int | None = Field(None, ge=1, description="None: one pass over the data")
    ema: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="keep an exponential moving average of the weights with this momentum "
        "(e.g. 0.99, an average over about 1 / (1 - ema) = 100 steps) and end training with "
        "it (Keras optimizers' use_ema); the average starts at the first step, so leave it "
        "off for runs of only a few hundred steps; None: off",
    )


class StepCappedTrainConfig(TrainConfig):
    """The `train` section plus a cap on training steps, for domains whose data sets range
    from tens to thousands of examples: many epochs of a small set, fewer of a large one."""

    max_steps: int | None = Field(
        None,
        ge=1,
        description="cap on training steps; train.epochs is cut to the fewest epochs that "
        "reach it (the learning-rate schedule follows), so a large set trains fewer epochs "
        "of the same total work; null: train.epochs as given",
    )

    def capped(self, steps_per_epoch: int) -> StepCappedTrainConfig:
        """This section with `epochs` cut to what `max_steps` allows at this many steps
        per epoch (at least one epoch)."""
        if self.max_steps is None:
            return self
        epochs = min(self.epochs, max(1, -(-self.max_steps // max(1, steps_per_epoch))))
        return self.model_copy(update={"epochs": epochs})


class RuntimeConfig(ConfigModel):
    """Where and how reproducibly to run."""

    strategy: Literal["auto", "default", "one-device", "mirrored", "multi-worker", "tpu"] = "auto"
    devices: int | None = Field(None, ge=1, description="mirrored: replicas (logical CPUs here)")
    local_workers: int | None = Field(None, ge=1, description="multi-worker on localhost")
    tpu: str | None = Field(None, description="TPU name or grpc:// address for the resolver")
    seed: int = 42
    deterministic: bool = False
    track: Literal["none", "mlflow"] = Field(
        "none",
        description="also log the finished run to an experiment tracker: mlflow logs params, "
        "per-epoch metrics, plots, the model card and the model to MLFLOW_TRACKING_URI "
        "(default: MLflow's local store); needs pip install -e '.[mlflow]'",
    )
