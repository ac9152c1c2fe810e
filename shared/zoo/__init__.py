"""The model zoo: classifiers built by name through `build_model`.

Importing this package registers every model: the builder modules are imported
here, after `registry`, so `MODELS` is complete however the zoo is imported.
"""

from shared.zoo.registry import (
    MODELS,
    build_model,
    count_weight_layers,
    model_info,
    model_options,
)

# Imported for their registrations.
from shared.zoo import resnet, small_cnn  # noqa: E402, F401  # isort: skip

__all__ = ["MODELS", "build_model", "count_weight_layers", "model_info", "model_options"]
