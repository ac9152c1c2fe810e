"""Trial values leave the oracle as plain Python values the config's YAML can hold.

KerasTuner's Bayesian oracle proposes numpy scalars (np.float64) once its Gaussian
process takes over from the initial random points; `yaml.safe_dump` refuses those, and
every such trial failed before `Space.decode` turned them into Python numbers.
"""

from __future__ import annotations

import keras_tuner
import numpy as np
import yaml

from shared.search.space import Param, Space


def test_bayesian_trial_values_decode_to_python_values(tmp_path):
    space = Space(
        [
            Param("train.learning_rate", "float", 1e-4, 1e-2, sampling="log"),
            Param("model.dropout", "float", 0.0, 0.5),
            Param("model.filters", "choice", values=("[16, 32]", "[32, 64]"), encoded=True),
        ]
    )
    oracle = keras_tuner.oracles.BayesianOptimizationOracle(
        objective=keras_tuner.Objective("val_loss", "min"),
        hyperparameters=space.to_hyperparameters(),
        max_trials=6,
        num_initial_points=2,
        seed=1,
    )
    oracle._set_project_dir(str(tmp_path), "project")
    oracle.verbose = 0
    seen = []
    for _ in range(6):
        trial = oracle.create_trial("tuner0")
        values = space.config_values(trial.hyperparameters.values)
        seen.append(values)
        assert not any(isinstance(v, np.generic) for v in values.values()), values
        assert yaml.safe_load(yaml.safe_dump(values)) == values
        loss = values["train.learning_rate"] + values["model.dropout"]
        oracle.update_trial(trial.trial_id, {"val_loss": loss})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    assert len(seen) == 6
    assert all(isinstance(v["model.dropout"], float) for v in seen)
