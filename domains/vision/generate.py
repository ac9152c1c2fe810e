"""Vision generation (`--task generate`): train a VAE, DCGAN or StyleGAN-style generator on an
image source, save sample grids, and score the samples with a Frechet distance.

The distance is the FID's formula (Heusel et al., 2017) on other features: those of a
small CNN classifier trained here on the same data (its pooled last feature map), since
Inception-v3 weights cannot be fetched offline. It is reported as
`frechet_classifier_distance` and is comparable between runs on the same data only;
`frechet_classifier_distance_real` (held-out real images against training images)
gives the floor a perfect generator would reach.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from domains.vision import data as vision_data
from domains.vision.config import VisionConfig
from domains.vision.models import check_vision_model
from shared import model_io, plots
from shared.data import ImageData, describe
from shared.model_card import training_rows, write_model_card
from shared.run_dir import RunDir
from shared.training.trainer import fit, history_rows, make_optimizer, runtime_scope
from shared.zoo import GAN, build_model

LOG = logging.getLogger("deepfield.vision")
DOMAIN, TASK = "vision", "generate"
FEATURE_CLASSIFIER = "small_cnn"
FEATURE_CLASSIFIER_FILE = "fcd_classifier.keras"  # in the run folder, beside model.keras


# === Training ===
def train(config: VisionConfig, run: RunDir) -> dict[str, Any]:
    """Train the configured generator into `run`, then write samples, metrics and a card."""
    check_vision_model(config.model.name, TASK)
    with runtime_scope(config.train, config.runtime):
        return _train(config, run)


def _train(config: VisionConfig, run: RunDir) -> dict[str, Any]:
    data = vision_data.load(config.data, config.runtime.seed)
    LOG.info(describe(data))
    vision_data.record_data(run, data, TASK)
    train_images, _ = data.splits["train"].arrays()
    batch = config.train.batch_size
    steps = config.train.steps_per_epoch or max(1, len(train_images) // batch)

    model = build_model(
        config.model.name, input_shape=tuple(data.image_shape), **config.model.options()
    )
    optimizer = make_optimizer(config.train, steps)
    gan = isinstance(model, GAN)
    train_ds = _dataset(train_images, batch, gan, shuffle_seed=config.runtime.seed)
    val_ds = None
    if len(data.splits["validation"]):
        val_ds = _dataset(data.splits["validation"].arrays()[0], batch, gan)
    if gan:
        model.compile(optimizer=optimizer)
    else:
        model.compile(optimizer=optimizer, loss=pixel_bernoulli_loss)
    fit(
        model,
        train_ds,
        val_ds,
        run=run,
        train=config.train,
        monitor=("val_g_loss" if gan else "val_loss") if val_ds is not None else "loss",
    )

    model_io.save_model(model, run.model_path)
    model = model_io.load_model(run.model_path)
    metrics = evaluate_model(model, data, "test", run, config)
    plots.training_curves(history_rows(run.history_path), run.plots / "training_curves.png")
    write_card(config, run, data, model, metrics)
    return metrics


def _dataset(images: np.ndarray, batch: int, gan: bool, shuffle_seed: int | None = None):
    """Raw float pixels for a GAN; (pixels, pixels / 255) pairs for a VAE's reconstruction."""
    ds = tf.data.Dataset.from_tensor_slices(images.astype("float32"))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(images), seed=shuffle_seed, reshuffle_each_iteration=True)
    if not gan:
        ds = ds.map(lambda x: (x, x / 255.0))
    # A GAN step needs equal real and generated batches; drop a ragged last batch.
    return ds.batch(batch, drop_remainder=gan and len(images) >= batch).prefetch(2)


def pixel_bernoulli_loss(y_true: Any, y_pred: Any) -> Any:
    """Binary cross-entropy summed over pixels: the VAE's reconstruction term (-log p(x|z))."""
    y_pred = keras.ops.clip(keras.ops.cast(y_pred, "float32"), 1e-7, 1 - 1e-7)
    y_true = keras.ops.cast(y_true, "float32")
    per_pixel = -(y_true * keras.ops.log(y_pred) + (1 - y_true) * keras.ops.log(1 - y_pred))
    return keras.ops.sum(keras.ops.reshape(per_pixel, (keras.ops.shape(per_pixel)[0], -1)), axis=1)


# === Sampling ===
def sample_images(model: keras.Model, count: int, seed: int = 0) -> np.ndarray:
    """`count` generated images as float32 pixels 0..255, from a seeded latent draw."""
    if isinstance(model, GAN):
        return model.generate(count, seed=seed)
    decoder = model.get_layer("decoder")
    latent = decoder.inputs[0].shape[-1]
    z = np.random.default_rng(seed).normal(size=(count, latent)).astype("float32")
    pixels = np.asarray(decoder.predict(z, batch_size=256, verbose=0), "float32")
    return np.clip(pixels * 255.0, 0, 255)


# === Frechet distance ===
def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) between two feature sets.

    Tr((S_a S_b)^(1/2)) is computed as Tr((S_a^(1/2) S_b S_a^(1/2))^(1/2)), a symmetric
    PSD matrix, so two symmetric eigendecompositions replace a general matrix root.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_root = float(np.sum(np.sqrt(np.clip(middle, 0, None))))
    distance = float(
        np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root
    )
    return max(distance, 0.0)


def feature_extractor(
    data: ImageData, config: VisionConfig, run: RunDir
) -> tuple[keras.Model, float]:
    """A small CNN trained on the data's train split; returns (image -> pooled features,
    its test accuracy).

    Saved in the run folder on first use and reused by later evaluations, so a run's
    distances stay comparable with each other (same features) and evaluate is quick.
    """
    path = run.path / FEATURE_CLASSIFIER_FILE
    if path.is_file():
        classifier = model_io.load_model(path)
        if tuple(classifier.input.shape[1:]) == tuple(data.image_shape):
            classifier.compile(metrics=["accuracy"], loss="sparse_categorical_crossentropy")
            return _extractor_and_accuracy(classifier, data)
    classifier = build_model(
        FEATURE_CLASSIFIER, input_shape=tuple(data.image_shape), num_classes=data.num_classes
    )
    classifier.compile(
        keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    images, labels = data.splits["train"].arrays()
    classifier.fit(
        images.astype("float32"),
        labels,
        epochs=config.generate.classifier_epochs,
        batch_size=64,
        verbose=0,
    )
    model_io.save_model(classifier, path)
    return _extractor_and_accuracy(classifier, data)


def _extractor_and_accuracy(classifier: keras.Model, data: ImageData) -> tuple[keras.Model, float]:
    test_images, test_labels = data.splits["test"].arrays()
    _, accuracy = classifier.evaluate(test_images.astype("float32"), test_labels, verbose=0)
    features = keras.Model(classifier.input, classifier.get_layer("pool").output)
    return features, float(accuracy)


def evaluate_model(
    model: keras.Model,
    data: ImageData,
    split: str,
    run: RunDir,
    config: VisionConfig,
    out: Path | None = None,
) -> dict[str, Any]:
    """Sample grid, Frechet classifier distances and (VAE) reconstruction terms on `split`."""
    seed = config.runtime.seed
    keras.utils.set_random_seed(seed)
    real, _ = data.splits[split].arrays(limit=config.generate.fcd_examples)
    count = len(real)
    generated = sample_images(model, count, seed=seed)
    extractor, classifier_accuracy = feature_extractor(data, config, run)

    def features(images: np.ndarray) -> np.ndarray:
        return np.asarray(extractor.predict(images.astype("float32"), batch_size=256, verbose=0))

    reference, _ = data.splits["train"].arrays(limit=count)
    real_features = features(real)
    metrics: dict[str, Any] = {
        "frechet_classifier_distance": frechet_distance(real_features, features(generated)),
        "frechet_classifier_distance_real": frechet_distance(real_features, features(reference)),
        "feature_classifier_accuracy": classifier_accuracy,
    }
    if not isinstance(model, GAN):
        metrics.update(vae_terms(model, real))
    metrics.update({"split": split, "num_examples": int(count), "task": TASK, "domain": DOMAIN})
    run.write_metrics(metrics, path=out)

    shown = sample_images(model, config.generate.samples, seed=seed)
    plots.image_grid(
        shown,
        [""] * len(shown),
        run.plots / "samples.png",
        suptitle=f"{config.model.name} samples (FCD {metrics['frechet_classifier_distance']:.2f})",
    )
    if not isinstance(model, GAN):
        originals = real[:8].astype("float32")
        rebuilt = np.clip(np.asarray(model.predict(originals, verbose=0)) * 255.0, 0, 255)
        plots.image_grid(
            np.concatenate([originals, rebuilt]),
            ["input"] * len(originals) + ["reconstruction"] * len(rebuilt),
            run.plots / "reconstructions.png",
            suptitle="VAE reconstructions (top: inputs)",
        )
    return metrics


def vae_terms(model: keras.Model, images: np.ndarray) -> dict[str, float]:
    """Per-image reconstruction loss, KL term and their sum (the negative ELBO, in nats)."""
    encoder, decoder = model.get_layer("encoder"), model.get_layer("decoder")
    x = images.astype("float32")
    mean, log_var = (np.asarray(t, np.float64) for t in encoder.predict(x, verbose=0))
    kl = -0.5 * np.sum(1 + log_var - mean**2 - np.exp(log_var), axis=1)
    recon = np.asarray(decoder.predict(mean.astype("float32"), verbose=0))
    bce = keras.ops.convert_to_numpy(pixel_bernoulli_loss(x / 255.0, recon))
    return {
        "reconstruction_loss": float(np.mean(bce)),
        "kl_divergence": float(np.mean(kl)),
        "loss": float(np.mean(bce) + np.mean(kl)),
    }


def evaluate(
    run: RunDir, config: VisionConfig, *, source: str | None, split: str, out: Path | None
) -> dict[str, Any]:
    """Re-score a finished generate run on a split of its data (or of another source)."""
    data_config = config.data.model_copy(update={"source": source or config.data.source})
    data = vision_data.load(data_config, config.runtime.seed)
    model = model_io.load_model(run.model_path)
    return evaluate_model(model, data, split, run, config, out)


def write_card(config: VisionConfig, run: RunDir, data: ImageData, model, metrics) -> None:
    write_model_card(
        run,
        title=f"{config.model.name} image generator",
        summary=f"A {config.model.name} generator trained with Deepfield on `{data.spec}`.",
        data={
            "source": data.spec,
            "image shape": "x".join(map(str, data.image_shape)),
            **{f"{name} examples": len(split) for name, split in data.splits.items()},
        },
        model={
            "architecture": config.model.name,
            "options": json.dumps(config.model.options()) or "{}",
            "parameters": f"{model.count_params():,}",
        },
        training=training_rows(config.train, config.runtime),
        metrics=metrics,
        intended_use="Sampling images like those of the training source, for demos, data "
        "augmentation experiments and teaching.",
        limitations=[
            "frechet_classifier_distance uses features of a small CNN trained on the same "
            "data, not Inception-v3: it ranks runs on this data and is not comparable with "
            "published FID values.",
            "Samples can reproduce training images; do not train on data whose images "
            "must not be regenerated.",
        ],
    )
