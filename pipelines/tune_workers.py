"""`tune --workers N`: trials in parallel, with KerasTuner's distributed tuning.

KerasTuner's parallel mode is one oracle chief, served over gRPC (the `OracleServicer`
of keras_tuner.src.distribute.oracle_chief), and tuners that ask it for trials, each
told where by KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT.

With `--workers N` the tune command is the chief: it serves the search's oracle on a
free localhost port and starts N worker processes, `deepfield <domain> tune ...
--worker-id tuner<i> --oracle-address 127.0.0.1:PORT` over the base config and space it
wrote to <run-dir>/workers/ (as `--local-workers` starts training workers: subprocesses
of this one, shared.local_workers.run_processes), each with its share of the cores (TF's
intra-op threads) and its output in <run-dir>/workers/tuner<i>.log.

- Every trial is still a run folder under <run-dir>/trials/<id>; the chief rewrites
  search.json as each trial ends, with the worker that ran it.
- A trial that fails is reported to the oracle as failed; its worker goes on.
- A worker that dies, or Ctrl-C, stops every worker (terminate, then kill) and the
  chief. Rerunning the command resumes: the trials left running go back in the
  oracle's queue and the first worker to ask resumes each from its checkpoints. A
  worker whose chief disappears exits (it watches its parent process).
- `--max-time` is the chief's: past it, a worker that asks for a trial is told to stop.

Several machines: the chief is `--worker-id chief --oracle-address HOST:PORT` (it
trains nothing: it serves the oracle and writes search.json until the trials are
done), each worker the same command with `--worker-id <id> --oracle-address
CHIEF:PORT`, all with one --run-dir on a shared filesystem. KerasTuner's three
variables stand for the two options when those are not given.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from concurrent import futures
from pathlib import Path
from typing import TYPE_CHECKING

from shared.errors import UserError

if TYPE_CHECKING:
    from pipelines.tune import Search
    from shared.search.space import Space

LOG = logging.getLogger("deepfield")
CHIEF = "chief"  # KerasTuner's tuner id of the oracle's process
WORKERS = "workers"  # under the search folder: what local workers run, and their logs
WORKER_ID = re.compile(r"[A-Za-z0-9_-]+")
PARENT_ENV = "DEEPFIELD_TUNE_PARENT"  # a local worker's chief: it exits when that goes
ORPHANED = 75  # a local worker's exit code when its chief is gone
KERASTUNER_ENV = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")


# === Roles, checked before TensorFlow ===
def role(worker_id: str | None, oracle_address: str | None) -> tuple[str | None, str | None]:
    """The options, or KerasTuner's variables where the options are not given."""
    tuner_id, ip, port = (os.environ.get(name) for name in KERASTUNER_ENV)
    if worker_id is None and oracle_address is None and ip:
        return tuner_id, f"{ip}:{port}" if port else ip
    return worker_id, oracle_address


def parse_address(text: str) -> tuple[str, int]:
    """(host, port) of `HOST:PORT`; a UserError otherwise."""
    host, _, port = str(text).rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise UserError(
            f"--oracle-address {text!r}: expected HOST:PORT, e.g. 10.0.0.5:8000 "
            "(KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT)"
        )
    return host.strip("[]"), int(port)


def check_roles(
    workers: int,
    trials: int,
    worker_id: str | None,
    oracle_address: str | None,
    run_dir: str | Path | None,
) -> None:
    """Refuse the combinations that cannot run, before anything starts."""
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise UserError(f"--workers must be at least 1 (got {workers!r})")
    if workers > trials:
        raise UserError(
            f"--workers {workers} is more than --trials {trials}: a worker trains one trial "
            f"at a time, so give at most {trials} workers"
        )
    if worker_id is None and oracle_address is None:
        return
    if worker_id is None or oracle_address is None:
        raise UserError(
            "--worker-id and --oracle-address go together (a search over several machines: "
            "'--worker-id chief' serves the oracle at HOST:PORT, a worker's id connects to it)"
        )
    if workers > 1:
        raise UserError(
            "--workers starts its own chief and workers on this machine; leave out "
            "--worker-id and --oracle-address (and KERASTUNER_* variables)"
        )
    if not WORKER_ID.fullmatch(worker_id) or (CHIEF in worker_id and worker_id != CHIEF):
        raise UserError(
            f"--worker-id {worker_id!r}: 'chief' for the oracle, or a worker's name of "
            "letters, digits, '-' and '_' without 'chief' in it (tuner1)"
        )
    parse_address(oracle_address)
    if run_dir is None:
        raise UserError(
            "--worker-id needs --run-dir: the search's folder, one shared folder for the "
            "chief and every worker"
        )


def is_worker(search: Search) -> bool:
    return search.worker_id is not None and search.worker_id != CHIEF


def thread_share(workers: int, cores: int | None = None) -> int:
    """TensorFlow threads for each of `workers` processes, so together they use the
    cores this process may use, not `workers` times as many."""
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        cores = cores or os.cpu_count() or 1
    return max(1, cores // workers)


# === The chief ===
def serve(search: Search, space: Space) -> None:
    """Serve the search's oracle (`--workers N`: start N local workers and wait for
    them; `--worker-id chief`: wait until the workers that connect have finished the
    trials), then write search.json."""
    import grpc
    from keras_tuner.src import protos

    from pipelines.tune_tuner import load_oracle, write_search

    oracle = load_oracle(search, space)
    servicer = _servicer_class()(oracle, search, space)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    local = search.worker_id is None
    host, port = ("127.0.0.1", 0) if local else parse_address(search.oracle_address)
    try:
        port = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:
        port = 0
    if not port:
        raise UserError(f"--oracle-address {search.oracle_address}: cannot listen there")
    server.start()
    try:
        if local:
            run_local_workers(search, space, port)
        else:
            LOG.info(
                "tune: the oracle listens on %s:%d; start each worker with the same command "
                "and --worker-id <id> --oracle-address <this host>:%d",
                host,
                port,
                port,
            )
            while not servicer.finished():
                time.sleep(0.5)
    finally:
        server.stop(grace=None).wait(10)  # no trial ends while search.json is written
        write_search(search, space, oracle)


def _servicer_class():
    """KerasTuner's OracleServicer, which here also notes which worker runs each trial,
    stops handing out trials past --max-time, and rewrites search.json as each ends."""
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief
    from keras_tuner.src.engine import trial as trial_module

    from pipelines.table import format_number
    from pipelines.tune import trial_budget
    from pipelines.tune_tuner import record_worker, values_text, write_search

    status = trial_module.TrialStatus
    service = protos.get_service()

    class ChiefServicer(oracle_chief.OracleServicer):
        def __init__(self, oracle, search: Search, space: Space):
            super().__init__(oracle)
            self.search, self.space = search, space
            self.deadline = time.time() + search.max_time if search.max_time else None

        def CreateTrial(self, request, context):
            tuner_id = request.tuner_id
            if self.deadline is not None and time.time() >= self.deadline:
                LOG.info("tune: --max-time reached; %s gets no new trial", tuner_id)
                self.oracle.tuner_ids.discard(tuner_id)
                trial = trial_module.Trial(
                    self.oracle.get_space(), str(len(self.oracle.trials)), status.STOPPED
                )
            else:
                trial = self.oracle.create_trial(tuner_id)
            if trial.status == status.STOPPED:
                self.stop_triggered = True
            elif trial.status == status.RUNNING:
                record_worker(self.search.path, trial.trial_id, tuner_id)
                values = trial.hyperparameters.values
                shown = values_text(
                    self.space.config_values(values), trial_budget(self.search, values), self.search
                )
                LOG.info("trial %s -> %s: %s", trial.trial_id, tuner_id, shown)
            return service.CreateTrialResponse(trial=trial.to_proto())

        def EndTrial(self, request, context):
            response = super().EndTrial(request, context)
            trial = self.oracle.trials[request.trial.trial_id]
            if trial.status == status.COMPLETED:
                shown = format_number(trial.score)
                LOG.info("trial %s: %s = %s", trial.trial_id, self.search.objective, shown)
            else:
                last = (trial.message or "").strip().splitlines()[-1:] or ["see its log.txt"]
                LOG.warning("trial %s failed: %s", trial.trial_id, last[0])
            write_search(self.search, self.space, self.oracle)
            return response

        def finished(self) -> bool:
            """Every trial handed out has ended and every worker was told to stop."""
            return self.stop_triggered and oracle_chief.exit_chief(self.oracle)

    return ChiefServicer


def run_local_workers(search: Search, space: Space, port: int) -> None:
    """Start `search.workers` workers on this machine against the oracle on `port` and
    wait for them; a worker that fails stops the others and is a UserError."""
    from shared.config import dump_yaml
    from shared.local_workers import run_processes
    from shared.run_dir import write_atomic

    folder = search.path.resolve() / WORKERS
    write_atomic(folder / "base.yaml", dump_yaml(search.base))
    write_atomic(folder / "space.yaml", space.to_yaml())
    ids = [f"tuner{i}" for i in range(search.workers)]
    threads = thread_share(search.workers)
    env = {k: v for k, v in os.environ.items() if k not in KERASTUNER_ENV}
    env.update(
        {
            PARENT_ENV: str(os.getpid()),
            "TF_NUM_INTRAOP_THREADS": str(threads),
            "TF_NUM_INTEROP_THREADS": str(min(2, threads)),
            "OMP_NUM_THREADS": str(threads),
        }
    )
    logs = [folder / f"{tuner_id}.log" for tuner_id in ids]
    commands = [worker_command(search, folder, i, f"127.0.0.1:{port}") for i in ids]
    LOG.info(
        "tune: %d workers, %d TensorFlow thread(s) each, oracle on 127.0.0.1:%d; logs in %s",
        search.workers,
        threads,
        port,
        folder,
    )
    failed = run_processes(commands, [env] * len(ids), logs)
    if failed is not None:
        index, code = failed
        how = f"exit code {code}" if code > 0 else f"signal {-code}"
        why = last_error(logs[index])
        raise UserError(
            f"worker {ids[index]} stopped with {how}{': ' + why if why else ''}; "
            f"the other workers were stopped (its log: {logs[index]}); rerun the same "
            "command to resume"
        )


def worker_command(search: Search, folder: Path, tuner_id: str, address: str) -> list[str]:
    """The command line of one local worker: this search, as `tuner_id`."""
    command = [sys.executable, "-m", "pipelines.cli", search.api.name, "tune"]
    command += ["--config", str(folder / "base.yaml"), "--space", str(folder / "space.yaml")]
    command += ["--trials", str(search.trials), "--algorithm", search.algorithm]
    command += ["--objective", search.objective, "--size-objective", search.size_objective]
    command += ["--population", str(search.population), "--sample-size", str(search.sample_size)]
    command += ["--run-dir", str(search.path.resolve())]
    command += ["--cv", str(search.cv)] if search.cv else []
    return command + ["--worker-id", tuner_id, "--oracle-address", address]


def last_error(log: Path) -> str | None:
    """The last `error:` line a worker wrote, if any."""
    try:
        lines = Path(log).read_text(errors="replace").splitlines()
    except OSError:
        return None
    found = [line for line in lines if line.startswith("error:")]
    return found[-1].removeprefix("error:").strip() if found else None


# === A worker ===
def run_worker(search: Search, space: Space) -> list[str]:
    """Train the trials the chief at `search.oracle_address` hands out, until it says
    stop; returns the ids of those trained here."""
    from pipelines.tune_tuner import tuner_class

    host, port = parse_address(search.oracle_address)
    wanted = dict(zip(KERASTUNER_ENV, (search.worker_id, host, str(port)), strict=True))
    before = {name: os.environ.get(name) for name in KERASTUNER_ENV}
    os.environ.update(wanted)  # BaseTuner reads them: its oracle becomes a gRPC client
    try:
        watch_parent()
        tuner = tuner_class()(search, space)
        LOG.info("worker %s: asking the oracle at %s:%d for trials", search.worker_id, host, port)
        tuner.run()
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    LOG.info(
        "worker %s: done; trained trials %s (the chief writes search.json)",
        search.worker_id,
        ", ".join(tuner.ran) or "none",
    )
    return tuner.ran


def watch_parent() -> None:
    """A local worker exits when the chief that started it is gone (killed outright,
    it could not stop its workers), rather than wait on a dead oracle for an hour."""
    parent = os.environ.get(PARENT_ENV)
    if not parent or not parent.isdigit():
        return

    def watch() -> None:
        while os.getppid() == int(parent):
            time.sleep(1.0)
        os._exit(ORPHANED)

    threading.Thread(target=watch, name="tune-parent-watch", daemon=True).start()
