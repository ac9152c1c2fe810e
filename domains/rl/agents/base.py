"""What every agent shares: its networks' state for checkpoints, and how it acts.

An agent owns a Keras model (the one saved as model.keras and exported), an optimizer,
a NumPy random generator (all of its sampling goes through it, so a seed repeats a
run), and a `Forward` pass for acting. `train(loop)` runs until the loop is done.
"""

from __future__ import annotations

import json

import keras
import numpy as np

from domains.rl.config import RLConfig
from domains.rl.envs import EnvSpec
from domains.rl.networks import Forward, greedy_actions, sample_actions


class Agent:
    name = "agent"

    def __init__(self, config: RLConfig, spec: EnvSpec, seed: int):
        self.config = config
        self.spec = spec
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.model: keras.Model
        self.optimizer: keras.optimizers.Optimizer
        self.forward: Forward

    # === Acting ===
    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Actions the env accepts for a batch of observations (evaluation, play)."""
        outputs = self.forward(obs)
        if deterministic or "q_values" in outputs:
            return greedy_actions(outputs, self.spec)
        actions, _ = sample_actions(outputs, self.spec, self.rng)
        return greedy_actions({"mean": actions}, self.spec) if not self.spec.discrete else actions

    def train(self, loop) -> None:
        raise NotImplementedError

    # === Checkpoint state ===
    def tracked(self) -> dict[str, list]:
        """Variable lists saved in checkpoints, by prefix (model, optimizer, ...)."""
        if not self.optimizer.built:
            self.optimizer.build(self.model.trainable_variables)
        return {"model": self.model.weights, "optimizer": self.optimizer.variables}

    def extra_state(self) -> dict[str, np.ndarray]:
        return {}

    def load_extra_state(self, arrays: dict[str, np.ndarray]) -> None:
        pass

    def state(self) -> dict[str, np.ndarray]:
        arrays = {
            f"{prefix}/{i}": np.asarray(variable.numpy())
            for prefix, variables in self.tracked().items()
            for i, variable in enumerate(variables)
        }
        arrays["rng"] = np.array(json.dumps(self.rng.bit_generator.state))
        arrays.update(self.extra_state())
        return arrays

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        for prefix, variables in self.tracked().items():
            saved = [arrays.get(f"{prefix}/{i}") for i in range(len(variables))]
            if any(
                a is None or a.shape != tuple(v.shape)
                for a, v in zip(saved, variables, strict=True)
            ):
                raise ValueError(
                    f"the checkpoint's {prefix} variables do not match this {self.name} agent; "
                    "it was written by a different network"
                )
            for variable, array in zip(variables, saved, strict=True):
                variable.assign(array)
        self.rng.bit_generator.state = json.loads(str(arrays["rng"]))
        self.load_extra_state(arrays)
        self.forward.sync()
