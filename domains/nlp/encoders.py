"""Sequence text classifiers (rnn, bert): raw strings in, token ids inside the model.

`classify` hands every model that is not a bag of n-grams to this module. The trained
model is one Keras model, so model.keras, predict and the export read text as training
did:

    text (string) -> tokenizer (fitted on the training split only) -> token ids
                  -> the zoo encoder (rnn, bert) or a KerasHub BERT backbone -> softmax

Two tokenizers:

- `wordpiece`: KerasHub's `WordPieceTokenizer` over a vocabulary computed on the
  training split (`compute_word_piece_vocabulary`), then `[CLS] ... [SEP]` and padding
  with Keras ops. Its ops come from tensorflow_text, which the export needs loaded.
- `words`: Keras `TextVectorization(output_mode="int")`, core TensorFlow only.

Both cut long texts to `tokenizer.sequence_length` and read an empty string (bert sees
`[CLS] [SEP]`). Masked-LM pretraining and `--init-from` live in `domains.nlp.pretrain`,
explanations (token attributions, attention maps) in `domains.nlp.encoder_explain`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from domains.nlp import data as nlp_data
from domains.nlp.config import NLPConfig
from shared.errors import UserError
from shared.run_dir import RunDir
from shared.zoo import build_model, model_spec

LOG = logging.getLogger("deepfield.nlp")
PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIALS = [PAD, UNK, CLS, SEP, MASK]  # ids 0-4; id 0 pads, and the encoders mask it
RECURRENT = ("rnn", "gru", "lstm", "simple_rnn")
TRANSFORMERS = ("bert", "bert_tiny", "bert_small", "bert_base")


# === Tokenizers ===
@dataclass
class Tokens:
    """How a model turns text into ids: the tokenizer kind, its vocabulary, and (for
    wordpiece) the special tokens the transformers expect around each text."""

    kind: str  # wordpiece | words
    vocabulary: list[str]
    lowercase: bool = True
    strip_accents: bool = True
    packed: bool = False  # wordpiece for a transformer: [CLS] text [SEP]

    def id(self, token: str) -> int:
        return self.vocabulary.index(token)


def family(config: NLPConfig) -> str:
    """ "recurrent" or "transformer": what `model.name` is, or a UserError."""
    name = config.model.name
    if name in RECURRENT:
        return "recurrent"
    if name in TRANSFORMERS:
        return "transformer"
    kind = model_spec(name).kind
    raise UserError(
        f"model {name!r} ({kind}) does not classify text; use a bag-of-n-grams model "
        f"(ngram_classifier), a recurrent one ({', '.join(RECURRENT)}) or a transformer "
        f"({', '.join(TRANSFORMERS)})"
    )


def tokenizer_kind(config: NLPConfig) -> str:
    kind = config.tokenizer.kind
    if kind == "auto":
        return "wordpiece" if family(config) == "transformer" else "words"
    if kind == "words" and family(config) == "transformer":
        raise UserError(
            f"{config.model.name} reads WordPiece tokens ([CLS] first): set tokenizer.kind "
            "to wordpiece or auto"
        )
    return kind


def fit_tokens(config: NLPConfig, texts: np.ndarray) -> Tokens:
    """The tokenizer's vocabulary, computed on `texts` (the training split) only."""
    kind = tokenizer_kind(config)
    size, lowercase = config.tokenizer.vocabulary_size, config.tokenizer.lowercase
    if kind == "wordpiece":
        import keras_hub

        vocabulary = keras_hub.tokenizers.compute_word_piece_vocabulary(
            tf.data.Dataset.from_tensor_slices(np.asarray(texts, str)).batch(1024),
            size,
            lowercase=lowercase,
            strip_accents=lowercase,
            reserved_tokens=SPECIALS,
        )
        packed = family(config) == "transformer"
        return Tokens(kind, list(vocabulary), lowercase, lowercase, packed)
    layer = words_layer(config.tokenizer.sequence_length, lowercase, max_tokens=size)
    layer.adapt(tf.data.Dataset.from_tensor_slices(np.asarray(texts, str)).batch(1024))
    return Tokens(kind, [str(t) for t in layer.get_vocabulary()], lowercase, False)


def words_layer(length: int, lowercase: bool, *, max_tokens=None, vocabulary=None):
    """TextVectorization to `length` word ids (0 pads, 1 is out of vocabulary)."""
    return keras.layers.TextVectorization(
        max_tokens=max_tokens,
        standardize="lower_and_strip_punctuation" if lowercase else "strip_punctuation",
        output_mode="int",
        output_sequence_length=length,
        vocabulary=vocabulary,
        name="tokenizer",
    )


def token_ids(text: Any, tokens: Tokens, length: int) -> Any:
    """The (batch, length) int32 ids of a string input, built into the model.

    KerasHub's `StartEndPacker` runs on tf.data but not as a node of a functional model,
    so [CLS] and [SEP] are added with Keras ops (which serialise with the model): the
    tokenizer pads its output to `length - 2`, [CLS] goes first and [SEP] after the
    last real token.
    """
    if tokens.kind == "words":
        # The vocabulary's leading "" and "[UNK]" are TextVectorization's own mask and
        # OOV tokens: passing them back is how Keras restores an adapted layer.
        return words_layer(length, tokens.lowercase, vocabulary=tokens.vocabulary)(text)
    import keras_hub

    tokenizer = keras_hub.tokenizers.WordPieceTokenizer(
        vocabulary=tokens.vocabulary,
        sequence_length=length - 2 if tokens.packed else length,
        lowercase=tokens.lowercase,
        strip_accents=tokens.strip_accents,
        oov_token=UNK,
        dtype="int32",
        name="tokenizer",
    )
    ids = ops.cast(tokenizer(text), "int32")
    if not tokens.packed:
        return ids
    real = ops.sum(ops.cast(ops.not_equal(ids, 0), "int32"), axis=1)
    edge = ops.zeros_like(ids[:, :1])
    ids = ops.concatenate([edge + tokens.id(CLS), ids, edge], axis=1)
    return ids + tokens.id(SEP) * ops.cast(ops.one_hot(real + 1, length), "int32")


def model_tokens(model: keras.Model) -> Tokens:
    """The `Tokens` of a trained text classifier (its tokenizer layer)."""
    layer = model.get_layer("tokenizer")
    vocabulary = [str(t) for t in layer.get_vocabulary()]
    if isinstance(layer, keras.layers.TextVectorization):
        lowercase = layer.get_config()["standardize"] == "lower_and_strip_punctuation"
        return Tokens("words", vocabulary, lowercase, False)
    # A transformer (dict of inputs) reads [CLS] text [SEP]; a recurrent encoder the text.
    packed = isinstance(encoder_model(model).input, dict)
    return Tokens("wordpiece", vocabulary, layer.lowercase, layer.strip_accents, packed)


def model_length(model: keras.Model) -> int:
    """Tokens per text that a trained text classifier reads ([CLS] and [SEP] included)."""
    layer = model.get_layer("tokenizer")
    if isinstance(layer, keras.layers.TextVectorization):
        return int(layer.get_config()["output_sequence_length"])
    return int(layer.sequence_length) + (2 if model_tokens(model).packed else 0)


# === Model ===
def encoder_model(model: keras.Model) -> keras.Model:
    """The encoder nested in a text classifier: the zoo model or the KerasHub backbone."""
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(nested) != 1:
        raise UserError(f"{model.name} is not a Deepfield sequence text classifier")
    return nested[0]


def build_sequence_classifier(
    config: NLPConfig, data: nlp_data.TextData, run: RunDir | None = None
) -> keras.Model:
    """Raw strings -> tokenizer (training split's vocabulary) -> encoder -> softmax.

    `pretrain.init_from` starts the encoder from a finished run or a KerasHub preset;
    `pretrain.epochs` > 0 first trains a bert encoder as a masked-LM (see `pretrain`).
    """
    from domains.nlp import pretrain

    kind = family(config)
    num_classes = len(data.class_names)
    length = config.tokenizer.sequence_length
    source = nlp_data.init_source(config.pretrain.init_from)
    if config.pretrain.epochs and kind != "transformer":
        raise UserError(
            f"masked-LM pretraining (pretrain.epochs={config.pretrain.epochs}) trains a "
            f"transformer encoder; {config.model.name} is recurrent: set pretrain.epochs=0"
        )
    if source is not None and source.kind == "preset":
        if config.pretrain.epochs:
            raise UserError(
                f"--init-from {source.path} is a pretrained KerasHub preset: set "
                "pretrain.epochs=0 (masked-LM pretraining is for the zoo's bert)"
            )
        return pretrain.preset_classifier(config, source, num_classes)
    if source is not None:
        donor = pretrain.run_model(config, source)
        tokens = model_tokens(donor)
        LOG.info(
            "--init-from %s: its %s vocabulary of %d tokens",
            source.path,
            tokens.kind,
            len(tokens.vocabulary),
        )
    else:
        tokens = fit_tokens(config, data.texts[data.splits["train"]])
    encoder = zoo_encoder(config, tokens, length, num_classes)
    if source is not None:
        copied = copy_weights(encoder_model(donor), encoder, skip=("predictions",))
        LOG.info("--init-from %s: copied %s", source.path, ", ".join(copied))
    if config.pretrain.epochs:
        mlm = pretrain.masked_lm(config, data, tokens, run)
        copied = copy_weights(mlm, encoder, skip=("predictions", "pooler"))
        LOG.info("masked-LM encoder copied into the classifier: %s", ", ".join(copied))
    return wrap(encoder, tokens, length)


def zoo_encoder(
    config: NLPConfig, tokens: Tokens, length: int, num_classes: int | None, **extra: Any
) -> keras.Model:
    """The zoo model over `length` token ids of this vocabulary."""
    options = {**config.model.options(), **extra}
    return build_model(
        config.model.name,
        input_shape=(length,),
        num_classes=num_classes,
        vocab_size=len(tokens.vocabulary),
        **options,
    )


def wrap(encoder: keras.Model, tokens: Tokens, length: int) -> keras.Model:
    """One model from a string input to the encoder's class probabilities."""
    text = keras.Input(shape=(), dtype="string", name="text")
    ids = token_ids(text, tokens, length)
    if isinstance(encoder.input, dict):
        probabilities = encoder({"token_ids": ids, "segment_ids": ops.zeros_like(ids)})
    else:
        probabilities = encoder(ids)
    return keras.Model(text, probabilities, name="text_classifier")


def copy_weights(source: keras.Model, target: keras.Model, skip: tuple[str, ...]) -> list[str]:
    """Copy every weighted layer of `target` that `source` has under the same name.

    Variables pair up in order by name and shape; a source variable the target lacks
    (the masked-LM head's output bias on the token embedding) is left out. A shape that
    differs means another architecture: a UserError that names it.
    """
    names = {layer.name: layer for layer in source.layers}
    copied = []
    for layer in target.layers:
        if layer.name in skip or not layer.weights or layer.name not in names:
            continue
        wanted = [v.name for v in layer.weights]
        given = [v for v in names[layer.name].weights if v.name in wanted]
        if [(v.name, tuple(v.shape)) for v in given] != [
            (v.name, tuple(v.shape)) for v in layer.weights
        ]:
            raise UserError(
                f"layer {layer.name!r} differs: {[tuple(v.shape) for v in given]} in the "
                f"source, {[tuple(v.shape) for v in layer.weights]} here; the source was "
                "trained with other model options (sizes or vocabulary)"
            )
        for variable, value in zip(layer.weights, given, strict=True):
            variable.assign(value)
        copied.append(layer.name)
    if not copied:
        raise UserError(f"no layer of {target.name} matches one of {source.name}")
    return copied


# === Model card ===
def card_model(config: NLPConfig, model: keras.Model) -> tuple[str, dict, list[str]]:
    """(what the model reads, its model-card rows, its limitations)."""
    tokens = model_tokens(model)
    length = model_length(model)
    encoder = encoder_model(model)
    what = "WordPiece tokens" if tokens.kind == "wordpiece" else "word tokens"
    described = f"{what} ({len(tokens.vocabulary):,} in its vocabulary, {length} per text)"
    pretrained = config.pretrain
    if pretrained.init_from:
        start = f"--init-from {pretrained.init_from}"
    elif pretrained.epochs:
        start = (
            f"masked-LM pretraining: {pretrained.epochs} epochs, {pretrained.mask_rate:.0%} "
            f"of tokens masked, on {pretrained.source or 'the training split'} "
            "(pretrain_history.csv)"
        )
    else:
        start = "random"
    rows = {
        "architecture": f"{config.model.name} ({type(encoder).__name__} {encoder.name})",
        "tokenizer": (
            "KerasHub WordPieceTokenizer, [CLS] text [SEP]"
            if tokens.packed
            else "KerasHub WordPieceTokenizer"
            if tokens.kind == "wordpiece"
            else "Keras TextVectorization (lower-cased words, punctuation stripped)"
        ),
        "vocabulary": len(tokens.vocabulary),
        "sequence length": length,
        "initialised from": start,
        "parameters": f"{encoder.count_params():,}",
    }
    limitations = [
        f"Texts are cut to {length} tokens: what comes after is not read.",
    ]
    if tokens.kind == "wordpiece":
        limitations.append(
            "The tokenizer uses tensorflow_text ops: the export loads where tensorflow_text "
            "is imported (a stock TF Serving binary lacks them)."
        )
    if family(config) == "transformer" and not (pretrained.init_from or pretrained.epochs):
        limitations.append(
            "A transformer trained from scratch on a few thousand texts learns little "
            "beyond keywords; a pretrained start (--init-from a KerasHub BERT preset) is the "
            "usual remedy (masked-LM pretraining on the same few texts only tied training "
            "from scratch: benchmarks/nlp_pretrain.py)."
        )
    return described, rows, limitations
