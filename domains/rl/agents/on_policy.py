"""Rollout collection shared by A2C and PPO: `n_steps` over a vector env, then update.

The policy samples in NumPy (`Forward`), the rollout keeps each step's value for GAE,
and the value of the last observation bootstraps the rollout's tail. Steps after an
episode end (NEXT_STEP autoreset) are stored with weight 0, so every update batch has
the same shape (one trace of the update function) and those steps count for nothing.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from domains.rl.agents.base import Agent
from domains.rl.buffers import RolloutBuffer
from domains.rl.envs import make_vector_env
from domains.rl.networks import Forward, build_actor_critic, env_actions, sample_actions


class OnPolicyAgent(Agent):
    """An actor-critic trained on fresh rollouts; subclasses define `update`."""

    def __init__(self, config, spec, seed, hp):
        super().__init__(config, spec, seed)
        self.hp = hp
        self.model = build_actor_critic(spec, config.agent.network)
        self.forward = Forward(self.model, spec.observation_shape)
        self.action_shape = () if spec.discrete else (spec.num_actions,)
        self.action_dtype = "int64" if spec.discrete else "float32"

    def learning_rate(self, progress: float) -> float:
        scale = 1.0 - progress if self.hp.learning_rate_schedule == "linear" else 1.0
        return self.hp.learning_rate * scale

    def train(self, loop) -> None:
        hp = self.hp
        envs = make_vector_env(self.config.data, hp.num_envs)
        rollout = RolloutBuffer(
            hp.n_steps,
            hp.num_envs,
            self.spec.observation_shape,
            self.spec.observation_dtype,
            self.action_shape,
            self.action_dtype,
        )
        try:
            obs, _ = envs.reset(seed=self.seed + loop.steps)
            autoreset = np.zeros(hp.num_envs, bool)
            while not loop.done:
                rollout.reset()
                for _ in range(hp.n_steps):
                    outputs = self.forward(obs)
                    actions, log_probs = sample_actions(outputs, self.spec, self.rng)
                    step = loop.step_env(envs, env_actions(actions, self.spec))
                    next_obs, rewards, terminated, truncated, infos = step
                    rollout.add(
                        obs, actions, log_probs, outputs["value"], rewards, terminated,
                        truncated, ~autoreset,
                    )  # fmt: skip
                    loop.record(infos)
                    autoreset = terminated | truncated
                    obs = next_obs
                last_values = self.forward(obs)["value"]
                advantages, returns = rollout.advantages(last_values, hp.gamma, hp.gae_lambda)
                metrics = self.update(rollout.flat(advantages, returns), loop.progress)
                self.forward.sync()
                loop.advance(hp.n_steps * hp.num_envs, metrics)
        finally:
            envs.close()

    def update(self, batch: dict[str, np.ndarray], progress: float) -> dict[str, float]:
        raise NotImplementedError


def weighted_mean(values, weights):
    return tf.reduce_sum(values * weights) / tf.maximum(tf.reduce_sum(weights), 1.0)


def normalize(advantages, weights):
    """Advantages scaled to mean 0, std 1 over the rows that count."""
    mean = weighted_mean(advantages, weights)
    var = weighted_mean(tf.square(advantages - mean), weights)
    return (advantages - mean) / (tf.sqrt(var) + 1e-8)
