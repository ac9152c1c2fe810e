"""Language models: a GPT decoder over characters or words, trained on a plain-text corpus.

The vocabulary comes from the training span only (`domains.nlp.corpus` cuts the corpus
into contiguous spans). Text becomes token ids with core TensorFlow string ops and a
Keras `StringLookup`, and generation is an in-graph loop (`domains.nlp.lm_serving`), so
predict, the export and the served model read and write text the same way. The held-out
perplexity is reported beside an interpolated Kneser-Ney n-gram model fitted on the same
training tokens and scored on the same held-out tokens (`domains.nlp.ngram`).
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from domains.nlp import corpus
from domains.nlp.attention_plot import attention_grid
from domains.nlp.config import GenerateConfig, NLPConfig
from domains.nlp.lm_tokens import (
    UNKNOWN,
    Tokenizer,
    build_vocabulary,
    tokenizer_from_contract,
)
from domains.nlp.ngram import KneserNeyLM
from shared import model_io, plots
from shared.distribute import select_strategy
from shared.errors import UserError
from shared.input_contract import InputContract, InputSpec
from shared.model_card import training_rows, write_model_card
from shared.run_dir import RunDir
from shared.training.trainer import fit, history_rows, make_optimizer, runtime_scope
from shared.zoo import build_model
from shared.zoo.registry import model_options, model_spec

LOG = logging.getLogger("deepfield.nlp")
DOMAIN, TASK = "nlp", "lm"
NGRAM_ORDER = 5
EVAL_BATCH = 64


# === Model ===
def build_language_model(config: NLPConfig, vocabulary_size: int) -> keras.Model:
    """The zoo's decoder (`model.name`, a language model) over `sequence.length` tokens."""
    name = config.model.name
    if model_spec(name).kind != "language_model":
        raise UserError(
            f"--task lm trains a zoo language model (gpt, gpt_tiny, ...); model.name is {name!r}"
        )
    options = {**config.model.options(), "vocab_size": vocabulary_size}
    if "max_positions" in model_options(name):
        options.setdefault("max_positions", config.sequence.length)
    return build_model(name, input_shape=(config.sequence.length,), **options)


# === Training ===
def train(config: NLPConfig, run: RunDir) -> dict[str, Any]:
    with runtime_scope(config.train, config.runtime):
        return _train(config, run)


def tokenize_corpus(
    config: NLPConfig, data: corpus.CorpusData
) -> tuple[Tokenizer, dict[str, np.ndarray], list[int]]:
    """The tokenizer (vocabulary of the training span), each span's ids, token counts."""
    unit = config.sequence.unit
    vocabulary, counts = build_vocabulary(
        data.split_text("train"), unit, config.sequence.vocabulary_size
    )
    tokenizer = Tokenizer(unit, vocabulary)
    ids = {name: tokenizer.encode(data.split_text(name)) for name in corpus.SPLITS}
    if len(ids["train"]) <= config.sequence.length:
        raise UserError(
            f"the training text has {len(ids['train'])} {unit} tokens; sequence.length "
            f"{config.sequence.length} needs more: lower it or give more text"
        )
    return tokenizer, ids, counts


def training_windows(ids: np.ndarray, length: int, batch: int, seed: int) -> tf.data.Dataset:
    """Endless batches of (tokens, next tokens) windows at random offsets of the training
    span (nanoGPT's sampling): every position is a window start, so the model sees each
    token at every place in its context."""
    table = tf.constant(ids, tf.int32)
    starts = len(ids) - length  # windows of length + 1 tokens fit at 0 .. starts - 1

    def window(r: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        s = tf.cast(tf.math.floormod(r, starts), tf.int32)
        return table[s : s + length], table[s + 1 : s + length + 1]

    ds = tf.data.Dataset.random(seed=seed).map(window, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch, drop_remainder=True).prefetch(2)


def validation_windows(ids: np.ndarray, length: int, batch: int) -> tf.data.Dataset | None:
    """Non-overlapping (tokens, next tokens) windows; None if the span is too short."""
    count = (len(ids) - 1) // length
    if count == 0:
        LOG.warning("the validation text is shorter than sequence.length: no val_loss")
        return None
    x = ids[: count * length].reshape(count, length)
    y = ids[1 : count * length + 1].reshape(count, length)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)


class EpochFacts(keras.callbacks.Callback):
    """Adds perplexity (exp of the loss) and training tokens per second to each epoch's
    logs, so history.csv has them (it runs before the trainer's CSV logger)."""

    def __init__(self, tokens_per_step: int):
        super().__init__()
        self.tokens_per_step = tokens_per_step

    def on_epoch_begin(self, epoch, logs=None):
        self.steps, self.start, self.last = 0, time.perf_counter(), time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.steps, self.last = self.steps + 1, time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        for key in ("loss", "val_loss"):
            if key in logs:
                logs[key.replace("loss", "perplexity")] = math.exp(min(float(logs[key]), 50.0))
        logs["tokens_per_second"] = (
            self.steps * self.tokens_per_step / max(self.last - self.start, 1e-9)
        )


def _train(config: NLPConfig, run: RunDir) -> dict[str, Any]:
    strategy = select_strategy(config.runtime)
    data = corpus.load(config)
    tokenizer, ids, counts = tokenize_corpus(config, data)
    record_data(run, config, data, tokenizer, ids, counts)
    length, batch = config.sequence.length, config.train.batch_size
    steps = config.train.steps_per_epoch or max(1, len(ids["train"]) // (batch * length))
    with strategy.scope():
        model = build_language_model(config, tokenizer.size)
        model.compile(
            optimizer=make_optimizer(config.train, steps),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
    fit(
        model,
        training_windows(ids["train"], length, batch, config.runtime.seed),
        validation_windows(ids["validation"], length, batch),
        run=run,
        train=config.train,
        steps_per_epoch=steps,
        extra_callbacks=[EpochFacts(batch * length)],
    )
    model_io.save_model(model, run.model_path)
    model = model_io.load_model(run.model_path)  # evaluate what users will load
    metrics = evaluate_model(model, tokenizer, ids["test"], ids["train"], "test", run)
    history = history_rows(run.history_path)
    curves = [{k: v for k, v in row.items() if k != "tokens_per_second"} for row in history]
    plots.training_curves(curves, run.plots / "training_curves.png")
    prompts = held_out_prompts(data, tokenizer.unit, length)
    attention_plot(model, tokenizer, prompts, None, run)
    speed = [row["tokens_per_second"] for row in history if "tokens_per_second" in row]
    write_card(config, run, data, tokenizer, ids, model, metrics, speed)
    return metrics


def record_data(
    run: RunDir,
    config: NLPConfig,
    data: corpus.CorpusData,
    tokenizer: Tokenizer,
    ids: dict[str, np.ndarray],
    counts: list[int],
) -> None:
    """data_splits.json (character spans, tokens) and the input contract: a prompt
    string in, with the vocabulary and its training counts (the empty prompt's prior)."""
    report = data.report
    run.write_splits(
        data.spec,
        {
            name: {"size": len(ids[name]), "characters": end - start, "span": [start, end]}
            for name, (start, end) in data.splits.items()
        },
        seed=config.runtime.seed,
        size_counts=f"{tokenizer.unit} tokens",
        **{
            k: report[k]
            for k in ("method", "cut_at", "characters", "lines", "encoding", "undecodable_bytes")
            if k in report
        },
    )
    InputContract(
        DOMAIN,
        TASK,
        [
            InputSpec(
                "text",
                "string",
                [],
                f"a prompt to continue; its last {config.sequence.length} {tokenizer.unit} "
                "tokens are the context, an empty prompt starts from nothing",
            )
        ],
        details={
            "unit": tokenizer.unit,
            "length": config.sequence.length,
            "vocabulary": [str(token) for token in tokenizer.vocabulary],
            "token_counts": counts,
            "source": data.spec,
        },
    ).write(run)


def write_card(config, run, data, tokenizer, ids, model, metrics, speed) -> None:
    unit = tokenizer.unit
    write_model_card(
        run,
        title=f"{config.model.name} {unit}-level language model",
        summary=f"A {config.model.name} decoder predicting the next {unit} from the previous "
        f"{config.sequence.length}, trained with Deepfield on `{data.spec}`. Perplexity is "
        f"per {unit} token, beside an interpolated Kneser-Ney {NGRAM_ORDER}-gram model fitted "
        "on the same training tokens (`ngram_perplexity`).",
        data={
            "source": data.spec,
            "token level": unit,
            "split": f"{data.report['method']} (cut at {data.report['cut_at']} boundaries)",
            "characters": data.report["characters"],
            "encoding": data.report.get("encoding"),
            "undecodable bytes replaced": data.report.get("undecodable_bytes", 0),
            **{f"{name} tokens": len(values) for name, values in ids.items()},
        },
        model={
            "architecture": config.model.name,
            **{k: v for k, v in config.model.options().items()},
            "context (tokens)": config.sequence.length,
            "vocabulary": f"{tokenizer.size} {unit}s ({UNKNOWN} included), training span only",
            "parameters": f"{model.count_params():,}",
            "generation": generation_summary(config.generate, config.runtime.seed),
        },
        training=training_rows(
            config.train,
            config.runtime,
            **{"training tokens/s": f"{np.median(speed):,.0f}" if speed else "n/a"},
        ),
        metrics=metrics,
        intended_use=f"Generating text in the style of the training corpus, one {unit} at a "
        "time, and measuring how predictable held-out text of that kind is.",
        limitations=[
            f"It has seen {len(ids['train']):,} training tokens: it imitates spelling, layout "
            "and common phrases, not meaning; generated text is often ungrammatical.",
            f"It reads only the last {config.sequence.length} {unit}s of a prompt.",
            "Held-out text comes after the training text in the same corpus; other kinds of "
            "text will be less predictable (higher perplexity).",
        ],
    )


def generation_summary(settings: GenerateConfig, seed: int) -> str:
    if settings.strategy == "greedy":
        return f"greedy, {settings.max_new_tokens} new tokens"
    parts = [f"sample at temperature {settings.temperature:g}"]
    parts += [f"top-k {settings.top_k}"] if settings.top_k else []
    parts += [f"top-p {settings.top_p:g}"] if settings.top_p else []
    seed = settings.seed if settings.seed is not None else seed
    return ", ".join(parts) + f", {settings.max_new_tokens} new tokens, seed {seed}"


# === Evaluation ===
def sliding_windows(ids: np.ndarray, length: int) -> tuple[np.ndarray, ...]:
    """(inputs, targets, weights), each (W, length): every token but the first is scored
    exactly once, each with at least half a context before it (windows overlap by half;
    the first scores all its tokens). Padding scores 0."""
    stride = max(1, length // 2)
    xs, ys, ws = [], [], []
    done, start = 0, 0  # targets at positions <= done are scored already
    while done < len(ids) - 1:
        x, y = ids[start : start + length], ids[start + 1 : start + length + 1]
        positions = np.arange(start + 1, start + 1 + len(y))
        pad = length - len(y)
        xs.append(np.pad(x[: len(y)], (0, pad)))
        ys.append(np.pad(y, (0, pad)))
        ws.append(np.pad((positions > done).astype(np.float32), (0, pad)))
        done, start = start + len(y), start + stride
    return np.stack(xs), np.stack(ys), np.stack(ws)


def score_tokens(model: keras.Model, ids: np.ndarray, length: int) -> tuple[float, float, int]:
    """(mean negative log-likelihood in nats, next-token accuracy, tokens scored)."""
    x, y, w = sliding_windows(ids, length)

    @tf.function
    def batch_sums(x, y, w):
        logits = tf.cast(model(x, training=False), tf.float32)
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        hit = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), y), tf.float32)
        return tf.reduce_sum(nll * w), tf.reduce_sum(hit * w)

    nll = hits = 0.0
    for i in range(0, len(x), EVAL_BATCH):
        part = slice(i, i + EVAL_BATCH)
        a, b = batch_sums(x[part], y[part], w[part])
        nll, hits = nll + float(a), hits + float(b)
    count = int(w.sum())
    return nll / count, hits / count, count


def evaluate_model(
    model: keras.Model,
    tokenizer: Tokenizer,
    ids: np.ndarray,
    train_ids: np.ndarray,
    split: str,
    run: RunDir,
    out: Path | None = None,
) -> dict[str, Any]:
    """Perplexity per token, next-token accuracy, and the n-gram baseline on the same
    tokens (fitted on `train_ids`)."""
    if len(ids) < 2:
        raise UserError(f"the {split} text has {len(ids)} tokens; perplexity needs two or more")
    length = int(model.input_shape[1])
    loss, accuracy, count = score_tokens(model, ids, length)
    baseline = KneserNeyLM(NGRAM_ORDER, tokenizer.size).fit(train_ids.tolist())
    metrics = {
        "loss": loss,
        "perplexity": math.exp(loss),
        "accuracy": accuracy,
        "ngram_perplexity": baseline.perplexity(ids.tolist()),
        "split": split,
        "num_examples": count,
        "task": TASK,
        "domain": DOMAIN,
    }
    run.write_metrics(metrics, path=out)
    LOG.info(
        "%s: perplexity %.3f per %s (%d-gram Kneser-Ney: %.3f) over %d tokens",
        split,
        metrics["perplexity"],
        tokenizer.unit,
        NGRAM_ORDER,
        metrics["ngram_perplexity"],
        count,
    )
    return metrics


def evaluate(
    run: RunDir, config: NLPConfig, *, source: str | None, split: str, out: Path | None
) -> dict[str, Any]:
    """A split of the run's corpus, or another corpus whole (it was never trained on)."""
    tokenizer, _ = tokenizer_from_contract(run)
    data = corpus.load(config)
    if source:
        other = config.model_copy(
            update={"data": config.data.model_copy(update={"source": source})}
        )
        ids, split = tokenizer.encode(corpus.read_text(other)[0]), "all"
    elif split in corpus.SPLITS:
        ids = tokenizer.encode(data.split_text(split))
    else:
        raise UserError(f"split {split!r}: the lm's splits are {', '.join(corpus.SPLITS)}")
    train_ids = tokenizer.encode(data.split_text("train"))
    model = model_io.load_model(run.model_path)
    return evaluate_model(model, tokenizer, ids, train_ids, split, run, out)


# === Prediction ===
def predict(run: RunDir, config: NLPConfig, inputs: list[str]) -> list[dict[str, Any]]:
    """Each prompt with its continuation (`generate` settings of the run's config)."""
    from domains.nlp.lm_serving import serving_module

    return continue_prompts(serving_module(run, config), inputs)


def continue_prompts(module, inputs: list[str]) -> list[dict[str, Any]]:
    """Run a `LanguageModelServing` on the prompts; note truncated and empty ones."""
    prompts = tf.constant(list(inputs), tf.string)
    generated = module.serve(prompts)["generated_text"].numpy()
    counts = module.tokenizer.ids(prompts).row_lengths().numpy()
    unit = module.tokenizer.unit
    results = []
    for text, new, count in zip(inputs, generated, counts, strict=True):
        result = {"input": text, "generated_text": new.decode("utf-8", errors="replace")}
        if count > module.length:
            result["note"] = (
                f"the prompt has {count} {unit} tokens; only its last {module.length} "
                "(the model's context) were read"
            )
        elif count == 0:
            result["note"] = "empty prompt: generation starts from the training token frequencies"
        results.append(result)
    return results


# === Explanation ===
EXPLAIN_EXAMPLES = 2  # held-out prompts explained when none are given
SHOWN_TOKENS = 40  # the last tokens of a prompt drawn in the heatmaps


def explain(run: RunDir, config: NLPConfig, inputs: list[str], out: Path | None) -> Path:
    """Attention maps of the last decoder layer over each prompt's tokens: the mean over
    heads and the first heads, one row per prompt (held-out text when none given)."""
    tokenizer, details = tokenizer_from_contract(run)
    inputs = inputs or held_out_prompts(corpus.load(config), tokenizer.unit, details["length"])
    return attention_plot(model_io.load_model(run.model_path), tokenizer, inputs, out, run)


def held_out_prompts(data: corpus.CorpusData, unit: str, length: int) -> list[str]:
    """The first test paragraphs, each cut to about one context."""
    paragraphs = [p for p in data.split_text("test").split("\n\n") if p.strip()]
    chars = length * (1 if unit == "character" else 6)
    return [p[:chars] for p in paragraphs[:EXPLAIN_EXAMPLES]]


def attention_plot(
    model: keras.Model, tokenizer: Tokenizer, inputs: list[str], out: Path | None, run: RunDir
) -> Path:
    maps = [attention_map(model, tokenizer, text) for text in inputs]
    maps = [item for item in maps if item["tokens"]]
    if not maps:
        raise UserError("explain needs a prompt with at least one token")
    target = Path(out) if out else run.plots / "attention.png"
    attention_chart(maps, target)
    LOG.info("attention maps: %s", target)
    return target


def attention_map(model: keras.Model, tokenizer: Tokenizer, text: str) -> dict[str, Any]:
    """The prompt's last `length` tokens and the last decoder layer's (heads, n, n)
    attention probabilities among them (row: the attending token)."""
    from shared.blocks import TransformerDecoderBlock

    length = int(model.input_shape[1])
    ids = tokenizer.encode(text)[-length:]
    tokens = [tokenizer.strings[i].numpy().decode("utf-8") for i in ids]
    block = [layer for layer in model.layers if isinstance(layer, TransformerDecoderBlock)][-1]
    states = keras.Model(model.input, block.input)(np.pad(ids, (0, length - len(ids)))[None])
    if block.norm == "pre":
        states = block.self_attention_norm(states)
    probs = block.self_attention.attention_probabilities(states)
    n = len(ids)
    return {"text": text, "tokens": tokens, "attention": np.asarray(probs)[0, :, :n, :n]}


def _shown(token: str) -> str:
    return {" ": "·", "\n": "\\n", "\t": "\\t"}.get(token, token)


def attention_chart(maps: list[dict[str, Any]], path: Path) -> Path:
    return attention_grid(
        maps,
        path,
        shown_tokens=SHOWN_TOKENS,
        title="last decoder layer: attention over each prompt's last tokens",
        last=True,
        label=_shown,
        panel=(4.2, 4.4),
    )


# === Export ===
def serving_spec(run: RunDir, config: NLPConfig):
    """The SavedModel of a finished language model (see `domains.nlp.lm_serving`)."""
    from domains.nlp import lm_serving

    return lm_serving.serving_spec(run, config)
