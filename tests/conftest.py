import os
import tempfile

# Tests run on the CPU; keep XLA from grabbing every thread for one compile.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# The runner's persistent compilation cache: one directory per test session, shared by its
# xdist workers (PYTEST_XDIST_TESTRUNUID is the same in every worker), never the user's.
_session = os.environ.get("PYTEST_XDIST_TESTRUNUID", str(os.getpid()))
os.environ.setdefault("PURERL_CACHE_DIR", os.path.join(tempfile.gettempdir(), f"purerl-test-cache-{_session}"))
