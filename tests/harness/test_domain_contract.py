"""The contract every registered domain passes, written once (issue 11, item 6).

Parametrized over `pipelines.domains.discover()`: a new domain is checked by adding its
package, with no edit here. Each domain trains one tiny run per session (settings in
tests/harness/tiny.py, shared with the per-domain tests through the `domain_run`
fixture), and the tests check what DESIGN.md promises of it:

- the run directory's files, and `status.json` complete;
- `metrics.json`: numbers only besides split/task/domain, snake_case keys;
- `model.keras` loads in a fresh process with `import shared.zoo` and
  `keras.models.load_model(path, safe_mode=True)`, the documented way;
- export: the SavedModel loads and serves its own warmup request in a fresh process
  that imports only TensorFlow;
- bad input and another domain's verb on this run: exit 2 with one `error:` line;
- resume: SIGKILL once a checkpoint exists, rerun the same command, it completes and
  history.csv holds each epoch (or step) once.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import yaml

from pipelines.domains import discover, get
from shared.domain import SPEC_KINDS
from tests.conftest import REPO, run_cli
from tests.harness.tiny import tiny

DOMAINS = discover()
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
DESCRIPTIVE = {"split", "task", "domain"}  # the only non-numbers metrics.json may hold
# Known breaches of the metrics contract (domain -> reason), marked xfail(strict=False)
# while they are being fixed. Empty: finance's `recall_at_fpr_0.01` key (now
# `recall_at_fpr_1pct`) and rl's `policy` string (now the number `best_policy`) were
# fixed on main (4c7b11b and the finance commits after it), so both must pass.
METRICS_XFAIL: dict[str, str] = {}
PNG = b"\x89PNG\r\n\x1a\n"


def domain_cases(xfail: dict[str, str] | None = None, large: frozenset[str] = frozenset()):
    """One case per registered domain; those named in `large` run in `make test-large`."""
    xfail = xfail or {}
    return [
        pytest.param(
            name,
            marks=[
                *([pytest.mark.xfail(reason=xfail[name], strict=False)] if name in xfail else []),
                *([pytest.mark.large] if name in large else []),
            ],
        )
        for name in DOMAINS
    ]


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """Exit 2 and exactly one stderr line, starting with `error:` (no traceback, no TF)."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr[-2000:]
    return lines[0]


# === The run directory ===
@pytest.mark.parametrize("name", domain_cases())
def test_run_directory_holds_every_promised_file(name, domain_run):
    run = domain_run(name)
    path = run.path
    for file in ("config.yaml", "metrics.json", "history.csv", "model.keras", "status.json"):
        assert (path / file).is_file() and (path / file).stat().st_size > 0, file
    status = json.loads((path / "status.json").read_text())
    assert status["state"] == "complete" and status["domain"] == name
    # config.yaml is the resolved config: it validates as the domain's config class.
    config = get(name).config_class.model_validate(yaml.safe_load(run.dir.config_path.read_text()))
    assert getattr(config, "task", None) in (*get(name).tasks, None)
    with (path / "history.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows and len(rows) == len(run.history)
    card = (path / "MODEL_CARD.md").read_text()
    assert card.startswith("#") and len(card.splitlines()) > 5
    assert len((path / "log.txt").read_text().splitlines()) > 1
    plots = sorted((path / "plots").glob("*.png"))
    assert plots and plots == run.plots
    assert all(p.read_bytes()[:8] == PNG for p in plots)
    assert list((path / "tensorboard").rglob("events.out.tfevents.*"))
    assert list((path / "checkpoints").rglob("training_metadata.json"))


@pytest.mark.parametrize("name", domain_cases(METRICS_XFAIL))
def test_metrics_json_is_flat_numbers_under_snake_case_keys(name, domain_run):
    run = domain_run(name)
    metrics = json.loads((run.path / "metrics.json").read_text())
    assert {"split", "num_examples", "task", "domain"} <= set(metrics)
    assert metrics["domain"] == name and metrics["task"] in get(name).tasks
    assert isinstance(metrics["split"], str) and metrics["split"]
    bad_keys = [key for key in metrics if not SNAKE.match(key)]
    assert not bad_keys, f"keys not snake_case: {bad_keys}"
    # Numbers only; JSON null is how write_metrics stores a NaN, which is still a number.
    not_numbers = {
        key: value
        for key, value in metrics.items()
        if key not in DESCRIPTIVE
        and (isinstance(value, bool) or not isinstance(value, int | float | type(None)))
    }
    assert not not_numbers, f"not numbers: {not_numbers}"
    assert isinstance(metrics["num_examples"], int) and metrics["num_examples"] > 0


# === model.keras, the documented way, in a fresh process ===
WEIGHTS = textwrap.dedent(
    """
    def summary(model):
        import numpy as np

        weights = [w for w in model.get_weights() if np.asarray(w).dtype.kind in "fiub"]
        total = sum(float(np.abs(np.asarray(w, "float64")).sum()) for w in weights)
        return {"params": int(model.count_params()), "weights": len(weights), "abs_sum": total}
    """
)
LOAD_SCRIPT = WEIGHTS + textwrap.dedent(
    """
    import json, sys
    import shared.zoo  # the one import the README documents
    import keras

    model = keras.models.load_model(sys.argv[1], safe_mode=True)
    out = summary(model)
    out["imported"] = sorted(
        {m.split(".")[0] for m in sys.modules} & {"domains", "pipelines", "tests"}
    )
    print(json.dumps(out))
    """
)


@pytest.mark.parametrize("name", domain_cases())
def test_model_keras_loads_in_a_fresh_process_with_only_shared_zoo(name, domain_run):
    run = domain_run(name)
    result = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, str(run.dir.model_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    fresh = json.loads(result.stdout.strip().splitlines()[-1])
    assert fresh["imported"] == []  # shared.zoo alone was enough: no domain code loaded
    namespace: dict = {}
    exec(WEIGHTS, namespace)  # the same summary of the model loaded in this process
    here = namespace["summary"](run.load_model())
    assert fresh["params"] == here["params"] > 0 and fresh["weights"] == here["weights"]
    assert fresh["abs_sum"] == pytest.approx(here["abs_sum"], rel=1e-6)


# === Export round trip: a fresh process that imports only TensorFlow ===
# Reads the warmup requests TF Serving would replay (PredictionLog records in
# assets.extra) with TensorFlow alone: PredictionLog.predict_log (6) -> PredictLog.request
# (1) -> PredictRequest.inputs (2, map entries of key 1 and TensorProto 2).
SERVE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    from tensorflow.core.framework import tensor_pb2

    def fields(buf):
        i = 0
        while i < len(buf):
            key, i = varint(buf, i)
            number, kind = key >> 3, key & 7
            if kind == 0:
                value, i = varint(buf, i)
            elif kind == 2:
                size, i = varint(buf, i)
                value, i = buf[i : i + size], i + size
            elif kind in (1, 5):
                width = 8 if kind == 1 else 4
                value, i = buf[i : i + width], i + width
            else:
                raise ValueError(f"wire type {kind}")
            yield number, value

    def varint(buf, i):
        shift = result = 0
        while True:
            byte = buf[i]
            i += 1
            result |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return result, i

    def requests(path):
        for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
            for _, log in (f for f in fields(record) if f[0] == 6):
                for _, request in (f for f in fields(log) if f[0] == 1):
                    inputs = {}
                    for _, entry in (f for f in fields(request) if f[0] == 2):
                        item = dict(fields(entry))
                        proto = tensor_pb2.TensorProto.FromString(item[2])
                        inputs[item[1].decode()] = tf.make_ndarray(proto)
                    yield inputs

    version_dir = sys.argv[1]
    serve = tf.saved_model.load(version_dir).signatures["serving_default"]
    specs = serve.structured_input_signature[1]
    out = []
    for inputs in requests(version_dir + "/assets.extra/tf_serving_warmup_requests"):
        result = serve(**{k: tf.constant(v, specs[k].dtype) for k, v in inputs.items()})
        out.append({
            "inputs": {k: list(v.shape) for k, v in inputs.items()},
            "outputs": {
                k: {
                    "shape": v.shape.as_list(),
                    "finite": bool(tf.reduce_all(tf.math.is_finite(v)))
                    if v.dtype.is_floating else True,
                }
                for k, v in result.items()
            },
        })
    imported = {m.split(".")[0] for m in sys.modules}
    project = {"shared", "domains", "pipelines", "tests"}
    print(json.dumps({"requests": out, "imported": sorted(imported & project)}))
    """
)


@pytest.mark.parametrize("name", domain_cases())
def test_export_serves_its_warmup_request_in_a_fresh_tensorflow_only_process(name, exported_run):
    from shared.export.saved_model import read_metadata, read_warmup_requests

    result, root = exported_run(name)
    version = result.path
    assert version.parent.parent == root and version.name.isdigit()
    assert (version / "saved_model.pb").is_file() and (version / "variables").is_dir()
    assert f'name: "{version.parent.name}"' in (root / "models.config").read_text()
    meta = read_metadata(version)
    assert meta["verification"]["checked"] is True
    assert meta["verification"]["max_abs_diff"] <= meta["verification"]["tolerance"]
    expected = read_warmup_requests(version / "assets.extra" / "tf_serving_warmup_requests")
    assert expected

    served = subprocess.run(
        [sys.executable, "-c", SERVE_SCRIPT, str(version)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=root,  # not the repository: nothing of the project is importable by accident
        env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": ""},
    )
    assert served.returncode == 0, served.stderr[-3000:]
    report = json.loads(served.stdout.strip().splitlines()[-1])
    assert report["imported"] == []  # TensorFlow alone served it
    assert len(report["requests"]) == len(expected)
    signature = result.signatures["serving_default"]
    for want, got in zip(expected, report["requests"], strict=True):
        assert got["inputs"] == {k: list(v.shape) for k, v in want.items()}
        assert set(got["outputs"]) == set(signature["outputs"])
        batch = {shape[0] for shape in got["inputs"].values() if shape}
        for key, output in got["outputs"].items():
            assert output["finite"], key
            if output["shape"] and batch:
                assert output["shape"][0] in batch, (key, output["shape"], batch)


# === Bad input and cross-domain misuse: exit 2, one error line ===
@pytest.mark.parametrize("name", domain_cases())
def test_data_of_a_kind_the_domain_does_not_read_is_exit_2(name, tmp_path):
    domain = get(name)
    kind = next(k for k in SPEC_KINDS if k not in domain.data_specs)
    args = tiny(name).cli_args()
    if "--data" in args:
        del args[args.index("--data") : args.index("--data") + 2]
    run_dir = tmp_path / "run"
    line = one_error_line(
        run_cli(name, "train", *args, "--data", f"{kind}:x", "--run-dir", str(run_dir))
    )
    assert f"{name} does not read {kind}: data" in line
    assert all(f"{k}:" in line.split("; it reads", 1)[-1] for k in domain.data_specs), line
    assert not run_dir.exists()


@pytest.mark.parametrize("name", domain_cases())
def test_an_unknown_set_key_is_exit_2(name, tmp_path):
    run_dir = tmp_path / "run"
    args = tiny(name).cli_args(("train.no_such_key=1",))
    line = one_error_line(run_cli(name, "train", *args, "--run-dir", str(run_dir)))
    assert "unknown config key 'train.no_such_key'" in line
    assert not run_dir.exists()


@pytest.mark.parametrize("name", domain_cases())
def test_another_domains_verb_on_this_run_is_exit_2(name, domain_run):
    others = [other for other in DOMAINS if other != name]
    if not others:
        pytest.skip("only one domain is registered")
    run = domain_run(name)
    before = (run.path / "metrics.json").read_bytes()
    for other in others:
        line = one_error_line(run_cli(other, "evaluate", "--run", str(run.path)))
        assert f"is a {name} run, not a {other} run" in line
    assert (run.path / "metrics.json").read_bytes() == before


# === Resume after SIGKILL ===
# Two trainings in subprocesses per domain: 4-12 s for vision, finance and rl, in `make
# test`; 23-42 s for nlp, healthcare and driving (fresh clone of 8db3856), in `make
# test-large` (which CI runs too), to keep `make test` inside its 15 minutes.
SLOW_TO_RESUME = frozenset({"nlp", "healthcare", "driving"})


@pytest.mark.parametrize("name", domain_cases(large=SLOW_TO_RESUME))
def test_sigkill_then_the_same_command_resumes_without_repeating_epochs(name, tmp_path):
    settings = tiny(name)
    run_dir = tmp_path / "killed"
    command = [
        sys.executable,
        "-m",
        "pipelines.cli",
        name,
        "train",
        *settings.cli_args(settings.resume),
        "--run-dir",
        str(run_dir),
    ]
    process = subprocess.Popen(
        command,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        if list((run_dir / "checkpoints").rglob("training_metadata.json")):
            os.killpg(process.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "training finished before it could be killed"
    assert json.loads((run_dir / "status.json").read_text())["state"] == "running"
    assert not (run_dir / "model.keras").exists()
    line = one_error_line(run_cli(name, "evaluate", "--run", str(run_dir)))
    assert "not complete" in line

    finished = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert json.loads((run_dir / "status.json").read_text())["state"] == "complete"
    assert (run_dir / "model.keras").is_file()
    assert f"resuming {run_dir}" in (run_dir / "log.txt").read_text()
    with (run_dir / "history.csv").open() as handle:
        marks = [float(row[settings.progress]) for row in csv.DictReader(handle)]
    assert marks and len(marks) == len(set(marks)), f"repeated {settings.progress}s: {marks}"
    assert marks == sorted(marks)
    if settings.progress == "epoch":  # every epoch once, none skipped
        assert marks == list(range(len(marks)))
