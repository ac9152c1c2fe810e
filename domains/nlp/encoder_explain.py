"""Why a sequence classifier (rnn, bert) decided: integrated gradients over the token
embeddings, merged from word pieces back into words, and for transformers the last
layer's attention over each text's tokens."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from domains.nlp.attention_plot import attention_grid
from domains.nlp.config import NLPConfig
from domains.nlp.encoders import CLS, PAD, SEP, Tokens, encoder_model, family, model_tokens
from domains.nlp.explain import IG_STEPS, texts_to_explain, write_attributions
from shared import model_io
from shared.errors import UserError
from shared.input_contract import InputContract
from shared.run_dir import RunDir

LOG = logging.getLogger("deepfield.nlp")


@contextlib.contextmanager
def tapped(layer: keras.layers.Layer, replacement):
    """Run `replacement(original_call, *args, **kwargs)` whenever `layer` is called.

    Keras has no hook for a layer's input or output inside a nested functional model;
    Keras 3 looks `call` up on the instance at every call, so an instance attribute
    taps it without rebuilding the model. The model is unchanged on the way out.
    """
    original = layer.call
    layer.call = lambda *args, **kwargs: replacement(original, *args, **kwargs)
    try:
        yield
    finally:
        vars(layer).pop("call", None)


def embedding_layer(model: keras.Model) -> keras.layers.Layer:
    encoder = encoder_model(model)
    for name in ("token_embedding", "embedding"):
        if any(layer.name == name for layer in encoder.layers):
            return encoder.get_layer(name)
    raise UserError(f"{encoder.name} has no token embedding to attribute to")


def attribute(model: keras.Model, text: str, tokens: Tokens | None = None) -> dict[str, Any]:
    """The predicted class and each token's integrated-gradients attribution towards it,
    taken over the token embeddings (Sundararajan et al., 2017): the path runs from zero
    vectors for the text's tokens (padding, [CLS] and [SEP] kept as they are) to their
    embeddings."""
    from shared.explain.integrated_gradients import integrated_gradients

    tokens = tokens or model_tokens(model)
    embedding = embedding_layer(model)
    seen: dict[str, Any] = {}

    def record(call, ids, *args, **kwargs):
        seen["ids"] = ids
        seen["vectors"] = call(ids, *args, **kwargs)
        return seen["vectors"]

    with tapped(embedding, record):
        probabilities = np.asarray(model(tf.constant([text]), training=False))[0]
    predicted = int(np.argmax(probabilities))
    ids = np.asarray(seen["ids"])[0]
    vectors = tf.convert_to_tensor(seen["vectors"])
    special = {tokens.vocabulary.index(t) for t in (PAD, CLS, SEP) if t in tokens.vocabulary}
    content = np.array([i not in special and i != 0 for i in ids])
    baseline = tf.where(content[:, None], tf.zeros_like(vectors[0]), vectors[0])

    def logit(path):
        with tapped(embedding, lambda call, ids, *a, **k: tf.identity(path)):
            out = model(tf.repeat(tf.constant([text]), tf.shape(path)[0]), training=False)
        return tf.math.log(out[:, predicted : predicted + 1] + 1e-9)

    attributions = integrated_gradients(logit, vectors, baseline, IG_STEPS).numpy()[0].sum(-1)
    pieces = [
        (tokens.vocabulary[i], float(a))
        for i, a, keep in zip(ids, attributions, content, strict=True)
        if keep
    ]
    return {
        "text": text,
        "class_id": predicted,
        "probability": float(probabilities[predicted]),
        "tokens": pieces,
        "ngrams": words_of(pieces),
    }


def words_of(pieces: list[tuple[str, float]]) -> dict[str, float]:
    """Word -> attribution: WordPiece continuations ("##ing") joined to their word, a
    repeated word's attributions summed (what classify's HTML and chart show)."""
    words: list[list] = []
    for piece, value in pieces:
        if piece.startswith("##") and words:
            words[-1][0] += piece[2:]
            words[-1][1] += value
        else:
            words.append([piece, value])
    merged: dict[str, float] = {}
    for word, value in words:
        merged[word] = merged.get(word, 0.0) + value
    return merged


def explain(run: RunDir, config: NLPConfig, inputs: list[str], out: Path | None) -> Path:
    """Token attributions (PNG of each text's strongest words, HTML of the text coloured)
    and, for a transformer, the last layer's attention over each text's tokens."""
    inputs = texts_to_explain(config, inputs)
    model = model_io.load_model(run.model_path)
    names = InputContract.read(run).classes or []
    tokens = model_tokens(model)
    explained = [attribute(model, text, tokens) for text in inputs]
    target = write_attributions(explained, names, run, out)
    if family(config) == "transformer":
        maps = [attention_map(model, text, tokens) for text in inputs]
        attention = target.with_name("attention.png" if not out else f"{target.stem}_attention.png")
        attention_chart(maps, names, attention)
        LOG.info("attention maps: %s", attention)
    return target


def attention_map(model: keras.Model, text: str, tokens: Tokens | None = None) -> dict[str, Any]:
    """The text's tokens and the last encoder layer's (heads, n, n) attention weights
    among them (row: the attending token), padding left out."""
    from shared.blocks import TransformerEncoderBlock

    tokens = tokens or model_tokens(model)
    encoder = encoder_model(model)
    blocks = [layer for layer in encoder.layers if isinstance(layer, TransformerEncoderBlock)]
    seen: dict[str, Any] = {}
    if blocks:  # the zoo's bert
        attention = blocks[-1].attention

        def record(call, inputs, *args, mask=None, **kwargs):
            seen["weights"] = attention.attention_probabilities(inputs, mask)
            return call(inputs, *args, mask=mask, **kwargs)

    else:  # a KerasHub backbone: its layers' attention is a keras MultiHeadAttention
        layers = [layer for layer in encoder.layers if hasattr(layer, "_self_attention_layer")]
        if not layers:
            raise UserError(f"{encoder.name} has no attention layers to show")
        attention = layers[-1]._self_attention_layer

        def record(call, *args, **kwargs):
            output, seen["weights"] = call(*args, **{**kwargs, "return_attention_scores": True})
            return output

    embedding = embedding_layer(model)

    def ids_of(call, ids, *args, **kwargs):
        seen["ids"] = ids
        return call(ids, *args, **kwargs)

    with tapped(attention, record), tapped(embedding, ids_of):
        model(tf.constant([text]), training=False)
    ids = [int(i) for i in np.asarray(seen["ids"])[0] if i != 0]
    n = len(ids)
    return {
        "text": text,
        "tokens": [tokens.vocabulary[i] for i in ids],
        "attention": np.asarray(seen["weights"], np.float32)[0, :, :n, :n],
    }


SHOWN_TOKENS = 32


def attention_chart(maps: list[dict[str, Any]], names: list[str], path: Path) -> Path:
    """Per text, the mean attention over heads and each head's, as heatmaps."""
    return attention_grid(
        maps,
        path,
        shown_tokens=SHOWN_TOKENS,
        title="last encoder layer: attention among each text's first tokens",
        name_rows=True,
    )
