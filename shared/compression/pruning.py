"""Magnitude pruning during fine-tuning, with a polynomial sparsity schedule.

Zhu & Gupta 2017 ("To prune, or not to prune"), as TF Model Optimization's
`PolynomialDecay` has it: sparsity rises from `initial` to `final` between `begin_step`
and `end_step` as `final + (initial - final) * (1 - progress) ** power`, and the masks
are recomputed every `frequency` steps. TFMOT does not work with Keras 3
(tensorflow/model-optimization#1119), so this is written as a plain Keras callback:

- at a scheduled step, each prunable kernel's mask zeroes its smallest-magnitude
  weights, exactly `round(sparsity * size)` of them (per layer, as TFMOT does);
- after every optimizer step the masks are applied again, so pruned weights stay
  exactly zero (the optimizer's moments would move them otherwise);
- nothing is added to the model: once `fit` ends, the model is a plain model with
  zeros in it, saved and loaded like any other ("stripping" is a no-op by design).

Every convolution kernel (1D/2D/3D, transposed, depthwise, separable) and every
Dense/EinsumDense kernel counts, first and last layers included.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import keras
import numpy as np

from shared.errors import UserError
from shared.zoo.registry import KERNEL_LAYER_TYPES

LOG = logging.getLogger("deepfield.compression")

PRUNABLE_TYPES: tuple[type, ...] = (*KERNEL_LAYER_TYPES, keras.layers.EinsumDense)
KERNEL_NAMES = ("kernel", "depthwise_kernel", "pointwise_kernel")


# === The schedule ===
@dataclass(frozen=True)
class PolynomialDecay:
    """Sparsity at a step: `final + (initial - final) * (1 - progress) ** power`.

    `progress` runs from 0 at `begin_step` to 1 at `end_step`; before it the sparsity is
    `initial`, after it `final`. Masks change only at `begin_step + k * frequency` and at
    `end_step` (TFMOT prunes every `frequency` steps; the last update lands on the target).
    """

    final: float
    begin_step: int
    end_step: int
    initial: float = 0.0
    power: float = 3.0
    frequency: int = 1

    def __post_init__(self):
        if not 0 <= self.initial <= self.final < 1:
            raise UserError(f"sparsity must satisfy 0 <= initial <= final < 1 (got {self})")
        if self.end_step <= self.begin_step:
            raise UserError(f"end_step must follow begin_step (got {self})")

    def sparsity(self, step: int) -> float:
        progress = min(1.0, max(0.0, (step - self.begin_step) / (self.end_step - self.begin_step)))
        return self.final + (self.initial - self.final) * (1.0 - progress) ** self.power

    def updates_at(self, step: int) -> bool:
        if step < self.begin_step or step > self.end_step:
            return False
        return step == self.end_step or (step - self.begin_step) % self.frequency == 0


def default_schedule(target: float, total_steps: int, steps_per_epoch: int) -> PolynomialDecay:
    """Sparsity rises from 0 over the fine-tuning steps and reaches `target` one epoch
    before the end (when there is more than one epoch), so the last epoch recovers at
    the final sparsity; about 16 mask updates on the way. With one epoch the target
    lands on the last step (the last batch begins at `total_steps - 1`)."""
    if total_steps > steps_per_epoch:
        end = total_steps - steps_per_epoch
    else:
        end = total_steps - 1
    end = max(1, end)
    return PolynomialDecay(target, 0, end, frequency=max(1, end // 16))


# === The kernels ===
def prunable_kernels(model: keras.Layer) -> dict[str, keras.Variable]:
    """Every prunable kernel of `model` (nested models and layers included), by path."""
    kernels: dict[str, keras.Variable] = {}
    # Keras's own traversal: it also finds layers held as attributes of custom layers.
    for layer in model._flatten_layers(include_self=True, recursive=True):
        if not isinstance(layer, PRUNABLE_TYPES):
            continue
        for variable in layer.weights:
            if variable.name in KERNEL_NAMES and variable.path not in kernels:
                kernels[variable.path] = variable
    return kernels


def require_prunable(model: keras.Layer) -> dict[str, keras.Variable]:
    kernels = prunable_kernels(model)
    if not kernels:
        raise UserError(
            f"model {model.name!r} has no prunable layers (convolution, Dense or "
            "EinsumDense kernels); pruning needs at least one"
        )
    return kernels


def magnitude_mask(weights: np.ndarray, sparsity: float) -> np.ndarray:
    """A 0/1 mask zeroing exactly `round(sparsity * size)` of the smallest |weights|."""
    flat = np.abs(np.asarray(weights, dtype=np.float64)).ravel()
    count = int(round(sparsity * flat.size))
    mask = np.ones(flat.size, dtype=np.float32)
    if count > 0:
        mask[np.argpartition(flat, count - 1)[:count]] = 0.0
    return mask.reshape(np.shape(weights))


# === The callback ===
class MagnitudePruning(keras.callbacks.Callback):
    """Prune `model`'s kernels by magnitude during `fit`, following `schedule`.

    Without a schedule, `target` sparsity is reached over the fit's own steps
    (`default_schedule`). The step is the optimizer's iteration count, so a resumed fit
    continues the schedule where it stopped; masks are recomputed from the weights at
    the first batch (a resumed run's zeros give back its masks).
    """

    def __init__(self, target: float | None = None, schedule: PolynomialDecay | None = None):
        super().__init__()
        if schedule is None and target is None:
            raise ValueError("give a target sparsity or a schedule")
        self.target = schedule.final if schedule else float(target)
        if not 0 < self.target < 1:
            raise UserError(f"sparsity must be between 0 and 1 (exclusive), got {self.target}")
        self.schedule = schedule
        self.kernels: dict[str, keras.Variable] = {}
        self.masks: dict[str, object] = {}
        self.current = 0.0  # the sparsity the masks hold now
        self.updates: list[tuple[int, float]] = []  # (step, sparsity) of each mask update

    def on_train_begin(self, logs=None):
        self.kernels = require_prunable(self.model)
        self.masks = {}
        if self.schedule is None:
            steps = self.params.get("steps")
            epochs = self.params.get("epochs") or 1
            if not steps:
                raise UserError(
                    "pruning needs a dataset of known length (or train.steps_per_epoch) to "
                    "spread its schedule over the fine-tuning steps"
                )
            self.schedule = default_schedule(self.target, steps * epochs, steps)
        LOG.info(
            "pruning %d kernels to %.0f%% sparsity (steps %d-%d, masks every %d steps)",
            len(self.kernels),
            100 * self.target,
            self.schedule.begin_step,
            self.schedule.end_step,
            self.schedule.frequency,
        )

    def step(self) -> int:
        return int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def on_train_batch_begin(self, batch, logs=None):
        step = self.step()
        if not self.masks or self.schedule.updates_at(step):
            self.update_masks(self.schedule.sparsity(step), step)
        self.apply_masks()

    def on_train_batch_end(self, batch, logs=None):
        self.apply_masks()  # after the optimizer step: pruned weights back to zero

    def on_train_end(self, logs=None):
        if self.masks and self.current < self.target:
            # A fit shorter than its schedule (one step, or stopped early): the masks
            # jump to the target so the saved model holds the sparsity it promises.
            self.update_masks(self.target, self.step())
        if self.masks:  # after the optimizer's final swap (EMA), before saving
            self.apply_masks()

    def update_masks(self, sparsity: float, step: int) -> None:
        self.masks = {
            path: keras.ops.convert_to_tensor(magnitude_mask(variable.numpy(), sparsity))
            for path, variable in self.kernels.items()
        }
        self.current = sparsity
        self.updates.append((step, sparsity))

    def apply_masks(self) -> None:
        for path, variable in self.kernels.items():
            variable.assign(keras.ops.multiply(variable.value, self.masks[path]))


# === Verification ===
def sparsity_report(model: keras.Layer) -> dict[str, object]:
    """Zeros in every prunable kernel, read from the weights themselves (what a saved
    model holds): {"layers": {path: fraction}, "counts": {path: (zeros, size)},
    "zeros", "size", "global"}."""
    layers, counts, zeros, size = {}, {}, 0, 0
    for path, variable in prunable_kernels(model).items():
        values = np.asarray(variable.numpy())
        count = int(values.size - np.count_nonzero(values))
        layers[path] = count / max(1, values.size)
        counts[path] = (count, int(values.size))
        zeros += count
        size += values.size
    return {
        "layers": layers,
        "counts": counts,
        "zeros": zeros,
        "size": size,
        "global": zeros / max(1, size),
    }


def check_sparsity(report: dict[str, object], target: float) -> None:
    """Every kernel holds at least `round(target * size)` zeros (what its mask zeroed)."""
    short = [
        f"{path} {zeros}/{size}"
        for path, (zeros, size) in report["counts"].items()
        if zeros < int(round(target * size))
    ]
    if short:
        raise RuntimeError(
            f"kernels below the {target:.2f} target sparsity: {', '.join(short[:5])}"
        )


def metric_name(path: str) -> str:
    """A kernel path as a snake_case metric suffix (`small_cnn/dense/kernel` -> `dense`)."""
    parts = path.split("/")
    kernel = parts[-1]
    layer = parts[-2] if len(parts) > 1 else kernel
    name = layer if kernel == "kernel" else f"{layer}_{kernel}"
    name = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_")
    return name if name and name[0].isalpha() else f"layer_{name}"
