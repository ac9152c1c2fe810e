"""The regularized-evolution oracle against KerasTuner's random search, with no model.

The landscape is OneMax over categorical genes: 16 choices of 4 values each, scored by
how many equal a hidden target. A random point matches 4 on average and the best of 100
random points about 9-10; mutating one gene of a good parent climbs one match at a time,
which is what regularized evolution exploits. Averaged over seeds, evolution's best after
the same number of trials must beat random's clearly.
"""

from __future__ import annotations

import random
import statistics

import keras_tuner
import pytest

from shared.search.evolution import RegularizedEvolutionOracle, mutate_value

GENES, ALLELES, TRIALS, SEEDS = 16, 4, 100, 4


def onemax_search(oracle, target, directory) -> tuple[int, list[int]]:
    """Drive the oracle as a tuner does; returns (best, scores in order)."""
    oracle._set_project_dir(str(directory), "project")
    oracle.verbose = 0
    scores = []
    while True:
        trial = oracle.create_trial("tuner0")
        if trial.status == "STOPPED":
            break
        values = trial.hyperparameters.values
        score = sum(values[f"g{i:02d}"] == target[i] for i in range(GENES))
        oracle.update_trial(trial.trial_id, {"matches": score})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        scores.append(score)
    return max(scores), scores


def space() -> keras_tuner.HyperParameters:
    hp = keras_tuner.HyperParameters()
    for i in range(GENES):
        hp.Choice(f"g{i:02d}", list(range(ALLELES)))
    return hp


def make(kind: str, seed: int, trials: int = TRIALS, population: int = 20):
    objective = keras_tuner.Objective("matches", "max")
    if kind == "random":
        return keras_tuner.oracles.RandomSearchOracle(
            objective, max_trials=trials, hyperparameters=space(), seed=seed
        )
    return RegularizedEvolutionOracle(
        objective,
        max_trials=trials,
        population_size=population,
        sample_size=5,
        hyperparameters=space(),
        seed=seed,
    )


def test_evolution_beats_random_on_onemax(tmp_path):
    best = {"random": [], "evolution": []}
    for seed in range(SEEDS):
        target = [random.Random(1000 + seed).randrange(ALLELES) for _ in range(GENES)]
        for kind in best:
            found, _ = onemax_search(make(kind, seed + 1), target, tmp_path / f"{kind}{seed}")
            best[kind].append(found)
    random_mean = statistics.mean(best["random"])
    evolution_mean = statistics.mean(best["evolution"])
    print(f"best after {TRIALS} trials over {SEEDS} seeds: {best}")
    assert 7 <= random_mean <= 11  # the random baseline is what theory says
    assert evolution_mean >= random_mean + 1.5, best


def test_population_ages_and_children_differ_by_one_choice(tmp_path):
    target = [0] * GENES
    oracle = make("evolution", 7, trials=30, population=6)
    onemax_search(oracle, target, tmp_path)
    completed = sorted(oracle.trials, key=int)
    # The population is the 6 most recently completed trials: the oldest left.
    assert oracle.population == completed[-6:]
    # After the 6 random ones, every child is one mutation of some earlier trial.
    for trial_id in completed[6:]:
        child = oracle.trials[trial_id].hyperparameters.values
        earlier = [
            oracle.trials[t].hyperparameters.values for t in completed if int(t) < int(trial_id)
        ]
        distances = [sum(child[k] != parent[k] for k in child) for parent in earlier]
        assert min(distances) == 1


def test_fewer_trials_than_the_population_still_run(tmp_path):
    oracle = make("evolution", 3, trials=4, population=20)
    _, scores = onemax_search(oracle, [1] * GENES, tmp_path)
    assert len(scores) == 4 and len(oracle.population) == 4


def test_state_round_trip_resumes_the_same_search(tmp_path):
    target = [2] * GENES
    whole = make("evolution", 11, trials=24, population=5)
    _, expected = onemax_search(whole, target, tmp_path / "whole")

    first = make("evolution", 11, trials=12, population=5)
    onemax_search(first, target, tmp_path / "split")
    resumed = make("evolution", 11, trials=24, population=5)
    resumed._set_project_dir(str(tmp_path / "split"), "project")
    resumed.reload()  # oracle.json and the trial records: get_state/set_state
    assert resumed.population == first.population
    _, rest = onemax_search(resumed, target, tmp_path / "split")
    assert [resumed.trials[t].score for t in sorted(resumed.trials, key=int)] == expected


@pytest.mark.parametrize(
    "make_hp, value",
    [
        (lambda hp: hp.Int("n", 16, 128, step=16), 64),
        (lambda hp: hp.Float("lr", 1e-4, 1e-2, sampling="log"), 1e-3),
        (lambda hp: hp.Choice("c", ["a", "b", "c"]), "b"),
        (lambda hp: hp.Boolean("f"), True),
    ],
)
def test_mutations_stay_in_range_and_change_the_value(make_hp, value):
    hps = keras_tuner.HyperParameters()
    make_hp(hps)
    hp = hps.space[0]
    rng = random.Random(0)
    for _ in range(200):
        new = mutate_value(hp, value, rng)
        assert new is not None and new != value
        if hasattr(hp, "min_value"):
            assert hp.min_value <= new <= hp.max_value
        else:
            assert new in (hp.values if hasattr(hp, "values") else (True, False))
