"""Bad input is one `error:` line (exit 2); a crashing env stops training with a checkpoint."""

import json

import gymnasium as gym
import pytest
from conftest import FAIL_AT_STEP
from gymnasium.utils.env_checker import check_env

from domains.rl.envs import CorridorEnv


def test_the_project_env_passes_gymnasium_check_env():
    check_env(gym.make("deepfield/Corridor-v0", render_mode="rgb_array").unwrapped)
    assert isinstance(gym.make("deepfield/Corridor-v0").unwrapped, CorridorEnv)
    env = gym.make("deepfield/Corridor-v0")
    obs, _ = env.reset(seed=0)
    for _ in range(49):
        obs, reward, terminated, truncated, _ = env.step(0)  # walk into the wall
    assert not terminated and not truncated and reward == pytest.approx(-0.01)
    assert env.step(0)[3] is True  # the 50th step is truncated, not terminated


# A --data kind rl does not read: the shared harness (tests/harness) checks it for every domain.
@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--data", "gym:CartPol-v1"],
            "unknown environment 'CartPol-v1'; close matches: CartPole-v1",
        ),
        (
            ["--data", "gym:Pendulum-v1", "--set", "agent.name=dqn"],
            "dqn needs a discrete action space",
        ),
        (["--data", "gym:test/DictObs-v0"], "observation space Dict"),
        (["--set", "agent.ppo.n_stepz=4"], "unknown config key 'agent.ppo.n_stepz'"),
        (["--set", "agent.name=sac"], "bad value for agent.name"),
        (["--strategy", "mirrored"], "rl trains on one device"),
    ],
    ids=["unknown-env", "dqn-continuous", "dict-obs", "typo", "agent", "strategy"],
)
def test_bad_input_is_one_error_line(args, message, tmp_path, cli):
    run_dir = tmp_path / "run"
    code, _, err = cli("rl", "train", "--config", "corridor", "--run-dir", str(run_dir), *args)
    assert code == 2
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in err
    assert not run_dir.exists()  # nothing half-written for bad input found up front


def test_env_raising_mid_episode_checkpoints_then_resume_finishes(tmp_path, cli):
    run_dir = tmp_path / "flaky"
    args = ("rl", "train", "--config", "corridor", "--data", "gym:test/FlakyCorridor-v0",
            "--set", "agent.total_steps=1536", "--set", "train.checkpoint_interval=512",
            "--set", "train.eval_interval=512", "--run-dir", str(run_dir))  # fmt: skip
    FAIL_AT_STEP.update(step=1100, taken=0)  # PPO collects 256 steps per rollout
    try:
        code, _, err = cli(*args)
    finally:
        FAIL_AT_STEP.update(step=None)
    assert code == 2
    assert "raised RuntimeError: simulator connection lost" in err and "checkpoint saved" in err
    meta = json.loads((run_dir / "checkpoints" / "training_metadata.json").read_text())
    assert meta["step"] == 1024  # the last finished rollout before the crash
    assert "simulator connection lost" in (run_dir / "log.txt").read_text()
    assert json.loads((run_dir / "status.json").read_text())["state"] == "failed"

    code, stdout, err = cli(*args)  # the same command resumes
    assert code == 0, err
    assert "resuming" in (run_dir / "log.txt").read_text()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["train_steps"] == 1536
    history = (run_dir / "history.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in history[1:]] == ["512", "1024", "1536"]
