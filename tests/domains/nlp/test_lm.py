"""NLP language model: contiguous splits, the Kneser-Ney baseline, generation, export.

One tiny run (a one-layer GPT over 32-character contexts, a few steps on the first
lines of Tiny Shakespeare) serves every test that needs a trained model.
"""

import json
import math

import numpy as np
import pytest

from domains.nlp import corpus
from domains.nlp.config import GenerateConfig, NLPConfig
from domains.nlp.ngram import KneserNeyLM
from shared.errors import UserError
from tests.conftest import REPO, errors_before_tensorflow, run_cli, run_outside_repo

NEW_TOKENS = 12
CONTEXT = 32
TINY = (
    "data.max_examples=600",
    f"sequence.length={CONTEXT}",
    "model.num_layers=1",
    "model.hidden=32",
    "model.num_heads=2",
    "train.epochs=1",
    "train.steps_per_epoch=6",
    "train.batch_size=16",
    f"generate.max_new_tokens={NEW_TOKENS}",
)


@pytest.fixture(scope="module")
def lm_run(trained_run):
    return trained_run("nlp", None, TINY, task="lm")


def lm_config(**data) -> NLPConfig:
    return NLPConfig.model_validate({"task": "lm", "sequence": {"unit": "character"}, "data": data})


# === Data and baseline (no model) ===
def test_splits_are_contiguous_spans_cut_between_paragraphs():
    data = corpus.load(lm_config(source="builtin:shakespeare", max_examples=2000))
    (a, b), (c, d), (e, f) = (data.splits[name] for name in corpus.SPLITS)
    assert a == 0 and b == c and d == e and f == len(data.text)  # in order, no gap, no overlap
    assert data.text.count("\n") == 1999 and data.report["cut_at"] == "paragraph"
    assert data.text[b - 2 : b] == "\n\n" and data.text[d - 2 : d] == "\n\n"
    assert (f - e) / len(data.text) == pytest.approx(0.2, abs=0.02)  # the last 20%: test
    assert data.split_text("test").endswith(data.text[-50:])


def test_text_files_in_other_encodings_and_broken_bytes(tmp_path):
    cp1252 = tmp_path / "cafe.txt"
    cp1252.write_bytes(("Un café, s'il vous plaît.\n" * 40).encode("cp1252"))
    data = corpus.load(lm_config(source=f"text:{cp1252}"))
    assert data.report["encoding"] == "cp1252" and "café" in data.text
    assert data.report["cut_at"] == "line"  # no blank lines: cut between lines
    broken = tmp_path / "broken.txt"
    broken.write_bytes("naïve text, one line after another\n".encode() * 30 + b"bad \xff byte\n")
    data = corpus.load(lm_config(source=f"txt:{broken}"))
    assert data.report["encoding"] == "utf-8" and data.report["undecodable_bytes"] == 1
    assert "\ufffd" in data.split_text("test")


def test_table_texts_are_one_per_line(tmp_path):
    path = tmp_path / "lines.csv"
    path.write_text("id,text\n" + "".join(f"{i},line number {i}\n" for i in range(50)))
    data = corpus.load(lm_config(source=f"csv:{path}", max_examples=20))
    assert data.text.split("\n") == [f"line number {i}" for i in range(20)]
    assert data.report["text_column"] == "text"


def test_kneser_ney_matches_a_hand_computation():
    # Bigrams of 1 2 1 2 1 3: (1,2) x2, (2,1) x2, (1,3) x1. Every token follows exactly
    # one distinct token, so the unigram level is (1 - D + D * 3 / V) / 3 for each seen.
    lm = KneserNeyLM(order=2, vocabulary_size=4, discount=0.5).fit([1, 2, 1, 2, 1, 3])
    unigram = (0.5 + 0.5 * 3 / 4) / 3
    assert lm.probability(2, []) == pytest.approx(unigram)
    assert lm.probability(0, []) == pytest.approx(0.5 * 3 / 4 / 3)  # never seen
    assert lm.probability(2, [1]) == pytest.approx((2 - 0.5 + 0.5 * 2 * unigram) / 3)
    assert lm.probability(3, [3]) == pytest.approx(unigram)  # unseen history: back off
    for history in ([], [1], [2], [3], [0]):
        assert sum(lm.probability(w, history) for w in range(4)) == pytest.approx(1.0)


def test_kneser_ney_beats_uniform_on_held_out_text():
    text = "the cat sat on the mat. the dog sat on the log. " * 20
    ids = [ord(c) - 31 for c in text]
    lm = KneserNeyLM(order=5, vocabulary_size=96).fit(ids[:700])
    perplexity = lm.perplexity(ids[700:])
    assert 1.0 < perplexity < 2.0 < 96  # repeated text: near-certain, far below uniform


# === Errors before TensorFlow ===
def test_empty_corpus_is_one_error_line_before_tensorflow(tmp_path):
    empty, blank = tmp_path / "empty.txt", tmp_path / "blank.txt"
    empty.write_bytes(b"")
    blank.write_text("  \n\n\t \n")
    done = run_cli("nlp", "train", "--task", "lm", "--data", f"text:{empty}", timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [f"error: text file {empty} is empty"]
    calls = [
        f"pipelines.nlp.train(task='lm', data='text:{blank}')",
        "pipelines.nlp.train(task='lm', overrides=['generate.strategy=beam'])",
        "pipelines.nlp.train(task='lm', data='builtin:hamlet')",
    ]
    errors = errors_before_tensorflow(calls, REPO)
    assert errors[0] == f"text file {blank} is empty"
    assert "beam search" in errors[1] and "builtins for --task lm: shakespeare" in errors[2]


# === The trained run ===
def test_train_writes_perplexity_beside_the_ngram_baseline(lm_run):
    metrics = lm_run.metrics
    assert metrics["task"] == "lm" and metrics["split"] == "test"
    vocabulary = len(json.loads((lm_run.path / "inputs.json").read_text())["details"]["vocabulary"])
    assert 1 < metrics["perplexity"] <= vocabulary + 1  # a few steps: near uniform at worst
    assert 1 < metrics["ngram_perplexity"] < 12 < vocabulary  # characters are predictable
    assert math.log(metrics["perplexity"]) == pytest.approx(metrics["loss"])
    splits = json.loads((lm_run.path / "data_splits.json").read_text())
    sizes = [splits["splits"][name]["size"] for name in corpus.SPLITS]
    assert metrics["num_examples"] == sizes[2] - 1  # every test token but the first
    card = lm_run.model_card
    assert "character" in card and "ngram_perplexity" in card and "attention.png" in card
    assert {"perplexity", "val_perplexity", "tokens_per_second"} <= set(lm_run.history[0])


def test_predict_continues_prompts_and_truncates_long_ones(lm_run):
    long_prompt = "To be, or not to be, that is the question. " * 20
    results = lm_run.predict(["ROMEO:", "", long_prompt, "ROMEO:"])
    assert [r["input"] for r in results] == ["ROMEO:", "", long_prompt, "ROMEO:"]
    assert all(len(r["generated_text"]) == NEW_TOKENS for r in results)  # one char a token
    assert "note" not in results[0] and "empty prompt" in results[1]["note"]
    assert f"only its last {CONTEXT}" in results[2]["note"]
    assert results[3]["generated_text"] == results[0]["generated_text"]  # seeded per prompt


def test_top_k_one_and_tiny_top_p_sample_the_greedy_choice(lm_run):
    from domains.nlp import lm, lm_serving

    config = NLPConfig.model_validate(lm_run.config)
    prompts = ["ROMEO:", "", "First Citizen:\nBefore we proceed"]

    def continuations(**settings):
        settings = GenerateConfig(max_new_tokens=NEW_TOKENS, **settings)
        module = lm_serving.serving_module(lm_run.dir, config, settings)
        return [r["generated_text"] for r in lm.continue_prompts(module, prompts)]

    greedy = continuations(strategy="greedy")
    assert continuations(strategy="sample", top_k=1, temperature=2.0) == greedy
    assert continuations(strategy="sample", top_p=1e-6, temperature=2.0) == greedy
    free = continuations(strategy="sample", temperature=5.0)
    assert free != greedy  # a hot, untruncated draw wanders off the argmax


def test_explain_draws_causal_attention_of_the_last_layer(lm_run, tmp_path):
    from domains.nlp import lm
    from domains.nlp.lm_tokens import tokenizer_from_contract

    model = lm_run.load_model()
    tokenizer, _ = tokenizer_from_contract(lm_run.dir)
    item = lm.attention_map(model, tokenizer, "ROMEO:\nWhat say you?")
    attention = item["attention"]
    assert item["tokens"][:6] == list("ROMEO:") and attention.shape == (2, 20, 20)
    assert np.allclose(attention.sum(-1), 1.0, atol=1e-5)
    assert np.allclose(np.triu(attention, k=1), 0.0)  # nothing attends to the future
    png = lm_run.explain(["ROMEO:\nWhat say you?"], out=str(tmp_path / "attention.png"))
    assert png.is_file() and png.stat().st_size > 10_000


def test_evaluate_a_split_and_another_corpus(lm_run, tmp_path):
    validation = lm_run.evaluate(split="validation", out=str(tmp_path / "val.json"))
    assert validation["split"] == "validation" and validation["ngram_perplexity"] > 1
    other = tmp_path / "other.txt"
    other.write_text("A completely different text, read whole.\n" * 10)
    whole = lm_run.evaluate(data=f"text:{other}", out=str(tmp_path / "other.json"))
    assert whole["split"] == "all" and whole["num_examples"] == len(other.read_text()) - 1


_SERVE = r"""
import json, sys
import tensorflow as tf
fn = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
prompts = json.loads(sys.argv[2])
out = fn(text=tf.constant(prompts))["generated_text"].numpy()
print(json.dumps({"generated": [t.decode() for t in out], "inputs": sorted(
    fn.structured_input_signature[1]), "modules": sorted(
    m for m in ("keras_hub", "tensorflow_text", "domains", "shared") if m in sys.modules)}))
"""


def test_export_serves_raw_prompts_in_a_tensorflow_only_process(lm_run, tmp_path):
    result = lm_run.export(tmp_path / "serving")
    assert result.verification["checked"] and result.version == 1
    prompts = ["ROMEO:", "", "x" * 5000, "JULIET:\nAy me!"]
    served = run_outside_repo(
        _SERVE, str(result.path), json.dumps(prompts), cwd=tmp_path, timeout=120
    )
    assert served["inputs"] == ["text"] and served["modules"] == []
    assert served["generated"] == [r["generated_text"] for r in lm_run.predict(prompts)]
    meta = json.loads((result.path / "assets.extra" / "deepfield.json").read_text())
    assert meta["custom_ops"] == [] and meta["unit"] == "character"
    assert meta["signatures"]["serving_default"]["outputs"] == {
        "generated_text": {"dtype": "string", "shape": [None]}
    }


def test_a_corpus_shorter_than_the_context_is_refused(tmp_path):
    from domains.nlp import lm

    path = tmp_path / "short.txt"
    path.write_text("one\n\ntwo\n\nthree\n")
    config = lm_config(source=f"text:{path}")
    with pytest.raises(UserError, match=r"the training text has \d+ character tokens"):
        lm.tokenize_corpus(config, corpus.load(config))


def test_compress_prunes_quantizes_and_distils_the_language_model(lm_run, tmp_path):
    """A GPT run prunes and quantizes (its Dense and Embedding layers), and distils into a
    narrower GPT from the run's per-token logits; each result still continues prompts."""
    import pipelines

    small = pipelines.nlp.compress(
        lm_run, prune=0.5, quantize="int8", epochs=1, run_dir=tmp_path / "pq"
    )
    record = json.loads((small.path / "compression.json").read_text())
    assert record["prune"]["global"] >= 0.5 * 0.99 and record["quantize"]["changed"]
    assert small.metrics["size_bytes"] < small.metrics["original_size_bytes"]
    assert math.isfinite(small.metrics["perplexity"])
    (result,) = small.predict(["ROMEO:"])
    assert len(result["generated_text"]) == NEW_TOKENS
    student = pipelines.nlp.compress(
        lm_run,
        distill_from=lm_run,
        overrides=["model.hidden=16"],
        epochs=1,
        run_dir=tmp_path / "kd",
    )
    assert student.metrics["parameters"] < student.metrics["original_parameters"]
    assert student.metrics["teacher_perplexity"] == lm_run.metrics["perplexity"]
    assert math.isfinite(student.metrics["perplexity"])
