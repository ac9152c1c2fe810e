"""NLP classify: leak-free splits, user tables, raw-string prediction, clear errors.

The run directory, metrics contract, export (raw strings served in a TF-only process),
bad input and resume after SIGKILL are checked by the shared harness (tests/harness)
on the same tiny run (`NLPDomain.smoke_run`).
"""

import re

import numpy as np
import pytest

from domains.nlp.config import NLPConfig
from domains.nlp.data import load, normalise
from shared.errors import UserError


def test_sms_duplicates_never_straddle_splits():
    data = load(NLPConfig())
    assert len(data.texts) == 5574 and data.class_names == ["ham", "spam"]
    split_of = {}
    for name, rows in data.splits.items():
        for text in data.texts[rows]:
            assert split_of.setdefault(normalise(text), name) == name, text
    assert data.report["duplicates"]["rows"] > 281 - 1  # every repeat counted
    spam_share = {n: data.labels[r].mean() for n, r in data.splits.items()}
    assert max(spam_share.values()) - min(spam_share.values()) < 0.01  # stratified


def test_word_ngrams_split_at_punctuation_and_the_words_get_their_credit(tmp_path):
    import keras
    import tensorflow as tf

    from domains.nlp.classify import ngram_vectorizers
    from domains.nlp.explain import word_scores
    from shared import model_io
    from shared.blocks import lower_and_split_punctuation

    text = "Visit www.txt.co.uk: £1000/week, DON'T wait! ÉCOLE"
    out = lower_and_split_punctuation(tf.constant([text])).numpy()[0].decode()
    assert out.split() == ["visit", "www", "txt", "co", "uk", "1000", "week", "don", "t",
                           "wait", "école"]  # fmt: skip
    for punctuation, expected in (("split", {"www", "uk", "week"}), ("strip", {"wwwtxtcouk"})):
        tokenizer = NLPConfig(tokenizer={"punctuation": punctuation}).tokenizer
        words = ngram_vectorizers(tokenizer)[0]
        words.adapt(tf.constant([text]))
        assert expected <= set(words.get_vocabulary())
        if punctuation == "split":  # the registered function saves and loads in safe mode
            inputs = keras.Input(shape=(), dtype="string")
            model_io.save_model(keras.Model(inputs, words(inputs)), tmp_path / "words.keras")
            loaded = model_io.load_model(tmp_path / "words.keras")
            assert loaded.layers[1].get_config()["standardize"] is lower_and_split_punctuation
            np.testing.assert_allclose(loaded(tf.constant([text])), words(tf.constant([text])))
    scores = dict(word_scores(text, {"www": 0.5, "txt co": 0.2, "wait": -0.1}))
    assert scores["www.txt.co.uk:"] == pytest.approx(0.7) and scores["wait!"] == -0.1
    assert scores["Visit"] == 0.0


def test_class_weights_balance_the_classes():
    from shared.training.weights import class_weights

    labels = np.array([0] * 90 + [1] * 10)
    assert class_weights(labels, 2, "none") is None
    balanced = class_weights(labels, 2, "balanced")
    # each class carries the same total weight, the mean weight per text is 1
    assert balanced[0] * 90 == pytest.approx(balanced[1] * 10)
    assert balanced[labels].mean() == pytest.approx(1.0)
    assert class_weights(labels, 2, "sqrt") == pytest.approx(np.sqrt(balanced))
    # a class absent from the training split gets a finite weight
    assert np.isfinite(class_weights(labels, 3, "balanced")).all()


def test_headerless_latin1_table_with_named_columns(tmp_path):
    rows = [f"café review number {i} was {'good' if i % 2 else 'bad'}\t{i % 2}" for i in range(60)]
    path = tmp_path / "reviews.txt"
    path.write_bytes("\n".join(rows).encode("latin-1"))
    config = NLPConfig.model_validate(
        {"data": {"source": f"csv:{path}", "header": False, "columns": ["text", "label"]}}
    )
    data = load(config)
    assert data.class_names == ["0", "1"] and len(data.texts) == 60
    assert data.texts[0].startswith("café review")


@pytest.mark.parametrize(
    ("name", "column", "classes"),
    [
        ("imdb_reviews", "text", ["neg", "pos"]),
        ("ag_news_subset", "description", ["Business", "Sci/Tech", "Sports", "World"]),
    ],
)
def test_tfds_text_sets_read_with_class_names(name, column, classes):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=40):
        data = load(NLPConfig.model_validate({"data": {"source": f"tfds:{name}"}}))
    assert data.report["text_column"] == column and data.class_names == classes
    assert len(data.texts) == 40 and all(isinstance(t, str) and t for t in data.texts)
    assert sum(len(rows) for rows in data.splits.values()) == 40


def test_max_examples_keeps_the_first_texts():
    data = load(NLPConfig.model_validate({"data": {"max_examples": 300}}))
    assert len(data.texts) == 300 and data.texts[0] == load(NLPConfig()).texts[0]


@pytest.mark.parametrize(
    ("table", "settings", "message"),
    [
        (
            "msg,stars\nnice,1\nbad,2\n",
            {},
            "set data.text_column to one of the columns: msg, stars",
        ),
        ("text,label\na,x\nb,x\nc,x\n", {}, "target 'label' has a single class (x)"),
        ("text,label\na,1\n", {"text_column": "msg"}, "data.text_column 'msg' is not a column"),
    ],
    ids=["no-text-column", "one-class", "named-column-missing"],
)
def test_bad_tables_are_one_clear_error(tmp_path, table, settings, message):
    path = tmp_path / "t.csv"
    path.write_text(table)
    config = NLPConfig.model_validate({"data": {"source": f"csv:{path}", **settings}})
    with pytest.raises(UserError, match=re.escape(message)):
        load(config)


def test_predict_takes_raw_strings(domain_run):
    run = domain_run("nlp")
    results = run.predict(
        ["WINNER!! You have won a free prize, call 09061701461 to claim", "see you at lunch", " "]
    )
    assert [r["label"] for r in results[:2]] == ["spam", "ham"] or run.metrics["accuracy"] < 0.9
    assert all(0 <= r["probability"] <= 1 and r["top_k"][0]["label"] == r["label"] for r in results)
    assert "empty text" in results[2]["note"]
    assert run.metrics["accuracy"] > 0.9  # two epochs, far above the 0.87 majority class
    assert {"precision_spam", "recall_spam", "f1"} <= set(run.metrics)


def test_evaluate_on_data_with_other_classes_is_refused(domain_run, tmp_path):
    run = domain_run("nlp")
    path = tmp_path / "other.csv"
    path.write_text("text,label\n" + "\n".join(f"t{i},{'a' if i % 2 else 'b'}" for i in range(40)))
    with pytest.raises(UserError, match="differ from the run's"):
        run.evaluate(data=f"csv:{path}")
    assert np.isfinite(run.metrics["loss"])


def test_explain_attributions_add_up_and_colour_the_words(domain_run, tmp_path):
    import tensorflow as tf

    from domains.nlp.classify import ngram_names, ngram_vector
    from domains.nlp.config import NLPConfig as Config
    from domains.nlp.explain import attribute

    run = domain_run("nlp")
    config = Config.model_validate(run.config)
    model = run.load_model()
    text = "Claim your FREE prize now, call 09061701461"
    item = attribute(model, config, text)
    classifier = model.get_layer(config.model.name)
    vector = ngram_vector(model, config.tokenizer, tf.constant([text]))
    # one name per classifier input; the vectorizers' OOV buckets are not inputs
    names = ngram_names(model)
    assert len(names) == vector.shape[-1] == classifier.input_shape[-1]
    assert "[UNK]" not in names and "chars:[UNK]" not in names
    gap = np.log(item["probability"]) - np.log(
        classifier(tf.zeros_like(vector)).numpy()[0, item["class_id"]]
    )
    assert sum(item["ngrams"].values()) == pytest.approx(gap, abs=0.02)  # completeness
    assert {"claim", "free", "prize"} <= set(item["ngrams"])
    png = run.explain([text, "see you at lunch"], out=str(tmp_path / "why.png"))
    assert png.is_file() and png.stat().st_size > 5000
    page = png.with_suffix(".html").read_text()
    assert page.count("<p>") == 2 and ">FREE</span>" in page and "09061701461" in page
