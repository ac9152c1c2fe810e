"""The user surface: the `deepfield` CLI and the Python API it shares with notebooks.

from pipelines import vision, finance, rl, load_run   # one API per registered domain
pipelines.runs(sort="roc_auc")                         # the runs under runs/, a DataFrame
"""

import os

# Before anything imports TensorFlow: keep its C++ info/warning chatter off the console.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pipelines.run import Run, load_run  # noqa: E402

# The function shadows its module as `pipelines.runs`; import the module's helpers with
# `from pipelines.runs import ...`. No pandas or TensorFlow until it is called.
from pipelines.runs import runs  # noqa: E402

__all__ = ["Run", "load_run", "runs"]


def __getattr__(name: str):
    # `pipelines.<domain>`: generated from the domain registry on first use (no TensorFlow).
    if not name.startswith("_"):
        from pipelines.domains import discover

        if name in discover():
            from pipelines.api import api_for

            return api_for(name)
    raise AttributeError(f"module 'pipelines' has no attribute {name!r}")
