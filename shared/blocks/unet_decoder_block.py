"""A U-Net expanding step: 2x transposed-conv upsampling, concatenation with the skip, two convs."""

from __future__ import annotations

from typing import Any

import keras

from shared.blocks.unet_encoder_block import CONV, apply_stack, build_stack, double_conv

UPSAMPLE = {2: keras.layers.Conv2DTranspose, 3: keras.layers.Conv3DTranspose}


@keras.saving.register_keras_serializable(package="deepfield")
class UNetDecoderBlock(keras.layers.Layer):
    """(x, skip) -> 2 x (conv -> [BN] -> ReLU)(concat(up(x), skip)).

    Args:
        filters: Channels of the upsampling and both convolutions.
        rank: 2 or 3.
        batch_norm: BatchNormalization after each conv.
        **kwargs: Base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: The coarser map.
        skip: The encoder's map at twice its resolution.
    """

    def __init__(self, filters: int, rank: int = 2, batch_norm: bool = True, **kwargs: Any):
        super().__init__(**kwargs)
        if rank not in CONV:
            raise ValueError(f"rank must be 2 or 3, got {rank!r}")
        self.filters = int(filters)
        self.rank = int(rank)
        self.batch_norm = bool(batch_norm)
        common = {"dtype": self.dtype_policy}
        self.upsample = UPSAMPLE[rank](self.filters, 2, strides=2, name="upsample", **common)
        self.concat = keras.layers.Concatenate(name="concat", **common)
        self.stack = double_conv(self.filters, rank, self.batch_norm, self.dtype_policy)

    def build(
        self, inputs_shape: tuple[int | None, ...], skip_shape: tuple[int | None, ...]
    ) -> None:
        self.upsample.build(inputs_shape)
        up = tuple(self.upsample.compute_output_shape(inputs_shape))
        if (
            None not in up[1:-1]
            and None not in skip_shape[1:-1]
            and up[1:-1] != tuple(skip_shape[1:-1])
        ):
            raise ValueError(f"upsampled map {up[1:-1]} does not match the skip {skip_shape[1:-1]}")
        shape = (*up[:-1], up[-1] + skip_shape[-1])
        self.concat.build([up, tuple(skip_shape)])
        build_stack(self.stack, shape)
        self.built = True

    def call(self, inputs: Any, skip: Any, training: bool | None = None) -> Any:
        return apply_stack(self.stack, self.concat([self.upsample(inputs), skip]), training)

    def compute_output_shape(self, inputs_shape: Any, skip_shape: Any) -> Any:
        return (*skip_shape[:-1], self.filters)

    # === Config ===
    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"filters": self.filters, "rank": self.rank, "batch_norm": self.batch_norm})
        return config
