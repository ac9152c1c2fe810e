"""A VGG stage: n same-padded convolutions and a 2x2 max pool (Simonyan & Zisserman, 2015)."""

from __future__ import annotations

from typing import Any

import keras


@keras.saving.register_keras_serializable(package="deepfield")
class VGGBlock(keras.layers.Layer):
    """`num_convs` x (3x3 conv -> [BN] -> ReLU), then 2x2/2 max pooling.

    The paper's convolutions keep their bias and have no normalisation, which is what
    `keras.applications.VGG16` builds and what its parameter count assumes;
    `batch_norm=True` gives the later VGG-BN variant (conv without bias, then BN).

    Args:
        filters: Output channels of every conv in the block.
        num_convs: Number of convolutions.
        kernel_size: Side of each square kernel.
        pool: Whether to end with 2x2/2 max pooling.
        batch_norm: Insert BatchNormalization after each conv.
        activation: Activation after each conv (norm).
        **kwargs: Base `keras.layers.Layer` arguments (name, dtype, trainable).
    """

    def __init__(
        self,
        filters: int,
        num_convs: int = 2,
        kernel_size: int = 3,
        pool: bool = True,
        batch_norm: bool = False,
        activation: str = "relu",
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.num_convs = int(num_convs)
        self.kernel_size = int(kernel_size)
        self.pool = bool(pool)
        self.batch_norm = bool(batch_norm)
        self.activation = activation

        # === Layers ===
        self.stack: list[keras.Layer] = []
        for i in range(self.num_convs):
            self.stack.append(
                keras.layers.Conv2D(
                    self.filters,
                    self.kernel_size,
                    padding="same",
                    use_bias=not self.batch_norm,
                    activation=None if self.batch_norm else activation,
                    dtype=self.dtype_policy,
                    name=f"conv{i + 1}",
                )
            )
            if self.batch_norm:
                self.stack.append(
                    keras.layers.BatchNormalization(dtype=self.dtype_policy, name=f"norm{i + 1}")
                )
                self.stack.append(
                    keras.layers.Activation(activation, dtype=self.dtype_policy, name=f"act{i + 1}")
                )
        if self.pool:
            self.stack.append(keras.layers.MaxPooling2D(2, dtype=self.dtype_policy, name="pool"))

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        shape = tuple(input_shape)
        for layer in self.stack:
            layer.build(shape)
            shape = tuple(layer.compute_output_shape(shape))
        self.built = True

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        x = inputs
        for layer in self.stack:
            x = layer(x, training=training) if self.batch_norm else layer(x)
        return x

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        shape = tuple(input_shape)
        for layer in self.stack:
            shape = tuple(layer.compute_output_shape(shape))
        return shape

    # === Config ===
    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "num_convs": self.num_convs,
                "kernel_size": self.kernel_size,
                "pool": self.pool,
                "batch_norm": self.batch_norm,
                "activation": self.activation,
            }
        )
        return config
