"""Test environments (a flaky one, one with a Dict observation) and a small finished run."""

import gymnasium as gym
import numpy as np
import pytest

from domains.rl.envs import CorridorEnv
from tests.harness.tiny import tiny

# Set by a test to make FlakyCorridor raise once this many steps have been taken in the
# process (None: never). Module-level so the CLI, run in this process, sees it.
FAIL_AT_STEP: dict[str, int | None] = {"step": None, "taken": 0}


class FlakyCorridor(CorridorEnv):
    """The corridor, but its step raises like a crashed simulator when told to."""

    def step(self, action):
        FAIL_AT_STEP["taken"] += 1
        limit = FAIL_AT_STEP["step"]
        if limit is not None and FAIL_AT_STEP["taken"] >= limit:
            raise RuntimeError("simulator connection lost")
        return super().step(action)


class DictObservationEnv(gym.Env):
    observation_space = gym.spaces.Dict({"position": gym.spaces.Box(0, 1, (2,), np.float32)})
    action_space = gym.spaces.Discrete(2)

    def __init__(self, render_mode=None):
        self.render_mode = render_mode

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return {"position": np.zeros(2, np.float32)}, {}

    def step(self, action):
        return {"position": np.zeros(2, np.float32)}, 0.0, True, False, {}


if "test/FlakyCorridor-v0" not in gym.registry:
    gym.register("test/FlakyCorridor-v0", entry_point=FlakyCorridor, max_episode_steps=50)
    gym.register("test/DictObs-v0", entry_point=DictObservationEnv, max_episode_steps=10)

# A few thousand steps of PPO on the corridor: learns the optimum (0.94) in seconds. The
# shared harness's rl run (RLDomain.smoke_run), so the session trains it once for both.
FAST = list(tiny("rl").overrides)


@pytest.fixture(scope="session")
def corridor_run(domain_run):
    return domain_run("rl")
