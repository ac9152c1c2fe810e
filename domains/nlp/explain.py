"""Why the n-gram classifier decided: integrated gradients over its n-gram vector, and
the views both text explainers write (a PNG of each text's strongest n-grams or tokens,
an HTML page with its words shaded; `domains.nlp.encoder_explain` reuses them).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from domains.nlp import data as nlp_data
from domains.nlp.classify import ngram_names, ngram_vector
from domains.nlp.config import NLPConfig
from shared import model_io
from shared.input_contract import InputContract
from shared.run_dir import RunDir

LOG = logging.getLogger("deepfield.nlp")
EXPLAIN_EXAMPLES = 6  # test texts explained when none are given
IG_STEPS = 32
# TextVectorization's default standardization: lower case, ASCII punctuation stripped.
_PUNCTUATION = re.compile(r'[!"#$%&()\*\+,\-\./:;<=>?@\[\\\]^_`{|}~\']')


def texts_to_explain(config: NLPConfig, inputs: list[str]) -> list[str]:
    """The texts given, or the first `EXPLAIN_EXAMPLES` of the test split."""
    if inputs:
        return inputs
    data = nlp_data.load(config)
    return list(data.texts[data.splits["test"]][:EXPLAIN_EXAMPLES])


def explain(run: RunDir, config: NLPConfig, inputs: list[str], out: Path | None) -> Path:
    """Token attributions (integrated gradients over the n-gram vector) for each text:
    a PNG of each text's strongest n-grams and an HTML page with its words coloured."""
    inputs = texts_to_explain(config, inputs)
    model = model_io.load_model(run.model_path)
    names = InputContract.read(run).classes or []
    explained = [attribute(model, config, text) for text in inputs]
    return write_attributions(explained, names, run, out)


def write_attributions(explained, names: list[str], run: RunDir, out: Path | None) -> Path:
    """The attributions of each text as a PNG of its strongest n-grams (or tokens) and
    an HTML page with its words shaded; returns the PNG's path."""
    target = Path(out) if out else run.plots / "token_attributions.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    ngram_chart(explained, names, target)
    html = target.with_suffix(".html")
    html.write_text(coloured_html(explained, names))
    LOG.info("token attributions: %s and %s", target, html)
    return target


def attribute(model: keras.Model, config: NLPConfig, text: str) -> dict[str, Any]:
    """The predicted class and each present n-gram's attribution towards it."""
    from shared.explain.integrated_gradients import integrated_gradients

    classifier = model.get_layer(config.model.name)
    vector = ngram_vector(model, config.tokenizer, tf.constant([text]))
    probabilities = classifier(vector, training=False).numpy()[0]
    predicted = int(np.argmax(probabilities))
    attributions = integrated_gradients(
        lambda v: tf.math.log(classifier(v, training=False)[:, predicted : predicted + 1] + 1e-9),
        vector,
        tf.zeros_like(vector[0]),
        IG_STEPS,
    ).numpy()[0]
    names = ngram_names(model)
    present = np.flatnonzero(vector.numpy()[0])
    ngrams = {names[i]: float(attributions[i]) for i in present}
    return {
        "text": text,
        "class_id": predicted,
        "probability": float(probabilities[predicted]),
        "ngrams": ngrams,
    }


def word_scores(text: str, ngrams: dict[str, float]) -> list[tuple[str, float]]:
    """Each word of `text` with its share of the n-grams it is part of (a character
    n-gram's attribution is shared by the words that contain it)."""
    # A word's keys: itself without punctuation (its n-grams under `punctuation: strip`,
    # and where character n-grams are credited) and the pieces punctuation splits it
    # into (its n-grams under `split`).
    words = [
        {_PUNCTUATION.sub("", word.lower()), *re.findall(r"[^\W_]+", word.lower())}
        for word in text.split()
    ]
    share: dict[str, float] = {}
    for gram, value in ngrams.items():
        if gram.startswith("chars:"):
            chars = gram[len("chars:") :]
            parts = [w for w in dict.fromkeys(text.lower().split()) if chars.strip() in w]
            parts = [_PUNCTUATION.sub("", w) for w in parts]
        else:
            parts = gram.split()
        for part in parts:
            share[part] = share.get(part, 0.0) + value / len(parts)
    return [
        (word, sum(share.get(key, 0.0) for key in keys))
        for word, keys in zip(text.split(), words, strict=True)
    ]


def coloured_html(explained: list[dict[str, Any]], names: list[str]) -> str:
    """One paragraph per text, words shaded red towards the predicted class, blue against."""
    import html

    rows = []
    for item in explained:
        scores = word_scores(item["text"], item["ngrams"])
        scale = max([abs(v) for _, v in scores] + [1e-9])
        spans = []
        for word, value in scores:
            alpha = min(1.0, abs(value) / scale)
            colour = "220,50,47" if value > 0 else "38,139,210"
            spans.append(
                f'<span style="background: rgba({colour},{alpha:.2f})" '
                f'title="{value:+.4f}">{html.escape(word)}</span>'
            )
        label = names[item["class_id"]] if names else item["class_id"]
        rows.append(
            f"<p><b>{html.escape(str(label))}</b> ({item['probability']:.3f}): "
            + " ".join(spans)
            + "</p>"
        )
    return (
        "<html><head><meta charset='utf-8'><title>Token attributions</title></head><body>"
        "<h3>Integrated gradients: red pushes towards the predicted class, blue away</h3>"
        + "\n".join(rows)
        + "</body></html>\n"
    )


def ngram_chart(explained: list[dict[str, Any]], names: list[str], path: Path) -> Path:
    """Per text, horizontal bars of its eight strongest n-grams (signed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(explained), 1, figsize=(7, 2.2 * len(explained)), squeeze=False)
    for ax, item in zip(axes[:, 0], explained, strict=True):
        top = sorted(item["ngrams"].items(), key=lambda kv: -abs(kv[1]))[:8][::-1]
        ax.barh([g for g, _ in top], [v for _, v in top],
                color=["#dc322f" if v > 0 else "#268bd2" for _, v in top])  # fmt: skip
        label = names[item["class_id"]] if names else item["class_id"]
        text = item["text"] if len(item["text"]) <= 70 else item["text"][:67] + "..."
        ax.set_title(f"{label} ({item['probability']:.2f}): {text}", fontsize=8, loc="left")
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
