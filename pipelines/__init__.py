"""The user surface: the `deepfield` CLI and the Python API it shares with notebooks.

from pipelines import vision, finance, rl, load_run
"""

import os

# Before anything imports TensorFlow: keep its C++ info/warning chatter off the console.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pipelines.run import Run, load_run  # noqa: E402

__all__ = ["Run", "load_run"]


def __getattr__(name: str):
    # Domain APIs import TensorFlow; load them on first use so `import pipelines` stays fast.
    if name in ("vision", "finance", "rl"):
        import importlib

        return importlib.import_module(f"pipelines.{name}")
    raise AttributeError(name)
