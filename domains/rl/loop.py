"""The training loop's bookkeeping, shared by every agent.

An agent collects experience and updates itself; it tells the loop how many env steps
it has done (`advance`) at points where its state is consistent, and the loop does the
rest: progress bar (env steps/s, recent return), TensorBoard scalars, periodic
evaluations (history.csv rows), resume checkpoints, and a clean stop with a checkpoint
when the environment raises.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from domains.rl.envs import finished_episodes
from shared.errors import UserError
from shared.run_dir import RunDir, write_atomic, write_json

LOG = logging.getLogger("deepfield.rl")
METADATA = "training_metadata.json"  # the name the runner looks for to keep a failed run


class EnvironmentFailed(UserError):
    """The environment raised during training; the run was checkpointed first."""


class TrainLoop:
    """Counts env steps and does the logging, evaluation and checkpoints around them."""

    def __init__(
        self,
        run: RunDir,
        agent,
        *,
        total_steps: int,
        settings,
        evaluate: Callable[[], tuple[np.ndarray, np.ndarray]],
        env_id: str,
    ):
        self.run = run
        self.agent = agent
        self.total_steps = total_steps
        self.settings = settings
        self.evaluate = evaluate
        self.env_id = env_id
        self.steps = 0
        self.episodes = 0
        self.train_seconds = 0.0
        self.recent_returns: deque[float] = deque(maxlen=100)
        self.recent_lengths: deque[int] = deque(maxlen=100)
        self.metrics: dict[str, float] = {}
        self.history: list[dict[str, float]] = []
        # `train.keep_best`: the best evaluation so far and its policy weights
        self.best: dict[str, float] | None = None
        self.best_weights: list[np.ndarray] | None = None
        self.stop_requested = False
        self.lock = threading.RLock()  # A3C's threads report concurrently
        self._clock = time.perf_counter()
        self._writer = None
        self._bar = None
        self._last_bar = 0.0

    # === Start and resume ===
    def start(self) -> None:
        """Restore the newest checkpoint, if any, and open TensorBoard and the progress bar."""
        import tensorflow as tf
        from tqdm.auto import tqdm

        meta = _read_metadata(self.run)
        if meta is not None:
            with np.load(self.run.checkpoints / meta["checkpoint"], allow_pickle=False) as saved:
                arrays = dict(saved)
            self.agent.load_state(arrays)
            if meta.get("best") is not None:
                self.best = meta["best"]
                count = sum(1 for key in arrays if key.startswith("best/"))
                self.best_weights = [arrays[f"best/{i}"] for i in range(count)]
            self.steps = int(meta["step"])
            self.episodes = int(meta.get("episodes", 0))
            self.train_seconds = float(meta.get("train_seconds", 0.0))
            self.recent_returns.extend(meta.get("recent_returns", []))
            self.recent_lengths.extend(meta.get("recent_lengths", []))
            LOG.info("resuming %s from env step %d", self.run.path, self.steps)
        self.history = [row for row in _read_history(self.run) if row["step"] <= self.steps]
        self._next_eval = _next_multiple(self.steps, self.settings.eval_interval)
        self._next_log = _next_multiple(self.steps, self.settings.log_interval)
        self._next_checkpoint = _next_multiple(self.steps, self.settings.checkpoint_interval)
        self._writer = tf.summary.create_file_writer(str(self.run.tensorboard / "train"))
        self._bar = tqdm(
            total=self.total_steps,
            initial=self.steps,
            unit="step",
            desc=f"{self.agent.name} {self.env_id}",
            disable=None,  # a bar on a terminal, nothing in logs and tests
            dynamic_ncols=True,
        )
        self._clock = time.perf_counter()

    @property
    def done(self) -> bool:
        return self.steps >= self.total_steps or self.stop_requested

    @property
    def progress(self) -> float:
        """Fraction of the step budget used, for schedules (epsilon, learning rate)."""
        return min(1.0, self.steps / self.total_steps)

    # === During training ===
    def step_env(self, envs, actions):
        """`envs.step(actions)`; if the env raises, checkpoint and stop with a clear error."""
        try:
            return envs.step(actions)
        except Exception as err:  # noqa: BLE001 - any env failure stops training cleanly
            self.fail(err)

    def fail(self, err: BaseException):
        LOG.error("environment %s raised at env step %d", self.env_id, self.steps, exc_info=err)
        with self.lock:
            self.checkpoint()
            self._close()
        raise EnvironmentFailed(
            f"environment {self.env_id} raised {type(err).__name__}: {err} (near env step "
            f"{self.steps}); training stopped, checkpoint saved at step {self.steps} in "
            f"{self.run.checkpoints} (traceback in {self.run.log_path}); rerun the same "
            "command to resume"
        ) from err

    def record(self, infos: dict[str, Any]) -> None:
        """Note the episodes a vector step finished (RecordEpisodeStatistics' info)."""
        returns, lengths = finished_episodes(infos)
        self.record_episodes(returns, lengths)

    def record_episodes(self, returns, lengths) -> None:
        with self.lock:
            self.recent_returns.extend(float(r) for r in returns)
            self.recent_lengths.extend(int(n) for n in lengths)
            self.episodes += len(returns)

    def advance(self, steps: int, metrics: dict[str, float] | None = None) -> None:
        """`steps` more env steps are done and the agent's state is consistent."""
        with self.lock:
            now = time.perf_counter()
            self.train_seconds += now - self._clock
            self._clock = now
            self.steps += steps
            if metrics:
                self.metrics.update({k: float(v) for k, v in metrics.items()})
            self._bar.update(steps)
            if now - self._last_bar > 0.5:
                self._bar.set_postfix(
                    {
                        "return": f"{self.recent_return:.1f}",
                        "steps/s": f"{self.steps_per_second:.0f}",
                    },
                    refresh=False,
                )
                self._last_bar = now
            if self.steps >= self._next_log:
                self._log_scalars()
                self._next_log = _next_multiple(self.steps, self.settings.log_interval)
            if self.steps >= self._next_eval or self.steps >= self.total_steps:
                self.evaluation_row()
                self._next_eval = _next_multiple(self.steps, self.settings.eval_interval)
            if self.steps >= self._next_checkpoint:
                self.checkpoint()
                self._next_checkpoint = _next_multiple(
                    self.steps, self.settings.checkpoint_interval
                )
            self._clock = time.perf_counter()  # evaluation and saving are not training time

    @property
    def recent_return(self) -> float:
        return float(np.mean(self.recent_returns)) if self.recent_returns else float("nan")

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.train_seconds if self.train_seconds > 0 else 0.0

    def evaluation_row(self) -> dict[str, float]:
        """Evaluate the current policy; one history.csv row and a log line."""
        if self.history and self.history[-1]["step"] == self.steps:
            return self.history[-1]
        returns, lengths = self.evaluate()
        row = {
            "step": float(self.steps),
            "mean_return": float(np.mean(returns)),
            "std_return": float(np.std(returns)),
            "eval_length": float(np.mean(lengths)),
            "train_return": self.recent_return,
            "train_length": float(np.mean(self.recent_lengths)) if self.recent_lengths else 0.0,
            "episodes": float(self.episodes),
            "steps_per_second": self.steps_per_second,
            "train_seconds": self.train_seconds,
            **self.metrics,
        }
        self.history.append(row)
        _write_history(self.run, self.history)
        # A tie goes to the later policy (SB3's EvalCallback keeps the earlier): on
        # CartPole many evaluations hit the 500 cap, and the first policy to hit it is
        # the least trained (DQN seeds 1, 2, 6: 1 of the 31 policies at 500 over 10
        # episodes fell below 475 over 100, and it was seed 1's first).
        if self.settings.keep_best and (
            self.best is None or row["mean_return"] >= self.best["mean_return"]
        ):
            self.best = {"step": row["step"], "mean_return": row["mean_return"]}
            self.best_weights = self.agent.model.get_weights()  # NumPy copies
        with self._writer.as_default():
            import tensorflow as tf

            tf.summary.scalar("eval/mean_return", row["mean_return"], step=self.steps)
            tf.summary.scalar("eval/std_return", row["std_return"], step=self.steps)
        LOG.info(
            "step %d: eval return %.1f +/- %.1f over %d episodes, train return %.1f, %.0f steps/s",
            self.steps,
            row["mean_return"],
            row["std_return"],
            len(returns),
            row["train_return"],
            row["steps_per_second"],
        )
        target = self.settings.stop_at_return
        if target is not None and row["mean_return"] >= target:
            LOG.info("mean return %.1f reached %.1f: stopping", row["mean_return"], target)
            self.stop_requested = True
        return row

    def _log_scalars(self) -> None:
        import tensorflow as tf

        with self._writer.as_default():
            if self.recent_returns:
                tf.summary.scalar("train/episode_return", self.recent_return, step=self.steps)
                tf.summary.scalar(
                    "train/episode_length", float(np.mean(self.recent_lengths)), step=self.steps
                )
            tf.summary.scalar("train/steps_per_second", self.steps_per_second, step=self.steps)
            for key, value in self.metrics.items():
                tf.summary.scalar(f"train/{key}", value, step=self.steps)

    # === Checkpoints ===
    def checkpoint(self) -> None:
        """Write the agent's state aside, rename it in, then point the metadata at it."""
        arrays = self.agent.state()
        for i, weight in enumerate(self.best_weights or []):
            arrays[f"best/{i}"] = weight
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        name = f"step-{self.steps:010d}.npz"
        write_atomic(self.run.checkpoints / name, buffer.getvalue())
        write_json(
            self.run.checkpoints / METADATA,
            {
                "step": self.steps,
                "checkpoint": name,
                "episodes": self.episodes,
                "train_seconds": self.train_seconds,
                "recent_returns": list(self.recent_returns),
                "recent_lengths": list(self.recent_lengths),
                "best": self.best,
            },
        )
        for old in sorted(self.run.checkpoints.glob("step-*.npz"))[:-2]:
            old.unlink(missing_ok=True)

    def finish(self) -> None:
        """Final evaluation row and checkpoint, then close the bar and TensorBoard."""
        with self.lock:
            self.evaluation_row()
            self.checkpoint()
            self._close()

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        if self._writer is not None:
            self._writer.flush()


def _next_multiple(step: int, interval: int) -> int:
    return (step // interval + 1) * interval


def _read_metadata(run: RunDir) -> dict | None:
    try:
        meta = json.loads((run.checkpoints / METADATA).read_text())
    except (OSError, ValueError):
        return None
    return meta if (run.checkpoints / str(meta.get("checkpoint", ""))).is_file() else None


def _read_history(run: RunDir) -> list[dict[str, float]]:
    if not run.history_path.is_file():
        return []
    with run.history_path.open() as handle:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(handle)]


def _write_history(run: RunDir, rows: list[dict[str, float]]) -> None:
    fields = list(dict.fromkeys(key for row in rows for key in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    write_atomic(run.history_path, out.getvalue())
