"""Environments: `gym:ENV_ID` specs, the standard wrappers, and vector envs.

Every env is built by `make_env`, so training, evaluation, `play` and the tests see the
same observations: Atari through ale-py with the standard AtariPreprocessing (noop
starts, frame skip 4, 84x84 grayscale) and a 4-frame stack; other image envs (CarRacing)
grayscaled, resized and stacked the same way; frames are channels-last (84, 84, 4), the
layout the Nature-DQN CNN takes. Discrete observations become one-hot vectors.

Vector envs use Gymnasium 1.x's NEXT_STEP autoreset: the step after an episode ends
returns the reset observation with reward 0 and ignores the action. Agents drop that
step (see `autoreset_mask`), so no transition crosses an episode boundary.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode

from shared.errors import UserError

# Packages that register more env ids when imported, by id prefix.
_ENV_PACKAGES = {"ALE/": "ale_py", "highway": "highway_env", "merge": "highway_env"}
_EXTRA_PACKAGES = ("ale_py", "highway_env")


# === The project's own environment ===
class CorridorEnv(gym.Env):
    """A 1-D corridor: step left or right from cell 0 to the goal cell at the far end.

    Reward +1 on reaching the goal (terminated), -0.01 per other step; the time limit
    (50 steps) truncates. Observations are one-hot positions. Optimal return is
    1 - 0.01 * (length - 2). Small and fast, so the tests can check that every agent
    learns within a few thousand steps, and it exercises terminated vs truncated.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 8}

    def __init__(self, length: int = 8, render_mode: str | None = None):
        if length < 2:
            raise ValueError("a corridor needs at least 2 cells")
        self.length = length
        self.render_mode = render_mode
        self.observation_space = spaces.Box(0.0, 1.0, (length,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.position = 0

    def _observation(self) -> np.ndarray:
        obs = np.zeros(self.length, np.float32)
        obs[self.position] = 1.0
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.position = 0
        return self._observation(), {}

    def step(self, action):
        move = 1 if int(action) == 1 else -1
        self.position = int(np.clip(self.position + move, 0, self.length - 1))
        terminated = self.position == self.length - 1
        reward = 1.0 if terminated else -0.01
        return self._observation(), reward, terminated, False, {}

    def render(self):
        cell = 16
        frame = np.full((cell, cell * self.length, 3), 235, np.uint8)
        frame[:, (self.length - 1) * cell :] = (90, 200, 90)
        frame[2:-2, self.position * cell + 2 : (self.position + 1) * cell - 2] = (40, 80, 220)
        return frame


gym.register("deepfield/Corridor-v0", entry_point=CorridorEnv, max_episode_steps=50)


# === Specs ===
@dataclass(frozen=True)
class EnvSpec:
    """What an agent needs to know about an env, read from its (wrapped) spaces."""

    env_id: str
    observation_shape: tuple[int, ...]
    observation_dtype: str
    image: bool
    discrete: bool
    num_actions: int  # discrete: number of actions; continuous: action dimensions
    action_low: tuple[float, ...] = ()
    action_high: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "env_id": self.env_id,
            "observation_shape": list(self.observation_shape),
            "observation_dtype": self.observation_dtype,
            "image": self.image,
            "action_space": "discrete" if self.discrete else "continuous",
            "num_actions": self.num_actions,
            "action_low": list(self.action_low),
            "action_high": list(self.action_high),
        }


def env_id_of(source: str) -> str:
    """`gym:ENV_ID` -> ENV_ID; any other data spec is a UserError."""
    kind, sep, env_id = str(source).partition(":")
    if not sep or kind != "gym" or not env_id:
        raise UserError(
            f"rl takes --data gym:ENV_ID (for example gym:CartPole-v1), got {source!r}; "
            "builtin:, tfds:, folder:, csv:, jsonl:, npz:, idx: and the other specs are "
            "datasets for the other domains"
        )
    return env_id


def ensure_registered(env_id: str) -> None:
    """Import the package that registers `env_id`; unknown ids list close matches."""
    for prefix, package in _ENV_PACKAGES.items():
        if env_id.startswith(prefix):
            _import_env_package(package)
    if env_id in gym.registry:
        return
    for package in _EXTRA_PACKAGES:  # the id may belong to one we have not imported
        _import_env_package(package)
    if env_id in gym.registry:
        return
    close = difflib.get_close_matches(env_id, list(gym.registry), n=5, cutoff=0.5)
    hint = f"; close matches: {', '.join(close)}" if close else ""
    raise UserError(f"unknown environment {env_id!r}{hint} (see gymnasium.registry)")


def _import_env_package(package: str) -> None:
    try:
        module = importlib.import_module(package)
    except ImportError:
        return
    if package == "ale_py":
        gym.register_envs(module)


def make_env(
    source: str,
    *,
    env_kwargs: dict[str, Any] | None = None,
    max_episode_steps: int | None = None,
    frame_stack: int = 4,
    frame_size: int = 84,
    render_mode: str | None = None,
) -> gym.Env:
    """One env of `source`, with the project's standard wrappers (see the module doc)."""
    env_id = env_id_of(source)
    ensure_registered(env_id)
    kwargs = dict(env_kwargs or {})
    atari = env_id.startswith("ALE/")
    if atari:
        kwargs.setdefault("frameskip", 1)  # AtariPreprocessing skips frames itself
    if max_episode_steps is not None and not atari:
        kwargs["max_episode_steps"] = max_episode_steps
    try:
        env = gym.make(env_id, render_mode=render_mode, **kwargs)
    except TypeError as err:
        raise UserError(f"environment {env_id}: bad env_kwargs {env_kwargs}: {err}") from None
    except gym.error.Error as err:
        raise UserError(f"environment {env_id} cannot be made: {err}") from None
    obs_space = env.observation_space
    if atari:
        env = gym.wrappers.AtariPreprocessing(
            env, noop_max=30, frame_skip=4, screen_size=frame_size, grayscale_obs=True
        )
        env = _stack_frames(env, frame_stack)
        if max_episode_steps is not None:  # agent steps, each 4 emulator frames
            env = gym.wrappers.TimeLimit(env, max_episode_steps)
    elif isinstance(obs_space, spaces.Box) and len(obs_space.shape) == 3:
        env = gym.wrappers.GrayscaleObservation(env, keep_dim=False)
        env = gym.wrappers.ResizeObservation(env, (frame_size, frame_size))
        env = _stack_frames(env, frame_stack)
    elif isinstance(obs_space, spaces.Discrete):
        env = _one_hot(env)
    elif isinstance(obs_space, spaces.Box) and obs_space.dtype != np.float32:
        env = gym.wrappers.DtypeObservation(env, np.float32)
    return env


def _stack_frames(env: gym.Env, frames: int) -> gym.Env:
    """Stack the last `frames` grayscale frames and move the stack last: (H, W, frames)."""
    env = gym.wrappers.FrameStackObservation(env, frames)
    stacked = env.observation_space
    height, width = stacked.shape[1:]
    space = spaces.Box(0, 255, (height, width, frames), np.uint8)
    return gym.wrappers.TransformObservation(
        env, lambda obs: np.ascontiguousarray(np.moveaxis(obs, 0, -1)), space
    )


def _one_hot(env: gym.Env) -> gym.Env:
    size = int(env.observation_space.n)
    start = int(env.observation_space.start)
    eye = np.eye(size, dtype=np.float32)
    space = spaces.Box(0.0, 1.0, (size,), np.float32)
    return gym.wrappers.TransformObservation(env, lambda obs: eye[int(obs) - start], space)


def spec_of(env: gym.Env, env_id: str) -> EnvSpec:
    """An EnvSpec from a wrapped env; unsupported spaces are a UserError."""
    obs, act = env.observation_space, env.action_space
    if not isinstance(obs, spaces.Box) or len(obs.shape) not in (1, 2, 3):
        raise UserError(
            f"environment {env_id} has observation space {obs}; the agents take Box "
            "vectors, 2-D tables, image frames or Discrete states (not Dict, Tuple, Text, "
            "MultiBinary or graph spaces)"
        )
    if isinstance(act, spaces.Discrete):
        return EnvSpec(
            env_id, tuple(obs.shape), str(obs.dtype), len(obs.shape) == 3, True, int(act.n)
        )
    if isinstance(act, spaces.Box) and len(act.shape) == 1:
        if not (np.all(np.isfinite(act.low)) and np.all(np.isfinite(act.high))):
            raise UserError(f"environment {env_id} has an unbounded action space {act}")
        return EnvSpec(
            env_id,
            tuple(obs.shape),
            str(obs.dtype),
            len(obs.shape) == 3,
            False,
            int(act.shape[0]),
            tuple(float(x) for x in act.low),
            tuple(float(x) for x in act.high),
        )
    raise UserError(
        f"environment {env_id} has action space {act}; the agents take Discrete actions "
        "(dqn, a2c, a3c, ppo) or 1-D Box actions (a2c, a3c, ppo)"
    )


def check_agent_supports(agent: str, spec: EnvSpec) -> None:
    """DQN picks argmax over a finite action set; it cannot act in a continuous space."""
    if agent == "dqn" and not spec.discrete:
        raise UserError(
            f"dqn needs a discrete action space, but {spec.env_id} has continuous actions "
            f"({spec.num_actions}-D Box); use agent.name=ppo, a2c or a3c, or a discrete "
            "variant of the env"
        )


def make_env_factory(data, *, render_mode: str | None = None):
    """A zero-argument function that builds one env of the data config (for vector envs)."""

    def build() -> gym.Env:
        return make_env(
            data.source,
            env_kwargs=data.env_kwargs,
            max_episode_steps=data.max_episode_steps,
            frame_stack=data.frame_stack,
            frame_size=data.frame_size,
            render_mode=render_mode,
        )

    return build


def describe(data) -> EnvSpec:
    """The EnvSpec of the configured env (builds one env and closes it)."""
    env = make_env_factory(data)()
    try:
        return spec_of(env, env_id_of(data.source))
    finally:
        env.close()


def make_vector_env(data, num_envs: int) -> gym.vector.VectorEnv:
    """`num_envs` copies, NEXT_STEP autoreset, episode returns in `info["episode"]`."""
    factories = [make_env_factory(data) for _ in range(num_envs)]
    if data.vectorization == "async" and num_envs > 1:
        envs = gym.vector.AsyncVectorEnv(factories, autoreset_mode=AutoresetMode.NEXT_STEP)
    else:
        envs = gym.vector.SyncVectorEnv(factories, autoreset_mode=AutoresetMode.NEXT_STEP)
    return gym.wrappers.vector.RecordEpisodeStatistics(envs)


def finished_episodes(infos: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Returns and lengths of the episodes that ended in this vector step."""
    episode = infos.get("episode")
    if episode is None:
        return np.zeros(0), np.zeros(0, np.int64)
    mask = np.asarray(infos["_episode"], bool)
    return np.asarray(episode["r"])[mask], np.asarray(episode["l"])[mask]
