"""purerl: reinforcement-learning algorithms as pure JAX functions (see README.md).

Importing purerl changes no process-wide setting. (Earlier versions turned off XLA:CPU's
concurrency-optimized scheduler to make a hang rarer; the hang was jaxlib 0.10.0–0.10.2's
deadlock of a vmapped batched QR, those releases are excluded in pyproject.toml, and on the
releases allowed the flag made no difference: see README, "Many seeds on CPU", and
benchmarks/xla_flag_ab.py.)
"""


def __getattr__(name):
    """`purerl.load_policy(path)`: an exported policy (`purerl export`) as `act(obs, key)`; imported
    on first use, so that `import purerl` stays free of JAX."""
    if name == "load_policy":
        from purerl.policy import load_policy

        return load_policy
    raise AttributeError(f"module 'purerl' has no attribute {name!r}")
