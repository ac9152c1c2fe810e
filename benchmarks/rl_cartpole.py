"""Deepfield's DQN and PPO against Stable-Baselines3's on CartPole-v1, head to head.

Both sides use RL Baselines3 Zoo's tuned CartPole hyperparameters (our named configs
`cartpole_dqn` and `cartpole_ppo` hold the same values), the same step budget (DQN
50k, PPO 100k env steps) and the same seeds. Every `eval_every` steps each agent plays
10 greedy episodes on a fixed seed list; "steps to solve" is the first evaluation with
a mean return >= 475, "seconds to solve" the training time until then (evaluation time
excluded on both sides). The final policy plays 100 episodes on seeds 10000..10099, and
so does the best evaluated one (`train.keep_best`, as SB3's EvalCallback best model,
but a tie goes to the later evaluation, on both sides); the evaluations during training use seeds
20000..20009, so picking the best never sees the final episodes.

Records: one per (algorithm, library, seed), then one summary per algorithm whose
`ratio` is our env steps/s over SB3's (target >= 1: at least as fast).

Each side runs at its fastest thread setting here: PyTorch with one thread (its default
spin-waits on a loaded 2-core machine), TensorFlow with its defaults.

Needs the `rl-bench` extra (torch 2.13.0 CPU and stable-baselines3); the library runs
interleave (ours, SB3, ours, ...) so machine noise lands on both sides alike.
"""

from __future__ import annotations

import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import record

SOLVED = 475.0
FINAL_EPISODES, FINAL_SEED = 100, 10_000
EVAL_EPISODES, EVAL_SEED = 10, 20_000
SETUPS = {
    "dqn": {"config": "cartpole_dqn", "steps": 50_000, "eval_every": 1_000},
    "ppo": {"config": "cartpole_ppo", "steps": 100_000, "eval_every": 10_000},
}


def _episodes(act, episodes: int, seed: int) -> np.ndarray:
    import gymnasium as gym

    from domains.rl.evaluation import run_episodes

    returns, _ = run_episodes(act, lambda: gym.make("CartPole-v1"), episodes, seed)
    return returns


def _solve_point(curve: list[tuple[int, float, float]]) -> tuple[int | None, float | None]:
    """(steps, training seconds) of the first evaluation at or above SOLVED."""
    for steps, mean, seconds in curve:
        if mean >= SOLVED:
            return steps, seconds
    return None, None


# === Ours ===
def run_ours(algo: str, seed: int, steps: int) -> dict:
    from domains.rl import task
    from pipelines import rl
    from shared.run_dir import RunDir

    setup = SETUPS[algo]
    config = rl.resolve_config(
        setup["config"],
        [
            f"agent.total_steps={steps}",
            f"train.eval_interval={setup['eval_every']}",
            f"train.eval_episodes={EVAL_EPISODES}",
            f"train.eval_seed={EVAL_SEED}",
            "train.keep_best=true",
            f"evaluate.episodes={FINAL_EPISODES}",
            f"runtime.seed={seed}",
            "train.checkpoint_interval=1000000000",
        ],
    )
    with tempfile.TemporaryDirectory(prefix="rl-bench-") as tmp:
        run = RunDir(Path(tmp) / "run")
        run.prepare()
        metrics = task.train(config, run)
        history = task_history(run)
    curve = [(int(r["step"]), r["mean_return"], r["train_seconds"]) for r in history]
    return {
        "final_mean_return": metrics["last_policy_mean_return"],
        "best_mean_return": metrics["mean_return"],
        "best_step": metrics["policy_step"],
        "steps_per_second": metrics["steps_per_second"],
        "curve": curve,
    }


def task_history(run) -> list[dict]:
    from shared.training.trainer import history_rows

    return history_rows(run.history_path)


# === Stable-Baselines3 ===
def run_sb3(algo: str, seed: int, steps: int) -> dict:
    import gymnasium as gym
    import torch
    from stable_baselines3 import DQN, PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    setup = SETUPS[algo]
    if algo == "dqn":
        # rl-baselines3-zoo hyperparams/dqn.yml, CartPole-v1
        model = DQN(
            "MlpPolicy",
            gym.make("CartPole-v1"),
            learning_rate=2.3e-3,
            batch_size=64,
            buffer_size=100_000,
            learning_starts=1000,
            gamma=0.99,
            target_update_interval=10,
            train_freq=256,
            gradient_steps=128,
            exploration_fraction=0.16,
            exploration_final_eps=0.04,
            policy_kwargs={"net_arch": [256, 256]},
            seed=seed,
            device="cpu",
        )
    else:
        # rl-baselines3-zoo hyperparams/ppo.yml, CartPole-v1 (lin_ schedules)
        def linear(start: float):
            return lambda remaining: remaining * start

        model = PPO(
            "MlpPolicy",
            make_vec_env("CartPole-v1", n_envs=8, seed=seed),
            n_steps=32,
            batch_size=256,
            gae_lambda=0.8,
            gamma=0.98,
            n_epochs=20,
            ent_coef=0.0,
            learning_rate=linear(1e-3),
            clip_range=linear(0.2),
            seed=seed,
            device="cpu",
        )

    def act(obs: np.ndarray) -> np.ndarray:
        return model.predict(obs, deterministic=True)[0]

    class Evaluate(BaseCallback):
        """Same evaluation as ours (and EvalCallback's best model); its time is kept out
        of the training clock."""

        def __init__(self):
            super().__init__()
            self.curve: list[tuple[int, float, float]] = []
            self.best: tuple[float, int, dict] | None = None
            self.eval_seconds = 0.0
            self.start = time.perf_counter()
            self.next = setup["eval_every"]

        def _on_step(self) -> bool:
            if self.num_timesteps >= self.next:
                began = time.perf_counter()
                mean = float(np.mean(_episodes(act, EVAL_EPISODES, EVAL_SEED)))
                trained = began - self.start - self.eval_seconds
                self.curve.append((self.num_timesteps, mean, trained))
                if self.best is None or mean >= self.best[0]:  # ties: later, as ours
                    state = copy.deepcopy(model.policy.state_dict())
                    self.best = (mean, self.num_timesteps, state)
                self.eval_seconds += time.perf_counter() - began
                self.next += setup["eval_every"]
            return True

    callback = Evaluate()
    torch.manual_seed(seed)
    # PyTorch's default of one OpenMP thread per core spin-waits on this loaded 2-core
    # machine and ran SB3 14x slower than one thread (720 vs 51 steps/s, PPO). Each
    # library runs at its fastest setting: one thread for torch, TF's defaults for ours.
    torch.set_num_threads(1)
    model.learn(total_timesteps=steps, callback=callback)
    seconds = time.perf_counter() - callback.start - callback.eval_seconds
    final = _episodes(act, FINAL_EPISODES, FINAL_SEED)
    best_return, best_step, best_state = callback.best
    model.policy.load_state_dict(best_state)
    best = final if best_step == model.num_timesteps else _episodes(act, FINAL_EPISODES, FINAL_SEED)
    return {
        "final_mean_return": float(np.mean(final)),
        "best_mean_return": float(np.mean(best)),
        "best_step": best_step,
        "steps_per_second": model.num_timesteps / seconds,
        "curve": callback.curve,
    }


def sb3_installed() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(name) for name in ("torch", "stable_baselines3"))


def run_one(algo: str, library: str, seed: int, steps: int, quick: bool = False) -> dict:
    """One training run of `library`'s `algo` as a record (what `run` repeats)."""
    runner = run_ours if library == "deepfield" else run_sb3
    result = runner(algo, seed, steps)
    solve_steps, solve_seconds = _solve_point(result["curve"])
    return record(
        f"rl_cartpole_{algo}",
        ratio=None,
        target=None,
        library=library,
        seed=seed,
        env_steps=steps,
        quick=quick,
        final_mean_return=result["final_mean_return"],
        solved=result["final_mean_return"] >= SOLVED,
        best_mean_return=result["best_mean_return"],
        best_step=result["best_step"],
        best_solved=result["best_mean_return"] >= SOLVED,
        steps_per_second=result["steps_per_second"],
        steps_to_solve=solve_steps,
        seconds_to_solve=solve_seconds,
        eval_curve=[[s, round(m, 1)] for s, m, _ in result["curve"]],
    )


def summary(algo: str, runs: list[dict], quick: bool = False) -> dict:
    """Our env steps/s over SB3's (median over seeds), with both sides' returns."""
    ours = [r for r in runs if r["library"] == "deepfield"]
    sb3 = [r for r in runs if r["library"] == "sb3"]
    ours_sps = statistics.median(r["steps_per_second"] for r in ours)
    if not sb3:
        return record(
            f"rl_cartpole_{algo}_summary",
            ratio=None,
            target=1.0,
            quick=quick,
            deepfield_steps_per_second=ours_sps,
            sb3="not installed: pip install -e '.[rl-bench]'",
        )
    sb3_sps = statistics.median(r["steps_per_second"] for r in sb3)
    return record(
        f"rl_cartpole_{algo}_summary",
        ratio=ours_sps / sb3_sps,
        target=1.0,
        quick=quick,
        seeds=len(sb3),
        deepfield_steps_per_second=ours_sps,
        sb3_steps_per_second=sb3_sps,
        **{
            f"{side}_{key}": [r[key] for r in rows]
            for side, rows in (("deepfield", ours), ("sb3", sb3))
            for key in (
                "final_mean_return",
                "best_mean_return",
                "steps_to_solve",
                "seconds_to_solve",
            )
        },
    )


def run(quick: bool, seeds: tuple[int, ...] = (0, 1)) -> list[dict]:
    libraries = ["deepfield", "sb3"] if sb3_installed() else ["deepfield"]
    records = []
    for algo, setup in SETUPS.items():
        steps = 4096 if quick else setup["steps"]
        runs = []
        for seed in seeds[:1] if quick else seeds:
            for library in libraries:  # interleaved, so machine noise hits both sides
                rec = run_one(algo, library, seed, steps, quick)
                runs.append(rec)
                print(json.dumps(rec), file=sys.stderr, flush=True)  # progress: runs are long
        records += [*runs, summary(algo, runs, quick)]
    return records


if __name__ == "__main__":
    # One run per process, so a long comparison keeps what it finished:
    #   python -m benchmarks.rl_cartpole --algo dqn --library sb3 --seed 0 >> runs.jsonl
    #   python -m benchmarks.rl_cartpole --summarize runs.jsonl
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks.rl_cartpole")
    parser.add_argument("--algo", choices=list(SETUPS))
    parser.add_argument("--library", choices=["deepfield", "sb3"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--summarize", metavar="JSONL", help="summary records of a file of runs")
    args = parser.parse_args()
    if args.summarize:
        with open(args.summarize) as handle:
            done = [json.loads(line) for line in handle if line.startswith("{")]
        for name in SETUPS:
            runs = [r for r in done if r["benchmark"] == f"rl_cartpole_{name}"]
            if runs:
                print(json.dumps(summary(name, runs)))
    elif args.algo and args.library:
        steps = SETUPS[args.algo]["steps"]
        print(json.dumps(run_one(args.algo, args.library, args.seed, steps)), flush=True)
    else:
        for rec in run(quick=False):
            print(json.dumps(rec), flush=True)
