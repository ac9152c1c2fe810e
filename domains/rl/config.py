"""The RL config: every key an `rl` command accepts, with types and defaults.

`agent.name` picks the algorithm; each algorithm keeps its own hyperparameters in its
own section (`agent.dqn.*`, `agent.ppo.*`, ...), named once, as CleanRL and RL Zoo do,
so switching `agent.name` never silently reuses another algorithm's learning rate.
Defaults are Stable-Baselines3's; the named configs set RL Zoo's tuned values.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.config import ConfigModel
from shared.training import RuntimeConfig

AGENTS = ("dqn", "a2c", "a3c", "ppo")


class NetworkConfig(ConfigModel):
    """The zoo network: `mlp` for vector observations, `nature_dqn` for image frames."""

    name: Literal["auto", "mlp", "nature_dqn"] = Field(
        "auto", description="auto: mlp for vectors, nature_dqn for frames"
    )
    hidden: list[int] = Field(default_factory=lambda: [64, 64], min_length=1)
    activation: Literal["relu", "tanh", "elu", "gelu", "silu"] = "tanh"


class DQNConfig(ConfigModel):
    """DQN (Mnih et al. 2015) with double-DQN targets, dueling heads and n-step returns."""

    learning_rate: float = Field(1e-4, gt=0)
    gamma: float = Field(0.99, ge=0, le=1)
    num_envs: int = Field(1, ge=1)
    buffer_size: int = Field(100_000, ge=1)
    batch_size: int = Field(32, ge=1)
    learning_starts: int = Field(1000, ge=0, description="env steps before the first update")
    train_freq: int = Field(4, ge=1, description="env steps between update rounds")
    gradient_steps: int = Field(1, ge=1, description="gradient steps per update round")
    target_update_interval: int = Field(10_000, ge=1, description="env steps between syncs")
    tau: float = Field(1.0, gt=0, le=1, description="1: hard target update; <1: Polyak")
    exploration_fraction: float = Field(0.1, gt=0, le=1)
    exploration_initial_eps: float = Field(1.0, ge=0, le=1)
    exploration_final_eps: float = Field(0.05, ge=0, le=1)
    double: bool = Field(True, description="double DQN: online net picks, target net rates")
    dueling: bool = False
    n_step: int = Field(1, ge=1, description="n-step returns")
    max_grad_norm: float = Field(10.0, gt=0)
    adam_epsilon: float = Field(1e-7, gt=0, description="Adam's epsilon (PyTorch's: 1e-8)")
    init: Literal["glorot", "torch"] = Field(
        "glorot", description="Dense init: Keras' Glorot, or PyTorch nn.Linear's (SB3's)"
    )


class PPOConfig(ConfigModel):
    """PPO (Schulman et al. 2017): clipped objective over minibatch epochs, with GAE."""

    learning_rate: float = Field(3e-4, gt=0)
    learning_rate_schedule: Literal["constant", "linear"] = "constant"
    gamma: float = Field(0.99, ge=0, le=1)
    gae_lambda: float = Field(0.95, ge=0, le=1)
    num_envs: int = Field(8, ge=1)
    n_steps: int = Field(256, ge=1, description="steps per env per rollout")
    batch_size: int = Field(64, ge=1, description="minibatch size")
    n_epochs: int = Field(10, ge=1)
    clip_range: float = Field(0.2, gt=0)
    clip_range_schedule: Literal["constant", "linear"] = "constant"
    normalize_advantage: bool = True
    ent_coef: float = Field(0.0, ge=0)
    vf_coef: float = Field(0.5, ge=0)
    max_grad_norm: float = Field(0.5, gt=0)
    target_kl: float | None = Field(None, gt=0, description="stop the epochs past this KL")


class A2CConfig(ConfigModel):
    """A2C: synchronous advantage actor-critic over a vector env, with GAE, RMSprop."""

    learning_rate: float = Field(7e-4, gt=0)
    learning_rate_schedule: Literal["constant", "linear"] = "constant"
    gamma: float = Field(0.99, ge=0, le=1)
    gae_lambda: float = Field(1.0, ge=0, le=1, description="1: plain n-step advantages")
    num_envs: int = Field(8, ge=1)
    n_steps: int = Field(5, ge=1)
    ent_coef: float = Field(0.0, ge=0)
    vf_coef: float = Field(0.5, ge=0)
    max_grad_norm: float = Field(0.5, gt=0)
    rms_prop_eps: float = Field(1e-5, gt=0)
    normalize_advantage: bool = False


class A3CConfig(ConfigModel):
    """A3C (Mnih et al. 2016): lock-free actor-learner threads, each with its own env."""

    learning_rate: float = Field(7e-4, gt=0)
    gamma: float = Field(0.99, ge=0, le=1)
    gae_lambda: float = Field(1.0, ge=0, le=1)
    workers: int = Field(4, ge=1, description="actor-learner threads")
    n_steps: int = Field(5, ge=1, description="t_max: steps per local update")
    ent_coef: float = Field(0.01, ge=0)
    vf_coef: float = Field(0.5, ge=0)
    max_grad_norm: float = Field(0.5, gt=0)
    rms_prop_eps: float = Field(1e-5, gt=0)


class AgentConfig(ConfigModel):
    name: Literal["dqn", "a2c", "a3c", "ppo"] = "ppo"
    total_steps: int = Field(100_000, ge=1, description="environment steps to train for")
    network: NetworkConfig = NetworkConfig()
    dqn: DQNConfig = DQNConfig()
    ppo: PPOConfig = PPOConfig()
    a2c: A2CConfig = A2CConfig()
    a3c: A3CConfig = A3CConfig()


class RLDataConfig(ConfigModel):
    """The environment: `--data gym:ENV_ID` and how it is wrapped."""

    source: str = "gym:CartPole-v1"
    env_kwargs: dict[str, int | float | bool | str] = Field(
        default_factory=dict, description="keyword arguments for gymnasium.make"
    )
    vectorization: Literal["sync", "async"] = "sync"
    max_episode_steps: int | None = Field(
        None, ge=1, description="agent steps per episode; None: the env's own limit"
    )
    frame_stack: int = Field(4, ge=1, description="image envs: frames stacked per observation")
    frame_size: int = Field(84, ge=36, description="image envs: frames resized to NxN")


class TrainLoopConfig(ConfigModel):
    """How training reports and saves itself (not the algorithm: that is `agent`)."""

    eval_interval: int = Field(10_000, ge=1, description="env steps between evaluations")
    eval_episodes: int = Field(10, ge=1, description="episodes per evaluation during training")
    eval_seed: int = Field(
        20_000,
        description="first episode seed of the evaluations during training; apart from "
        "evaluate.seed, so picking the best policy never sees the final evaluation's episodes",
    )
    keep_best: bool = Field(
        False,
        description="deliver the policy of the best evaluation during training (RL Zoo's "
        "best_model), not the last one; metrics.json reports both",
    )
    log_interval: int = Field(2_000, ge=1, description="env steps between TensorBoard logs")
    checkpoint_interval: int = Field(25_000, ge=1, description="env steps between checkpoints")
    checkpoint_replay_buffer: bool = Field(True, description="DQN: save the buffer to resume")
    stop_at_return: float | None = Field(
        None, description="stop early once an evaluation's mean return reaches this"
    )


class EvaluateConfig(ConfigModel):
    episodes: int = Field(100, ge=1)
    seed: int = Field(10_000, description="episode i is reset with seed + i")
    deterministic: bool = Field(True, description="greedy actions (False: sample the policy)")


class RLConfig(ConfigModel):
    task: Literal["control"] = "control"
    agent: AgentConfig = AgentConfig()
    data: RLDataConfig = RLDataConfig()
    train: TrainLoopConfig = TrainLoopConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    runtime: RuntimeConfig = RuntimeConfig()
