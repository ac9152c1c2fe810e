"""NLP translate: grouped pairs, multi-reference BLEU, greedy and beam decoding, the
export that serves raw strings in a TensorFlow-only process, and clear errors.

One tiny transformer run (300 of the shipped pairs, two epochs) serves every test that
needs a trained model; its numbers are those of an untrained-looking model, so the
tests check files, shapes and agreement, not quality (benchmarks/nlp_translate.py does).
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from domains.nlp.config import NLPConfig
from domains.nlp.data import normalise
from domains.nlp.pairs import load
from shared.errors import UserError
from tests.conftest import REPO, errors_before_tensorflow, run_cli, run_outside_repo

TINY = (
    "data.max_examples=300",
    "train.epochs=2",
    "model.num_layers=1",
    "model.hidden=32",
    "model.num_heads=2",
    "model.ff_dim=64",
    "sequence.length=12",
)
MANYTHINGS = (
    "Go.\tVa !\tCC-BY 2.0 (France) Attribution: tatoeba.org #2877272 (CM) & #1158250\n"
    "Run!\tCours !\tCC-BY 2.0 (France)\n"
    "Run!\tCourez !\tCC-BY 2.0 (France)\n"
    "Wow!\tÇa alors !\tCC-BY 2.0 (France)\n"
    "\tSans source.\tCC-BY 2.0 (France)\n"
    "I see.\tJe comprends.\tCC-BY 2.0 (France)\n"
    "Stop!\tArrête !\tCC-BY 2.0 (France)\n"
    "Wait!\tAttends !\tCC-BY 2.0 (France)\n"
    "Hello!\tBonjour !\tCC-BY 2.0 (France)\n"
    "I won!\tJ’ai gagné !\tCC-BY 2.0 (France)\n"
)


def config(**data) -> NLPConfig:
    return NLPConfig.model_validate(
        {"task": "translate", "model": {"name": "transformer_seq2seq"}, "data": data}
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    import pipelines

    path = tmp_path_factory.mktemp("translate") / "run"
    return pipelines.nlp.train(task="translate", overrides=list(TINY), run_dir=path)


# === Data ===
def test_no_source_sentence_straddles_splits_and_all_references_are_kept():
    data = load(config(source="builtin:fra-eng"))
    assert len(data.sources) == 18065 and data.report["repeated_sources"] == 4417
    split_of = {}
    for name, rows in data.splits.items():
        for text in data.sources[rows]:
            assert split_of.setdefault(normalise(text), name) == name, text
    rows = data.splits["test"]
    sources, references = data.references(rows)
    assert sum(len(refs) for refs in references) == len(rows)
    assert len(sources) == len(set(map(normalise, sources))) < len(rows)
    everything = dict(zip(*data.references(np.arange(len(data.sources))), strict=True))
    assert everything["Run!"] == ["Cours\u202f!", "Courez\u202f!"]  # read as is


@pytest.mark.parametrize("header", [True, False], ids=["sniffed", "header-false"])
def test_manythings_file_reads_as_is(tmp_path, header):
    path = tmp_path / "fra.txt"
    path.write_text(MANYTHINGS)
    data = load(config(source=f"csv:{path}", header=header))
    assert data.report["text_column"] == "source" and data.report["dropped_rows"] == 1
    assert data.sources[0] == "Go." and data.targets[-1] == "J’ai gagné !"  # first row kept
    assert data.report["header"].startswith("none")


def test_a_side_missing_everywhere_is_one_clear_error(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text("english,french\n" + "".join(f"sentence {i},\n" for i in range(20)))
    with pytest.raises(UserError, match=re.escape("'french' is empty in every row; columns:")):
        load(config(source=f"csv:{path}"))


def test_bad_pairs_exit_2_with_one_error_line_before_tensorflow(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text("source,target\n" + "".join(f"sentence {i},\n" for i in range(20)))
    call = f"pipelines.nlp.train(task='translate', data='csv:{path}')"
    assert "'target' is empty in every row" in errors_before_tensorflow([call], REPO)[0]
    out = run_cli("nlp", "train", "--task", "translate", "--data", f"csv:{path}")
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:"), out.stderr


# === Metrics ===
def test_multi_reference_bleu_and_chrf_match_sacrebleu():
    import sacrebleu

    from domains.nlp.translate import translation_scores

    hypotheses = ["the cat sat on the mat", "hello there friend", "it is raining"]
    references = [
        ["a cat sat on the mat", "The cat sat on the mat"],
        ["hello there my friend"],
        ["it rains", "it is raining today", "rain is falling"],
    ]
    streams = [
        ["a cat sat on the mat", "hello there my friend", "it rains"],
        ["The cat sat on the mat", None, "it is raining today"],
        [None, None, "rain is falling"],
    ]
    scores, signatures = translation_scores(hypotheses, references, lowercase=True)
    bleu = sacrebleu.corpus_bleu(hypotheses, streams, lowercase=True)
    chrf = sacrebleu.metrics.CHRF(lowercase=True).corpus_score(hypotheses, streams)
    assert scores["bleu"] == pytest.approx(bleu.score) and scores["chrf"] == pytest.approx(
        chrf.score
    )
    first_only = sacrebleu.corpus_bleu(hypotheses, streams[:1], lowercase=True).score
    assert scores["bleu"] > first_only  # the other references count
    assert "nrefs:var" in signatures["bleu"] and "case:lc" in signatures["chrf"]


def test_train_writes_bleu_chrf_and_their_signatures(run):
    metrics = json.loads((run.path / "metrics.json").read_text())
    assert {"bleu", "chrf", "loss", "perplexity", "token_accuracy"} <= set(metrics)
    assert 0 <= metrics["bleu"] <= 100 and 0 <= metrics["chrf"] <= 100
    assert metrics["task"] == "translate" and metrics["num_examples"] < metrics["num_references"]
    signature = json.loads((run.path / "metrics_signature.json").read_text())
    assert signature["bleu"].startswith("nrefs:var|case:lc") and signature["decoding"] == "greedy"
    splits = json.loads((run.path / "data_splits.json").read_text())
    assert splits["grouped_by"].startswith("normalised source") and splits["pairs"] == 300
    assert json.loads((run.path / "inputs.json").read_text())["inputs"][0]["name"] == "text"
    assert "| bleu |" in (run.path / "MODEL_CARD.md").read_text()


# === Predict, decode, explain ===
def test_predict_returns_a_translation_per_text(run):
    results = run.predict(["Go away!", "", "I see you. " * 40])
    assert [r["input"] for r in results] == ["Go away!", "", "I see you. " * 40]
    assert all(isinstance(r["translation"], str) for r in results)
    assert results[1]["note"].startswith("empty text")
    assert "only the first 12 were translated" in results[2]["note"]


def test_beam_of_width_one_is_greedy(run):
    from domains.nlp import translate_serving
    from shared.run_dir import RunDir

    cfg = NLPConfig.model_validate(run.config)
    greedy = translate_serving.load_translator(RunDir(run.path), cfg, strategy="greedy")
    beam = translate_serving.Translator(greedy.model, greedy.tokenizer, "beam", 1)
    data = load(cfg)
    sources = data.references(data.splits["test"])[0]
    assert beam.translate(sources) == greedy.translate(sources)
    wide = translate_serving.Translator(greedy.model, greedy.tokenizer, "beam", 3)
    assert len(wide.translate(sources[:5])) == 5


def test_explain_draws_cross_attention_and_refuses_a_gru(run, tmp_path):
    from domains.nlp import translate, translate_serving
    from shared import model_io
    from shared.run_dir import RunDir
    from shared.zoo import build_model

    png = run.explain(["Go away!", "I see."], out=str(tmp_path / "attention.png"))
    assert png.is_file() and png.stat().st_size > 5000
    cfg = NLPConfig.model_validate(run.config)
    translator = translate_serving.load_translator(RunDir(run.path), cfg, strategy="greedy")
    item = translate.attention_map(translator, "Go away!")
    rows = item["weights"].sum(axis=1)
    np.testing.assert_allclose(rows, 1.0, atol=1e-4)  # source padding gets no attention

    gru = RunDir(tmp_path / "gru")
    gru.path.mkdir()
    (gru.path / "vocabulary.json").write_text((run.path / "vocabulary.json").read_text())
    model = build_model("rnn_seq2seq", input_shape=(12,), units=8, target_length=12)
    model_io.save_model(model, gru.model_path)
    gru_config = cfg.model_copy(
        update={"model": cfg.model.model_copy(update={"name": "rnn_seq2seq"})}
    )
    with pytest.raises(UserError, match="rnn_seq2seq has no attention to show"):
        translate.explain(gru, gru_config, ["Go away!"], None)


# === Export ===
SERVE = r"""
import json, sys
import tensorflow as tf
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
texts = ["Go away!", "", "I see you. " * 2000]
out = serve(text=tf.constant(texts))["translation"].numpy()
print(json.dumps({"translations": [t.decode() for t in out],
                  "modules": sorted(m for m in sys.modules if m.split(".")[0] in
                                    ("keras_hub", "shared", "domains", "pipelines"))}))
"""


def test_export_serves_raw_strings_in_a_tensorflow_only_process(run, tmp_path):
    result = run.export(to=tmp_path / "serving")
    assert result.verification["checked"] and result.verification["requests"] == 9
    assert result.signatures["serving_default"]["inputs"] == {
        "text": {"dtype": "string", "shape": [None]}
    }
    served = run_outside_repo(SERVE, str(result.path), cwd=tmp_path)
    assert len(served["translations"]) == 3 and served["modules"] == []
    assert served["translations"][:2] == [r["translation"] for r in run.predict(["Go away!", ""])]
