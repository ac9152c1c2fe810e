"""Deepfield benchmarks: each measures ours against a baseline in the same process.

Run them with `python -m benchmarks.run_all` (`make bench`). The machines they run on are
shared and noisy, so every benchmark reports a ratio against a baseline timed alongside it,
plus the absolute numbers.
"""

import os

# Before TensorFlow is first imported (by any benchmark module): keep its C++ logs quiet.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
