"""What compression buys, measured the same way for the original and the compressed model.

- size: the model saved as `.keras` (weights, no optimizer state), zip-compressed
  (deflate, level 9): zeros from pruning only shrink a file once it is compressed;
- parameters (every weight, as Keras counts them) and non-zero parameters;
- latency: milliseconds per example at batch 1, in this process, through a traced
  `tf.function` of the model (median of repeats after warm-up).
"""

from __future__ import annotations

import io
import statistics
import tempfile
import time
import zipfile
from pathlib import Path

import keras
import numpy as np

from shared.model_catalog import forward_model

SEQUENCE_LENGTH = 16  # for inputs of unknown length


def compressed_size(path: Path) -> int:
    """Bytes of `path` zipped with deflate at level 9."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.write(path, Path(path).name)
    return buffer.getbuffer().nbytes


def model_size(model: keras.Model) -> int:
    """Zipped bytes of `model` saved as `.keras`. Pass a model loaded uncompiled (as
    model_io loads runs): a run's file also holds its optimizer's moments, which would
    weigh as much as the weights and hide what compression did to them."""
    with tempfile.TemporaryDirectory(prefix="deepfield-size-") as folder:
        path = Path(folder) / "model.keras"
        model.save(path)
        return compressed_size(path)


def parameter_counts(model: keras.Model) -> tuple[int, int]:
    """(parameters, non-zero parameters) over every weight of the model."""
    total = nonzero = 0
    for variable in model.weights:
        values = keras.ops.convert_to_numpy(variable.value)
        total += int(values.size)
        nonzero += int(np.count_nonzero(values))
    return total, nonzero


def example_inputs(model: keras.Model):
    """One example (batch 1) of what the model takes: zeros (empty strings for text)."""

    def one(tensor):
        shape = [1] + [d if d is not None else SEQUENCE_LENGTH for d in tensor.shape[1:]]
        if tensor.dtype == "string":
            return np.full(shape, "", dtype=object)
        return np.zeros(shape, dtype=tensor.dtype)

    model = forward_model(model)  # a GAN is timed on its generator
    inputs = model.inputs
    if isinstance(model._inputs_struct, dict):
        return {name: one(t) for name, t in model._inputs_struct.items()}
    return one(inputs[0]) if len(inputs) == 1 else [one(t) for t in inputs]


def latency_ms(model: keras.Model, repeats: int = 50, warmup: int = 5) -> float:
    """Median milliseconds of one batch-1 forward pass (traced once, then timed)."""
    import tensorflow as tf

    example = tf.nest.map_structure(tf.constant, example_inputs(model))
    forward = tf.function(lambda x: model(x, training=False))
    for _ in range(warmup):
        tf.nest.map_structure(lambda t: t.numpy(), forward(example))
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        tf.nest.map_structure(lambda t: t.numpy(), forward(example))
        times.append(time.perf_counter() - started)
    return 1000.0 * statistics.median(times)


def figures(model: keras.Model, repeats: int = 50) -> dict[str, float]:
    """size_bytes, parameters, nonzero_parameters and latency_ms of an uncompiled model."""
    parameters, nonzero = parameter_counts(model)
    return {
        "size_bytes": model_size(model),
        "parameters": parameters,
        "nonzero_parameters": nonzero,
        "latency_ms": latency_ms(model, repeats),
    }
