"""Export for TensorFlow Serving (SavedModel + warmup + models.config) and TFLite.

A domain describes what to serve as a `ServingSpec` (a `tf.Module` holding the model,
its named signatures, and real example requests with the outputs the in-process model
gave for them); `export_saved_model` writes the version directory aside, verifies it in
a fresh process, renames it into place and regenerates `models.config`.
"""

from shared.export.saved_model import (
    ExportResult,
    ServingSpec,
    export_saved_model,
    next_version,
    resolve_export,
    served_examples,
    signature_info,
    write_models_config,
)

__all__ = [
    "ExportResult",
    "ServingSpec",
    "export_saved_model",
    "next_version",
    "resolve_export",
    "served_examples",
    "signature_info",
    "write_models_config",
]
