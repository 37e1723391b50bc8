"""Regression test for the XLA:CPU deadlock of jaxlib 0.10.0–0.10.2 (see README, "Many seeds on CPU").

There, a batched LAPACK QR under `vmap` — what `jax.nn.initializers.orthogonal()` does for a
batch of seeds, and so `vmap(ppo.init)` — fans its batch out onto the XLA CPU thread pool it
runs on (`lapack_sgeqrf_ffi` → `ParallelBatchMap` → `BlockingCounter::Wait`) and waits; with
every worker waiting, nothing runs and the process hangs at 0% CPU. pyproject.toml excludes
those releases. Each check runs in a subprocess with a timeout, so a future jaxlib that brings
the deadlock back fails here with a clear message instead of hanging CI.
"""

import os
import subprocess
import sys
import textwrap

import pytest

TIMEOUT_S = 240  # both programs finish in seconds on jax 0.9.2 (2-core CPU: ~2 s and ~10 s)

REPRODUCER = """
import jax
init = jax.nn.initializers.orthogonal()
f = jax.jit(jax.vmap(lambda k: init(k, (64, 64)).sum()))
for i in range(5):
    jax.block_until_ready(f(jax.random.split(jax.random.PRNGKey(i), 256)))
print("ok", jax.__version__)
"""

PPO_INIT_1024 = """
import jax
from purerl.algos import ppo
config = ppo.Config(env="CartPole-v1")
keys = jax.random.split(jax.random.PRNGKey(0), 1024)
state = jax.block_until_ready(jax.jit(jax.vmap(ppo.init, in_axes=(None, 0)))(config, keys))
assert jax.tree.leaves(state.params)[0].shape[0] == 1024
print("ok", jax.__version__)
"""


def _run_with_timeout(code: str, what: str, env: dict | None = None):
    try:
        out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                             timeout=TIMEOUT_S, env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired:
        import jaxlib

        pytest.fail(f"{what} did not finish in {TIMEOUT_S} s with jaxlib {jaxlib.__version__}: the XLA:CPU "
                    f"deadlock of a vmapped batched QR (jaxlib 0.10.0-0.10.2) is back. Exclude this jaxlib "
                    f"release in pyproject.toml (see README, 'Many seeds on CPU').")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("ok"), out.stdout


def test_vmapped_orthogonal_init_finishes():
    """The minimal reproducer, without purerl (so without any XLA flag purerl might set)."""
    _run_with_timeout(REPRODUCER, "jit(vmap(orthogonal init)) over 256 keys",
                      env={"XLA_FLAGS": "", "JAX_PLATFORMS": "cpu"})


def test_vmapped_ppo_init_over_1024_seeds_finishes():
    _run_with_timeout(PPO_INIT_1024, "jit(vmap(ppo.init)) over 1024 keys", env={"JAX_PLATFORMS": "cpu"})
