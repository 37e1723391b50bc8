"""Importing purerl leaves process-wide settings alone (XLA_FLAGS in particular), and loads
only what a command needs."""

import os
import subprocess
import sys
import textwrap

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


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print(' '.join(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    return set(out.stdout.strip().splitlines()[-1].split())


def test_purerl_list_imports_no_jax():
    """`purerl list` and `purerl --help` load no JAX (they answer in well under a second)."""
    loaded = _modules_after("from purerl import cli; cli.main(['list']); cli.main(['--help'])")
    assert "jax" not in loaded and "gymnax" not in loaded and "brax" not in loaded


def test_a_gymnax_environment_loads_only_its_module():
    """Making CartPole imports neither Brax/MuJoCo nor gymnax's other environments (which
    bring matplotlib, seaborn, pandas, scipy)."""
    loaded = _modules_after("from purerl import envs; envs.make('CartPole-v1')")
    assert "gymnax.environments.classic_control.cartpole" in loaded
    heavy = {"brax", "mujoco", "matplotlib", "seaborn", "pandas", "scipy", "gymnax.registration",
             "gymnax.environments.minatar.breakout"}
    assert not heavy & loaded, heavy & loaded


def test_light_loading_matches_gymnax_make():
    """Every gymnax name gives the class and default parameters `gymnax.make` gives, and a
    later `import gymnax` still works in full."""
    code = textwrap.dedent("""
        import jax, numpy as np
        from purerl import envs
        from purerl.envs.gymnax_backend import load_environment
        light = {n: load_environment(n) for n in envs.GYMNAX_ENVS}
        import gymnax
        for n, (env, params) in light.items():
            ref, ref_params = gymnax.make(n)
            assert type(env) is type(ref), n
            same = jax.tree.map(lambda a, b: bool(np.all(np.asarray(a) == np.asarray(b))), params, ref_params)
            assert all(jax.tree.leaves(same)), n
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]
