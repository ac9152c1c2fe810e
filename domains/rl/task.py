"""RL control: train an agent, evaluate it on fixed seeds, play an episode to a GIF."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import keras
import numpy as np

from domains.rl import envs
from domains.rl import plots as rl_plots
from domains.rl.agents import make_agent
from domains.rl.config import RLConfig
from domains.rl.evaluation import run_episodes
from domains.rl.loop import TrainLoop
from domains.rl.networks import Forward, greedy_actions, sample_actions, torso_name
from shared import model_io
from shared.errors import UserError
from shared.input_contract import InputContract, InputSpec
from shared.model_card import write_model_card
from shared.run_dir import RunDir

LOG = logging.getLogger("deepfield.rl")
DOMAIN, TASK = "rl", "control"
SOLVED = {"CartPole-v1": 475.0, "LunarLander-v3": 200.0, "deepfield/Corridor-v0": 0.9}


def check_runtime(config: RLConfig) -> None:
    """The agents train on one device: their networks and batches are small."""
    if config.runtime.strategy not in ("auto", "default", "one-device"):
        raise UserError(
            f"rl trains on one device; --strategy {config.runtime.strategy} is not supported "
            "(use auto, default or one-device; A3C runs its own parallel workers)"
        )


# === Training ===
def train(config: RLConfig, run: RunDir) -> dict[str, Any]:
    """Train the configured agent into `run`, then evaluate it on the fixed seed list."""
    import tensorflow as tf

    check_runtime(config)
    seed = config.runtime.seed
    keras.utils.set_random_seed(seed)
    if config.runtime.deterministic:
        tf.config.experimental.enable_op_determinism()
    spec = envs.describe(config.data)
    envs.check_agent_supports(config.agent.name, spec)
    InputContract(
        DOMAIN,
        TASK,
        [
            InputSpec(
                "observation",
                spec.observation_dtype,
                list(spec.observation_shape),
                f"one {spec.env_id} observation per row",
            )
        ],
        details={"env": spec.to_dict()},
    ).write(run)
    # RL has no data splits; its episode seeds play that part, kept apart as splits are.
    run.write_splits(
        config.data.source,
        {
            "train": {"size": config.agent.total_steps, "unit": "env steps"},
            "validation": {
                "size": config.train.eval_episodes,
                "unit": "episodes per evaluation during training",
                "first_seed": config.train.eval_seed,
            },
            "test": {
                "size": config.evaluate.episodes,
                "unit": "episodes",
                "first_seed": config.evaluate.seed,
            },
        },
        seed=config.runtime.seed,
    )
    LOG.info(
        "%s on %s: observations %s %s, %s actions %d",
        config.agent.name,
        spec.env_id,
        spec.observation_shape,
        spec.observation_dtype,
        "discrete" if spec.discrete else "continuous",
        spec.num_actions,
    )
    agent = make_agent(config, spec, seed)
    factory = envs.make_env_factory(config.data)
    loop = TrainLoop(
        run,
        agent,
        total_steps=config.agent.total_steps,
        settings=config.train,
        evaluate=lambda: evaluate_agent(agent, factory, config),
        env_id=spec.env_id,
    )
    loop.start()
    if not loop.done:
        agent.train(loop)
    loop.finish()
    chosen: dict[str, Any] = {}
    if loop.best_weights is not None and loop.best["step"] < loop.steps:
        # keep_best: the last policy is measured on the same episodes, then replaced
        returns, _ = final_episodes(agent.model, spec, config)
        chosen = {
            "best_policy": 1,  # metrics.json holds numbers: 1 the best evaluated, 0 the last
            "policy_step": int(loop.best["step"]),
            "last_policy_mean_return": float(np.mean(returns)),
        }
        agent.model.set_weights(loop.best_weights)
    model_io.save_model(agent.model, run.model_path)
    metrics = evaluate_model(load_model(run), spec, config, run)
    if config.train.keep_best and not chosen:  # the last evaluation was the best
        chosen = {
            "best_policy": 0,
            "policy_step": loop.steps,
            "last_policy_mean_return": metrics["mean_return"],
        }
    metrics.update(chosen)
    metrics["steps_per_second"] = round(loop.steps_per_second, 1)
    metrics["train_steps"] = loop.steps
    run.write_metrics(metrics)
    rl_plots.learning_curve(
        loop.history,
        run.plots / "learning_curve.png",
        title=f"{config.agent.name} on {spec.env_id}",
        target=SOLVED.get(spec.env_id),
    )
    write_card(config, run, spec, agent.model, metrics, loop)
    return metrics


def evaluate_agent(agent, factory, config: RLConfig) -> tuple[np.ndarray, np.ndarray]:
    """The evaluation during training: greedy episodes on the fixed seed list."""
    agent.forward.sync()  # A3C's workers update the global weights behind its back
    return run_episodes(agent.act, factory, config.train.eval_episodes, config.train.eval_seed)


def write_card(config: RLConfig, run: RunDir, spec, model, metrics, loop) -> None:
    hp = getattr(config.agent, config.agent.name)
    limitations = [
        f"Returns are measured on {config.evaluate.episodes} episodes with seeds "
        f"{config.evaluate.seed}..{config.evaluate.seed + config.evaluate.episodes - 1}; "
        "another seed list gives a somewhat different mean.",
        "The policy knows nothing outside its training environment: changed dynamics, "
        "observation noise or a new version of the env can break it.",
        "Training resumes from its last checkpoint, but environments restart their "
        "episodes on resume.",
    ]
    if metrics.get("best_policy") == 1:
        limitations.append(
            f"This is the best policy of the evaluations during training (`train.keep_best`, "
            f"env step {metrics['policy_step']:,}), not the last one, which scored "
            f"{metrics['last_policy_mean_return']:.1f} on the same episodes."
        )
    write_model_card(
        run,
        title=f"{config.agent.name.upper()} agent for {spec.env_id}",
        summary=f"A {config.agent.name.upper()} policy trained with Deepfield for "
        f"{loop.steps:,} environment steps on Gymnasium's `{spec.env_id}`.",
        data={
            "environment": spec.env_id,
            "observation": f"{spec.observation_shape} {spec.observation_dtype}",
            "actions": f"{'discrete' if spec.discrete else 'continuous'} ({spec.num_actions})",
            "env kwargs": json.dumps(config.data.env_kwargs) or "{}",
            "training episodes": loop.episodes,
        },
        model={
            "agent": config.agent.name,
            "network": torso_name(config.agent.network, spec),
            "hidden": config.agent.network.hidden,
            "parameters": f"{model.count_params():,}",
        },
        training={
            "env steps": loop.steps,
            "seed": config.runtime.seed,
            "env steps/s": round(loop.steps_per_second, 1),
            **{k: v for k, v in hp.model_dump().items() if not isinstance(v, dict)},
        },
        metrics=metrics,
        intended_use="Acting in the same environment (same id, version and wrappers) it "
        "was trained in; a baseline to compare other agents against.",
        limitations=limitations,
    )


# === Evaluation ===
def load_model(run: RunDir) -> keras.Model:
    return model_io.load_model(run.model_path)


def load_spec(run: RunDir) -> envs.EnvSpec:
    record = InputContract.read(run).details["env"]
    return envs.EnvSpec(
        record["env_id"],
        tuple(record["observation_shape"]),
        record["observation_dtype"],
        record["image"],
        record["action_space"] == "discrete",
        record["num_actions"],
        tuple(record["action_low"]),
        tuple(record["action_high"]),
    )


def policy(model: keras.Model, spec: envs.EnvSpec, deterministic: bool, seed: int):
    """obs batch -> env actions, greedy or sampled, through the fast forward pass."""
    forward = Forward(model, spec.observation_shape)
    rng = np.random.default_rng(seed)

    def act(obs: np.ndarray) -> np.ndarray:
        outputs = forward(obs)
        if deterministic or "q_values" in outputs:
            return greedy_actions(outputs, spec)
        actions, _ = sample_actions(outputs, spec, rng)
        return actions if spec.discrete else np.clip(actions, spec.action_low, spec.action_high)

    return act


def final_episodes(
    model: keras.Model,
    spec: envs.EnvSpec,
    config: RLConfig,
    episodes: int | None = None,
    seed: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(returns, lengths) of `model` on the evaluation episodes (config's by default)."""
    episodes = episodes or config.evaluate.episodes
    seed = config.evaluate.seed if seed is None else seed
    return run_episodes(
        policy(model, spec, config.evaluate.deterministic, seed),
        envs.make_env_factory(config.data),
        episodes,
        seed,
    )


def evaluate_model(
    model: keras.Model,
    spec: envs.EnvSpec,
    config: RLConfig,
    run: RunDir,
    *,
    episodes: int | None = None,
    seed: int | None = None,
    out: Path | None = None,
) -> dict[str, Any]:
    """Mean and std return over episodes reset with seeds seed..seed+episodes-1."""
    episodes = episodes or config.evaluate.episodes
    seed = config.evaluate.seed if seed is None else seed
    returns, lengths = final_episodes(model, spec, config, episodes, seed)
    target = SOLVED.get(spec.env_id)
    metrics: dict[str, Any] = {
        "mean_return": float(np.mean(returns)),
        "std_return": float(np.std(returns)),
        "episodes": episodes,
        "min_return": float(np.min(returns)),
        "max_return": float(np.max(returns)),
        "mean_length": float(np.mean(lengths)),
        "first_seed": seed,
        "split": "evaluation seeds",
        "num_examples": episodes,
        "task": TASK,
        "domain": DOMAIN,
    }
    if target is not None:
        metrics["solved"] = float(np.mean(returns) >= target)
    run.write_metrics(metrics, path=out)
    rl_plots.return_histogram(
        returns, run.plots / "eval_returns.png", title=f"{episodes} evaluation episodes"
    )
    LOG.info(
        "evaluation: mean return %.2f +/- %.2f over %d episodes",
        metrics["mean_return"],
        metrics["std_return"],
        episodes,
    )
    return metrics


def evaluate(
    run: RunDir,
    config: RLConfig,
    *,
    episodes: int | None = None,
    seed: int | None = None,
    out: Path | None = None,
) -> dict[str, Any]:
    """Re-evaluate a finished run; rewrites metrics.json (or writes `out`)."""
    return evaluate_model(
        load_model(run), load_spec(run), config, run, episodes=episodes, seed=seed, out=out
    )


# === Play ===
def play(
    run: RunDir,
    config: RLConfig,
    *,
    out: Path | None = None,
    seed: int | None = None,
    max_frames: int = 400,
    scale: float = 0.5,
) -> dict[str, Any]:
    """Play one greedy episode and write it as an animated GIF."""
    from PIL import Image

    spec = load_spec(run)
    act = policy(load_model(run), spec, True, 0)
    seed = config.evaluate.seed if seed is None else seed
    env = envs.make_env_factory(config.data, render_mode="rgb_array")()
    if "rgb_array" not in (env.metadata.get("render_modes") or []):
        env.close()
        raise UserError(f"environment {spec.env_id} cannot render frames (no rgb_array mode)")
    frames, total, steps = [], 0.0, 0
    try:
        obs, _ = env.reset(seed=seed)
        frames.append(env.render())
        while True:
            obs, reward, terminated, truncated, _ = env.step(act(obs[None])[0])
            total += float(reward)
            steps += 1
            frames.append(env.render())
            if terminated or truncated:
                break
    finally:
        env.close()
    stride = max(1, -(-len(frames) // max_frames))  # long episodes keep every k-th frame
    kept = frames[::stride]
    images = [Image.fromarray(np.asarray(frame, np.uint8)) for frame in kept]
    if scale != 1.0:
        size = (max(1, int(images[0].width * scale)), max(1, int(images[0].height * scale)))
        images = [image.resize(size) for image in images]
    target = Path(out) if out else run.path / "play" / f"episode-seed{seed}.gif"
    target.parent.mkdir(parents=True, exist_ok=True)
    fps = float(env.metadata.get("render_fps") or 30) / stride
    tmp = target.with_name(f".{target.name}.tmp")
    images[0].save(
        tmp,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=max(20, int(1000 / fps)),
        loop=0,
    )
    os.replace(tmp, target)
    return {
        "gif": str(target),
        "return": total,
        "length": steps,
        "frames": len(images),
        "seed": seed,
    }


# === Prediction ===
def predict(run: RunDir, config: RLConfig, inputs: list[str]) -> list[dict[str, Any]]:
    """Actions (and the network's outputs) for observations given as JSON lists."""
    spec = load_spec(run)
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
    outputs = Forward(load_model(run), spec.observation_shape)(np.stack(rows))
    actions = greedy_actions(outputs, spec)
    results = []
    for i, text in enumerate(inputs):
        result = {"input": text, "action": np.asarray(actions[i]).tolist()}
        result.update({k: np.round(v[i], 6).tolist() for k, v in outputs.items()})
        results.append(result)
    return results
