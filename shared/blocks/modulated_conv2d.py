"""StyleGAN2's modulated convolution: a per-example style scales the kernel's input channels."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="deepfield")
class ModulatedConv2D(keras.layers.Layer):
    """(x, w) -> conv(x, W * s(w)) [demodulated], with s = affine(w) (Karras et al., 2020).

    The style vector w is mapped by a learned affine layer to one scale per input
    channel (initialised at 1); the kernel is scaled per example and, with
    `demodulate`, renormalised to unit output variance, which replaces AdaIN's
    instance norm without its droplet artefacts. Implemented as scaling the input
    and the output instead of a grouped conv with per-example kernels: the same maths
    (conv is linear), one ordinary conv for the whole batch.

    Args:
        filters: Output channels.
        kernel_size: Kernel side.
        demodulate: Normalise the modulated kernel's output variance.
        **kwargs: Base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: (batch, H, W, C) feature map.
        style: (batch, style_dim) intermediate latent.
    """

    def __init__(self, filters: int, kernel_size: int = 3, demodulate: bool = True, **kwargs: Any):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.demodulate = bool(demodulate)

    def build(
        self, inputs_shape: tuple[int | None, ...], style_shape: tuple[int | None, ...]
    ) -> None:
        channels = int(inputs_shape[-1])
        self.kernel = self.add_weight(
            shape=(self.kernel_size, self.kernel_size, channels, self.filters),
            initializer=keras.initializers.RandomNormal(
                stddev=1.0 / (self.kernel_size**2 * channels) ** 0.5
            ),
            name="kernel",
        )
        self.bias = self.add_weight(shape=(self.filters,), initializer="zeros", name="bias")
        self.style_dense = keras.layers.Dense(
            channels, bias_initializer="ones", dtype=self.dtype_policy, name="style"
        )
        self.style_dense.build(style_shape)
        self.built = True

    def call(self, inputs: Any, style: Any) -> Any:
        scales = self.style_dense(style)  # (batch, in_channels)
        x = inputs * scales[:, None, None, :]
        x = ops.conv(x, self.kernel, strides=1, padding="same")
        if self.demodulate:
            # sigma_j = sqrt(sum_{k,i} (s_i W_kij)^2): per example and output channel.
            squared = ops.sum(ops.square(self.kernel), axis=(0, 1))  # (in, out)
            sigma = ops.sqrt(ops.matmul(ops.square(scales), squared) + 1e-8)  # (batch, out)
            x = x / sigma[:, None, None, :]
        return x + self.bias

    def compute_output_shape(self, inputs_shape: Any, style_shape: Any) -> Any:
        return (*inputs_shape[:-1], self.filters)

    # === Config ===
    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "demodulate": self.demodulate,
            }
        )
        return config
