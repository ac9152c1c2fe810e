"""Conv -> BatchNormalization -> activation, the unit every CNN in the suite is built from
(2-D for images, 3-D for volumes)."""

from __future__ import annotations

from typing import Any

import keras

CONV = {2: keras.layers.Conv2D, 3: keras.layers.Conv3D}


@keras.saving.register_keras_serializable(package="deepfield")
class ConvNormAct(keras.layers.Layer):
    """A 2-D (or, `rank=3`, 3-D) convolution followed by batch normalisation and an
    optional activation.

    Padding is always "same", so a stride of 2 maps a side of n to ceil(n / 2): a
    feature map never shrinks below 1x1, which keeps tiny inputs (8x8 digits) usable.
    The conv has no bias by default because the following BatchNormalization's beta
    makes it redundant; `use_bias=True` exists to reproduce reference models that
    keep it (keras.applications' ResNets).

    Args:
        filters: Number of output channels.
        kernel_size: Side of the square convolution kernel.
        strides: Stride of the convolution.
        activation: Activation name applied after the norm, or None for none (the
            last conv of a residual branch is added to the shortcut before its ReLU).
        use_bias: Whether the convolution has a bias.
        norm_momentum: BatchNormalization momentum for the moving statistics.
        norm_epsilon: BatchNormalization epsilon; 1.001e-5 (keras.applications'
            value) stays above cuDNN's 1e-5 minimum.
        zero_init_gamma: Start the norm's scale at 0 instead of 1. Used on the last
            norm of a residual branch so each block starts as the identity
            (Goyal et al., 2017), which stabilises early training of deep ResNets.
        kernel_initializer: Initializer of the conv kernel; he_normal suits ReLU nets.
        kernel_regularizer: Optional regularizer of the conv kernel (weight decay).
        rank: 2 (Conv2D, images) or 3 (Conv3D, volumes: a cube kernel and stride).
        **kwargs: Base `keras.layers.Layer` arguments (name, dtype, trainable).
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int = 3,
        strides: int = 1,
        activation: str | None = "relu",
        use_bias: bool = False,
        norm_momentum: float = 0.9,
        norm_epsilon: float = 1.001e-5,
        zero_init_gamma: bool = False,
        kernel_initializer: Any = "he_normal",
        kernel_regularizer: Any = None,
        rank: int = 2,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if rank not in CONV:
            raise ValueError(f"rank must be 2 or 3, got {rank!r}")
        self.rank = int(rank)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.strides = int(strides)
        self.activation = activation
        self.use_bias = bool(use_bias)
        self.norm_momentum = float(norm_momentum)
        self.norm_epsilon = float(norm_epsilon)
        self.zero_init_gamma = bool(zero_init_gamma)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

        # === Layers ===
        # Sublayers share this layer's dtype policy so mixed precision propagates.
        self.conv = CONV[self.rank](
            self.filters,
            self.kernel_size,
            strides=self.strides,
            padding="same",
            use_bias=self.use_bias,
            kernel_initializer=self.kernel_initializer,
            kernel_regularizer=self.kernel_regularizer,
            dtype=self.dtype_policy,
            name="conv",
        )
        self.norm = keras.layers.BatchNormalization(
            momentum=self.norm_momentum,
            epsilon=self.norm_epsilon,
            gamma_initializer="zeros" if self.zero_init_gamma else "ones",
            dtype=self.dtype_policy,
            name="norm",
        )
        self.act = (
            keras.layers.Activation(self.activation, dtype=self.dtype_policy, name="act")
            if self.activation is not None
            else None
        )

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.conv.build(input_shape)
        conv_shape = self.conv.compute_output_shape(input_shape)
        self.norm.build(conv_shape)
        if self.act is not None:
            self.act.build(conv_shape)
        self.built = True

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        x = self.conv(inputs)
        x = self.norm(x, training=training)
        if self.act is not None:
            x = self.act(x)
        return x

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return self.conv.compute_output_shape(input_shape)

    # === Config ===
    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                "activation": self.activation,
                "use_bias": self.use_bias,
                "norm_momentum": self.norm_momentum,
                "norm_epsilon": self.norm_epsilon,
                "zero_init_gamma": self.zero_init_gamma,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
                "rank": self.rank,
            }
        )
        return config
