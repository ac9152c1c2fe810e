"""The language model's tokens: text to ids and back with core TensorFlow string ops
and a Keras `StringLookup` over a vocabulary built from the training span only, so
training, predict and the export read and write text the same way."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from shared.input_contract import InputContract
from shared.run_dir import RunDir

UNKNOWN = "[UNK]"  # id 0: tokens outside the training vocabulary; never generated


def split_tokens(texts: tf.Tensor, unit: str) -> tf.RaggedTensor:
    """(N,) strings -> (N, None) token strings, with core TensorFlow ops only.

    character: every Unicode code point (spaces and newlines included). word: lower-cased
    runs of letters, digits and marks, and every other non-space character alone.
    """
    if unit == "character":
        return tf.strings.unicode_split(texts, "UTF-8", errors="replace")
    text = tf.strings.lower(texts, encoding="utf-8")
    text = tf.strings.regex_replace(text, r"[\s\p{Z}]+", " ")
    text = tf.strings.regex_replace(text, r"([^\p{L}\p{N}\p{M}_ ])", r" \1 ")
    return tf.strings.split(text)


class Tokenizer(tf.Module):
    """Token strings <-> ids: id 0 is UNKNOWN, ids 1.. the vocabulary (commonest first)."""

    def __init__(self, unit: str, vocabulary: list[str]):
        super().__init__(name="tokenizer")
        self.unit = unit
        self.vocabulary = list(vocabulary)
        self.lookup = keras.layers.StringLookup(
            vocabulary=self.vocabulary, num_oov_indices=1, oov_token=UNKNOWN, mask_token=None
        )
        self.strings = tf.constant([UNKNOWN, *self.vocabulary])

    @property
    def size(self) -> int:
        return len(self.vocabulary) + 1

    def ids(self, texts: tf.Tensor) -> tf.RaggedTensor:
        tokens = split_tokens(texts, self.unit)
        return tokens.with_flat_values(tf.cast(self.lookup(tokens.flat_values), tf.int32))

    def encode(self, text: str) -> np.ndarray:
        """One long text (a corpus span) -> its (T,) int32 ids."""
        return self.ids(tf.constant([text])).flat_values.numpy()

    def decode(self, ids: tf.Tensor) -> tf.Tensor:
        """(N, T) ids -> (N,) strings; words are joined by spaces, punctuation re-attached."""
        tokens = tf.gather(self.strings, ids)
        if self.unit == "character":
            return tf.strings.reduce_join(tokens, axis=-1)
        text = tf.strings.reduce_join(tokens, axis=-1, separator=" ")
        text = tf.strings.regex_replace(text, r" ([.,;:!?)\]}])", r"\1")
        text = tf.strings.regex_replace(text, r"([(\[{]) ", r"\1")
        return tf.strings.regex_replace(text, r"(\pL) (['-]) (\pL)", r"\1\2\3")


def build_vocabulary(text: str, unit: str, size: int) -> tuple[list[str], list[int]]:
    """The `size - 1` commonest tokens of `text` (ties alphabetical) and the token counts
    of [UNKNOWN, *vocabulary] (UNKNOWN counts the training tokens left out)."""
    tokens = split_tokens(tf.constant([text]), unit).flat_values.numpy()
    values, counts = np.unique(tokens, return_counts=True)
    order = sorted(range(len(values)), key=lambda i: (-counts[i], values[i]))
    kept = order[: size - 1]
    vocabulary = [values[i].decode("utf-8") for i in kept]
    kept_counts = [int(counts[i]) for i in kept]
    return vocabulary, [int(len(tokens) - sum(kept_counts)), *kept_counts]


def tokenizer_from_contract(run: RunDir) -> tuple[Tokenizer, dict[str, Any]]:
    details = InputContract.read(run).details
    return Tokenizer(details["unit"], details["vocabulary"]), details
