"""Translation's tokenizers, decoding and export: raw sentences in, translations out.

`PairTokenizer` holds one Keras `TextVectorization` per side (adapted on the training
split only; the target side gains start and end tokens). `Translator`, a `tf.Module`,
tokenizes, decodes (greedy or beam, KerasHub's samplers) and detokenizes in one graph;
predict, evaluate and the export all use it, so a served model translates exactly as
the run was scored.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from domains.nlp import pairs
from domains.nlp.config import NLPConfig, SequenceConfig
from domains.nlp.serving import text_serving_spec
from shared import model_io
from shared.errors import UserError
from shared.export import ServingSpec
from shared.input_contract import InputContract
from shared.run_dir import RunDir, write_json

DOMAIN, TASK = "nlp", "translate"
VOCABULARY_FILE = "vocabulary.json"
PAD, UNK, START, END = "", "[UNK]", "[start]", "[end]"
START_ID, END_ID = 2, 3  # target ids; 0 is padding, 1 the unknown token
BATCH = 256  # sentences per decoding call
# Beam hypotheses are ranked by log-probability / ((5 + length) / 6) ** alpha (Wu et al.,
# 2016, GNMT): raw sums favour short translations, which BLEU's brevity penalty punishes.
LENGTH_ALPHA = 0.6


# === Tokenization ===
def standardize_words(text: tf.Tensor) -> tf.Tensor:
    """Lower case (accents kept: UTF-8 aware), every Unicode space one space, and every
    punctuation mark or symbol a token of its own ("l'aide !" -> "l ' aide !").

    Brackets are punctuation too, so no input can spell the target's "[start]" token.
    """
    text = tf.strings.lower(text, encoding="utf-8")
    text = tf.strings.regex_replace(text, r"[\p{Z}\s]+", " ")
    return tf.strings.regex_replace(text, r"([\p{P}\p{S}])", r" \1 ")


def standardize_characters(text: tf.Tensor) -> tf.Tensor:
    """Characters as written, but every Unicode space (French's narrow no-break space
    before "!") one plain space, and none at the ends."""
    return tf.strings.strip(tf.strings.regex_replace(text, r"[\p{Z}\s]+", " "))


def vectorizer(unit: str, vocabulary: list[str] | None = None, max_tokens: int | None = None):
    """A ragged `TextVectorization` for one side (its own vocabulary, or one to adapt)."""
    words = unit == "word"
    return keras.layers.TextVectorization(
        max_tokens=max_tokens,
        standardize=standardize_words if words else standardize_characters,
        split="whitespace" if words else "character",
        ragged=True,
        vocabulary=vocabulary,
    )


class PairTokenizer:
    """The two vocabularies, in `vocabulary.json` of the run; ids 0 and 1 are padding and
    the unknown token on both sides, and the target side has "[start]" and "[end]" at 2, 3."""

    def __init__(self, unit: str, length: int, source: list[str], target: list[str]):
        self.unit, self.length = unit, length
        self.source_vocabulary, self.target_vocabulary = source, target
        self.source = vectorizer(unit, source)
        self.target = vectorizer(unit, target)

    @classmethod
    def adapt(cls, sequence: SequenceConfig, sources: np.ndarray, targets: np.ndarray):
        """Vocabularies of the training split's most frequent tokens."""

        def learn(texts: np.ndarray, size: int) -> list[str]:
            layer = vectorizer(sequence.unit, max_tokens=size)
            layer.adapt(tf.data.Dataset.from_tensor_slices(texts).batch(1024))
            return [str(token) for token in layer.get_vocabulary()]

        size = sequence.vocabulary_size
        source = learn(sources, size)
        target = [PAD, UNK, START, END] + learn(targets, size - 2)[2:]
        return cls(sequence.unit, sequence.length, source, target)

    @classmethod
    def read(cls, run: RunDir) -> PairTokenizer:
        import json

        path = run.path / VOCABULARY_FILE
        if not path.is_file():
            raise UserError(f"{run.path} has no {VOCABULARY_FILE}; it is not a translate run")
        saved = json.loads(path.read_text())
        return cls(saved["unit"], saved["length"], saved["source"], saved["target"])

    def write(self, run: RunDir) -> None:
        write_json(
            run.path / VOCABULARY_FILE,
            {
                "unit": self.unit,
                "length": self.length,
                "source": self.source_vocabulary,
                "target": self.target_vocabulary,
            },
        )

    def source_ids(self, texts: tf.Tensor) -> tf.Tensor:
        """(batch, length) source ids, padded with 0 and cut after `length` tokens."""
        return self.source(texts).to_tensor(default_value=0, shape=[None, self.length])

    def target_sequences(self, texts: np.ndarray) -> np.ndarray:
        """(n, length + 1) ids "[start] tokens [end]", padded; a target longer than
        `length` tokens is cut and keeps no end token (it did not end there)."""
        out = np.zeros((len(texts), self.length + 1), np.int32)
        for row, ids in enumerate(self.target(tf.constant(texts)).to_list()):
            sequence = [START_ID, *ids, END_ID][: self.length + 1]
            out[row, : len(sequence)] = sequence
        return out

    def source_lengths(self, texts: list[str]) -> list[int]:
        return [len(ids) for ids in self.source(tf.constant(texts)).to_list()]


def teacher_forcing(tokenizer: PairTokenizer, sources: np.ndarray, targets: np.ndarray):
    """({"source_ids", "target_ids"}, next-token labels): the target shifted right is the
    decoder's input, the target shifted left its label (0, padding, is ignored)."""
    sequences = tokenizer.target_sequences(targets)
    source_ids = tokenizer.source_ids(tf.constant(sources)).numpy().astype(np.int32)
    return {"source_ids": source_ids, "target_ids": sequences[:, :-1]}, sequences[:, 1:]


# === Decoding ===
class Translator(tf.Module):
    """Raw strings in, translations out: tokenize, decode (greedy or beam), detokenize.

    Decoding calls the model once per generated token on the whole (padded) target so
    far, which is exact for both zoo models (causal self-attention or a recurrent
    decoder: padding after the current position changes nothing before it), and applies
    the output layer only at the current position. KerasHub's `GreedySampler` and
    `BeamSampler` drive the loop; the source ids ride in their `cache` (the beam sampler
    repeats and reorders it with the beams). Two things the samplers leave to `next`:
    a hypothesis that has produced "[end]" must only extend with padding at no cost
    (else finished beams keep paying for tokens after their end), and padding or
    "[start]" must never be chosen mid-sentence.
    """

    def __init__(self, model: keras.Model, tokenizer: PairTokenizer, strategy: str, beams: int):
        super().__init__(name="nlp_translate")
        self.model = model
        self.tokenizer = tokenizer
        self.source = tokenizer.source  # tracked, so the export keeps the lookup tables
        self.target = tokenizer.target
        self.states = keras.Model(model.inputs, model.get_layer("next_token").input)
        self.head = model.get_layer("next_token")
        self.strategy, self.beams = strategy, int(beams)
        self.length = tokenizer.length
        self.vocabulary = tf.constant(tokenizer.target_vocabulary)
        self.separator = " " if tokenizer.unit == "word" else ""
        self.serve = tf.function(
            self._serve, input_signature=[tf.TensorSpec([None], tf.string, name="text")]
        )

    def _serve(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"translation": self.detokenize(self.decode(self.tokenizer.source_ids(text)))}

    def translate(self, texts: list[str]) -> list[str]:
        out = []
        for start in range(0, len(texts), BATCH):
            batch = tf.constant(list(texts[start : start + BATCH]), tf.string)
            out += [t.decode() for t in self.serve(batch)["translation"].numpy()]
        return out

    def _next(self, prompt: tf.Tensor, cache: tf.Tensor, index: tf.Tensor):
        """The sampler's step: log-probabilities of the token at `index` given the source
        (`cache`) and the target so far (`prompt`, "[start]" at 0)."""
        states = self.states([cache, prompt[:, :-1]], training=False)
        probabilities = self.head(tf.gather(states, index - 1, axis=1))
        vocab = tf.shape(probabilities)[-1]
        scores = tf.math.log(tf.maximum(probabilities, 1e-30))
        never = tf.one_hot(0, vocab) + tf.one_hot(START_ID, vocab)  # padding, "[start]"
        scores = tf.where(never[None] > 0, -1e9, scores)
        before = tf.range(tf.shape(prompt)[1])[None] < index
        ended = tf.reduce_any((prompt == END_ID) & before, axis=1)
        only_padding = tf.where(tf.one_hot(0, vocab) > 0, 0.0, -1e9)[None]
        return tf.where(ended[:, None], only_padding, scores), None, cache

    def decode(self, source_ids: tf.Tensor) -> tf.Tensor:
        """(batch, length + 1) target ids: "[start]", the translation, "[end]", padding."""
        import keras_hub

        batch = tf.shape(source_ids)[0]
        prompt = tf.concat(
            [tf.fill([batch, 1], START_ID), tf.zeros([batch, self.length], tf.int32)], axis=1
        )
        args = {"cache": source_ids, "index": 1, "stop_token_ids": [END_ID]}
        if self.strategy == "greedy":
            return keras_hub.samplers.GreedySampler()(self._next, prompt, **args)
        sampler = keras_hub.samplers.BeamSampler(num_beams=self.beams, return_all_beams=True)
        beams, log_probs = sampler(self._next, prompt, **args)
        lengths = tf.reduce_sum(tf.cast(beams[:, :, 1:] > 0, tf.float32), axis=-1)
        score = log_probs / ((5.0 + lengths) / 6.0) ** LENGTH_ALPHA
        return tf.gather(beams, tf.argmax(score, axis=1, output_type=tf.int32), batch_dims=1)

    def detokenize(self, ids: tf.Tensor) -> tf.Tensor:
        """The tokens before "[end]" joined as text (words: spaces, apostrophes and hyphens
        tightened, full stops and commas attached, the first letter capitalised)."""
        ids = ids[:, 1:]
        keep = (tf.cumsum(tf.cast(ids == END_ID, tf.int32), axis=1) == 0) & (ids > 0)
        tokens = tf.ragged.boolean_mask(tf.gather(self.vocabulary, ids), keep)
        text = tf.strings.reduce_join(tokens, axis=1, separator=self.separator)
        if self.separator:
            text = tf.strings.regex_replace(text, r" ?(['’\-]) ?", r"\1")
            text = tf.strings.regex_replace(text, r" ([.,])", r"\1")
            first = tf.strings.upper(tf.strings.substr(text, 0, 1, unit="UTF8_CHAR"), "utf-8")
            length = tf.strings.length(text, unit="UTF8_CHAR")
            rest = tf.strings.substr(text, tf.minimum(length, 1), length, unit="UTF8_CHAR")
            text = first + rest
        return text


def load_translator(run: RunDir, config: NLPConfig, strategy: str | None = None) -> Translator:
    """The run's model and vocabularies with the configured decoding."""
    generate = config.generate
    return Translator(
        model_io.load_model(run.model_path),
        PairTokenizer.read(run),
        strategy or generate.strategy,
        generate.beam_width,
    )


# === Export ===
WARMUP_SINGLE = 8  # one-sentence requests, what a client mostly sends
WARMUP_BATCH = 8  # plus one batch


def serving_spec(run: RunDir, config: NLPConfig) -> ServingSpec:
    """`serving_default`: a batch of raw strings `text` -> `translation` strings, with
    tokenization, truncation and decoding inside the graph (core TensorFlow ops: the
    lookup tables, string ops and a while loop), warmed up with real test sentences."""
    translator = load_translator(run, config)
    data = pairs.load(config)
    contract = InputContract.read(run)
    return text_serving_spec(
        translator,
        data.references(data.splits["test"])[0],
        {
            "domain": DOMAIN,
            "task": TASK,
            "sequence": contract.details.get("sequence"),
            "decoding": translator.strategy,
            "beam_width": translator.beams if translator.strategy == "beam" else 1,
            "custom_ops": [],  # core TensorFlow ops only: any model server runs it
            "run": str(Path(run.path).resolve()),
            "data": data.spec,
        },
        WARMUP_SINGLE,
        WARMUP_BATCH,
    )
