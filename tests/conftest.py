import os
import shutil
import tempfile

# Tests run on the CPU; keep XLA from grabbing every thread for one compile.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# One CPU device per test process unless XLA_FLAGS forces a count: the CLI's `run.use_cpu_cores`
# would otherwise split a worker's CPU for all its later tests whenever an in-process CLI test
# happens to be that worker's first JAX call.
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    import jax

    jax.config.update("jax_num_cpu_devices", 1)
# The runner's persistent compilation cache: one fresh directory per test session, never the
# user's. The pytest process makes it before xdist starts its workers, which inherit it.
_OWN_CACHE = "PURERL_CACHE_DIR" not in os.environ
if _OWN_CACHE:
    os.environ["PURERL_CACHE_DIR"] = tempfile.mkdtemp(prefix="purerl-test-cache-")


def pytest_sessionfinish(session):
    if _OWN_CACHE and not hasattr(session.config, "workerinput"):  # the controller, after every worker
        shutil.rmtree(os.environ["PURERL_CACHE_DIR"], ignore_errors=True)
