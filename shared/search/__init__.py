"""Hyperparameter and architecture search over config keys (`deepfield <domain> tune`).

`space` reads and checks a search space against a config schema (no TensorFlow),
`default_space` makes the modest one used without `--space`, and `evolution` is the
regularized-evolution oracle KerasTuner lacks. The tuner that trains a domain's trials
is `pipelines.tune`, since it calls the domains.
"""
