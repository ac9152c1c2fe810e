"""Training an RL run: the run directory, evaluate, play, predict, export, every agent."""

import csv
import json

import keras
import numpy as np
import pytest
from PIL import Image

OPTIMUM = 0.94  # the corridor's best return: 6 steps at -0.01, then +1


def test_run_directory_holds_every_artifact(corridor_run):
    path = corridor_run.path
    for name in ("config.yaml", "metrics.json", "history.csv", "model.keras", "MODEL_CARD.md",
                 "log.txt", "inputs.json"):  # fmt: skip
        assert (path / name).is_file(), name
    metrics = corridor_run.metrics
    assert metrics["mean_return"] == pytest.approx(OPTIMUM, abs=1e-6)
    assert metrics["std_return"] == pytest.approx(0.0, abs=1e-6)
    assert metrics["episodes"] == 10 and metrics["domain"] == "rl"
    assert metrics["train_steps"] == 2048 and metrics["steps_per_second"] > 0
    with (path / "history.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(float(r["step"])) for r in rows] == [1024, 2048]
    assert {"mean_return", "std_return", "train_return", "policy_loss", "entropy"} <= set(rows[0])
    assert list((path / "tensorboard" / "train").glob("events.out.tfevents.*"))
    meta = json.loads((path / "checkpoints" / "training_metadata.json").read_text())
    assert meta["step"] == 2048 and (path / "checkpoints" / meta["checkpoint"]).is_file()
    assert {p.name for p in corridor_run.plots} == {"learning_curve.png", "eval_returns.png"}
    assert "PPO agent for deepfield/Corridor-v0" in corridor_run.model_card
    model = keras.models.load_model(path / "model.keras", safe_mode=True, compile=False)
    assert set(model(np.eye(8, dtype="float32")[:2])) == {"logits", "value"}


def test_evaluate_uses_the_fixed_seed_list_and_out_file(corridor_run, tmp_path, cli):
    before = (corridor_run.path / "metrics.json").read_text()
    out = tmp_path / "eval.json"
    args = ("rl", "evaluate", "--run", str(corridor_run.path), "--episodes", "7", "--out")
    code, stdout, err = cli(*args, str(out))
    assert code == 0, err
    first = json.loads(out.read_text())
    assert first["episodes"] == 7 and first["mean_return"] == pytest.approx(OPTIMUM)
    assert (corridor_run.path / "metrics.json").read_text() == before
    code, _, err = cli(*args, str(tmp_path / "again.json"))
    assert json.loads((tmp_path / "again.json").read_text()) == first


def test_evaluate_refuses_another_env(corridor_run, cli):
    code, _, err = cli("rl", "evaluate", "--run", str(corridor_run.path), "--data",
                       "gym:CartPole-v1")  # fmt: skip
    assert code == 2 and "trained on gym:deepfield/Corridor-v0" in err


def test_play_writes_a_gif_of_one_episode(corridor_run, tmp_path, cli):
    out = tmp_path / "episode.gif"
    code, stdout, err = cli("rl", "play", "--run", str(corridor_run.path), "--out", str(out))
    assert code == 0, err
    result = json.loads(stdout)
    assert result["return"] == pytest.approx(OPTIMUM) and result["length"] == 7
    gif = Image.open(out)
    assert gif.format == "GIF" and gif.n_frames == result["frames"] == 8


def test_predict_gives_actions_for_json_observations(corridor_run, cli):
    start = json.dumps([1, 0, 0, 0, 0, 0, 0, 0])
    code, stdout, err = cli("rl", "predict", "--run", str(corridor_run.path), start)
    assert code == 0, err
    result = json.loads(stdout)
    assert result["action"] == 1  # step right, towards the goal
    assert len(result["logits"]) == 2 and isinstance(result["value"], float)
    code, _, err = cli("rl", "predict", "--run", str(corridor_run.path), "[1, 0]")
    assert code == 2 and "shape (8,)" in err


def test_export_serves_actions_and_probabilities_in_a_fresh_process(corridor_run, tmp_path, cli):
    import tensorflow as tf

    code, stdout, err = cli("rl", "export", "--run", str(corridor_run.path), "--to",
                            str(tmp_path / "serving"))  # fmt: skip
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["verify_checked"] is True and summary["verify_max_abs_diff"] < 1e-4
    assert summary["name"] == "rl_ppo_deepfield_corridor_v0" and summary["version"] == 1
    loaded = tf.saved_model.load(summary["path"])
    outputs = loaded.signatures["serving_default"](observation=tf.eye(8)[:3])
    assert set(outputs) == {"action", "probabilities", "value"}
    np.testing.assert_allclose(outputs["probabilities"].numpy().sum(axis=1), 1.0, rtol=1e-5)
    assert outputs["action"].numpy().tolist() == [1, 1, 1]
    assert (tmp_path / "serving" / "models.config").is_file()


@pytest.mark.parametrize("agent", ["dqn", "a2c", "a3c"])
def test_every_agent_learns_the_corridor(agent, tmp_path):
    from pipelines import rl

    steps = {"dqn": 3000, "a2c": 2048, "a3c": 3000}[agent]
    run = rl.train(
        config="corridor",
        agent=agent,
        total_steps=steps,
        overrides=["train.eval_interval=100000", "evaluate.episodes=5"],
        run_dir=tmp_path / agent,
    )
    assert run.metrics["mean_return"] == pytest.approx(OPTIMUM, abs=1e-6), run.history
    assert run.metrics["train_steps"] >= steps


def test_atari_frames_train_dqn_with_the_nature_cnn(tmp_path):
    """ALE Pong through AtariPreprocessing + 4-frame stack, a few DQN updates end to end."""
    from pipelines import rl

    run = rl.train(
        config="cartpole_dqn",
        data="gym:ALE/Pong-v5",
        total_steps=96,
        overrides=[
            "data.max_episode_steps=40",  # agent steps (4 frames each): short episodes
            "agent.dqn.buffer_size=200",
            "agent.dqn.learning_starts=32",
            "agent.dqn.train_freq=32",
            "agent.dqn.gradient_steps=1",
            "agent.dqn.batch_size=4",
            "train.eval_interval=1000",
            "train.eval_episodes=1",
            "evaluate.episodes=1",
        ],
        run_dir=tmp_path / "pong",
    )
    spec = json.loads((run.path / "inputs.json").read_text())["details"]["env"]
    assert spec["observation_shape"] == [84, 84, 4] and spec["observation_dtype"] == "uint8"
    assert "nature_dqn" in run.model_card
    assert run.metrics["episodes"] == 1 and run.metrics["mean_length"] == 40
    assert run.history[-1]["loss"] > 0


def test_highway_tables_and_box2d_envs_get_vector_specs():
    from domains.rl.config import RLDataConfig
    from domains.rl.envs import describe

    highway = describe(RLDataConfig(source="gym:highway-fast-v0"))
    assert highway.observation_shape == (5, 5) and highway.discrete and highway.num_actions == 5
    lander = describe(RLDataConfig(source="gym:LunarLander-v3"))
    assert lander.observation_shape == (8,) and lander.num_actions == 4
    car = describe(RLDataConfig(source="gym:CarRacing-v3"))
    assert car.image and car.observation_shape == (84, 84, 4) and not car.discrete
    assert car.action_low == (-1.0, 0.0, 0.0)


def test_compress_quantizes_the_policy_and_refuses_what_fine_tunes(corridor_run, cli, tmp_path):
    """The agent's loop is not Keras fit: int8 quantizes the policy's Dense layers and
    evaluate plays it; pruning (which fine-tunes) is one error line."""
    import pipelines

    quantized = pipelines.rl.compress(corridor_run, quantize="int8", run_dir=tmp_path / "q")
    assert quantized.metrics["quantized_layers"] > 0
    assert quantized.metrics["size_bytes"] < quantized.metrics["original_size_bytes"]
    assert quantized.metrics["original_mean_return"] == corridor_run.metrics["mean_return"]
    assert np.isfinite(quantized.metrics["mean_return"])
    code, _, err = cli(
        "rl",
        "compress",
        "--run",
        str(corridor_run.path),
        "--prune",
        "0.5",
        "--run-dir",
        str(tmp_path / "p"),
    )
    assert code == 2 and "--prune does not support rl control runs" in err
    assert "vision classify" in err and not (tmp_path / "p").exists()
