"""Reinforcement learning from Python: the functions the CLI and notebooks share.

from pipelines import rl
run = rl.train(config="cartpole_ppo")                  # gym:CartPole-v1
run.metrics["mean_return"], run.history, run.plots
rl.evaluate(run, episodes=100)                         # fixed seed list
rl.play(run)                                           # an episode as a GIF
rl.export(run, to="serving")                           # TF Serving SavedModel
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from domains.rl.config import RLConfig
from pipelines import configs, runner
from pipelines.run import Run
from shared.errors import UserError

DOMAIN = "rl"


def resolve_config(
    config: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    **shortcuts: Any,
) -> RLConfig:
    """The validated config a `train` would use (named config, `--set`s, flags)."""
    return configs.resolve(DOMAIN, RLConfig, config, overrides, **shortcuts)


def train(
    config: str | None = "default",
    data: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    run_dir: str | Path | None = None,
    *,
    agent: str | None = None,
    total_steps: int | None = None,
    strategy: str | None = None,
    seed: int | None = None,
    deterministic: bool | None = None,
) -> Run:
    """Train an agent (`agent.name` dqn|a2c|a3c|ppo) on `data` (gym:ENV_ID); a finished Run.

    Rerunning with the same `run_dir` resumes from the last checkpoint.
    """
    resolved = resolve_config(
        config,
        overrides,
        **{
            "data.source": data,
            "agent.name": agent,
            "agent.total_steps": total_steps,
            "runtime.strategy": strategy,
            "runtime.seed": seed,
            "runtime.deterministic": deterministic,
        },
    )
    from domains.rl import task  # TensorFlow loads only once the config is known good

    task.check_runtime(resolved)
    path = Path(run_dir) if run_dir else runner.default_run_dir(DOMAIN, resolved.task)
    finished = runner.execute(DOMAIN, resolved, path, task.train)
    return Run(finished.path)


def _open(run: Run | str | Path) -> tuple[Run, RLConfig]:
    run = run if isinstance(run, Run) else Run(run)
    if run.domain != DOMAIN:
        raise UserError(f"{run.path} is a {run.domain} run, not an rl run")
    return run, RLConfig.model_validate(run.config)


def evaluate(
    run: Run | str | Path,
    data: str | None = None,
    split: str | None = None,
    out: str | None = None,
    *,
    episodes: int | None = None,
    seed: int | None = None,
) -> dict[str, Any]:
    """Mean and std return over `episodes` (default 100) with seeds seed, seed+1, ...

    Rewrites the run's metrics.json, or writes `out`. `data` may name the same env id
    (other env ids would not match the trained network); `split` is accepted for the
    common `Run.evaluate` signature and ignored (RL has no data splits).
    """
    from domains.rl import task

    run, config = _open(run)
    if data is not None and data != config.data.source:
        raise UserError(
            f"{run.path} was trained on {config.data.source}; evaluate it there (got --data {data})"
        )
    return task.evaluate(
        run.dir, config, episodes=episodes, seed=seed, out=Path(out) if out else None
    )


def play(
    run: Run | str | Path, out: str | Path | None = None, *, seed: int | None = None
) -> dict[str, Any]:
    """Play one greedy episode into a GIF (default RUN/play/episode-seedN.gif)."""
    from domains.rl import task

    run, config = _open(run)
    return task.play(run.dir, config, out=Path(out) if out else None, seed=seed)


def predict(run: Run | str | Path, inputs: list[str]) -> list[dict[str, Any]]:
    """Actions for observations given as JSON lists (one per input)."""
    import json

    import numpy as np

    from domains.rl import task
    from domains.rl.networks import Forward, greedy_actions

    run, _ = _open(run)
    spec = task.load_spec(run.dir)
    rows = []
    for text in inputs:
        try:
            rows.append(np.asarray(json.loads(text), np.float32))
        except (ValueError, TypeError):
            raise UserError(f"observation {text!r} is not a JSON list of numbers") from None
        if rows[-1].shape != tuple(spec.observation_shape):
            raise UserError(
                f"observation {text!r} has shape {rows[-1].shape}; {spec.env_id} observations "
                f"have shape {tuple(spec.observation_shape)}"
            )
    model = task.load_model(run.dir)
    outputs = Forward(model, spec.observation_shape)(np.stack(rows))
    actions = greedy_actions(outputs, spec)
    results = []
    for i, text in enumerate(inputs):
        result = {"input": text, "action": np.asarray(actions[i]).tolist()}
        result.update({k: np.round(v[i], 6).tolist() for k, v in outputs.items()})
        results.append(result)
    return results


def export(
    run: Run | str | Path,
    to: str | Path,
    name: str | None = None,
    version: int | None = None,
    overwrite: bool = False,
    *,
    base_path: str = "/models",
):
    """Export the policy for TF Serving (`to/NAME/N`): observation in, action out.

    Returns the ExportResult (path, version, signatures, fresh-process verification).
    """
    from domains.rl import serving, task
    from shared.export import export_saved_model

    run, config = _open(run)
    spec = task.load_spec(run.dir)
    model = task.load_model(run.dir)
    name = name or f"rl_{config.agent.name}_{_slug(spec.env_id)}"
    return export_saved_model(
        serving.serving_spec(run.dir, config, model, spec),
        to,
        name,
        version=version,
        overwrite=overwrite,
        base_path=base_path,
    )


def _slug(env_id: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in env_id).strip("_").lower()
