"""`ngram_classifier`: a linear (or shallow) classifier over a bag of word n-grams.

The fastText-style baseline of text classification (Joulin et al., 2017): the text's
n-gram counts or TF-IDF weights, made by a Keras `TextVectorization` layer in front of
this model, then dropout and a softmax layer (with optional hidden ReLU layers). On
short texts it is hard to beat and trains in seconds.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from shared.zoo.classifier import check_int_list, check_rank, check_rate
from shared.zoo.registry import register_model
from shared.zoo.tabular import dense_stack

VOCABULARY = 20_000  # the nlp domain's default tokenizer.max_tokens


@register_model(
    "ngram_classifier",
    kind="text_classifier",
    modality="tokens",
    preset_input=(VOCABULARY,),
    preset_classes=2,
)
def ngram_classifier(
    input_shape: tuple[int, ...],
    num_classes: int | None,
    *,
    hidden: Sequence[int] = (),
    dropout: float = 0.5,
) -> keras.Model:
    """(vocabulary,) n-gram weights -> dropout -> [ReLU layers] -> class probabilities."""
    # === Config ===
    check_rank("ngram_classifier", input_shape, (1,), "(vocabulary,)")
    hidden = check_int_list("hidden", hidden, allow_empty=True)
    dropout = check_rate("dropout", dropout)

    # === Functional Model ===
    inputs = keras.Input(tuple(input_shape), name="ngrams")
    x = keras.layers.Dropout(dropout, name="dropout")(inputs) if dropout else inputs
    x = dense_stack(x, hidden, dropout, 0.0, "ngram")
    outputs = keras.layers.Dense(num_classes or 2, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="ngram_classifier")
