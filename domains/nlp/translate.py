"""Translation: train, evaluate, predict, explain and export a sequence-to-sequence model.

Each side has its own Keras `TextVectorization`, adapted on the training split only; the
target side gains start and end tokens. The zoo model (`transformer_seq2seq`, or the
`rnn_seq2seq` baseline) learns the next target token with teacher forcing, padding
masked out of the loss. Decoding (greedy or beam, KerasHub's samplers) and both
tokenizers live in one `tf.Module`, `Translator`, which predict, evaluate and the export
all use, so a served model translates exactly as the run was scored. BLEU and chrF
come from sacreBLEU, against every reference of each source sentence.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from domains.nlp import pairs
from domains.nlp.config import NLPConfig, SequenceConfig
from domains.nlp.serving import text_serving_spec
from shared import model_io, plots
from shared.distribute import select_strategy
from shared.errors import UserError
from shared.export import ServingSpec
from shared.input_contract import InputContract, InputSpec
from shared.model_card import training_rows, write_model_card
from shared.run_dir import RunDir, write_json
from shared.training.trainer import fit, history_rows, make_optimizer, runtime_scope
from shared.zoo import build_model

LOG = logging.getLogger("deepfield.nlp")
DOMAIN, TASK = "nlp", "translate"
VOCABULARY_FILE = "vocabulary.json"
SIGNATURE_FILE = "metrics_signature.json"
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


# === Model ===
def build_seq2seq(config: NLPConfig, tokenizer: PairTokenizer) -> keras.Model:
    """The zoo model for these vocabularies and this length."""
    return build_model(
        config.model.name,
        input_shape=(tokenizer.length,),
        source_vocab=len(tokenizer.source_vocabulary),
        target_vocab=len(tokenizer.target_vocabulary),
        target_length=tokenizer.length,
        **config.model.options(),
    )


@keras.saving.register_keras_serializable(package="deepfield")
class TokenAccuracy(keras.metrics.Metric):
    """Next-token accuracy over real tokens: padding (label 0) counts neither way, and
    the sums run over the epoch (not a mean of batch means)."""

    def __init__(self, name: str = "token_accuracy", **kwargs: Any):
        super().__init__(name=name, **kwargs)
        self.hits = self.add_variable((), "zeros", name="hits")
        self.count = self.add_variable((), "zeros", name="count")

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_true = ops.cast(y_true, "int32")
        real = ops.cast(ops.not_equal(y_true, 0), "float32")
        predicted = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        self.hits.assign_add(ops.sum(ops.cast(ops.equal(predicted, y_true), "float32") * real))
        self.count.assign_add(ops.sum(real))

    def result(self) -> Any:
        return self.hits / ops.maximum(self.count, 1.0)


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


# === Training ===
def train(config: NLPConfig, run: RunDir) -> dict[str, Any]:
    with runtime_scope(config.train, config.runtime):
        return _train(config, run)


def _train(config: NLPConfig, run: RunDir) -> dict[str, Any]:
    strategy = select_strategy(config.runtime)
    data = pairs.load(config)
    record_data(run, config, data)
    train_rows = data.splits["train"]
    resumed = (run.path / VOCABULARY_FILE).is_file()  # keep the vocabularies a resume saw
    tokenizer = (
        PairTokenizer.read(run)
        if resumed
        else PairTokenizer.adapt(
            config.sequence, data.sources[train_rows], data.targets[train_rows]
        )
    )
    tokenizer.write(run)
    batch, seed = config.train.batch_size, config.runtime.seed

    def dataset(split: str, shuffle: bool) -> tf.data.Dataset:
        rows = data.splits[split]
        ds = tf.data.Dataset.from_tensor_slices(
            teacher_forcing(tokenizer, data.sources[rows], data.targets[rows])
        )
        ds = ds.shuffle(len(rows), seed=seed) if shuffle else ds
        return ds.batch(batch).prefetch(2)

    steps = config.train.steps_per_epoch or max(1, math.ceil(len(train_rows) / batch))
    with strategy.scope():
        model = build_seq2seq(config, tokenizer)
        model.compile(
            optimizer=make_optimizer(config.train, steps),
            loss=keras.losses.SparseCategoricalCrossentropy(ignore_class=0),
            metrics=[TokenAccuracy()],
        )
    fit(model, dataset("train", True), dataset("validation", False), run=run, train=config.train)
    model_io.save_model(model, run.model_path)
    model = model_io.load_model(run.model_path)  # evaluate what users will load
    translator = Translator(model, tokenizer, config.generate.strategy, config.generate.beam_width)
    metrics = evaluate_model(translator, data, "test", run)
    plots.training_curves(history_rows(run.history_path), run.plots / "training_curves.png")
    write_card(config, run, data, translator, metrics)
    return metrics


def record_data(run: RunDir, config: NLPConfig, data: pairs.PairData) -> None:
    """data_splits.json (pairs and distinct source sentences per split, how they were
    grouped) and the input contract (one raw string)."""
    report = data.report
    run.write_splits(
        data.spec,
        {
            name: {"size": len(rows), "source_sentences": len(np.unique(data.groups[rows]))}
            for name, rows in data.splits.items()
        },
        **report,
    )
    InputContract(
        DOMAIN,
        TASK,
        [
            InputSpec(
                "text",
                "string",
                [],
                f"a source-language sentence; tokenized inside the model, cut after "
                f"{config.sequence.length} {config.sequence.unit} tokens",
            )
        ],
        details={
            "sequence": config.sequence.model_dump(),
            "generate": {
                "strategy": config.generate.strategy,
                "beam_width": config.generate.beam_width,
            },
            "vocabulary": VOCABULARY_FILE,
            "source": data.spec,
            "text_column": report["text_column"],
            "translation_column": report["translation_column"],
        },
    ).write(run)


def write_card(
    config: NLPConfig, run: RunDir, data: pairs.PairData, translator: Translator, metrics
) -> None:
    report, tokenizer = data.report, translator.tokenizer
    sides = report["languages"] or f"`{report['text_column']}` -> `{report['translation_column']}`"
    decoding = config.generate.strategy + (
        f" (beam width {config.generate.beam_width})" if config.generate.strategy == "beam" else ""
    )
    write_model_card(
        run,
        title=f"{config.model.name} translator",
        summary=f"A {config.model.name} translating {sides} ({tokenizer.unit} tokens), "
        f"trained with Deepfield "
        f"on `{data.spec}`; BLEU and chrF (sacreBLEU, every reference of a source "
        f"sentence) on the held-out source sentences.",
        data={
            "source": data.spec,
            "pairs": report["pairs"],
            "distinct source sentences": report["source_sentences"],
            "source sentences with several translations": report["repeated_sources"],
            "grouped by": report["grouped_by"],
            **{f"{name} pairs": len(rows) for name, rows in data.splits.items()},
        },
        model={
            "architecture": config.model.name,
            "tokens": f"{tokenizer.unit}s, at most {tokenizer.length} per side",
            "source vocabulary": len(tokenizer.source_vocabulary),
            "target vocabulary": len(tokenizer.target_vocabulary),
            "decoding": decoding,
            "parameters": f"{translator.model.count_params():,}",
        },
        training=training_rows(config.train, config.runtime),
        metrics=metrics,
        intended_use="Translating short everyday sentences like those of the training "
        "source; the served model takes raw strings and returns translations.",
        limitations=[
            f"Inputs are cut after {tokenizer.length} {tokenizer.unit} tokens; longer "
            "sentences are translated from their beginning only.",
            "Words outside the training vocabulary become an unknown token and cannot be "
            "copied (names the model never saw are lost).",
            "Word-level output is lower-cased (first letter capitalised); BLEU and chrF "
            "are then computed case-insensitively (see metrics_signature.json).",
        ],
    )


# === Evaluation ===
def translation_scores(
    hypotheses: list[str], references: list[list[str]], lowercase: bool
) -> tuple[dict[str, float], dict[str, str]]:
    """Corpus BLEU and chrF (sacreBLEU) against every reference of each hypothesis, and
    their signatures. Sources have different numbers of references: sacreBLEU takes one
    stream per reference rank, padded with None where a source has fewer."""
    from sacrebleu.metrics import BLEU, CHRF

    ranks = max(len(refs) for refs in references)
    streams = [[refs[i] if i < len(refs) else None for refs in references] for i in range(ranks)]
    bleu, chrf = BLEU(lowercase=lowercase), CHRF(lowercase=lowercase)
    scores = {
        "bleu": float(bleu.corpus_score(hypotheses, streams).score),
        "chrf": float(chrf.corpus_score(hypotheses, streams).score),
    }
    return scores, {"bleu": str(bleu.get_signature()), "chrf": str(chrf.get_signature())}


def teacher_forced_scores(
    model: keras.Model, tokenizer: PairTokenizer, sources: np.ndarray, targets: np.ndarray
) -> dict[str, float]:
    """Mean next-token loss, its perplexity and token accuracy over every real target
    token of the pairs (exact sums, not averages of batch averages)."""
    inputs, labels = teacher_forcing(tokenizer, sources, targets)
    nll, hits, count = 0.0, 0, 0
    for start in range(0, len(labels), BATCH):
        part = slice(start, start + BATCH)
        probabilities = model({k: v[part] for k, v in inputs.items()}, training=False).numpy()
        gold, real = labels[part], labels[part] > 0
        picked = np.take_along_axis(probabilities, gold[..., None], axis=-1)[..., 0]
        nll -= float(np.log(np.maximum(picked[real], 1e-30)).sum())
        hits += int((probabilities.argmax(-1) == gold)[real].sum())
        count += int(real.sum())
    loss = nll / max(count, 1)
    return {"loss": loss, "perplexity": math.exp(loss), "token_accuracy": hits / max(count, 1)}


def evaluate_model(
    translator: Translator,
    data: pairs.PairData,
    split: str,
    run: RunDir,
    out: Path | None = None,
) -> dict[str, Any]:
    """BLEU and chrF of the split's distinct source sentences, the teacher-forced loss of
    its pairs; metrics.json (or `out`) and the sacreBLEU signatures beside it."""
    rows = data.splits[split]
    if not len(rows):
        raise UserError(f"split {split!r} of {data.spec} is empty")
    sources, references = data.references(rows)
    hypotheses = translator.translate(sources)
    lowercase = translator.tokenizer.unit == "word"
    scores, signatures = translation_scores(hypotheses, references, lowercase)
    metrics = {
        **scores,
        **teacher_forced_scores(
            translator.model, translator.tokenizer, data.sources[rows], data.targets[rows]
        ),
        "num_references": len(rows),
        "split": split,
        "num_examples": len(sources),
        "task": TASK,
        "domain": DOMAIN,
    }
    target = run.write_metrics(metrics, path=out)
    signature_path = (
        target.with_name(f"{target.stem}_signature.json") if out else run.path / SIGNATURE_FILE
    )
    write_json(
        signature_path,
        {
            **signatures,
            "decoding": translator.strategy,
            "beam_width": translator.beams if translator.strategy == "beam" else 1,
            "split": split,
            "hypotheses": len(hypotheses),
            "references": len(rows),
        },
    )
    LOG.info("%s: BLEU %.2f, chrF %.2f (%s)", split, scores["bleu"], scores["chrf"], signatures)
    return metrics


def evaluate(
    run: RunDir, config: NLPConfig, *, source: str | None, split: str, out: Path | None
) -> dict[str, Any]:
    """A finished run on a split of its data, or on every pair of another source."""
    if source:
        config = config.model_copy(
            update={"data": config.data.model_copy(update={"source": source})}
        )
    data = pairs.load(config, split=not source)
    if source:
        split = pairs.WHOLE
    if split not in data.splits:
        raise UserError(f"no split {split!r}; splits: {', '.join(data.splits)}")
    return evaluate_model(load_translator(run, config), data, split, run, out)


# === Prediction ===
def predict(run: RunDir, config: NLPConfig, inputs: list[str]) -> list[dict[str, Any]]:
    """One result per source text: the input and its translation (with a note where the
    input was empty or cut)."""
    translator = load_translator(run, config)
    translations = translator.translate(list(inputs))
    lengths = translator.tokenizer.source_lengths(list(inputs))
    results = []
    for text, translation, length in zip(inputs, translations, lengths, strict=True):
        result = {"input": text, "translation": translation}
        if not text.strip():
            result["note"] = "empty text: nothing to translate"
        elif length > translator.length:
            result["note"] = f"{length} tokens: only the first {translator.length} were translated"
        results.append(result)
    return results


# === Explanation ===
EXPLAIN_EXAMPLES = 4  # test sentences shown when none are given


def explain(run: RunDir, config: NLPConfig, inputs: list[str], out: Path | None) -> Path:
    """Cross-attention maps of the transformer's last decoder layer (averaged over heads):
    for each generated token, how much it looked at each source token."""
    translator = load_translator(run, config, strategy="greedy")
    decoders = decoder_blocks(translator.model)
    if not decoders:
        raise UserError(
            f"{config.model.name} has no attention to show: its decoder reads the source "
            "only through the encoder's final state; cross-attention maps need "
            "model.name transformer_seq2seq"
        )
    if not inputs:
        data = pairs.load(config)
        inputs = data.references(data.splits["test"])[0][:EXPLAIN_EXAMPLES]
    maps = [attention_map(translator, text) for text in inputs]
    target = Path(out) if out else run.plots / "cross_attention.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    attention_chart(maps, target)
    LOG.info("cross-attention maps: %s", target)
    return target


def decoder_blocks(model: keras.Model) -> list[keras.Layer]:
    """The transformer's decoder layers, in order (none for a recurrent model)."""
    found = {layer.name: layer for layer in model.layers}
    return [found[f"decoder_layer_{i}"] for i in range(len(found)) if f"decoder_layer_{i}" in found]


def cross_attention(model: keras.Model, source_ids: tf.Tensor, target_ids: tf.Tensor) -> np.ndarray:
    """(batch, target, source) cross-attention of the last decoder layer, mean over heads.

    `TransformerDecoderBlock` returns no attention scores, so the model is re-run layer
    by layer (the same layers and masks as its functional graph) and the last block's
    self-attention branch is repeated as its `call` does, to ask its cross-attention
    layer for the scores.
    """
    source_mask, target_mask = source_ids != 0, target_ids != 0
    x = model.get_layer("source_positions")(model.get_layer("source_embedding")(source_ids))
    layers = {layer.name: layer for layer in model.layers}
    for i in range(len(layers)):
        if f"encoder_layer_{i}" in layers:
            x = layers[f"encoder_layer_{i}"](x, mask=source_mask)
    context = model.get_layer("encoder_norm")(x)
    y = model.get_layer("target_positions")(model.get_layer("target_embedding")(target_ids))
    *before, last = decoder_blocks(model)
    for block in before:
        y = block(y, context=context, mask=target_mask, context_mask=source_mask)
    y = last._branch(
        y, last.self_attention_norm, lambda h: last.self_attention(h, mask=target_mask), False
    )
    query = last.cross_attention_norm(y) if last.norm == "pre" else y
    _, scores = last.cross(
        query, context, attention_mask=source_mask[:, None, :], return_attention_scores=True
    )
    return ops.convert_to_numpy(ops.mean(scores, axis=1))


def attention_map(translator: Translator, text: str) -> dict[str, Any]:
    """One sentence's translation, its tokens and the (generated x source) weights."""
    tokenizer = translator.tokenizer
    source_ids = tokenizer.source_ids(tf.constant([text]))
    ids = translator.decode(source_ids)
    generated = ids.numpy()[0, 1:]
    ended = np.flatnonzero(generated == END_ID)
    steps = int(ended[0]) + 1 if len(ended) else int((generated > 0).sum())
    weights = cross_attention(translator.model, source_ids, ids[:, :-1])[0]
    source_tokens = [tokenizer.source_vocabulary[i] for i in source_ids.numpy()[0] if i > 0]
    target_tokens = [tokenizer.target_vocabulary[i] for i in generated[:steps]]
    return {
        "text": text,
        "translation": translator.detokenize(ids).numpy()[0].decode(),
        "source_tokens": source_tokens,
        "target_tokens": target_tokens,
        "weights": weights[:steps, : len(source_tokens)],
    }


def attention_chart(maps: list[dict[str, Any]], path: Path) -> Path:
    """One heatmap per sentence: generated tokens (rows) by source tokens (columns)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(maps), figsize=(4.2 * len(maps), 4.2), squeeze=False)
    for ax, item in zip(axes[0], maps, strict=True):
        weights = item["weights"] if item["weights"].size else np.zeros((1, 1))
        ax.imshow(weights, cmap="viridis", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(item["source_tokens"])), item["source_tokens"], rotation=60)
        ax.set_yticks(range(len(item["target_tokens"])), item["target_tokens"])
        ax.tick_params(labelsize=7)
        title = f"{item['text'][:40]}\n→ {item['translation'][:40]}"
        ax.set_title(title, fontsize=8, loc="left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


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
