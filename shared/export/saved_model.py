"""Write a servable SavedModel version: aside, verified in a fresh process, then renamed.

Layout (what TensorFlow Serving reads):

    DIR/models.config                     every model under DIR (model_platform tensorflow)
    DIR/NAME/N/saved_model.pb, variables/
    DIR/NAME/N/assets.extra/tf_serving_warmup_requests   PredictionLog records
    DIR/NAME/N/assets.extra/deepfield.json               what was exported, and its check

TF Serving only loads numeric version folders, so the folder written aside
(`DIR/NAME/.partial-N-PID`) is invisible to it until the final rename, and a killed
export leaves nothing it would load (the next export removes such leftovers).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shared.errors import UserError
from shared.run_dir import write_atomic

LOG = logging.getLogger("deepfield.export")

MAX_WARMUP_RECORDS = 1000  # TF Serving reads at most this many warmup records
WARMUP_FILE = "tf_serving_warmup_requests"
METADATA_FILE = "deepfield.json"
PREDICT_METHOD = "tensorflow/serving/predict"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_PARTIAL = ".partial-"


@dataclass
class ServingSpec:
    """What a domain hands to the exporter.

    Attributes:
        module: A `tf.Module` that tracks the model and anything else the signatures
            use (lookup tables, constants); it is what `tf.saved_model.save` writes.
        signatures: Signature name -> `tf.function` with an `input_signature` whose
            `TensorSpec`s carry the input names; each returns a dict of named tensors.
            Must include "serving_default".
        warmup: Real example requests for "serving_default": one dict per request,
            input name -> array (a batch). Written as warmup records and used to verify.
        expected: For each warmup request, the outputs the in-process model gives
            (output name -> array). Numeric outputs are compared within `tolerance`,
            string outputs exactly.
        metadata: Anything a later `predict --model` or `evaluate --model` needs (domain,
            task, class names, input shape); stored in assets.extra/deepfield.json.
    """

    module: Any
    signatures: dict[str, Any]
    warmup: list[dict[str, np.ndarray]]
    expected: list[dict[str, np.ndarray]]
    metadata: dict[str, Any] = field(default_factory=dict)
    tolerance: float = 1e-4
    # Signature name -> TF Serving method name where it is not predict, e.g.
    # {"classify": "tensorflow/serving/classify"}: `tf.saved_model.save` marks every
    # signature as predict, so these are set in saved_model.pb before the rename.
    method_names: dict[str, str] = field(default_factory=dict)


def served_examples(
    signature, requests: list[dict[str, np.ndarray]]
) -> tuple[list[dict[str, np.ndarray]], list[dict[str, np.ndarray]]]:
    """(warmup, expected) of a `ServingSpec` whose in-process outputs are the signature's
    own on these requests: for modules where the graph is the only implementation of the
    preprocessing (the export then checks that the saved model loads and agrees)."""
    import tensorflow as tf

    expected = []
    for request in requests:
        out = signature(**{k: tf.constant(v) for k, v in request.items()})
        expected.append({k: v.numpy() for k, v in out.items()})
    return list(requests), expected


@dataclass
class ExportResult:
    path: Path  # DIR/NAME/N
    name: str
    version: int
    models_config: Path
    verification: dict[str, Any]
    signatures: dict[str, dict[str, Any]]

    def summary(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "name": self.name,
            "version": self.version,
            "models_config": str(self.models_config),
            "signatures": sorted(self.signatures),
            **{f"verify_{k}": v for k, v in self.verification.items()},
        }


# === Versions and models.config ===
def versions(model_dir: Path) -> list[int]:
    """The integer version folders TF Serving would see under `model_dir`."""
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def next_version(model_dir: Path) -> int:
    found = versions(model_dir)
    return found[-1] + 1 if found else 1


def write_models_config(root: Path, base_path: str = "/models") -> Path:
    """Regenerate `root/models.config` listing every model folder with a servable version.

    `base_path` is where `root` is seen by the server (the docker command in docs/serving.md
    mounts it at /models); use the absolute path of `root` for a server on this machine.
    """
    entries = []
    for model_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        if any((model_dir / str(v) / "saved_model.pb").is_file() for v in versions(model_dir)):
            entries.append(
                "  config {\n"
                f'    name: "{model_dir.name}"\n'
                f'    base_path: "{base_path.rstrip("/")}/{model_dir.name}"\n'
                '    model_platform: "tensorflow"\n'
                "  }\n"
            )
    path = root / "models.config"
    write_atomic(path, "model_config_list {\n" + "".join(entries) + "}\n")
    return path


def resolve_export(path: str | Path) -> Path:
    """`DIR/NAME/N` as given, or `DIR/NAME`'s newest version; UserError otherwise."""
    path = Path(path)
    if (path / "saved_model.pb").is_file():
        return path
    found = versions(path)
    if found and (path / str(found[-1]) / "saved_model.pb").is_file():
        return path / str(found[-1])
    if not path.exists():
        raise UserError(f"--model {path} does not exist")
    raise UserError(
        f"--model {path} is neither a SavedModel version folder (DIR/NAME/N) nor a model "
        "folder with numbered versions (DIR/NAME)"
    )


def read_metadata(version_dir: Path) -> dict[str, Any]:
    meta = version_dir / "assets.extra" / METADATA_FILE
    if not meta.is_file():
        raise UserError(f"{version_dir} was not exported by deepfield (no {meta.name})")
    return json.loads(meta.read_text())


# === Export ===
def _check_target(to: Path, name: str, version: int | None, overwrite: bool) -> int:
    if not _NAME.match(name):
        raise UserError(f"--name {name!r}: use letters, digits, '_', '.' or '-'")
    if to.exists() and not to.is_dir():
        raise UserError(f"--to {to} is a file; give a folder (it holds one folder per model)")
    try:
        (to / name).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"--to {to}: cannot create {to / name}: {err.strerror}") from None
    if not os.access(to / name, os.W_OK | os.X_OK) or not os.access(to, os.W_OK | os.X_OK):
        raise UserError(f"--to {to}: folder is not writable")
    if version is None:
        return next_version(to / name)
    if version < 1:
        raise UserError(f"--version must be a positive integer, got {version}")
    if (to / name / str(version)).exists() and not overwrite:
        raise UserError(
            f"{to / name / str(version)} already exists; pick another --version, omit it "
            "for the next one, or pass --overwrite"
        )
    return version


def _remove_leftovers(model_dir: Path) -> None:
    """Folders of exports that were killed before their rename."""
    for leftover in model_dir.glob(f"{_PARTIAL}*"):
        shutil.rmtree(leftover, ignore_errors=True)


def export_saved_model(
    spec: ServingSpec,
    to: str | Path,
    name: str,
    version: int | None = None,
    overwrite: bool = False,
    base_path: str = "/models",
    verify: bool = True,
) -> ExportResult:
    """Write `to/name/version` from `spec`, verify it, and regenerate `to/models.config`.

    Raises:
        UserError: the target is a file or not writable, the name is invalid, or the
            version exists and `overwrite` is false.
        RuntimeError: the fresh-process check gave outputs different from the
            in-process model (nothing is left behind).
    """
    import tensorflow as tf

    if "serving_default" not in spec.signatures:
        raise ValueError("a ServingSpec needs a 'serving_default' signature")
    to = Path(to)
    version = _check_target(to, name, version, overwrite)
    model_dir = to / name
    _remove_leftovers(model_dir)
    final = model_dir / str(version)
    partial = model_dir / f"{_PARTIAL}{version}-{os.getpid()}"
    try:
        tf.saved_model.save(spec.module, str(partial), signatures=spec.signatures)
        if spec.method_names:
            set_method_names(partial, spec.method_names)
        extra = partial / "assets.extra"
        extra.mkdir()
        requests = spec.warmup[:MAX_WARMUP_RECORDS]
        write_warmup_requests(extra / WARMUP_FILE, name, requests)
        info = signature_info(partial)
        verification = (
            verify_in_fresh_process(
                partial,
                requests,
                spec.expected,
                spec.tolerance,
                imports=list(spec.metadata.get("custom_ops") or []),
            )
            if verify
            else {"checked": False}
        )
        metadata = {
            **spec.metadata,
            "name": name,
            "version": version,
            "signatures": info,
            "verification": verification,
            "warmup_requests": len(requests),
        }
        (extra / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
        _move_into_place(partial, final)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    config = write_models_config(to, base_path)
    LOG.info("exported %s (signatures: %s)", final, ", ".join(sorted(info)))
    return ExportResult(final, name, version, config, verification, info)


def _move_into_place(partial: Path, final: Path) -> None:
    """Rename `partial` to `final`; an old `final` (overwrite) is removed only after."""
    if final.exists():
        old = final.with_name(f"{_PARTIAL}old-{final.name}-{os.getpid()}")
        os.rename(final, old)
        os.rename(partial, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(partial, final)


# === Warmup records ===
def write_warmup_requests(
    path: Path, model_name: str, requests: list[dict[str, np.ndarray]]
) -> None:
    """PredictionLog records (the format TF Serving replays at load) for serving_default."""
    import tensorflow as tf
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    with tf.io.TFRecordWriter(str(path)) as writer:
        for inputs in requests:
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name="serving_default")
            )
            for key, value in inputs.items():
                request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())


def read_warmup_requests(path: Path) -> list[dict[str, np.ndarray]]:
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    requests = []
    for raw in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
        log = prediction_log_pb2.PredictionLog.FromString(raw)
        requests.append({k: tf.make_ndarray(v) for k, v in log.predict_log.request.inputs.items()})
    return requests


# === Signatures ===
def set_method_names(saved_model_dir: Path, method_names: dict[str, str]) -> None:
    """Rewrite the method name of the named signatures in saved_model.pb."""
    from tensorflow.core.protobuf import saved_model_pb2

    path = saved_model_dir / "saved_model.pb"
    proto = saved_model_pb2.SavedModel.FromString(path.read_bytes())
    for meta in proto.meta_graphs:
        for name, method in method_names.items():
            if name not in meta.signature_def:
                raise ValueError(f"no signature {name!r} to mark as {method}")
            meta.signature_def[name].method_name = method
    write_atomic(path, proto.SerializeToString())


def signature_info(saved_model_dir: Path) -> dict[str, dict[str, Any]]:
    """Signature name -> method name, inputs and outputs (name -> dtype, shape).

    Read from saved_model.pb itself: the same information `saved_model_cli show --all`
    prints, and what TF Serving matches requests against.
    """
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel.FromString((saved_model_dir / "saved_model.pb").read_bytes())

    def tensors(mapping) -> dict[str, dict[str, Any]]:
        return {
            key: {
                "dtype": tf.dtypes.as_dtype(t.dtype).name,
                "shape": [None if d.size < 0 else d.size for d in t.tensor_shape.dim],
            }
            for key, t in sorted(mapping.items())
        }

    info = {}
    for key, sig in proto.meta_graphs[0].signature_def.items():
        if key.startswith("__"):
            continue
        info[key] = {
            "method_name": sig.method_name,
            "inputs": tensors(sig.inputs),
            "outputs": tensors(sig.outputs),
        }
    return info


# === Verification in a fresh process ===
# Runs with `python -c`: imports only tensorflow (and numpy through it), loads the
# SavedModel, and runs serving_default on the serialized requests.
_VERIFY_SCRIPT = r"""
import importlib, json, sys
import tensorflow as tf
model_dir, requests_file, index_file, outputs_file = sys.argv[1:5]
for module in sys.argv[5:]:  # the ops libraries the metadata's custom_ops names
    importlib.import_module(module)
index = json.load(open(index_file))
records = iter(tf.data.TFRecordDataset(requests_file).as_numpy_iterator())
fn = tf.saved_model.load(model_dir).signatures["serving_default"]
with tf.io.TFRecordWriter(outputs_file) as out:
    for request in index:
        inputs = {k: tf.io.parse_tensor(next(records), tf.as_dtype(d)) for k, d in request}
        result = fn(**inputs)
        for key in sorted(result):
            out.write(tf.io.serialize_tensor(result[key]).numpy())
        print(json.dumps({k: result[k].dtype.name for k in sorted(result)}), flush=True)
"""


def verify_in_fresh_process(
    saved_model_dir: Path,
    requests: list[dict[str, np.ndarray]],
    expected: list[dict[str, np.ndarray]],
    tolerance: float,
    imports: list[str] | None = None,
) -> dict[str, Any]:
    """Run the SavedModel in a new Python process and compare with `expected`.

    The process imports TensorFlow and, only where the export says its graph needs
    them (metadata `custom_ops`, e.g. tensorflow_text), those ops libraries: what a
    model server built with them would have.
    """
    import tensorflow as tf

    if len(expected) < len(requests):
        raise ValueError("a ServingSpec needs one expected output per warmup request")
    with tempfile.TemporaryDirectory(prefix="deepfield-verify-") as tmp:
        tmp = Path(tmp)
        index = []
        with tf.io.TFRecordWriter(str(tmp / "requests")) as writer:
            for inputs in requests:
                index.append([[k, tf.as_dtype(v.dtype).name] for k, v in sorted(inputs.items())])
                for _, value in sorted(inputs.items()):
                    writer.write(tf.io.serialize_tensor(tf.constant(value)).numpy())
        (tmp / "index.json").write_text(json.dumps(index))
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
        proc = subprocess.run(
            [sys.executable, "-c", _VERIFY_SCRIPT, str(saved_model_dir)]
            + [str(tmp / f) for f in ("requests", "index.json", "outputs")]
            + list(imports or []),
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                "the exported SavedModel failed in a fresh process:\n" + proc.stderr[-3000:]
            )
        dtypes = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
        outputs = iter(tf.data.TFRecordDataset(str(tmp / "outputs")).as_numpy_iterator())
        max_diff = 0.0
        for i, (request_dtypes, want) in enumerate(zip(dtypes, expected, strict=False)):
            for key, dtype in request_dtypes.items():
                got = tf.io.parse_tensor(next(outputs), tf.as_dtype(dtype)).numpy()
                if key not in want:
                    continue
                ref = np.asarray(want[key])
                if got.dtype.kind in "SUO":
                    if got.astype(bytes).tolist() != ref.astype(bytes).tolist():
                        raise RuntimeError(f"request {i}: output {key!r} differs: {got} vs {ref}")
                    continue
                diff = float(np.max(np.abs(got.astype(np.float64) - ref.astype(np.float64))))
                max_diff = max(max_diff, diff) if got.size else max_diff
                if not diff <= tolerance:
                    raise RuntimeError(
                        f"request {i}: output {key!r} differs from the in-process model by "
                        f"{diff:.3g} (tolerance {tolerance})"
                    )
    return {
        "checked": True,
        "requests": len(dtypes),
        "max_abs_diff": max_diff,
        "tolerance": tolerance,
        "process": "fresh python, tensorflow only",
    }
