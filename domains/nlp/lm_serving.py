"""The language model's generation and export: prompts in, continuations out, in one graph.

`LanguageModelServing` tokenizes the prompts, keeps each one's last `sequence.length`
tokens and runs a tf.while_loop of `generate.max_new_tokens` model calls and draws, with
core TensorFlow ops only; predict runs the same module in process, so predict and the
served model give the same text for the same prompt.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from domains.nlp import corpus
from domains.nlp.config import GenerateConfig, NLPConfig
from domains.nlp.lm import DOMAIN, TASK
from domains.nlp.lm_tokens import Tokenizer, tokenizer_from_contract
from domains.nlp.serving import text_serving_spec
from shared import model_io
from shared.export import ServingSpec
from shared.run_dir import RunDir


# === Generation ===
class LanguageModelServing(tf.Module):
    """Prompts in, continuations out, all in one graph: tokenize, keep the last
    `length` tokens, then a tf.while_loop of `max_new_tokens` model calls and draws.

    Not keras_hub's samplers: they draw from stateful Keras seed generators, so a
    request's text would change from call to call and the SavedModel would carry sampler
    state. Here each draw is stateless, keyed by (seed, a hash of the prompt, the step):
    the same prompt gives the same text in any batch, in predict and in the export.
    The context is left-aligned like the training windows (tokens at positions
    0..n-1, padding after, which causal attention never reads); once full it slides.
    """

    def __init__(
        self,
        model: keras.Model,
        tokenizer: Tokenizer,
        counts: list[int],
        settings: GenerateConfig,
        seed: int,
    ):
        super().__init__(name="nlp_lm")
        self.model = model
        self.tokenizer = tokenizer
        self.length = int(model.input_shape[1])
        self.settings = settings
        self.seed = int(settings.seed if settings.seed is not None else seed)
        # An empty prompt's next-token distribution: the training token frequencies.
        prior = np.log((np.asarray(counts, np.float64) + 1) / (sum(counts) + len(counts)))
        self.prior = tf.constant(prior, tf.float32)
        self.serve = tf.function(
            self._serve, input_signature=[tf.TensorSpec([None], tf.string, name="text")]
        )

    def _serve(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"generated_text": self.tokenizer.decode(self.generate_ids(text))}

    def generate_ids(self, text: tf.Tensor) -> tf.Tensor:
        """(N,) prompts -> (N, max_new_tokens) generated ids."""
        ids = self.tokenizer.ids(text)[:, -self.length :]
        lengths = tf.cast(ids.row_lengths(), tf.int32)
        tokens = ids.to_tensor(default_value=0, shape=[None, self.length])
        row_seeds = tf.strings.to_hash_bucket_fast(text, 2**31 - 1)
        steps = self.settings.max_new_tokens
        out = tf.TensorArray(tf.int32, size=steps)

        def step(i, tokens, lengths, out):
            logits = tf.cast(self.model(tokens, training=False), tf.float32)
            last = tf.gather(logits, tf.maximum(lengths - 1, 0), batch_dims=1)
            last = tf.where((lengths > 0)[:, None], last, self.prior[None, :])
            chosen = self.choose(last, row_seeds, i)
            tokens, lengths = self.append(tokens, lengths, chosen)
            return i + 1, tokens, lengths, out.write(i, chosen)

        *_, out = tf.while_loop(
            lambda i, *_: i < steps, step, (tf.constant(0), tokens, lengths, out)
        )
        return tf.transpose(out.stack())

    def append(self, tokens: tf.Tensor, lengths: tf.Tensor, chosen: tf.Tensor):
        """Write each row's new token after its last, or slide a full context by one."""
        positions = tf.range(self.length)[None, :]
        inserted = tf.where(positions == lengths[:, None], chosen[:, None], tokens)
        shifted = tf.concat([tokens[:, 1:], chosen[:, None]], axis=1)
        tokens = tf.where((lengths >= self.length)[:, None], shifted, inserted)
        return tokens, tf.minimum(lengths + 1, self.length)

    def choose(self, logits: tf.Tensor, row_seeds: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
        """The next token of each row: argmax (greedy), or a draw from the tempered,
        top-k and top-p truncated distribution (Gumbel-max: argmax of logits + noise)."""
        never = tf.constant(-1e9, tf.float32)
        vocabulary = tf.range(tf.shape(logits)[-1])[None, :]
        logits = tf.where(vocabulary == 0, never, logits)  # UNKNOWN is never written
        settings = self.settings
        if settings.strategy == "greedy":
            return tf.argmax(logits, -1, output_type=tf.int32)
        logits = logits / settings.temperature
        if settings.top_k:
            k = min(settings.top_k, self.tokenizer.size)
            kth = tf.math.top_k(logits, k).values[:, -1:]
            logits = tf.where(logits < kth, never, logits)
        if settings.top_p:
            ranked = tf.sort(logits, direction="DESCENDING")
            before = tf.cumsum(tf.nn.softmax(ranked), axis=-1, exclusive=True)
            floor = tf.reduce_min(tf.where(before < settings.top_p, ranked, -never), -1)
            logits = tf.where(logits < floor[:, None], never, logits)
        noise = self.uniform(row_seeds, step, tf.shape(logits)[-1])
        return tf.argmax(logits - tf.math.log(-tf.math.log(noise)), -1, output_type=tf.int32)

    def uniform(self, row_seeds: tf.Tensor, step: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
        """(N, size) uniforms in (0, 1), each row from its own stateless seed."""
        step = tf.cast(step, tf.int64)
        seeds = tf.stack(
            [row_seeds, tf.fill(tf.shape(row_seeds), self.seed * 1_000_003 + step)], axis=1
        )
        return tf.map_fn(
            lambda seed: tf.random.stateless_uniform([size], seed, minval=1e-12, maxval=1.0),
            seeds,
            fn_output_signature=tf.float32,
        )


def serving_module(
    run: RunDir, config: NLPConfig, settings: GenerateConfig | None = None
) -> LanguageModelServing:
    """The generation module of a finished run: its model and vocabulary, with the run's
    `generate` settings (or `settings`)."""
    tokenizer, details = tokenizer_from_contract(run)
    return LanguageModelServing(
        model_io.load_model(run.model_path),
        tokenizer,
        details["token_counts"],
        settings or config.generate,
        config.runtime.seed,
    )


# === Export ===
WARMUP_SINGLE = 4  # one-prompt requests, what a client mostly sends
WARMUP_BATCH = 8  # plus one batch


def serving_spec(run: RunDir, config: NLPConfig) -> ServingSpec:
    """The SavedModel: `serving_default` takes raw prompt strings (`text`) and returns
    `generated_text`; warmed up with prompts cut from the held-out text."""
    module = serving_module(run, config)
    data = corpus.load(config)
    lines = [line for line in data.split_text("test").split("\n") if line.strip()]
    return text_serving_spec(
        module,
        lines,
        {
            "domain": DOMAIN,
            "task": TASK,
            "unit": module.tokenizer.unit,
            "context": module.length,
            "vocabulary_size": module.tokenizer.size,
            "generate": {**config.generate.model_dump(), "seed": module.seed},
            "custom_ops": [],  # core TensorFlow string ops and lookups: any server runs it
            "run": str(Path(run.path).resolve()),
            "data": data.spec,
        },
        WARMUP_SINGLE,
        WARMUP_BATCH,
    )
