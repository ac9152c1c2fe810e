"""A3C (Mnih et al. 2016): asynchronous actor-learners without locks.

Each worker thread has its own env and its own copy of the network. It copies the
global weights, acts for up to `n_steps` (t_max) steps, computes the actor-critic
gradients on its local copy, and applies them to the global network through one
shared RMSprop optimizer, with no lock around the update (Hogwild-style, as in the
paper). TensorFlow ops release the GIL, so workers overlap their gradient work.

Thread scheduling makes A3C runs not bit-for-bit repeatable, even with a fixed seed.
"""

from __future__ import annotations

import threading

import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf

from domains.rl.agents.a2c import actor_critic_loss
from domains.rl.agents.base import Agent
from domains.rl.buffers import compute_gae
from domains.rl.envs import make_env_factory
from domains.rl.networks import Forward, build_actor_critic, env_actions, sample_actions


class A3CAgent(Agent):
    name = "a3c"

    def __init__(self, config, spec, seed):
        super().__init__(config, spec, seed)
        self.hp = config.agent.a3c
        self.model = build_actor_critic(spec, config.agent.network)
        self.forward = Forward(self.model, spec.observation_shape)
        self.optimizer = keras.optimizers.RMSprop(
            learning_rate=self.hp.learning_rate, rho=0.99, epsilon=self.hp.rms_prop_eps
        )
        self.optimizer.build(self.model.trainable_variables)

    def train(self, loop) -> None:
        stop = threading.Event()
        errors: list[BaseException] = []
        workers = [
            _Worker(self, index, loop, stop, errors, np.random.default_rng([self.seed, index]))
            for index in range(self.hp.workers)
        ]
        threads = [
            threading.Thread(target=worker.run, name=f"a3c-worker-{worker.index}", daemon=True)
            for worker in workers
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.forward.sync()
        if errors:
            error = errors[0]
            if isinstance(error, _EnvStepError):
                loop.fail(error.__cause__)
            raise error

    @tf.function(reduce_retracing=True)
    def apply_gradients(self, grads):
        """The lock-free update of the global network (the shared optimizer's step)."""
        self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables, strict=True))


class _EnvStepError(Exception):
    """Marks a worker's failure as the environment's (its cause is the env's error)."""


class _Worker:
    """One actor-learner: its env, its local network, its own random generator."""

    def __init__(self, agent: A3CAgent, index, loop, stop, errors, rng):
        self.agent, self.index, self.loop = agent, index, loop
        self.stop, self.errors, self.rng = stop, errors, rng
        self.hp = agent.hp
        self.local = build_actor_critic(agent.spec, agent.config.agent.network)
        self.forward = Forward(self.local, agent.spec.observation_shape)
        self.env = gym.wrappers.RecordEpisodeStatistics(make_env_factory(agent.config.data)())

    def run(self) -> None:
        try:
            self._run()
        except BaseException as err:  # noqa: BLE001 - handed to the main thread
            self.errors.append(err)
            self.stop.set()
        finally:
            self.env.close()

    def _run(self) -> None:
        hp, spec, loop = self.hp, self.agent.spec, self.loop
        t_max = hp.n_steps
        obs, _ = self.env.reset(seed=self.agent.seed + 7919 * (self.index + 1) + loop.steps)
        observations = np.zeros((t_max, *spec.observation_shape), spec.observation_dtype)
        action_shape = () if spec.discrete else (spec.num_actions,)
        actions = np.zeros((t_max, *action_shape), "int64" if spec.discrete else "float32")
        values = np.zeros((t_max, 1), np.float32)
        rewards = np.zeros((t_max, 1), np.float32)
        terminated = np.zeros((t_max, 1), bool)
        while not (loop.done or self.stop.is_set()):
            self._copy_global_weights()
            self.forward.sync()
            valid = np.zeros((t_max, 1), bool)
            rewards[:] = 0.0
            terminated[:] = False
            ended = False
            count = 0
            while count < t_max and not ended:
                outputs = self.forward(obs[None])
                action, _ = sample_actions(outputs, spec, self.rng)
                try:
                    next_obs, reward, term, trunc, info = self.env.step(
                        env_actions(action, spec)[0]
                    )
                except Exception as err:  # noqa: BLE001 - the main thread stops cleanly
                    raise _EnvStepError() from err
                observations[count], actions[count] = obs, action[0]
                values[count, 0], rewards[count, 0] = outputs["value"][0], reward
                terminated[count, 0], valid[count, 0] = term, True
                count += 1
                obs = next_obs
                if term or trunc:
                    ended = True
                    loop.record_episodes([info["episode"]["r"]], [info["episode"]["l"]])
            # Bootstrap from V(next obs): the final observation when truncated, 0 when
            # terminated (the `terminated` flag zeroes it inside compute_gae).
            last_value = self.forward(obs[None])["value"]
            if ended:
                obs, _ = self.env.reset()
            advantages, returns = compute_gae(
                rewards[:count], values[:count], last_value, terminated[:count],
                terminated[:count] | ended_mask(count, ended), valid[:count],
                hp.gamma, hp.gae_lambda,
            )  # fmt: skip
            batch = _padded(observations, actions, advantages, returns, count, t_max)
            grads, stats = self._gradients(batch)
            self.agent.apply_gradients(grads)
            loop.advance(count, {k: float(v) for k, v in stats.items()})

    @tf.function
    def _copy_global_weights(self):
        for local, shared in zip(self.local.weights, self.agent.model.weights, strict=True):
            local.assign(shared)

    @tf.function(reduce_retracing=True, jit_compile=True)
    def _gradients(self, batch):
        with tf.GradientTape() as tape:
            loss, stats = actor_critic_loss(self.local, batch, self.hp, False)
        grads = tape.gradient(loss, self.local.trainable_variables)
        grads, _ = tf.clip_by_global_norm(grads, self.hp.max_grad_norm)
        return grads, stats


def ended_mask(count: int, ended: bool) -> np.ndarray:
    """Marks the segment's last step as an episode end (advantages stop there)."""
    mask = np.zeros((count, 1), bool)
    mask[-1, 0] = ended
    return mask


def _padded(observations, actions, advantages, returns, count: int, t_max: int):
    """The segment padded to t_max rows with weight 0: one trace for every length."""
    weights = np.zeros(t_max, np.float32)
    weights[:count] = 1.0
    adv = np.zeros(t_max, np.float32)
    ret = np.zeros(t_max, np.float32)
    adv[:count], ret[:count] = advantages[:, 0], returns[:, 0]
    return {
        "obs": tf.constant(observations),
        "actions": tf.constant(actions),
        "advantages": tf.constant(adv),
        "returns": tf.constant(ret),
        "weights": tf.constant(weights),
    }
