"""A small trained digits run, shared by the vision tests that need a finished run."""

import pytest

from tests.harness.tiny import tiny

# Two quick epochs of a narrow CNN: enough to beat chance clearly, fast on 2 cores. The
# harness's vision run (VisionDomain.smoke_run), so the session trains it once for both.
FAST_OVERRIDES = list(tiny("vision").overrides)
FAST = [arg for item in FAST_OVERRIDES for arg in ("--set", item)]


@pytest.fixture(scope="session")
def digits_run(domain_run):
    return domain_run("vision")
