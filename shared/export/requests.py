"""Client requests for TF Serving: REST row-format JSON and gRPC PredictRequest.

`rest_body` builds what a client POSTs to `/v1/models/NAME:predict`; `parse_rest_body`
reads such a body against a signature the way TF Serving's row-format parser does
(instances are objects keyed by input name, or bare values when the signature has one
input; `{"b64": ...}` carries bytes), so tests can prove that docs/serving.md's request
matches the exported signature's input names and dtypes without a server.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from shared.errors import UserError

_STRING = "string"


def _encode(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, dict):
        return {key: _encode(v) for key, v in value.items()}
    if isinstance(value, np.ndarray):
        return [_encode(v) for v in value.tolist()] if value.ndim else _encode(value.item())
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def rest_body(instances: list[Any], signature_name: str | None = None) -> dict[str, Any]:
    """A `:predict` request body in row format; bytes become `{"b64": ...}`."""
    body: dict[str, Any] = {"instances": [_encode(instance) for instance in instances]}
    if signature_name:
        body["signature_name"] = signature_name
    return body


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def parse_rest_body(
    body: dict[str, Any], signatures: dict[str, dict[str, Any]]
) -> tuple[str, dict[str, np.ndarray]]:
    """(signature name, input name -> batch array) for a row-format body.

    `signatures` is `shared.export.signature_info(...)`. Raises UserError where TF
    Serving would answer 400: unknown signature, missing or extra input names, a
    string input given numbers (or the reverse), or instances of different shapes.
    """
    name = body.get("signature_name", "serving_default")
    if name not in signatures:
        raise UserError(f"unknown signature {name!r}; the model has {sorted(signatures)}")
    inputs = signatures[name]["inputs"]
    instances = body.get("instances")
    if not isinstance(instances, list) or not instances:
        raise UserError('the body needs a non-empty "instances" list (row format)')
    columns: dict[str, list[Any]] = {key: [] for key in inputs}
    for i, instance in enumerate(instances):
        keyed = isinstance(instance, dict) and set(instance) != {"b64"}
        if not keyed:
            if len(inputs) != 1:
                raise UserError(
                    f"instance {i} is a bare value but the signature has inputs "
                    f"{sorted(inputs)}; send objects keyed by input name"
                )
            instance = {next(iter(inputs)): instance}
        if set(instance) != set(inputs):
            raise UserError(
                f"instance {i} has inputs {sorted(instance)}, the signature takes {sorted(inputs)}"
            )
        for key, value in instance.items():
            columns[key].append(_decode(value))
    tensors = {}
    for key, values in columns.items():
        dtype = inputs[key]["dtype"]
        array = np.array(values, dtype=object if dtype == _STRING else None)
        if dtype == _STRING:
            flat = array.ravel().tolist()
            if not all(isinstance(v, bytes | str) for v in flat):
                raise UserError(f"input {key!r} takes strings or {{'b64': ...}} bytes")
            array = np.array(
                [v.encode() if isinstance(v, str) else v for v in flat], dtype=object
            ).reshape(array.shape)
        elif array.dtype == object or array.dtype.kind in "SU":
            raise UserError(f"input {key!r} takes {dtype} numbers, got {array.dtype} values")
        else:
            array = array.astype(dtype)
        expected_rank = len(inputs[key]["shape"])
        if array.ndim != expected_rank:
            raise UserError(
                f"input {key!r}: instances give rank {array.ndim - 1}, the signature "
                f"expects rank {expected_rank - 1} per instance"
            )
        tensors[key] = array
    return name, tensors


def grpc_request(model_name: str, inputs: dict[str, np.ndarray], signature_name: str):
    """A `tensorflow.serving.PredictRequest` for the gRPC API (port 8500)."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return request
