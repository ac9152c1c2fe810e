"""NLP classify with sequence models: a bidirectional GRU over words, a small BERT over
WordPiece tokens with masked-LM pretraining, `--init-from` a run or a KerasHub preset,
token attributions, attention maps, and the export served with tensorflow_text.

Each model is trained once (a few hundred sentences, one epoch, tiny sizes) and shared;
the numbers are those of an untrained-looking model, so the tests check files, weights
and agreement, not quality (benchmarks/nlp_pretrain.py does).
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import yaml

from domains.nlp.config import NLPConfig
from tests.conftest import REPO, errors_before_tensorflow, run_outside_repo

DATA = ("data.max_examples=200", "train.epochs=1", "train.batch_size=32")
BIGRU = (*DATA, "model.units=8", "model.embedding_dim=8", "tokenizer.sequence_length=24")
BERT_SIZES = (
    "model.num_layers=1",
    "model.hidden=32",
    "model.num_heads=2",
    "model.ff_dim=32",
    "tokenizer.vocabulary_size=300",
    "tokenizer.sequence_length=24",
)
BERT = (*DATA, *BERT_SIZES, "pretrain.epochs=1")
TEXTS = ["The food was great!", "", "awful service " * 400]


def train(name, overrides, path, **options):
    import pipelines

    return pipelines.nlp.train(config=name, overrides=list(overrides), run_dir=path, **options)


@pytest.fixture(scope="module")
def bigru(tmp_path_factory):
    return train("bigru", BIGRU, tmp_path_factory.mktemp("bigru") / "run")


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    return train("bert", BERT, tmp_path_factory.mktemp("bert") / "run")


def run_config(run) -> NLPConfig:
    return NLPConfig.model_validate(yaml.safe_load((run.path / "config.yaml").read_text()))


def check_predictions(run):
    results = run.predict(TEXTS)  # loads model.keras: the round trip
    assert [r["input"] for r in results] == TEXTS
    for result in results:
        assert result["label"] in ("0", "1")
        assert sum(k["probability"] for k in result["top_k"]) == pytest.approx(1, abs=1e-4)
    assert "empty text" in results[1]["note"]


# === Training and round trip ===
def test_bigru_trains_and_round_trips(bigru):
    metrics = json.loads((bigru.path / "metrics.json").read_text())
    assert metrics["num_examples"] > 0 and 0 <= metrics["accuracy"] <= 1
    check_predictions(bigru)
    model = bigru.load_model()
    encoder = model.get_layer("rnn").get_layer("encoder")
    assert (encoder.cell, encoder.bidirectional, encoder.pooling) == ("gru", True, "attention")
    assert type(model.get_layer("tokenizer")).__name__ == "TextVectorization"
    assert "| tokenizer | Keras TextVectorization" in bigru.model_card


def test_bert_pretrains_trains_and_round_trips(bert):
    metrics = json.loads((bert.path / "metrics.json").read_text())
    assert 0 <= metrics["accuracy"] <= 1 and "f1" in metrics
    check_predictions(bert)
    with (bert.path / "pretrain_history.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1 and np.isfinite(float(rows[0]["loss"]))
    assert "masked-LM pretraining: 1 epochs" in bert.model_card


def test_classifier_starts_from_the_masked_lm_weights(bert):
    """The classifier built for fine-tuning holds the masked-LM encoder's weights (the
    saved pretraining is reused, not redone); fine-tuning then moved them."""
    from domains.nlp import encoders
    from domains.nlp.data import load
    from shared.run_dir import RunDir

    config = run_config(bert)
    data = load(config)
    before = encoders.encoder_model(
        encoders.build_sequence_classifier(config, data, RunDir(bert.path))
    )
    tokens = encoders.fit_tokens(config, data.texts[data.splits["train"]])
    mlm = encoders.zoo_encoder(config, tokens, 24, None, head="mlm")
    fresh = [np.array(v) for v in mlm.get_layer("layer_0").weights]
    mlm.load_weights(bert.path / "pretrain" / "mlm.weights.h5")
    after = encoders.encoder_model(bert.load_model())
    for name in ("token_embedding", "position_embedding", "embeddings_norm", "layer_0"):
        for mine, pretrained in zip(
            before.get_layer(name).weights, mlm.get_layer(name).weights, strict=False
        ):
            np.testing.assert_array_equal(np.array(mine), np.array(pretrained))
    pretrained = [np.array(v) for v in mlm.get_layer("layer_0").weights]
    assert any(not np.allclose(a, b) for a, b in zip(fresh, pretrained, strict=True))
    tuned = [np.array(v) for v in after.get_layer("layer_0").weights]
    assert any(not np.allclose(a, b) for a, b in zip(tuned, pretrained, strict=True))


# === --init-from ===
def test_init_from_a_run_takes_its_vocabulary_and_encoder(bert):
    """The classifier built with `--init-from RUN` holds the run's vocabulary and every
    encoder weight but the class head (no masked-LM pretraining of its own)."""
    from domains.nlp import encoders
    from domains.nlp.data import load

    config = run_config(bert)
    config = config.model_copy(
        update={
            "pretrain": config.pretrain.model_copy(
                update={"epochs": 0, "init_from": str(bert.path)}
            )
        }
    )
    data = load(
        config.model_copy(update={"data": config.data.model_copy(update={"max_examples": 60})})
    )
    started = encoders.build_sequence_classifier(config, data)
    source = bert.load_model()
    assert started.get_layer("tokenizer").get_vocabulary() == (
        source.get_layer("tokenizer").get_vocabulary()
    )
    mine, theirs = encoders.encoder_model(started), encoders.encoder_model(source)
    for layer in mine.layers:
        for a, b in zip(layer.weights, theirs.get_layer(layer.name).weights, strict=True):
            same = np.array_equal(np.array(a), np.array(b))
            assert same == (layer.name != "predictions"), layer.name


def test_init_from_a_kerashub_preset(tmp_path):
    import keras_hub

    from domains.nlp.encoder_explain import attention_map

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "food", "was", "great",
                  "bad", "service", "!", "good", "##s"]  # fmt: skip
    preset = tmp_path / "tiny_bert"
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(vocabulary),
        num_layers=1,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=32,
    )
    backbone.save_to_preset(str(preset))
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=True)
    tokenizer.save_to_preset(str(preset))
    overrides = (
        *DATA,
        "data.max_examples=120",
        "tokenizer.sequence_length=24",
        "pretrain.epochs=0",
    )
    run = train("bert", overrides, tmp_path / "run", init_from=preset)
    model = run.load_model()
    assert type(model.get_layer("bert_backbone")).__name__ == "BertBackbone"
    assert model.get_layer("tokenizer").get_vocabulary() == vocabulary
    check_predictions(run)
    item = attention_map(model, "the food was great!")
    assert item["tokens"] == ["[CLS]", "the", "food", "was", "great", "!", "[SEP]"]
    assert item["attention"].shape == (2, 7, 7)
    np.testing.assert_allclose(item["attention"].sum(-1), 1.0, atol=1e-4)


def test_init_from_neither_a_run_nor_a_preset_is_one_error(tmp_path, cli):
    (tmp_path / "notes.txt").write_text("not a model")
    code, out, err = cli(
        "nlp", "train", "--config", "bigru", "--run-dir", str(tmp_path / "run"),
        "--init-from", str(tmp_path), *[a for o in BIGRU for a in ("--set", o)],
    )  # fmt: skip
    assert code == 2
    assert "neither a finished run" in err and err.count("error:") == 1
    # refused before TensorFlow starts, as a bad table is
    errors = errors_before_tensorflow(
        [f"pipelines.nlp.train(config='bigru', init_from={str(tmp_path / 'none')!r})"], REPO
    )
    assert errors[0] == f"--init-from {tmp_path / 'none'}: no such directory"


# === Explain ===
def test_explain_writes_attributions_and_attention_maps(bert, bigru, tmp_path):
    out = bert.explain(["The food was great!", "Terrible service."], out=tmp_path / "bert.png")
    html = out.with_suffix(".html").read_text()
    assert out.is_file() and "Terrible" in html and "<span" in html
    assert (tmp_path / "bert_attention.png").is_file()

    from domains.nlp.encoder_explain import attention_map, attribute

    model = bert.load_model()
    item = attention_map(model, "The food was great!")
    assert item["tokens"][0] == "[CLS]" and item["tokens"][-1] == "[SEP]"
    np.testing.assert_allclose(item["attention"].sum(-1), 1.0, atol=1e-4)  # padding unseen
    explained = attribute(model, "The food was great!")
    assert {"the", "food", "was", "great"} <= set(explained["ngrams"]) | {"[UNK]"}

    out = bigru.explain(["The food was great!"], out=tmp_path / "gru.png")
    assert out.is_file() and not (tmp_path / "gru_attention.png").exists()


# === Export ===
SERVE = r"""
import json, sys
import tensorflow as tf
import tensorflow_text  # registers the WordPiece ops the export uses
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
out = serve(text=tf.constant(json.loads(sys.argv[2])))
print(json.dumps({"label": [v.decode() for v in out["label"].numpy()],
                  "probabilities": out["probabilities"].numpy().tolist(),
                  "modules": sorted(m for m in sys.modules if m.split(".")[0] in
                                    ("keras_hub", "shared", "domains", "pipelines"))}))
"""


def test_bert_export_serves_raw_strings_with_tensorflow_text(bert, tmp_path):
    import tensorflow as tf

    from domains.nlp import serving
    from shared.export import export_saved_model
    from shared.run_dir import RunDir

    spec = serving.serving_spec(RunDir(bert.path), run_config(bert))
    assert spec.metadata["custom_ops"] == ["tensorflow_text"]
    # The exporter's own fresh-process check imports TensorFlow and the ops libraries
    # that custom_ops names; this test serves it again from outside the repository.
    result = export_saved_model(spec, tmp_path / "serving", "nlp_classify")
    meta = json.loads((result.path / "assets.extra" / "deepfield.json").read_text())
    assert meta["custom_ops"] == ["tensorflow_text"]
    got = run_outside_repo(SERVE, str(result.path), json.dumps(TEXTS), cwd=tmp_path)
    assert got["modules"] == []
    assert got["label"] == [r["label"] for r in bert.predict(TEXTS)]
    expected = bert.load_model().predict(tf.constant(TEXTS), verbose=0)
    np.testing.assert_allclose(got["probabilities"], expected, atol=1e-4)


def test_bigru_export_needs_no_custom_ops(bigru):
    from domains.nlp.serving import custom_ops

    assert custom_ops(bigru.load_model()) == []


def test_pretraining_optimizer_follows_the_pretrain_section():
    """Adam at a constant rate by default; `pretrain.weight_decay` makes it AdamW and
    `lr_schedule: cosine` warms up for `warmup_epochs`, then decays to zero."""
    import keras

    from domains.nlp.pretrain import optimizer

    plain = optimizer(NLPConfig().pretrain.model_copy(update={"epochs": 10}), steps_per_epoch=5)
    assert type(plain) is keras.optimizers.Adam
    assert float(plain.learning_rate) == pytest.approx(1e-3)
    bert_like = NLPConfig().pretrain.model_copy(
        update={"epochs": 10, "weight_decay": 0.01, "lr_schedule": "cosine", "warmup_epochs": 2}
    )
    adamw = optimizer(bert_like, steps_per_epoch=5)
    assert isinstance(adamw, keras.optimizers.AdamW) and adamw.weight_decay == pytest.approx(0.01)
    schedule = adamw._learning_rate
    rates = [float(schedule(step)) for step in (0, 5, 10, 30, 50)]
    assert rates[0] < rates[1] < rates[2] == pytest.approx(1e-3)  # warm-up over 10 steps
    assert rates[2] > rates[3] > rates[4] >= 0 and rates[4] == pytest.approx(0, abs=1e-6)
