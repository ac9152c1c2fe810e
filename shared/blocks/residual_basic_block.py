"""The two-3x3-conv residual block of ResNet-18/34 (He et al., 2016)."""

from __future__ import annotations

from typing import Any

import keras

from shared.blocks.conv_norm_act import ConvNormAct


@keras.saving.register_keras_serializable(package="deepfield")
class ResidualBasicBlock(keras.layers.Layer):
    """relu(shortcut(x) + bn(conv3x3(relu(bn(conv3x3(x)))))), output `filters` channels.

    The shortcut is the identity, or a 1x1 conv + norm ("projection", option B of the
    paper) when the block changes stride or channel count. The caller decides, because
    it knows the input channels when it builds the block; `build` checks the choice.

    Args:
        filters: Channels of both convs and of the output.
        strides: Stride of the first 3x3 conv and of the projection.
        projection_shortcut: Use a 1x1 conv + norm shortcut instead of the identity.
            Required when `strides != 1` or the input has a channel count other than
            `filters`.
        use_bias: Whether the convs have a bias (see `ConvNormAct`).
        norm_momentum: BatchNormalization momentum.
        norm_epsilon: BatchNormalization epsilon.
        zero_init_residual: Zero-init the last norm's scale so the block starts as
            the identity (helps deep nets train early on).
        kernel_regularizer: Optional regularizer of every conv kernel.
        rank: 2 (images) or 3 (volumes: 3x3x3 convs, as in 3D ResNets).
        **kwargs: Base `keras.layers.Layer` arguments (name, dtype, trainable).
    """

    def __init__(
        self,
        filters: int,
        strides: int = 1,
        projection_shortcut: bool = False,
        use_bias: bool = False,
        norm_momentum: float = 0.9,
        norm_epsilon: float = 1.001e-5,
        zero_init_residual: bool = False,
        kernel_regularizer: Any = None,
        rank: int = 2,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.rank = int(rank)
        self.filters = int(filters)
        self.strides = int(strides)
        self.projection_shortcut = bool(projection_shortcut)
        self.use_bias = bool(use_bias)
        self.norm_momentum = float(norm_momentum)
        self.norm_epsilon = float(norm_epsilon)
        self.zero_init_residual = bool(zero_init_residual)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        if self.strides != 1 and not self.projection_shortcut:
            raise ValueError(
                f"{self.name}: strides={self.strides} changes the spatial size, so the "
                "identity shortcut cannot be added; pass projection_shortcut=True"
            )

        # === Layers ===
        common = {
            "use_bias": self.use_bias,
            "norm_momentum": self.norm_momentum,
            "norm_epsilon": self.norm_epsilon,
            "kernel_regularizer": self.kernel_regularizer,
            "dtype": self.dtype_policy,
            "rank": self.rank,
        }
        self.conv1 = ConvNormAct(self.filters, 3, strides=self.strides, name="conv1", **common)
        self.conv2 = ConvNormAct(
            self.filters,
            3,
            activation=None,
            zero_init_gamma=self.zero_init_residual,
            name="conv2",
            **common,
        )
        self.shortcut = (
            ConvNormAct(
                self.filters,
                1,
                strides=self.strides,
                activation=None,
                name="shortcut",
                **common,
            )
            if self.projection_shortcut
            else None
        )
        self.merge = keras.layers.Add(dtype=self.dtype_policy, name="merge")
        self.out_act = keras.layers.ReLU(dtype=self.dtype_policy, name="out_act")

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        if not self.projection_shortcut and input_shape[-1] != self.filters:
            raise ValueError(
                f"{self.name}: input has {input_shape[-1]} channels but the block outputs "
                f"{self.filters}; pass projection_shortcut=True"
            )
        self.conv1.build(input_shape)
        mid_shape = self.conv1.compute_output_shape(input_shape)
        self.conv2.build(mid_shape)
        out_shape = self.conv2.compute_output_shape(mid_shape)
        if self.shortcut is not None:
            self.shortcut.build(input_shape)
        self.merge.build([out_shape, out_shape])
        self.out_act.build(out_shape)
        self.built = True

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        residual = self.conv1(inputs, training=training)
        residual = self.conv2(residual, training=training)
        shortcut = inputs if self.shortcut is None else self.shortcut(inputs, training=training)
        return self.out_act(self.merge([shortcut, residual]))

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return self.conv1.compute_output_shape(input_shape)

    # === Config ===
    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "strides": self.strides,
                "projection_shortcut": self.projection_shortcut,
                "use_bias": self.use_bias,
                "norm_momentum": self.norm_momentum,
                "norm_epsilon": self.norm_epsilon,
                "zero_init_residual": self.zero_init_residual,
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
                "rank": self.rank,
            }
        )
        return config
