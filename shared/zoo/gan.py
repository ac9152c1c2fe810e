"""The GAN training model (Goodfellow et al., 2014) that DCGAN and the StyleGAN-style
generator train in: a generator and a discriminator, alternating updates in `fit`."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf
from keras import ops


@keras.saving.register_keras_serializable(package="deepfield")
class GAN(keras.Model):
    """Called on latent vectors it generates images; `fit` on raw images (0..255) trains it.

    Each step updates the discriminator on real and generated images (non-saturating
    logistic loss), then the generator to fool it. One optimizer serves both networks
    (it holds separate slots for every variable), so the run directory's epoch
    checkpoints resume a GAN exactly like any other model. Images are scaled to
    [-1, 1], the range of the generator's tanh output.

    Args:
        generator: z (latent_dim,) -> image in [-1, 1].
        discriminator: image in [-1, 1] -> one logit (real vs generated).
        latent_dim: Size of z.
    """

    def __init__(
        self, generator: keras.Model, discriminator: keras.Model, latent_dim: int, **kwargs: Any
    ):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = int(latent_dim)
        self.noise = keras.random.SeedGenerator(0)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.built = True  # both networks are built functional models

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        return self.generator(inputs, training=training)

    def compile(self, optimizer: Any = "adam", **kwargs: Any) -> None:
        """Compile with one optimizer for both networks, built on all their variables."""
        super().compile(optimizer=optimizer, **kwargs)
        # Built here, outside the traced step, so it knows every variable before the
        # first update (which touches only the discriminator's).
        self.optimizer.build(self.trainable_variables)

    def get_compile_config(self) -> None:
        # Compiled by the trainer with its optimizer; a loaded GAN samples uncompiled.
        return None

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [self.d_loss_tracker, self.g_loss_tracker]

    def train_step(self, data: Any) -> dict[str, Any]:
        images = data[0] if isinstance(data, tuple | list) else data
        real = ops.cast(images, "float32") / 127.5 - 1.0
        batch = ops.shape(real)[0]
        d_vars = self.discriminator.trainable_variables
        g_vars = self.generator.trainable_variables

        z = keras.random.normal((batch, self.latent_dim), seed=self.noise)
        with tf.GradientTape() as tape:
            fake = self.generator(z, training=True)
            real_logits = ops.cast(self.discriminator(real, training=True), "float32")
            fake_logits = ops.cast(self.discriminator(fake, training=True), "float32")
            # softplus(-x) = -log sigmoid(x): the logistic loss, stable for large |x|.
            d_loss = ops.mean(ops.softplus(-real_logits)) + ops.mean(ops.softplus(fake_logits))
        self.optimizer.apply_gradients(zip(tape.gradient(d_loss, d_vars), d_vars, strict=True))

        z = keras.random.normal((batch, self.latent_dim), seed=self.noise)
        with tf.GradientTape() as tape:
            fake_logits = ops.cast(
                self.discriminator(self.generator(z, training=True), training=True), "float32"
            )
            g_loss = ops.mean(ops.softplus(-fake_logits))
        self.optimizer.apply_gradients(zip(tape.gradient(g_loss, g_vars), g_vars, strict=True))

        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        return {"d_loss": self.d_loss_tracker.result(), "g_loss": self.g_loss_tracker.result()}

    def test_step(self, data: Any) -> dict[str, Any]:
        """Both losses on held-out real images and fresh samples, without updates."""
        images = data[0] if isinstance(data, tuple | list) else data
        real = ops.cast(images, "float32") / 127.5 - 1.0
        z = keras.random.normal((ops.shape(real)[0], self.latent_dim), seed=self.noise)
        real_logits = ops.cast(self.discriminator(real, training=False), "float32")
        fake_logits = ops.cast(
            self.discriminator(self.generator(z, training=False), training=False), "float32"
        )
        d_loss = ops.mean(ops.softplus(-real_logits)) + ops.mean(ops.softplus(fake_logits))
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(ops.mean(ops.softplus(-fake_logits)))
        return {m.name: m.result() for m in self.metrics}

    def generate(self, count: int, seed: int = 0) -> Any:
        """`count` images as float32 pixels 0..255 (NumPy), from a seeded N(0, I)."""
        import numpy as np

        z = np.random.default_rng(seed).normal(size=(count, self.latent_dim)).astype("float32")
        images = self.generator.predict(z, verbose=0, batch_size=256)
        return np.clip((np.asarray(images, "float32") + 1.0) * 127.5, 0, 255)

    # === Config ===
    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "latent_dim": self.latent_dim,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> GAN:
        config = dict(config)
        config["generator"] = keras.saving.deserialize_keras_object(config["generator"])
        config["discriminator"] = keras.saving.deserialize_keras_object(config["discriminator"])
        return cls(**config)


def upsampling_plan(model: str, input_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """(start height, start width, doublings): halve both sides while even and >= 8."""
    height, width, _ = input_shape
    doublings = 0
    while height % 2 == 0 and width % 2 == 0 and min(height, width) >= 8:
        height, width, doublings = height // 2, width // 2, doublings + 1
    return height, width, doublings


def dcgan_discriminator(
    input_shape: tuple[int, int, int], width: int, doublings: int
) -> keras.Model:
    """Radford et al.'s discriminator: stride-2 convs (BN after the first), LeakyReLU 0.2,
    one logit; `doublings` convs mirror the generator's upsampling (at least one)."""
    image = keras.Input(shape=input_shape, name="image")
    x = image
    for i in range(max(1, doublings)):
        x = keras.layers.Conv2D(
            width * 2**i, 4, strides=2, padding="same", use_bias=i == 0, name=f"conv_{i + 1}"
        )(x)
        if i > 0:
            x = keras.layers.BatchNormalization(name=f"norm_{i + 1}")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"act_{i + 1}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    logit = keras.layers.Dense(1, dtype="float32", name="logit")(x)
    return keras.Model(image, logit, name="discriminator")
