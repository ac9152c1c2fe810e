"""The nlp export: `serving_default` takes a batch of raw strings named `text`.

Tokenization happens inside the graph (TextVectorization's lookup table and string ops,
all core TensorFlow), so the SavedModel loads in a process that imports only TensorFlow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from domains.nlp import data as nlp_data
from domains.nlp.config import NLPConfig
from shared import model_io
from shared.export import ServingSpec
from shared.input_contract import InputContract
from shared.run_dir import RunDir

WARMUP_SINGLE = 8  # one-text requests, what a client mostly sends
WARMUP_BATCH = 32  # plus one batch


class TextServing(tf.Module):
    def __init__(self, model, class_names: list[str]):
        super().__init__(name="nlp_classify")
        self.model = model
        self.classes = tf.constant(class_names)
        self.serve = tf.function(
            self._serve, input_signature=[tf.TensorSpec([None], tf.string, name="text")]
        )

    def _serve(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        probabilities = self.model(text, training=False)
        class_id = tf.argmax(probabilities, axis=-1)
        return {
            "probabilities": probabilities,
            "class_id": class_id,
            "label": tf.gather(self.classes, class_id),
        }


def custom_ops(model) -> list[str]:
    """["tensorflow_text"] when the model tokenizes with KerasHub's WordPiece (its ops are
    tensorflow_text's: a process loads the export after `import tensorflow_text`, and a
    stock TF Serving binary, which lacks them, cannot serve it); [] for TextVectorization
    models, whose core TensorFlow ops any model server runs."""
    kerashub = any(type(layer).__module__.startswith("keras_hub.") for layer in model.layers)
    return ["tensorflow_text"] if kerashub else []


def serving_spec(run: RunDir, config: NLPConfig) -> ServingSpec:
    """The export of a finished text classifier, warmed up with its own test texts."""
    contract = InputContract.read(run)
    module = TextServing(model_io.load_model(run.model_path), list(contract.classes or []))
    data = nlp_data.load(config)
    return text_serving_spec(
        module,
        data.texts[data.splits["test"]],
        {
            "domain": "nlp",
            "task": "classify",
            "class_names": list(contract.classes or []),
            "tokenizer": contract.details.get("tokenizer"),
            "custom_ops": custom_ops(module.model),
            "run": str(Path(run.path).resolve()),
            "data": data.spec,
        },
    )


def text_serving_spec(
    module: tf.Module,
    texts,
    metadata: dict,
    single: int = WARMUP_SINGLE,
    batch: int = WARMUP_BATCH,
) -> ServingSpec:
    """The ServingSpec of every nlp export: `module.serve` (raw strings `text` in) as
    `serving_default`, warmed up with `single` one-text requests and one batch of the
    next `batch` real texts, and the outputs they must give in a fresh process."""
    texts = [str(t) for t in list(texts)[: single + batch]]
    requests = [np.array([t], dtype=object) for t in texts[:single]]
    requests.append(np.array(texts[single:], dtype=object))
    expected = [
        {k: v.numpy() for k, v in module.serve(tf.constant(request.astype(str))).items()}
        for request in requests
    ]
    return ServingSpec(
        module=module,
        signatures={"serving_default": module.serve},
        warmup=[{"text": request} for request in requests],
        expected=expected,
        metadata=metadata,
    )
