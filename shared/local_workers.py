"""Starting local processes and stopping them together: the workers of a multi-worker
training run on this machine (`--local-workers N`, each with its TF_CONFIG) and
`tune --workers N`'s trial workers. No TensorFlow here.

A process that fails stops the others (a worker waiting on a dead peer in a collective
would wait forever), and so does Ctrl-C: no process outlives the call.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from shared.errors import UserError

LOG = logging.getLogger("deepfield.distribute")
# Set in the environment of every process that `launch_local_workers` starts, so a
# worker running the same command line does not launch workers of its own
# (shared.distribute.in_launched_worker).
LOCAL_WORKER_ENV = "DEEPFIELD_LOCAL_WORKER"


def _free_ports(count: int) -> list[int]:
    """`count` distinct free ports on 127.0.0.1 (held open together so none repeats)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def local_tf_config(ports: list[int], index: int) -> str:
    """TF_CONFIG for worker `index` of a cluster of workers on 127.0.0.1 `ports`."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    return json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})


def _stop(processes: list[subprocess.Popen], grace_s: float = 10.0) -> None:
    """Terminate the processes still running, then kill those that ignore it."""
    for proc in processes:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + grace_s
    for proc in processes:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_processes(
    commands: list[list[str]],
    envs: list[Mapping[str, str]],
    logs: list[Path | None],
    *,
    poll_s: float = 0.2,
) -> tuple[int, int] | None:
    """Start one process per command, each with its environment and its output to its
    log file (this process's own output where the log is None), and wait for them all.

    Returns None when every one exits 0. When one fails, the others are terminated (a
    worker waiting on a dead peer would wait forever) and (its index, its exit code) is
    returned. Ctrl-C, or a failure to start one, terminates all of them and re-raises:
    no process outlives the call.
    """
    processes: list[subprocess.Popen] = []
    handles = []
    try:
        for command, env, log in zip(commands, envs, logs, strict=True):
            out = None
            if log is not None:
                out = Path(log).open("wb")
                handles.append(out)
            processes.append(subprocess.Popen(command, env=dict(env), stdout=out, stderr=out))
        while True:
            codes = [proc.poll() for proc in processes]
            failed = next(((i, c) for i, c in enumerate(codes) if c not in (None, 0)), None)
            if failed is not None:
                _stop(processes)
                return failed
            if all(code == 0 for code in codes):
                return None
            time.sleep(poll_s)
    except BaseException:
        _stop(processes)
        raise
    finally:
        for handle in handles:
            handle.close()


def launch_local_workers(
    command: list[str],
    num_workers: int,
    *,
    env: Mapping[str, str] | None = None,
    log_dir: Path | None = None,
    poll_s: float = 0.2,
) -> int:
    """Run `command` as `num_workers` MultiWorkerMirroredStrategy workers on localhost.

    Each worker gets TF_CONFIG for its index and DEEPFIELD_LOCAL_WORKER=1. Worker 0 (the
    chief) talks to the user's terminal; the others write `log_dir/worker-<i>.log` (a
    temporary folder when `log_dir` is None). Returns 0 when all succeed; when one fails,
    the others are terminated (they would block forever in a collective waiting for it)
    and its exit code is returned. Ctrl-C terminates all of them and re-raises.
    """
    if num_workers < 1:
        raise UserError(f"--local-workers must be at least 1, got {num_workers}")
    log_dir = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="deepfield-workers-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    ports = _free_ports(num_workers)
    base_env = {**os.environ, **(env or {}), LOCAL_WORKER_ENV: "1"}
    envs = [{**base_env, "TF_CONFIG": local_tf_config(ports, i)} for i in range(num_workers)]
    # Worker 0 inherits the terminal: the chief's progress is what the user watches.
    logs = [None] + [log_dir / f"worker-{i}.log" for i in range(1, num_workers)]
    LOG.info("starting %d local workers; worker logs in %s", num_workers, log_dir)
    failed = run_processes([command] * num_workers, envs, logs, poll_s=poll_s)
    if failed is None:
        return 0
    index, code = failed
    where = "above" if index == 0 else str(logs[index])
    print(
        f"worker {index} failed with exit code {code}; stopped the others (its log: {where})",
        file=sys.stderr,
    )
    return code if code > 0 else 128 + abs(code)  # killed by a signal
