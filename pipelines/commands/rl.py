"""`deepfield rl ...`: reinforcement-learning agents on Gymnasium environments."""

from __future__ import annotations

import json
from pathlib import Path

import click

from pipelines.commands import add_export_command, print_metrics
from shared.errors import UserError


@click.group("rl")
def group() -> None:
    """RL agents (DQN, A2C, A3C, PPO): train, evaluate, play, predict, export."""


@group.command("train")
@click.option("--task", default=None, help="rl has one task, control")
@click.option("--config", "config", default=None, help="named config or YAML path")
@click.option("--data", default=None, help="the environment, gym:ENV_ID (e.g. gym:CartPole-v1)")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="override any config key (repeatable), e.g. agent.name=dqn",
)
@click.option(
    "--run-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="run folder (default runs/rl/control/<time>); rerun to resume",
)
@click.option(
    "--strategy",
    default=None,
    type=click.Choice(["auto", "default", "one-device", "mirrored", "multi-worker", "tpu"]),
)
@click.option("--seed", type=int, default=None)
@click.option("--deterministic", is_flag=True, default=None, help="TF op determinism")
def rl_train(task, config, data, overrides, run_dir, strategy, seed, deterministic):
    """Train an agent; prints the evaluation metrics (mean_return over 100 episodes)."""
    from pipelines import rl as api

    if task not in (None, "control"):
        raise UserError(f"rl has one task, control (got --task {task})")
    run = api.train(
        config=config,
        data=data,
        overrides=overrides,
        run_dir=run_dir,
        strategy=strategy,
        seed=seed,
        deterministic=deterministic,
    )
    print_metrics(run.path, run.metrics)


@group.command("evaluate")
@click.option("--run", "run_path", required=True, type=click.Path(path_type=Path))
@click.option("--data", default=None, help="the run's own env (gym:ENV_ID)")
@click.option("--episodes", type=click.IntRange(min=1), default=None, help="default 100")
@click.option("--seed", type=int, default=None, help="first episode seed (default 10000)")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="write metrics here instead of the run's metrics.json",
)
def rl_evaluate(run_path, data, episodes, seed, out):
    """Mean and std return over a fixed seed list; rewrites metrics.json (or --out)."""
    from pipelines import rl as api

    metrics = api.evaluate(
        run_path, data=data, episodes=episodes, seed=seed, out=str(out) if out else None
    )
    print_metrics(run_path, metrics)


@group.command("play")
@click.option("--run", "run_path", required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None, help="GIF to write")
@click.option("--seed", type=int, default=None, help="the episode's reset seed")
def rl_play(run_path, out, seed):
    """Play one greedy episode and write it as a GIF; prints its path and return."""
    from pipelines import rl as api

    click.echo(json.dumps(api.play(run_path, out, seed=seed)))


@group.command("predict")
@click.option("--run", "run_path", required=True, type=click.Path(path_type=Path))
@click.argument("inputs", nargs=-1, required=True)
def rl_predict(run_path, inputs):
    """Actions for observations given as JSON lists; one JSON object per input."""
    from pipelines import rl as api

    for result in api.predict(run_path, list(inputs)):
        click.echo(json.dumps(result))


add_export_command(group, "rl")
