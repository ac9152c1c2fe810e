"""Where a text classifier's encoder starts: masked-LM pretraining, a finished run, or a
local KerasHub preset.

- `pretrain.epochs` > 0 (bert): the zoo's bert with its masked-LM head (`head="mlm"`,
  output projection tied to the token embedding) first learns to fill in 15% of the
  tokens of unlabeled text (the training split's texts, or `pretrain.source`), masked as
  BERT does by KerasHub's `MaskedLMMaskGenerator` (80% [MASK], 10% a random token, 10%
  kept) and drawn anew every epoch; its encoder weights then start the classifier. The
  run keeps `pretrain_history.csv` and `pretrain/mlm.weights.h5` (a rerun of the same
  command resumes after pretraining instead of repeating it).
- `--init-from RUN`: a finished classify run of the same model; the classifier takes its
  tokenizer vocabulary and every encoder weight (not the class head).
- `--init-from PRESET`: a KerasHub BERT preset directory (`BertBackbone` and
  `BertTokenizer` saved with `save_to_preset`); the classifier is that backbone's pooled
  output with a new softmax head, the preset's WordPiece vocabulary inside the model.
"""

from __future__ import annotations

import logging
import math

import keras
import numpy as np
import tensorflow as tf
import yaml
from keras import ops

from domains.nlp import data as nlp_data
from domains.nlp.config import NLPConfig
from domains.nlp.data import InitSource
from domains.nlp.encoders import (
    CLS,
    MASK,
    SEP,
    Tokens,
    family,
    token_ids,
    zoo_encoder,
)
from shared import model_io
from shared.errors import UserError
from shared.run_dir import RunDir
from shared.training.settings import TrainConfig
from shared.training.trainer import make_optimizer

LOG = logging.getLogger("deepfield.nlp")
HISTORY = "pretrain_history.csv"


# === --init-from ===
def run_model(config: NLPConfig, source: InitSource) -> keras.Model:
    """The trained model of a finished classify run of the same `model.name`."""
    run = RunDir.open(source.path)
    theirs = yaml.safe_load(run.config_path.read_text()) or {}
    task = theirs.get("task", "classify")
    name = (theirs.get("model") or {}).get("name")
    if task != "classify" or name != config.model.name:
        raise UserError(
            f"--init-from {source.path}: a {task} run of {name}; this run classifies with "
            f"{config.model.name}, so it needs a classify run of the same model"
        )
    return model_io.load_model(run.model_path)


def preset_classifier(config: NLPConfig, source: InitSource, num_classes: int) -> keras.Model:
    """Raw strings -> the preset's WordPiece tokens -> its BertBackbone -> softmax."""
    import keras_hub

    if family(config) != "transformer":
        raise UserError(
            f"--init-from {source.path} is a KerasHub BERT preset: set model.name=bert "
            f"(not {config.model.name})"
        )
    try:
        backbone = keras_hub.models.Backbone.from_preset(str(source.path))
        tokenizer = keras_hub.tokenizers.Tokenizer.from_preset(str(source.path))
    except (ValueError, OSError, KeyError, TypeError) as err:
        raise UserError(
            f"--init-from {source.path}: not a loadable KerasHub preset ({err})"
        ) from None
    if not isinstance(backbone, keras_hub.models.BertBackbone) or not isinstance(
        tokenizer, keras_hub.models.BertTokenizer
    ):
        raise UserError(
            f"--init-from {source.path}: a {type(backbone).__name__} preset; text "
            "classification starts from a BertBackbone with its BertTokenizer"
        )
    length = config.tokenizer.sequence_length
    if length > backbone.max_sequence_length:
        raise UserError(
            f"tokenizer.sequence_length={length} is longer than the preset's position table "
            f"({backbone.max_sequence_length})"
        )
    vocabulary = [str(t) for t in tokenizer.get_vocabulary()]
    if tokenizer.pad_token_id != 0 or not {CLS, SEP} <= set(vocabulary):
        raise UserError(f"--init-from {source.path}: its vocabulary lacks [PAD] (id 0) or [CLS]")
    tokens = Tokens("wordpiece", vocabulary, tokenizer.lowercase, tokenizer.strip_accents, True)
    text = keras.Input(shape=(), dtype="string", name="text")
    ids = token_ids(text, tokens, length)
    features = {
        "token_ids": ids,
        "segment_ids": ops.zeros_like(ids),
        "padding_mask": ops.cast(ops.not_equal(ids, 0), "int32"),
    }
    pooled = backbone(features)["pooled_output"]
    dropout = float(config.model.options().get("dropout", 0.1))
    x = keras.layers.Dropout(dropout, name="dropout")(pooled)
    probabilities = keras.layers.Dense(
        num_classes, activation="softmax", dtype="float32", name="predictions"
    )(x)
    LOG.info(
        "--init-from %s: %s, %d layers, hidden %d, vocabulary %d",
        source.path,
        type(backbone).__name__,
        backbone.num_layers,
        backbone.hidden_dim,
        len(vocabulary),
    )
    return keras.Model(text, probabilities, name="text_classifier")


# === Masked-LM pretraining ===
def pretraining_texts(config: NLPConfig, data: nlp_data.TextData) -> np.ndarray:
    """`pretrain.source`'s non-empty lines, or the training split's texts (never the
    validation or test texts, whose labels are unseen but whose words would leak)."""
    source = config.pretrain.source
    if source:
        from domains.nlp import corpus

        reading = config.model_copy(
            update={"data": config.data.model_copy(update={"source": source})}
        )
        text, _ = corpus.read_text(reading)
        texts = np.array([line.strip() for line in text.split("\n") if line.strip()], str)
    else:
        texts = data.texts[data.splits["train"]]
    if config.pretrain.max_texts:
        texts = texts[: config.pretrain.max_texts]
    return texts


def masked_lm(
    config: NLPConfig, data: nlp_data.TextData, tokens: Tokens, run: RunDir | None
) -> keras.Model:
    """The zoo's bert trained as a masked LM on the pretraining texts (or reloaded from
    the run's `pretrain/mlm.weights.h5` when an earlier attempt finished it)."""
    length = config.tokenizer.sequence_length
    mlm = zoo_encoder(config, tokens, length, None, head="mlm")
    saved = run.path / "pretrain" / "mlm.weights.h5" if run is not None else None
    if saved is not None and saved.is_file():
        LOG.info("masked-LM pretraining done in an earlier attempt: %s", saved)
        mlm.load_weights(saved)
        return mlm
    pretrain = config.pretrain
    texts = pretraining_texts(config, data)
    if not len(texts):
        raise UserError(f"pretrain.source {pretrain.source} holds no text")
    train = masked_batches(tokens, length, texts, pretrain, shuffle=True, seed=config.runtime.seed)
    validation = masked_batches(
        tokens, length, data.texts[data.splits["validation"]], pretrain, shuffle=False
    )
    mlm.compile(
        optimizer=optimizer(pretrain, steps_per_epoch=int(train.cardinality())),
        # The mean over masked tokens only (the weights), as BERT's loss.
        loss=keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, reduction="mean_with_sample_weight"
        ),
        weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    LOG.info(
        "masked-LM pretraining: %d texts from %s, %d epochs, %.0f%% of tokens masked",
        len(texts),
        pretrain.source or "the training split",
        pretrain.epochs,
        100 * pretrain.mask_rate,
    )
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: LOG.info(
                "pretrain epoch %d: %s",
                epoch + 1,
                ", ".join(f"{k}={float(v):.4f}" for k, v in (logs or {}).items()),
            )
        )
    ]
    if run is not None:
        (run.path / HISTORY).unlink(missing_ok=True)  # an interrupted attempt's rows
        callbacks.append(keras.callbacks.CSVLogger(str(run.path / HISTORY)))
    mlm.fit(
        train, validation_data=validation, epochs=pretrain.epochs, callbacks=callbacks, verbose=0
    )
    if saved is not None:
        saved.parent.mkdir(parents=True, exist_ok=True)
        mlm.save_weights(saved)
    return mlm


def optimizer(pretrain, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """Adam at `pretrain.learning_rate`, or AdamW with `pretrain.weight_decay` (BERT's
    0.01), over a constant rate or a cosine decay after `warmup_epochs` of warm-up."""
    schedule = TrainConfig(
        epochs=max(1, pretrain.epochs),
        learning_rate=pretrain.learning_rate,
        optimizer="adamw" if pretrain.weight_decay else "adam",
        weight_decay=pretrain.weight_decay,
        lr_schedule=pretrain.lr_schedule,
        warmup_epochs=pretrain.warmup_epochs,  # make_optimizer warms up a cosine only
    )
    return make_optimizer(schedule, steps_per_epoch)


def masked_batches(
    tokens: Tokens, length: int, texts: np.ndarray, pretrain, *, shuffle: bool, seed: int = 0
) -> tf.data.Dataset:
    """(inputs with tokens masked, the original ids, 1.0 where a token was selected)."""
    import keras_hub

    text = keras.Input(shape=(), dtype="string", name="text")
    ids = keras.Model(text, token_ids(text, tokens, length)).predict(
        tf.constant(np.asarray(texts, str)), batch_size=512, verbose=0
    )
    ids = np.asarray(ids, np.int32)
    generator = keras_hub.layers.MaskedLMMaskGenerator(
        vocabulary_size=len(tokens.vocabulary),
        mask_selection_rate=pretrain.mask_rate,
        mask_token_id=tokens.id(MASK),
        mask_selection_length=math.ceil(length * pretrain.mask_rate) + 1,
        unselectable_token_ids=[0, tokens.id(CLS), tokens.id(SEP)],
    )

    def mask(batch):
        out = generator(batch)
        picked = tf.one_hot(out["mask_positions"], length) * out["mask_weights"][..., None]
        inputs = {"token_ids": out["token_ids"], "segment_ids": tf.zeros_like(batch)}
        return inputs, batch, tf.reduce_sum(picked, axis=1)

    ds = tf.data.Dataset.from_tensor_slices(ids)
    if shuffle:
        ds = ds.shuffle(len(ids), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(pretrain.batch_size).map(mask).prefetch(2)
