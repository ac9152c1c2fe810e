"""Experience storage: DQN's replay buffer (n-step) and the on-policy rollout (GAE).

Both take vector-env steps as they come from Gymnasium 1.x with NEXT_STEP autoreset:
`valid` is False for the step right after an episode ended (the env only reset there,
ignoring the action), and such steps are never learned from. `terminated` stops the
bootstrap (the episode truly ended: the future is worth 0); `truncated` does not (a time
limit cut it: the future is worth V(final observation)).
"""

from __future__ import annotations

from collections import deque

import numpy as np


# === Replay (DQN) ===
class ReplayBuffer:
    """A ring buffer of (obs, action, return, next_obs, discount) transitions.

    `discount` is the factor on the bootstrap value: gamma^n for an n-step transition
    that did not terminate, 0 for one that did. Storing it (instead of `done`) makes
    truncation and n-step returns the buffer's business, and the DQN target simply
    `return + discount * Q_target(next_obs)`.
    """

    def __init__(
        self,
        capacity: int,
        observation_shape: tuple[int, ...],
        observation_dtype: str,
        action_shape: tuple[int, ...] = (),
        action_dtype: str = "int64",
        *,
        num_envs: int = 1,
        n_step: int = 1,
        gamma: float = 0.99,
    ):
        self.capacity = int(capacity)
        self.n_step = int(n_step)
        self.gamma = float(gamma)
        self.obs = np.zeros((capacity, *observation_shape), observation_dtype)
        self.next_obs = np.zeros((capacity, *observation_shape), observation_dtype)
        self.actions = np.zeros((capacity, *action_shape), action_dtype)
        self.returns = np.zeros(capacity, np.float32)
        self.discounts = np.zeros(capacity, np.float32)
        self.position = 0
        self.size = 0
        self._pending = [deque() for _ in range(num_envs)]

    def __len__(self) -> int:
        return self.size

    def add(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        valid: np.ndarray,
    ) -> None:
        """Add one vector step (arrays with the env index first)."""
        if self.n_step == 1:
            keep = np.flatnonzero(valid)
            discount = self.gamma * (1.0 - terminated[keep].astype(np.float32))
            self._store(obs[keep], actions[keep], rewards[keep], next_obs[keep], discount)
            return
        for env in np.flatnonzero(valid):
            pending = self._pending[env]
            pending.append((obs[env], actions[env], float(rewards[env])))
            if terminated[env] or truncated[env]:
                while pending:  # every pending start gets a shorter return, then stops
                    self._emit(pending, next_obs[env], bool(terminated[env]))
                    pending.popleft()
            elif len(pending) == self.n_step:
                self._emit(pending, next_obs[env], False)
                pending.popleft()

    def _emit(self, pending: deque, next_obs: np.ndarray, terminated: bool) -> None:
        rewards = np.array([step[2] for step in pending], np.float64)
        ret = float(np.sum(rewards * self.gamma ** np.arange(len(rewards))))
        discount = 0.0 if terminated else self.gamma ** len(rewards)
        first = pending[0]
        self._store(
            first[0][None], np.asarray(first[1])[None], np.array([ret]), next_obs[None],
            np.array([discount]),
        )  # fmt: skip

    def _store(self, obs, actions, returns, next_obs, discounts) -> None:
        for i in range(len(obs)):
            slot = self.position
            self.obs[slot] = obs[i]
            self.actions[slot] = actions[i]
            self.returns[slot] = returns[i]
            self.next_obs[slot] = next_obs[i]
            self.discounts[slot] = discounts[i]
            self.position = (slot + 1) % self.capacity
            self.size = min(self.size + 1, self.capacity)

    def sample(self, rng: np.random.Generator, batch_size: int, rounds: int = 1) -> dict:
        """`rounds` minibatches at once, shaped [rounds, batch_size, ...]."""
        index = rng.integers(0, self.size, (rounds, batch_size))
        return {
            "obs": self.obs[index],
            "actions": self.actions[index],
            "returns": self.returns[index],
            "next_obs": self.next_obs[index],
            "discounts": self.discounts[index],
        }

    # === Checkpoints ===
    def state(self) -> dict[str, np.ndarray]:
        n = self.size
        order = (np.arange(n) + (self.position - n)) % self.capacity  # oldest first
        return {
            "replay_obs": self.obs[order],
            "replay_next_obs": self.next_obs[order],
            "replay_actions": self.actions[order],
            "replay_returns": self.returns[order],
            "replay_discounts": self.discounts[order],
        }

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        n = min(len(arrays["replay_returns"]), self.capacity)
        for name in ("obs", "next_obs", "actions", "returns", "discounts"):
            getattr(self, name)[:n] = arrays[f"replay_{name}"][-n:]
        self.size, self.position = n, n % self.capacity


# === Rollouts (A2C, PPO) ===
class RolloutBuffer:
    """One rollout of `n_steps` vector steps, with GAE advantages (Schulman et al. 2016)."""

    def __init__(
        self,
        n_steps: int,
        num_envs: int,
        observation_shape: tuple[int, ...],
        observation_dtype: str,
        action_shape: tuple[int, ...],
        action_dtype: str,
    ):
        shape = (n_steps, num_envs)
        self.n_steps = n_steps
        self.obs = np.zeros((*shape, *observation_shape), observation_dtype)
        self.actions = np.zeros((*shape, *action_shape), action_dtype)
        self.log_probs = np.zeros(shape, np.float32)
        self.values = np.zeros(shape, np.float32)
        self.rewards = np.zeros(shape, np.float32)
        self.terminated = np.zeros(shape, bool)
        self.ended = np.zeros(shape, bool)  # terminated or truncated
        self.valid = np.zeros(shape, bool)
        self.step = 0

    def add(self, obs, actions, log_probs, values, rewards, terminated, truncated, valid) -> None:
        t = self.step
        self.obs[t], self.actions[t], self.log_probs[t], self.values[t] = (
            obs,
            actions,
            log_probs,
            values,
        )
        self.rewards[t] = np.where(valid, rewards, 0.0)
        self.terminated[t] = terminated & valid
        self.ended[t] = (terminated | truncated) & valid
        self.valid[t] = valid
        self.step += 1

    def full(self) -> bool:
        return self.step == self.n_steps

    def advantages(
        self, last_values: np.ndarray, gamma: float, gae_lambda: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """(advantages, returns) per step; 0 on invalid (autoreset) steps."""
        return compute_gae(
            self.rewards,
            self.values,
            last_values,
            self.terminated,
            self.ended,
            self.valid,
            gamma,
            gae_lambda,
        )

    def flat(self, advantages: np.ndarray, returns: np.ndarray) -> dict[str, np.ndarray]:
        """The rollout as one batch, env-major, with the valid mask as weights."""

        def merge(array: np.ndarray) -> np.ndarray:
            return array.reshape(-1, *array.shape[2:])

        return {
            "obs": merge(self.obs),
            "actions": merge(self.actions),
            "log_probs": merge(self.log_probs),
            "values": merge(self.values),
            "advantages": merge(advantages).astype(np.float32),
            "returns": merge(returns).astype(np.float32),
            "weights": merge(self.valid).astype(np.float32),
        }

    def reset(self) -> None:
        self.step = 0


def compute_gae(
    rewards: np.ndarray,
    values: np.ndarray,
    last_values: np.ndarray,
    terminated: np.ndarray,
    ended: np.ndarray,
    valid: np.ndarray,
    gamma: float,
    gae_lambda: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Generalized advantage estimates over [time, env] arrays.

    The value after step t is `values[t + 1]` (or `last_values`). With NEXT_STEP
    autoreset that is right even at an episode's end: the row after the last step
    holds the episode's final observation and its value, so a truncated episode
    bootstraps from V(final obs) and a terminated one from 0. Advantages never flow
    back across an episode end (`ended`).
    """
    steps = len(rewards)
    advantages = np.zeros_like(values, dtype=np.float32)
    running = np.zeros_like(last_values, dtype=np.float32)
    for t in reversed(range(steps)):
        next_values = values[t + 1] if t + 1 < steps else last_values
        delta = rewards[t] + gamma * next_values * (1.0 - terminated[t]) - values[t]
        running = delta + gamma * gae_lambda * (1.0 - ended[t]) * running
        running = np.where(valid[t], running, 0.0).astype(np.float32)
        advantages[t] = running
    returns = np.where(valid, advantages + values, 0.0)
    return advantages, returns.astype(np.float32)
