"""`train.keep_best` (deliver the best evaluated policy) and DQN's env-step accounting."""

import json

import keras
import numpy as np
import pytest


class StubAgent:
    """Just enough of an agent for the loop: a model whose kernel we set by hand."""

    name = "stub"

    def __init__(self):
        self.model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])

    def mark(self, value: float) -> None:
        self.model.set_weights([np.full((1, 1), value, np.float32)])

    def state(self):
        return {"kernel": self.model.get_weights()[0]}

    def load_state(self, arrays):
        self.model.set_weights([arrays["kernel"]])


def _loop(run, agent, returns):
    from domains.rl.config import TrainLoopConfig
    from domains.rl.loop import TrainLoop

    scripted = iter(returns)
    settings = TrainLoopConfig(eval_interval=10, checkpoint_interval=10, keep_best=True)
    return TrainLoop(
        run,
        agent,
        total_steps=40,
        settings=settings,
        evaluate=lambda: (np.array([next(scripted)]), np.array([1])),
        env_id="stub",
    )


def test_loop_keeps_the_best_policy_and_resumes_with_it(tmp_path):
    from shared.run_dir import RunDir

    run = RunDir(tmp_path / "run")
    run.prepare()
    agent = StubAgent()
    loop = _loop(run, agent, [1.0, 5.0, 5.0, 4.0])
    loop.start()
    for step, kernel in ((10, 10.0), (20, 20.0), (30, 30.0), (40, 40.0)):
        agent.mark(kernel)
        loop.advance(10)
        assert loop.steps == step
    # 5.0 at step 20 and again at 30: the tie goes to the later policy; 4.0 changes nothing
    assert loop.best == {"step": 30.0, "mean_return": 5.0}
    assert loop.best_weights[0].item() == 30.0
    assert agent.model.get_weights()[0].item() == 40.0  # training's weights are untouched
    loop._close()

    meta = json.loads((run.checkpoints / "training_metadata.json").read_text())
    assert meta["step"] == 40 and meta["best"] == {"step": 30.0, "mean_return": 5.0}
    resumed = _loop(run, StubAgent(), [9.0])
    resumed.total_steps = 50
    resumed.start()
    assert resumed.steps == 40 and resumed.best["step"] == 30.0
    assert resumed.best_weights[0].item() == 30.0
    resumed.agent.mark(50.0)
    resumed.advance(10)  # a better evaluation after the resume takes over
    assert resumed.best == {"step": 50.0, "mean_return": 9.0}
    assert resumed.best_weights[0].item() == 50.0
    resumed._close()


def test_keep_best_delivers_the_best_evaluated_policy(tmp_path):
    """End to end on CartPole: model.keras is the policy of the best evaluation, measured
    again on the training evaluation's seeds; the last policy's return is reported too."""
    from pipelines import rl

    run = rl.train(
        config="cartpole_dqn",
        total_steps=4000,
        seed=0,
        overrides=[
            "train.eval_interval=1000",
            "train.eval_episodes=3",
            "evaluate.episodes=3",
            "train.keep_best=true",
            "agent.dqn.learning_starts=500",
            "agent.dqn.train_freq=128",
            "agent.dqn.gradient_steps=64",
        ],
        run_dir=tmp_path / "run",
    )
    returns = [row["mean_return"] for row in run.history]
    best = run.history[len(returns) - 1 - int(np.argmax(returns[::-1]))]  # the last maximum
    metrics = run.metrics
    assert metrics["policy_step"] == best["step"]
    assert metrics["best_policy"] == (0 if best["step"] == 4000 else 1)
    assert isinstance(metrics["last_policy_mean_return"], float)
    again = rl.evaluate(run, episodes=3, seed=20_000, out=str(tmp_path / "again.json"))
    assert again["mean_return"] == pytest.approx(best["mean_return"], rel=1e-5)
    if metrics["best_policy"] == 1:  # the delivered policy is not the last one
        assert metrics["last_policy_mean_return"] != pytest.approx(metrics["mean_return"])
        assert f"env step {int(best['step']):,}), not the last one" in run.model_card


def test_dqn_counts_only_steps_the_env_took(tmp_path):
    """Under NEXT_STEP autoreset the step after an episode end only resets: it is no
    transition and no env step, so the budget buys exactly that many transitions."""
    from pipelines import rl

    run = rl.train(
        config="corridor",
        agent="dqn",
        total_steps=300,
        overrides=[
            "agent.dqn.learning_starts=100000",  # act randomly: many short episodes
            "train.eval_interval=100000",
            "evaluate.episodes=1",
        ],
        run_dir=tmp_path / "run",
    )
    meta = json.loads((run.path / "checkpoints" / "training_metadata.json").read_text())
    with np.load(run.path / "checkpoints" / meta["checkpoint"]) as saved:
        stored = len(saved["replay_returns"])
    assert meta["episodes"] > 5  # episodes ended (and envs reset) during the budget
    assert run.metrics["train_steps"] == 300 and stored == 300
