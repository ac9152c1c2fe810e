"""The input end of the zoo's sequence models: tokens, vectors, or image rows.

A sequence classifier accepts three input ranks, so the same architecture trains on
text, on feature sequences and, in `deepfield vision train`, on images read row by row:

    (seq_len,)       token ids -> embedding (id 0 is padding and is masked)
    (time, feature)  float vectors, as they are
    (H, W, C)        raw 0..255 pixels -> "preprocess" (x / 255) -> H rows of W*C values
"""

from __future__ import annotations

from typing import Any

import keras

from shared.errors import UserError
from shared.zoo.classifier import PREPROCESS, check_int


def sequence_input(
    model: str, input_shape: tuple[int, ...], vocab_size: int
) -> tuple[keras.KerasTensor, keras.KerasTensor, bool]:
    """(model input, (batch, time, features) tensor or token ids, whether they are tokens)."""
    rank = len(input_shape)
    if rank == 1:
        check_int("vocab_size", vocab_size, minimum=2)
        tokens = keras.Input(shape=input_shape, dtype="int32", name="token_ids")
        return tokens, tokens, True
    if rank == 2:
        vectors = keras.Input(shape=input_shape, dtype="float32", name="sequence")
        return vectors, vectors, False
    if rank == 3:
        height, width, channels = input_shape
        image = keras.Input(shape=input_shape, dtype="float32", name="image")
        x = keras.layers.Rescaling(1.0 / 255, name=PREPROCESS)(image)
        rows = keras.layers.Reshape((height, width * channels), name="rows")(x)
        return image, rows, False
    raise UserError(
        f"{model} takes token ids (seq_len,), vectors (time, features) or images "
        f"(H, W, C), got input_shape {input_shape!r}"
    )


def token_embedding(tokens: Any, vocab_size: int, dim: int, name: str = "embedding") -> Any:
    """Embedded tokens with id 0 masked as padding."""
    return keras.layers.Embedding(vocab_size, dim, mask_zero=True, name=name)(tokens)
