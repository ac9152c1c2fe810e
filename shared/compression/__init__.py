"""Model compression for any Keras model: pruning, quantization, distillation, measuring.

- `pruning`: magnitude pruning with a polynomial sparsity schedule (Zhu & Gupta 2017, as
  TF Model Optimization's `PolynomialDecay`), as a Keras callback, because TFMOT does not
  support Keras 3 (tensorflow/model-optimization#1119);
- `quantization`: Keras 3's own `model.quantize` (int8, int4, float8), reporting which
  layers it changed and which weight layers it leaves in float;
- `distillation`: the keras-io "Knowledge Distillation" loss (hard labels plus the KL
  divergence of teacher and student at a temperature) attached to a compiled student;
- `measure`: what compression buys: compressed size, parameters, non-zero parameters,
  latency at batch 1.

Nothing here knows a domain; `pipelines.compress` runs them through a domain's training.
"""

QUANTIZE_MODES = ("int8", "int4", "float8")  # what Keras 3.15's model.quantize offers
