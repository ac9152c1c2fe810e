"""The 1x1-3x3-1x1 bottleneck residual block of ResNet-50/101/152 (He et al., 2016)."""

from __future__ import annotations

from typing import Any

import keras

from shared.blocks.conv_norm_act import ConvNormAct

STRIDE_POSITIONS = ("3x3", "1x1")


@keras.saving.register_keras_serializable(package="deepfield")
class ResidualBottleneckBlock(keras.layers.Layer):
    """relu(shortcut(x) + 1x1 -> 3x3 -> 1x1 convs), output `filters * expansion` channels.

    `stride_on` picks where a downsampling block strides: "3x3" is ResNet v1.5
    (torchvision, NVIDIA; about 0.5% better top-1 because the first 1x1 no longer
    skips three quarters of its input), "1x1" is the original v1 layout that
    keras.applications.ResNet50 uses. The parameter count is the same either way.

    Args:
        filters: Channels of the 1x1 reduce and 3x3 convs (the bottleneck width).
        strides: Stride of the block (on the conv named by `stride_on`, and on the
            projection).
        projection_shortcut: Use a 1x1 conv + norm shortcut instead of the identity.
            Required when `strides != 1` or the input has a channel count other than
            `filters * expansion`.
        expansion: Output channels are `filters * expansion` (4 in the paper).
        stride_on: "3x3" (v1.5) or "1x1" (v1).
        use_bias: Whether the convs have a bias (see `ConvNormAct`).
        norm_momentum: BatchNormalization momentum.
        norm_epsilon: BatchNormalization epsilon.
        zero_init_residual: Zero-init the last norm's scale so the block starts as
            the identity (helps deep nets train early on).
        kernel_regularizer: Optional regularizer of every conv kernel.
        **kwargs: Base `keras.layers.Layer` arguments (name, dtype, trainable).
    """

    def __init__(
        self,
        filters: int,
        strides: int = 1,
        projection_shortcut: bool = False,
        expansion: int = 4,
        stride_on: str = "3x3",
        use_bias: bool = False,
        norm_momentum: float = 0.9,
        norm_epsilon: float = 1.001e-5,
        zero_init_residual: bool = False,
        kernel_regularizer: Any = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if stride_on not in STRIDE_POSITIONS:
            raise ValueError(f"stride_on must be one of {STRIDE_POSITIONS}, got {stride_on!r}")
        self.filters = int(filters)
        self.strides = int(strides)
        self.projection_shortcut = bool(projection_shortcut)
        self.expansion = int(expansion)
        self.stride_on = stride_on
        self.use_bias = bool(use_bias)
        self.norm_momentum = float(norm_momentum)
        self.norm_epsilon = float(norm_epsilon)
        self.zero_init_residual = bool(zero_init_residual)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.out_filters = self.filters * self.expansion
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
        }
        stride_1x1 = self.strides if stride_on == "1x1" else 1
        stride_3x3 = self.strides if stride_on == "3x3" else 1
        self.conv1 = ConvNormAct(self.filters, 1, strides=stride_1x1, name="conv1", **common)
        self.conv2 = ConvNormAct(self.filters, 3, strides=stride_3x3, name="conv2", **common)
        self.conv3 = ConvNormAct(
            self.out_filters,
            1,
            activation=None,
            zero_init_gamma=self.zero_init_residual,
            name="conv3",
            **common,
        )
        self.shortcut = (
            ConvNormAct(
                self.out_filters,
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
        if not self.projection_shortcut and input_shape[-1] != self.out_filters:
            raise ValueError(
                f"{self.name}: input has {input_shape[-1]} channels but the block outputs "
                f"{self.out_filters}; pass projection_shortcut=True"
            )
        shape = input_shape
        for conv in (self.conv1, self.conv2, self.conv3):
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
        if self.shortcut is not None:
            self.shortcut.build(input_shape)
        self.merge.build([shape, shape])
        self.out_act.build(shape)
        self.built = True

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        residual = self.conv1(inputs, training=training)
        residual = self.conv2(residual, training=training)
        residual = self.conv3(residual, training=training)
        shortcut = inputs if self.shortcut is None else self.shortcut(inputs, training=training)
        return self.out_act(self.merge([shortcut, residual]))

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        shape = input_shape
        for conv in (self.conv1, self.conv2, self.conv3):
            shape = conv.compute_output_shape(shape)
        return shape

    # === Config ===
    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "strides": self.strides,
                "projection_shortcut": self.projection_shortcut,
                "expansion": self.expansion,
                "stride_on": self.stride_on,
                "use_bias": self.use_bias,
                "norm_momentum": self.norm_momentum,
                "norm_epsilon": self.norm_epsilon,
                "zero_init_residual": self.zero_init_residual,
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            }
        )
        return config
