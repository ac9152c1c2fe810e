"""A block's `dtype` config once `model.quantize` has changed the layers it builds.

`model.quantize("int8")` gives each Dense/EinsumDense/Embedding a quantized dtype policy
(and an int8 kernel plus a scale). A functional model saves the config of its top-level
layers only, so a block that builds its own Dense layers (attention, feed-forward) would
rebuild them in float on reload and fail on the extra scale variable. KerasHub's
`Backbone.get_config` solves this with a `DTypePolicyMap` (layer path -> policy) as the
`dtype`; a layer whose policy is a map looks its own path up in it. The blocks here do the
same (they already pass `dtype=self.dtype_policy` to every sublayer they build).
"""

from __future__ import annotations

from typing import Any

import keras


def dtype_config(layer: keras.Layer) -> Any:
    """`layer`'s dtype for its config: the policy, or a map that also holds the quantized
    policies of the sublayers it builds, by path."""
    policy = layer.dtype_policy
    if not isinstance(policy, keras.dtype_policies.DTypePolicyMap):
        quantized = keras.dtype_policies.DTypePolicyMap(default_policy=policy)
        for sub in layer._flatten_layers(include_self=False, recursive=True):
            if sub.quantization_mode is not None:
                quantized[sub.path] = sub.dtype_policy
        if len(quantized):
            policy = quantized
    return keras.dtype_policies.serialize(policy)


def settle_policies(layer: keras.Layer) -> None:
    """At the end of a block's `build`: give each sublayer that took a policy map its own
    policy from it. Keras 3.15's quantized Dense reads `self.dtype_policy.quantization_mode`
    when it saves (`_get_kernel_with_merged_lora`), which a map answers with None, so a
    reloaded model would not save again; built, the sublayers no longer need the map."""
    for sub in layer._flatten_layers(include_self=False, recursive=True):
        policy = sub._dtype_policy
        if isinstance(policy, keras.dtype_policies.DTypePolicyMap) and sub.path:
            sub._dtype_policy = policy[sub.path]
