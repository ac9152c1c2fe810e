"""Translation: train, evaluate, predict, explain and export a sequence-to-sequence model.

Each side has its own Keras `TextVectorization`, adapted on the training split only; the
target side gains start and end tokens. The zoo model (`transformer_seq2seq`, or the
`rnn_seq2seq` baseline) learns the next target token with teacher forcing, padding
masked out of the loss. Decoding (greedy or beam, KerasHub's samplers) and both
tokenizers live in one `tf.Module`, `Translator` (`domains.nlp.translate_serving`, with
the export), which predict, evaluate and the export all use, so a served model
translates exactly as the run was scored. BLEU and chrF
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
from domains.nlp.config import NLPConfig
from domains.nlp.translate_serving import (
    BATCH,
    END_ID,
    VOCABULARY_FILE,
    PairTokenizer,
    Translator,
    load_translator,
    teacher_forcing,
)
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
SIGNATURE_FILE = "metrics_signature.json"


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
def serving_spec(run: RunDir, config: NLPConfig) -> ServingSpec:
    """The SavedModel of a finished translator (see `domains.nlp.translate_serving`)."""
    from domains.nlp import translate_serving

    return translate_serving.serving_spec(run, config)
