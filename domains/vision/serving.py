"""Vision serving signatures: the shared image-classifier module (`shared.export.
image_serving`: PNG/JPEG bytes or uint8 tensors in; `probabilities`, `class_id` and
`label` out), with warmup requests from the run's test split."""

from __future__ import annotations

import numpy as np

from shared.data import ImageData
from shared.export import ServingSpec
from shared.export.image_serving import (
    ImageClassifierServing,
    class_outputs,
    warmup_requests,
)
from shared.run_dir import RunDir


def serving_spec(run: RunDir, model, data: ImageData) -> ServingSpec:
    """The export of a finished vision run, with warmup requests from its test split."""
    from domains.vision.data import run_inputs

    image_shape, class_names = run_inputs(run)
    module = ImageClassifierServing(model, class_names, image_shape, name="vision_classifier")
    split = "test" if len(data.splits["test"]) else "train"
    images, _ = data.splits[split].arrays(limit=64)

    def outputs(decoded: np.ndarray) -> dict[str, np.ndarray]:
        # The in-process reference: the Keras model on the same bytes decoded eagerly.
        return class_outputs(model.predict(decoded, verbose=0), class_names)

    warmup, expected = warmup_requests(images, image_shape, outputs)
    return ServingSpec(
        module=module,
        signatures=module.signatures(),
        warmup=warmup,
        expected=expected,
        metadata={
            "domain": "vision",
            "task": "classify",
            "class_names": class_names,
            "image_shape": list(image_shape),
            "run": str(run.path.resolve()),
            "data": data.spec,
        },
    )
