import os
import shutil
import tempfile

# Tests run on the CPU; keep XLA from grabbing every thread for one compile.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# The runner's persistent compilation cache: one fresh directory per test session, never the
# user's. The pytest process makes it before xdist starts its workers, which inherit it.
_OWN_CACHE = "PURERL_CACHE_DIR" not in os.environ
if _OWN_CACHE:
    os.environ["PURERL_CACHE_DIR"] = tempfile.mkdtemp(prefix="purerl-test-cache-")


def pytest_sessionfinish(session):
    if _OWN_CACHE and not hasattr(session.config, "workerinput"):  # the controller, after every worker
        shutil.rmtree(os.environ["PURERL_CACHE_DIR"], ignore_errors=True)
