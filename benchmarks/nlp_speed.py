"""NLP speed, each beside a baseline timed in the same process (issue 12's speed targets).

`python -m benchmarks.run_all --only nlp_speed`:

- export: the exported SMS classifier (`serving_default`, raw strings in) at batch 1
  (p50 latency) and batch 256 (texts/s), beside the in-process Keras model it was
  exported from (`predict_on_batch`, the faster Keras path here).
- tokenization: the in-graph tokenizers the models carry, on the SMS corpus repeated,
  beside Hugging Face `tokenizers` (Rust) with the same vocabulary: KerasHub's
  `WordPieceTokenizer` beside `tokenizers`' WordPiece, and the word `TextVectorization`
  beside `tokenizers`' WordLevel. Tokens/s of the Deepfield side over the Rust side.
- transformer training: tokens/s of a 2-layer encoder classifier built from the zoo's
  `TransformerEncoderBlock` beside the same classifier built from KerasHub's
  `TransformerEncoder`, same width, heads, feed-forward size, batch and sequence length.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from benchmarks.common import median, record, time_calls

NAME = "nlp_speed"


def _texts(quick: bool) -> np.ndarray:
    from domains.nlp.config import NLPConfig
    from domains.nlp.data import load

    texts = load(NLPConfig()).texts
    return np.concatenate([texts] * (1 if quick else 4))


def export_speed(quick: bool) -> dict:
    from pipelines import nlp

    calls = 30 if quick else 300
    with tempfile.TemporaryDirectory(prefix="deepfield-bench-nlp-") as tmp:
        run = nlp.train(config="default", overrides=["train.epochs=2"], run_dir=Path(tmp) / "r")
        exported = nlp.export(run, to=Path(tmp) / "models", name="sms")
        model = run.load_model()
        serve = tf.saved_model.load(str(exported.path)).signatures["serving_default"]
        texts = _texts(True)[:256]
        one, batch = tf.constant(texts[:1]), tf.constant(texts)
        keras_b1 = median(time_calls(lambda: model.predict_on_batch(one), calls, 3))
        served_b1 = median(time_calls(lambda: serve(text=one), calls, 3))
        repeats = max(5, calls // 10)
        keras_b256 = 256 / median(time_calls(lambda: model.predict_on_batch(batch), repeats, 2))
        served_b256 = 256 / median(time_calls(lambda: serve(text=batch), repeats, 2))
    return {
        "export_b1_p50_ms": served_b1 * 1e3,
        "keras_b1_p50_ms": keras_b1 * 1e3,
        "export_b256_texts_per_s": served_b256,
        "keras_b256_texts_per_s": keras_b256,
        "ratio_b1": keras_b1 / served_b1,
        "ratio_b256": served_b256 / keras_b256,
    }


def tokenizer_speed(quick: bool) -> dict:
    import keras
    import keras_hub
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    texts = _texts(quick)
    vocabulary = keras_hub.tokenizers.compute_word_piece_vocabulary(
        tf.data.Dataset.from_tensor_slices(texts[:5000]).batch(512), 8000, lowercase=True
    )
    hub = keras_hub.tokenizers.WordPieceTokenizer(vocabulary=vocabulary, lowercase=True)
    rust = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocabulary)}, unk_token="[UNK]"))
    rust.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=False)
    rust.pre_tokenizer = pre_tokenizers.BertPreTokenizer()

    words = keras.layers.TextVectorization(max_tokens=20000, output_mode="int")
    words.adapt(tf.data.Dataset.from_tensor_slices(texts).batch(1024))
    vocab = words.get_vocabulary()
    rust_words = Tokenizer(models.WordLevel({t: i for i, t in enumerate(vocab)}, "[UNK]"))
    rust_words.normalizer = normalizers.Lowercase()
    rust_words.pre_tokenizer = pre_tokenizers.Whitespace()

    batches = [tf.constant(texts[i : i + 1024]) for i in range(0, len(texts), 1024)]
    lists = [list(texts[i : i + 1024]) for i in range(0, len(texts), 1024)]
    hub_graph = tf.function(lambda x: hub(x))

    def graph_tokens(fn) -> int:
        return int(sum(int(tf.size(fn(b).flat_values)) for b in batches))

    def rust_tokens(tok) -> int:
        return sum(len(e.ids) for b in lists for e in tok.encode_batch(b))

    timed = {
        "wordpiece_keras_hub": (lambda: [hub_graph(b) for b in batches], graph_tokens(hub_graph)),
        "wordpiece_tokenizers": (lambda: [rust.encode_batch(b) for b in lists], rust_tokens(rust)),
        "words_text_vectorization": (
            lambda: [words(b) for b in batches],
            int(sum(int(tf.math.count_nonzero(words(b))) for b in batches)),
        ),
        "words_tokenizers": (
            lambda: [rust_words.encode_batch(b) for b in lists],
            rust_tokens(rust_words),
        ),
    }
    fields = {"tokenized_texts": len(texts)}
    for key, (fn, tokens) in timed.items():
        fields[f"{key}_tokens_per_s"] = tokens / median(time_calls(fn, 3 if quick else 5, 1))
    fields["ratio_wordpiece"] = (
        fields["wordpiece_keras_hub_tokens_per_s"] / fields["wordpiece_tokenizers_tokens_per_s"]
    )
    fields["ratio_words"] = (
        fields["words_text_vectorization_tokens_per_s"] / fields["words_tokenizers_tokens_per_s"]
    )
    return fields


def _encoder_classifier(block, vocab: int, length: int, hidden: int):
    import keras

    from shared.blocks import PositionEmbedding

    inputs = keras.Input((length,), dtype="int32")
    x = keras.layers.Embedding(vocab, hidden)(inputs)
    x = x + PositionEmbedding(length)(x)
    for i in range(2):
        x = block(i)(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))


def transformer_speed(quick: bool) -> dict:
    import keras
    import keras_hub

    from shared.blocks import TransformerEncoderBlock

    vocab, length, hidden, heads, ff, batch = 8000, 64, 128, 4, 512, 32
    steps = 10 if quick else 40
    rng = np.random.default_rng(0)
    x = rng.integers(1, vocab, (batch, length)).astype("int32")
    y = rng.integers(0, 2, (batch,))
    builders = {
        "zoo": lambda i: TransformerEncoderBlock(heads, ff, 0.1, name=f"zoo_{i}"),
        "keras_hub": lambda i: keras_hub.layers.TransformerEncoder(
            ff, heads, dropout=0.1, activation="gelu", name=f"hub_{i}"
        ),
    }
    fields = {}
    for key, block in builders.items():
        keras.utils.set_random_seed(0)
        model = _encoder_classifier(block, vocab, length, hidden)
        model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
        seconds = median(time_calls(lambda m=model: m.train_on_batch(x, y), steps, 3))
        fields[f"{key}_train_tokens_per_s"] = batch * length / seconds
        fields[f"{key}_parameters"] = model.count_params()
    fields["ratio_train"] = (
        fields["zoo_train_tokens_per_s"] / fields["keras_hub_train_tokens_per_s"]
    )
    return fields


def run(quick: bool = False) -> list[dict]:
    start = time.perf_counter()
    export = export_speed(quick)
    tokens = tokenizer_speed(quick)
    train = transformer_speed(quick)
    return [
        record(NAME + "_export", quick=quick, **export, ratio=export["ratio_b1"], target=1.0),
        record(
            NAME + "_tokenize", quick=quick, **tokens, ratio=tokens["ratio_wordpiece"], target=None
        ),
        record(
            NAME + "_transformer",
            quick=quick,
            **train,
            ratio=train["ratio_train"],
            target=1.0,
            seconds=time.perf_counter() - start,
        ),
    ]
