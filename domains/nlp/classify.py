"""Text classification: train, evaluate and predict on a run directory.

The trained model takes raw strings: `TextVectorization` (adapted on the training split
only) sits inside it in front of the zoo classifier, so model.keras, predict and the
export all read text exactly as training did.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from sklearn.metrics import confusion_matrix

from domains.nlp import data as nlp_data
from domains.nlp.config import NLPConfig
from shared import model_io, plots
from shared.distribute import select_strategy
from shared.errors import UserError
from shared.input_contract import InputContract, InputSpec
from shared.metrics import classification_metrics, per_class_metrics
from shared.model_card import training_rows, write_model_card
from shared.run_dir import RunDir
from shared.training.trainer import fit, history_rows, make_optimizer, runtime_scope
from shared.training.weights import class_weights
from shared.zoo import build_model

LOG = logging.getLogger("deepfield.nlp")
DOMAIN, TASK = "nlp", "classify"


# === Model ===
def is_ngram_model(config: NLPConfig) -> bool:
    """Bag-of-n-gram models (zoo kind text_classifier) read TextVectorization vectors;
    the others (rnn, bert) read token sequences (`domains.nlp.encoders`)."""
    from shared.zoo.registry import model_spec

    return model_spec(config.model.name).kind == "text_classifier"


def build_text_classifier(config: NLPConfig, data: nlp_data.TextData, run=None) -> keras.Model:
    """Raw string -> tokenizer (fitted on the training split) -> the zoo classifier."""
    if not is_ngram_model(config):
        from domains.nlp import encoders

        return encoders.build_sequence_classifier(config, data, run)
    train_texts = tf.data.Dataset.from_tensor_slices(data.texts[data.splits["train"]]).batch(1024)
    vectorizers = ngram_vectorizers(config.tokenizer)
    for vectorizer in vectorizers:
        vectorizer.adapt(train_texts)
    width = feature_width(vectorizers)
    classifier = build_model(
        config.model.name,
        input_shape=(width,),
        num_classes=len(data.class_names),
        **config.model.options(),
    )
    inputs = keras.Input(shape=(), dtype="string", name="text")
    return keras.Model(
        inputs, classifier(featurize(vectorizers, config.tokenizer, inputs)), name="text_classifier"
    )


def ngram_vectorizers(tokenizer) -> list[keras.layers.TextVectorization]:
    """Word n-grams, plus character n-grams when `tokenizer.char_ngrams` > 0.

    Character n-grams carry what words miss on short, noisy texts (misspellings, word
    stems, "£", "www.", "!!!"): on the shipped sets they add 1 to 4 points of accuracy to
    a linear model over word n-grams (measured with scikit-learn's TF-IDF + logistic
    regression on the same splits; see benchmarks/nlp_classify.py).
    """
    from shared.blocks import lower_and_split_punctuation

    split = tokenizer.punctuation == "split"
    layers = [
        keras.layers.TextVectorization(
            max_tokens=tokenizer.max_tokens,
            standardize=lower_and_split_punctuation if split else "lower_and_strip_punctuation",
            ngrams=tokenizer.ngrams,
            output_mode=tokenizer.output_mode,
            name="vectorizer",
        )
    ]
    if tokenizer.char_ngrams:
        layers.append(
            keras.layers.TextVectorization(
                max_tokens=tokenizer.char_max_tokens,
                ngrams=tuple(range(1, tokenizer.char_ngrams + 1)),
                split="character",
                standardize="lower",  # punctuation and symbols are signal here
                output_mode=tokenizer.output_mode,
                name="char_vectorizer",
            )
        )
    return layers


def vectorizer_columns(vectorizer: keras.layers.TextVectorization, text):
    """One vectorizer's weights for `text`, less column 0.

    Column 0 of a TextVectorization vector is its OOV bucket, the count of every n-gram
    outside the vocabulary. It is dropped: it says nothing about the class, and in
    `tf_idf` mode its count (dozens of unseen character n-grams per text) dominates the
    L2 norm and drowns the real n-grams (SMS test accuracy of a logistic regression on
    these features: 0.978 with it, 0.987 without). `feature_width` and `ngram_names`
    leave it out too.
    """
    return keras.ops.cast(vectorizer(text), "float32")[:, 1:]


def feature_width(vectorizers) -> int:
    """How many inputs the classifier reads: every vocabulary less its OOV column."""
    return sum(v.vocabulary_size() - 1 for v in vectorizers)


def featurize(vectorizers, tokenizer, text, l2_layer=None):
    """The classifier's input: each vectorizer's weights (L2-normalised per family when
    `tokenizer.normalize`, as scikit-learn's TfidfVectorizer does), side by side.

    `l2_layer(name)` returns a trained model's normalisation layer (`ngram_vector`);
    without it new ones are made, to build the model.
    """
    parts = []
    for vectorizer in vectorizers:
        x = vectorizer_columns(vectorizer, text)
        if tokenizer.normalize:
            name = f"{vectorizer.name}_l2"
            l2 = l2_layer(name) if l2_layer else keras.layers.UnitNormalization(name=name)
            x = l2(x)
        parts.append(x)
    if len(parts) == 1:
        return parts[0]
    return keras.layers.Concatenate(name="ngrams")(parts)


def model_vectorizers(model: keras.Model) -> list[keras.layers.TextVectorization]:
    return [
        model.get_layer(name)
        for name in ("vectorizer", "char_vectorizer")
        if any(layer.name == name for layer in model.layers)
    ]


def ngram_vector(model: keras.Model, tokenizer, texts: tf.Tensor) -> tf.Tensor:
    """What the classifier sees for `texts` (the trained model's own layers)."""
    return featurize(model_vectorizers(model), tokenizer, texts, model.get_layer)


def ngram_names(model: keras.Model) -> list[str]:
    """A name per input of the classifier: the word n-gram, or `chars:` and the
    character n-gram (TextVectorization joins the characters with spaces)."""
    names = []
    for vectorizer in model_vectorizers(model):
        vocabulary = vectorizer.get_vocabulary()[1:]  # no OOV column (vectorizer_columns)
        if vectorizer.name == "char_vectorizer":
            vocabulary = ["chars:" + (g[::2] if len(g) > 1 else g) for g in vocabulary]
        names.extend(vocabulary)
    return names


def as_strings(texts: np.ndarray | list[str]) -> tf.Tensor:
    """A (N,) string tensor: what the model's text input takes."""
    return tf.constant(np.asarray(texts, dtype=object).reshape(-1).astype(str))


# === Training ===
def train(config: NLPConfig, run: RunDir) -> dict[str, Any]:
    with runtime_scope(config.train, config.runtime):
        return _train(config, run)


def _train(config: NLPConfig, run: RunDir) -> dict[str, Any]:
    strategy = select_strategy(config.runtime)
    data = nlp_data.load(config)
    record_data(run, config, data)
    batch, seed = config.train.batch_size, config.runtime.seed
    rows = data.splits["train"]

    weights = class_weights(data.labels[rows], len(data.class_names), config.data.class_weight)

    def dataset(split: str, shuffle: bool) -> tf.data.Dataset:
        picked = data.splits[split]
        labels = data.labels[picked]
        columns = (data.texts[picked], labels)
        if weights is not None and split == "train":
            columns += (weights[labels],)
        ds = tf.data.Dataset.from_tensor_slices(columns)
        ds = ds.shuffle(len(picked), seed=seed) if shuffle else ds
        return ds.batch(batch).prefetch(2)

    steps = config.train.steps_per_epoch or max(1, int(np.ceil(len(rows) / batch)))
    with strategy.scope():
        model = build_text_classifier(config, data, run)
        model.compile(
            optimizer=make_optimizer(config.train, steps),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
    fit(model, dataset("train", True), dataset("validation", False), run=run, train=config.train)
    model_io.save_model(model, run.model_path)
    model = model_io.load_model(run.model_path)  # evaluate what users will load
    metrics = evaluate_model(model, data, "test", run)
    plots.training_curves(history_rows(run.history_path), run.plots / "training_curves.png")
    write_card(config, run, data, model, metrics)
    return metrics


def record_data(run: RunDir, config: NLPConfig, data: nlp_data.TextData) -> None:
    """data_splits.json and the input contract (one raw string, the classes)."""
    report = data.report
    run.write_splits(
        data.spec,
        {name: len(rows) for name, rows in data.splits.items()},
        class_counts=report.get("class_counts"),
        seed=config.runtime.seed,
        **{
            k: report[k]
            for k in ("stratified", "duplicates", "text_column", "target", "dropped_rows")
            if k in report
        },
    )
    InputContract(
        DOMAIN,
        TASK,
        [InputSpec("text", "string", [], "raw text; tokenized inside the model, any length")],
        classes=list(data.class_names),
        details={"tokenizer": config.tokenizer.model_dump(), "source": data.spec},
    ).write(run)


def write_card(config: NLPConfig, run: RunDir, data, model: keras.Model, metrics) -> None:
    if is_ngram_model(config):
        tokenizer = config.tokenizer
        described = f"word {tokenizer.ngrams}-grams" + (
            f" and character 1-{tokenizer.char_ngrams}-grams" if tokenizer.char_ngrams else ""
        )
        model_rows = {
            "architecture": config.model.name,
            "tokenizer": f"TextVectorization: {described}, {tokenizer.output_mode}"
            + (", L2-normalised" if tokenizer.normalize else ""),
            "vocabulary": feature_width(model_vectorizers(model)),
            "parameters": f"{model.get_layer(config.model.name).count_params():,}",
        }
        limitations = [
            "A bag of n-grams ignores word order beyond its n-grams: negation far from "
            "its word and sarcasm are missed."
        ]
    else:
        from domains.nlp import encoders

        described, model_rows, limitations = encoders.card_model(config, model)
    write_model_card(
        run,
        title=f"{config.model.name} text classifier",
        summary=f"A {config.model.name} over {described} classifying "
        f"{len(data.class_names)} classes, trained with Deepfield on `{data.spec}`.",
        data={
            "source": data.spec,
            "classes": ", ".join(data.class_names),
            "text column": data.report.get("text_column"),
            "target": data.report.get("target"),
            "duplicate texts kept in one split": data.report.get("duplicates", {}).get("rows", 0),
            **{f"{name} texts": len(rows) for name, rows in data.splits.items()},
        },
        model=model_rows,
        training=training_rows(
            config.train, config.runtime, **{"class weights": config.data.class_weight}
        ),
        metrics=metrics,
        intended_use="Sorting short texts like those of the training source into its "
        "classes; the served model takes raw strings.",
        limitations=[
            *limitations,
            "Metrics come from a held-out split of the same source; texts from another "
            "channel, period or language may score lower.",
        ],
    )


# === Evaluation ===
def evaluate_model(
    model: keras.Model, data: nlp_data.TextData, split: str, run: RunDir, out: Path | None = None
) -> dict[str, Any]:
    """Accuracy, macro F1, per-class precision and recall, the confusion matrix plot."""
    rows = data.splits[split]
    if not len(rows):
        raise UserError(f"split {split!r} of {data.spec} is empty")
    labels = data.labels[rows]
    probabilities = np.asarray(model.predict(as_strings(data.texts[rows]), verbose=0), np.float64)
    metrics = {
        **classification_metrics(labels, probabilities),
        **per_class_metrics(labels, probabilities, data.class_names),
        "split": split,
        "num_examples": len(rows),
        "task": TASK,
        "domain": DOMAIN,
    }
    run.write_metrics(metrics, path=out)
    matrix = confusion_matrix(labels, probabilities.argmax(1), labels=range(len(data.class_names)))
    plots.confusion_matrix(matrix, data.class_names, run.plots / "confusion_matrix.png")
    return metrics


def evaluate(
    run: RunDir, config: NLPConfig, *, source: str | None, split: str, out: Path | None
) -> dict[str, Any]:
    """A finished run on a split of its data, or of another source with its classes."""
    contract = InputContract.read(run)
    if source:
        config = config.model_copy(
            update={"data": config.data.model_copy(update={"source": source})}
        )
    data = nlp_data.load(config)
    if data.class_names != contract.classes:
        raise UserError(
            f"classes of {data.spec} ({', '.join(data.class_names)}) differ from the run's "
            f"({', '.join(contract.classes or [])})"
        )
    return evaluate_model(model_io.load_model(run.model_path), data, split, run, out)


# === Prediction ===
def predict(run: RunDir, config, inputs: list[str], top_k: int = 3) -> list[dict[str, Any]]:
    """One result per text: label, class id, probability and the top-k classes."""
    names = InputContract.read(run).classes or []
    probabilities = model_io.load_model(run.model_path).predict(as_strings(inputs), verbose=0)
    results = []
    for text, probs in zip(inputs, probabilities, strict=True):
        order = np.argsort(-probs)[: min(top_k, len(names))]
        result = {
            "input": text,
            "label": names[int(order[0])],
            "class_id": int(order[0]),
            "probability": round(float(probs[order[0]]), 6),
            "top_k": [
                {"label": names[int(i)], "probability": round(float(probs[i]), 6)} for i in order
            ],
        }
        if not text.strip():
            result["note"] = "empty text: the prediction is the model's prior"
        results.append(result)
    return results


# === Explanation ===
def explain(run: RunDir, config: NLPConfig, inputs: list[str], out: Path | None) -> Path:
    """Token attributions for each text (`domains.nlp.explain`; a sequence model's in
    `domains.nlp.encoder_explain`)."""
    if not is_ngram_model(config):
        from domains.nlp import encoder_explain

        return encoder_explain.explain(run, config, inputs, out)
    from domains.nlp import explain as ngram_explain

    return ngram_explain.explain(run, config, inputs, out)


# === Export ===
def serving_spec(run: RunDir, config: NLPConfig):
    """The SavedModel of a finished classifier (see `domains.nlp.serving`)."""
    from domains.nlp import serving

    return serving.serving_spec(run, config)
