"""RL serving signatures: observation in, action out.

`serving_default` takes `observation`, a batch shaped like the env's (wrapped)
observations, float32 (vectors) or uint8 (stacked 84x84 frames), and returns:

- DQN: `action` (int64, argmax Q) and `q_values`;
- discrete actor-critics (A2C, A3C, PPO): `action` (int64, the most likely),
  `probabilities` (softmax of the logits) and `value`;
- continuous actor-critics: `action` (the Gaussian mean clipped to the action
  bounds), `mean`, `std` and `value`.

Actions are the greedy ones, which is what `evaluate` measures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from domains.rl import envs
from domains.rl.config import RLConfig
from shared.export import ServingSpec
from shared.run_dir import RunDir

WARMUP_SINGLE = 16  # single-observation requests (what an agent loop sends)
WARMUP_BATCH = 32  # plus one batch


class PolicyServing(tf.Module):
    """The exported object: the trained network and its action selection."""

    def __init__(self, model, spec: envs.EnvSpec):
        super().__init__(name="rl_policy")
        self.model = model
        self.discrete = spec.discrete
        self.low = tf.constant(spec.action_low or (0.0,), tf.float32)
        self.high = tf.constant(spec.action_high or (0.0,), tf.float32)
        dtype = tf.uint8 if spec.observation_dtype == "uint8" else tf.float32
        self.serve = tf.function(
            self._serve,
            input_signature=[
                tf.TensorSpec([None, *spec.observation_shape], dtype, name="observation")
            ],
        )

    def _serve(self, observation: tf.Tensor) -> dict[str, tf.Tensor]:
        outputs = self.model(tf.cast(observation, tf.float32), training=False)
        if not isinstance(outputs, dict):
            return {"action": tf.argmax(outputs, axis=-1), "q_values": outputs}
        result = {"value": outputs["value"]}
        if self.discrete:
            result["probabilities"] = tf.nn.softmax(outputs["logits"])
            result["action"] = tf.argmax(outputs["logits"], axis=-1)
        else:
            result["mean"] = outputs["mean"]
            result["std"] = tf.exp(outputs["log_std"])
            result["action"] = tf.clip_by_value(outputs["mean"], self.low, self.high)
        return result


def sample_observations(config: RLConfig, count: int, seed: int) -> np.ndarray:
    """Observations a client would send: from episodes of random actions in the env."""
    env = envs.make_env_factory(config.data)()
    observations = []
    try:
        env.action_space.seed(seed)
        obs, _ = env.reset(seed=seed)
        while len(observations) < count:
            observations.append(obs)
            obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                obs, _ = env.reset()
    finally:
        env.close()
    return np.stack(observations)


def serving_spec(run: RunDir, config: RLConfig, model, spec: envs.EnvSpec) -> ServingSpec:
    """The export of a finished RL run, with warmup requests from the env itself."""
    module = PolicyServing(model, spec)
    observations = sample_observations(config, WARMUP_SINGLE + WARMUP_BATCH, config.evaluate.seed)
    requests = [observations[i : i + 1] for i in range(WARMUP_SINGLE)]
    requests.append(observations[WARMUP_SINGLE:])
    expected = [
        {k: v.numpy() for k, v in module.serve(tf.constant(batch)).items()} for batch in requests
    ]
    return ServingSpec(
        module=module,
        signatures={"serving_default": module.serve},
        warmup=[{"observation": batch} for batch in requests],
        expected=expected,
        metadata={
            "domain": "rl",
            "task": "control",
            "agent": config.agent.name,
            "env": spec.to_dict(),
            "run": str(Path(run.path).resolve()),
        },
    )
