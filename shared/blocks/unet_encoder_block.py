"""A U-Net contracting step: two convolutions (kept as the skip), then 2x downsampling."""

from __future__ import annotations

from typing import Any

import keras

CONV = {2: keras.layers.Conv2D, 3: keras.layers.Conv3D}
POOL = {2: keras.layers.MaxPooling2D, 3: keras.layers.MaxPooling3D}
NORM_CHOICES = (True, False)


# === The double convolution both U-Net blocks share ===
def double_conv(filters: int, rank: int, batch_norm: bool, dtype: Any) -> list[keras.Layer]:
    """2 x (3^rank "same" conv -> [BN] -> ReLU), layers named conv1, norm1, act1, conv2, ..."""
    stack: list[keras.Layer] = []
    for i in (1, 2):
        stack.append(
            CONV[rank](
                filters, 3, padding="same", use_bias=not batch_norm, name=f"conv{i}", dtype=dtype
            )
        )
        if batch_norm:
            stack.append(keras.layers.BatchNormalization(name=f"norm{i}", dtype=dtype))
        stack.append(keras.layers.ReLU(name=f"act{i}", dtype=dtype))
    return stack


def build_stack(stack: list[keras.Layer], input_shape: Any) -> tuple[int | None, ...]:
    """Build the layers in turn; the stack's output shape."""
    shape = tuple(input_shape)
    for layer in stack:
        layer.build(shape)
        shape = tuple(layer.compute_output_shape(shape))
    return shape


def apply_stack(stack: list[keras.Layer], x: Any, training: bool | None) -> Any:
    for layer in stack:
        is_norm = isinstance(layer, keras.layers.BatchNormalization)
        x = layer(x, training=training) if is_norm else layer(x)
    return x


@keras.saving.register_keras_serializable(package="deepfield")
class UNetEncoderBlock(keras.layers.Layer):
    """x -> (skip, pooled): 2 x (3^rank conv -> [BN] -> ReLU) = skip; pooled = maxpool(skip).

    `rank` 2 is Ronneberger et al. (2015), 3 is Cicek et al.'s 3D U-Net (2016).
    Convolutions are "same"-padded so the skip and the upsampled path line up without
    cropping (the paper's valid convs need it), and `pool=False` gives the bottom.

    Args:
        filters: Channels of both convolutions.
        rank: 2 (images) or 3 (volumes).
        batch_norm: BatchNormalization after each conv (not in the 2015 paper).
        pool: Whether to return a pooled copy as well.
        **kwargs: Base `keras.layers.Layer` arguments.
    """

    def __init__(
        self, filters: int, rank: int = 2, batch_norm: bool = True, pool: bool = True, **kwargs: Any
    ):
        super().__init__(**kwargs)
        if rank not in CONV:
            raise ValueError(f"rank must be 2 or 3, got {rank!r}")
        self.filters = int(filters)
        self.rank = int(rank)
        self.batch_norm = bool(batch_norm)
        self.pool = bool(pool)
        self.stack = double_conv(self.filters, rank, self.batch_norm, self.dtype_policy)
        self.downsample = POOL[rank](2, name="pool", dtype=self.dtype_policy) if self.pool else None

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        shape = build_stack(self.stack, input_shape)
        if self.downsample is not None:
            self.downsample.build(shape)
        self.built = True

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        x = apply_stack(self.stack, inputs, training)
        if self.downsample is None:
            return x
        return x, self.downsample(x)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> Any:
        skip = (*input_shape[:-1], self.filters)
        if self.downsample is None:
            return skip
        return skip, tuple(self.downsample.compute_output_shape(skip))

    # === Config ===
    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "rank": self.rank,
                "batch_norm": self.batch_norm,
                "pool": self.pool,
            }
        )
        return config
