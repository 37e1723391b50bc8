"""purerl: reinforcement-learning algorithms as pure JAX functions (see README.md)."""

import os as _os

# Work around an XLA:CPU hang in jaxlib 0.10: with its concurrency-optimized scheduler on,
# a vmapped training program sometimes never finishes — every worker thread idle, the caller
# waiting in block_until_ready forever. Measured on the 2-core CPU machine (jaxlib 0.10.2),
# PPO CartPole-v1 with 2 or 16 vmapped seeds, up to three calls per process: 12 of 13
# processes hung without this flag (some with other XLA flags tried), 0 of 10 with it; it makes the hang rarer, not impossible (a
# 256-seed run still hung once). The flag only touches the CPU backend and must be set
# before JAX creates its CPU client, i.e. import purerl before running any computation.
# Set PURERL_KEEP_XLA_FLAGS=1 to leave XLA_FLAGS alone.
_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler=false"
if not _os.environ.get("PURERL_KEEP_XLA_FLAGS") and "xla_cpu_enable_concurrency_optimized_scheduler" not in _os.environ.get("XLA_FLAGS", ""):
    _os.environ["XLA_FLAGS"] = (_os.environ.get("XLA_FLAGS", "") + " " + _FLAG).strip()
