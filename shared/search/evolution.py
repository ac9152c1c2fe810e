"""Regularized evolution (Real et al. 2019, "Regularized Evolution for Image Classifier
Architecture Search") as a KerasTuner oracle, since KerasTuner ships none.

The first `population_size` completed trials are random. Then each new trial is a
child: `sample_size` members of the population are drawn at random, the best of them is
the parent, and the child is the parent with ONE hyperparameter mutated (a choice or a
flag to another value; a number to a neighbouring step or a fresh sample). The
population is the `population_size` most recently completed trials, so each child that
completes pushes out the OLDEST member (aging), however good it was: that is what
regularizes the search against lucky early scores.

Failed trials never join the population. The population is part of the oracle's state
(`get_state`/`set_state`), and each child's random draws are seeded by the oracle seed
and the trial id, so a killed search resumes to the same choices.
"""

from __future__ import annotations

import math
import random
from typing import Any

import keras_tuner
from keras_tuner.src.engine import trial as trial_module
from keras_tuner.src.engine.hyperparameters import hp_types

RUNNING = trial_module.TrialStatus.RUNNING
COMPLETED = trial_module.TrialStatus.COMPLETED
STOPPED = trial_module.TrialStatus.STOPPED
TRIES = 50  # mutations tried before a child that was already tried is given up


class RegularizedEvolutionOracle(keras_tuner.Oracle):
    """Tournament selection, single mutations and aging over KerasTuner's space.

    Args:
        population_size: P, the members kept (and the random trials it starts with).
        sample_size: S, the members drawn for each tournament (at most P).
        Others as `keras_tuner.Oracle` (objective, max_trials, hyperparameters, seed, ...).
    """

    def __init__(
        self,
        objective=None,
        max_trials: int | None = None,
        population_size: int = 20,
        sample_size: int = 5,
        hyperparameters=None,
        seed: int | None = None,
        **kwargs: Any,
    ):
        if population_size < 2 or not 1 <= sample_size <= population_size:
            raise ValueError(
                f"need population_size >= 2 and 1 <= sample_size <= population_size "
                f"(got {population_size}, {sample_size})"
            )
        super().__init__(
            objective=objective,
            max_trials=max_trials,
            hyperparameters=hyperparameters,
            seed=seed,
            **kwargs,
        )
        self.population_size = population_size
        self.sample_size = sample_size
        self.population: list[str] = []  # trial ids, oldest first

    # === Choosing a trial's values ===
    def populate_space(self, trial_id: str) -> dict[str, Any]:
        if len(self.population) < self.population_size:
            values = self._random_values()
            return {"status": STOPPED, "values": None} if values is None else _run(values)
        rng = random.Random(f"{self.seed}:{trial_id}")
        for _ in range(TRIES):
            parent = self.tournament(rng)
            child = self.mutate(parent.hyperparameters.values, rng)
            if child is not None and not self._duplicate(child):
                return _run(child)
        values = self._random_values()  # the neighbourhood is exhausted: explore
        return {"status": STOPPED, "values": None} if values is None else _run(values)

    def tournament(self, rng: random.Random):
        """The best of `sample_size` members drawn without replacement."""
        drawn = rng.sample(self.population, min(self.sample_size, len(self.population)))
        trials = [self.trials[t] for t in drawn]
        best = max if self.objective.direction == "max" else min
        return best(trials, key=lambda t: t.score)

    def mutate(self, values: dict[str, Any], rng: random.Random) -> dict[str, Any] | None:
        """`values` with one active hyperparameter changed (None if none can change)."""
        space = self.hyperparameters
        mutable = [
            hp
            for hp in space.space
            if not isinstance(hp, hp_types.Fixed) and space.is_active(hp) and hp.name in values
        ]
        rng.shuffle(mutable)
        for hp in mutable:
            new = mutate_value(hp, values[hp.name], rng)
            if new is not None and new != values[hp.name]:
                return {**values, hp.name: new}
        return None

    # === Aging ===
    def end_trial(self, trial) -> None:
        super().end_trial(trial)
        ended = self.trials[trial.trial_id]
        if ended.status == COMPLETED and ended.score is not None and math.isfinite(ended.score):
            if trial.trial_id not in self.population:
                self.population.append(trial.trial_id)
            del self.population[: -self.population_size]  # the oldest leave
            self.save()

    # === Resume ===
    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        state.update(
            population_size=self.population_size,
            sample_size=self.sample_size,
            population=list(self.population),
        )
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self.population_size = state["population_size"]
        self.sample_size = state["sample_size"]
        self.population = [t for t in state["population"] if t in self.trials]


def mutate_value(hp, value: Any, rng: random.Random) -> Any:
    """Another value of one hyperparameter: a choice or flag changes to another value;
    a number moves one step (or a tenth of its range, in its sampling's scale) half the
    time and is drawn afresh the other half."""
    if isinstance(hp, hp_types.Boolean):
        return not value
    if isinstance(hp, hp_types.Choice):
        others = [v for v in hp.values if v != value]
        return rng.choice(others) if others else None
    if isinstance(hp, hp_types.Int | hp_types.Float):
        for _ in range(10):  # a fresh sample may land on the same value
            if rng.random() < 0.5:
                new = hp.random_sample(rng.randint(0, 2**31 - 1))
            else:
                new = _step(hp, value, rng.choice((-1, 1)))
            if new != value:
                return new
    return None


def _step(hp, value: Any, direction: int) -> Any:
    low, high = hp.min_value, hp.max_value
    log = hp.sampling in ("log", "reverse_log")
    if hp.step is not None and not log:
        new = value + direction * hp.step
    elif log:
        new = value * math.exp(direction * math.log(high / low) / 10)
    else:
        new = value + direction * (high - low) / 10
    if not low <= new <= high:
        new = value - (new - value)  # bounce off the edge
    new = min(max(new, low), high)
    return int(round(new)) if isinstance(hp, hp_types.Int) else float(new)


def _run(values: dict[str, Any]) -> dict[str, Any]:
    return {"status": RUNNING, "values": values}
