"""Importing purerl leaves process-wide settings alone (XLA_FLAGS in particular)."""

import os
import subprocess
import sys

CODE = "import os, purerl; print(repr(os.environ.get('XLA_FLAGS')))"


def _flags_after_import(**env):
    clean = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    out = subprocess.run([sys.executable, "-c", CODE], env={**clean, **env}, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_import_leaves_xla_flags_alone():
    """The scheduler flag purerl used to add is not needed on the jaxlib releases allowed
    (benchmarks/results/xla_flag_ab.json): a user's XLA_FLAGS stay exactly as set."""
    assert _flags_after_import() == "None"
    assert _flags_after_import(XLA_FLAGS="--xla_cpu_enable_fast_math=false") == "'--xla_cpu_enable_fast_math=false'"
