"""Importing purerl sets the XLA:CPU workaround flag, unless told not to."""

import os
import subprocess
import sys

FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler=false"
CODE = "import os, purerl; print(os.environ.get('XLA_FLAGS', ''))"


def _flags_after_import(**env):
    clean = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "PURERL_KEEP_XLA_FLAGS")}
    out = subprocess.run([sys.executable, "-c", CODE], env={**clean, **env}, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_import_turns_off_the_concurrency_optimized_scheduler():
    assert _flags_after_import() == FLAG
    assert _flags_after_import(XLA_FLAGS="--xla_cpu_enable_fast_math=false") == "--xla_cpu_enable_fast_math=false " + FLAG


def test_user_settings_win():
    assert _flags_after_import(XLA_FLAGS="--xla_cpu_enable_concurrency_optimized_scheduler=true") == \
        "--xla_cpu_enable_concurrency_optimized_scheduler=true"
    assert _flags_after_import(PURERL_KEEP_XLA_FLAGS="1") == ""
