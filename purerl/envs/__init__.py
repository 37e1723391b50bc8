"""Environments: `make(name, **overrides)` → `Environment` (see `purerl.envs.core`).

Importing this package loads nothing heavy: the names (`available`, `check_name`) come
from `purerl.envs.names`, and the interface classes and backends are imported when first
used, so that `purerl list` needs no JAX and a gymnax run never imports Brax or MuJoCo.
"""

from __future__ import annotations

import importlib

from purerl.envs.names import BRAX_ENVS, GYMNAX_ENVS, POINT_ENVS, PROBES, available

_WRAPPER_OPTIONS = ("normalize_obs", "rescale_actions", "obs_clip")
# attribute → module that defines it, imported on first access (PEP 562)
_LAZY = {
    "Environment": "purerl.envs.core", "EnvState": "purerl.envs.core", "TimeStep": "purerl.envs.core",
    "RunningMeanStd": "purerl.envs.core", "MacroBackend": "purerl.envs.core", "Box": "purerl.envs.spaces", "Discrete": "purerl.envs.spaces",
    "BraxBackend": "purerl.envs.brax_backend", "GymnaxBackend": "purerl.envs.gymnax_backend",
    "ProbeBackend": "purerl.envs.probes", "PointMassBackend": "purerl.envs.pointmass",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'purerl.envs' has no attribute {name!r}")


_REGISTERED: dict = {}  # name → make_backend(**overrides), added by `register`


def register(name: str, make_backend) -> None:
    """Make `make(name, **overrides)` build `make_backend(**overrides)` (a `Backend`), so that any
    algorithm's `Config(env=name)` trains on it: a variant of an environment with other
    parameters, or one whose reward is replaced (`variant`). A name is registered once (the
    algorithms cache the environments they build by name)."""
    if name in available() or name in _REGISTERED:
        raise ValueError(f"environment {name!r} is registered already; choose another name")
    _REGISTERED[name] = make_backend


def variant(name: str, base: str, reward_fn=None, **params) -> str:
    """Register `name` as `base` with backend parameters `params` (e.g. gymnax `EnvParams` fields:
    `variant("Pendulum-v1-heavy", "Pendulum-v1", m=1.3)`) and, if given, its reward replaced by
    `reward_fn(obs, action, next_obs) -> reward` (one unbatched transition, raw observations; the
    action in the environment's own units). Returns `name`."""
    check_name(base, field="base")

    def make_backend(**overrides):
        backend = _backend(base, {**params, **overrides})
        if reward_fn is not None:
            from purerl.envs.core import RewardBackend

            backend = RewardBackend(backend, reward_fn)
        backend.name = name
        return backend

    register(name, make_backend)
    return name


def check_name(name: str, field: str = "env") -> None:
    """Raise a ValueError naming `field` when `name` is not an environment purerl knows."""
    if name not in available() and name not in _REGISTERED:
        names = available() + sorted(_REGISTERED)
        raise ValueError(f"{field}={name!r} is not a known environment; available: {', '.join(names)}")


def make(name: str, **overrides):
    """Build an environment (an `Environment`) by name.

    `overrides` are the wrapper options `normalize_obs` (default False),
    `rescale_actions` (default True: continuous agents act in [−1, 1]) and `obs_clip`,
    plus backend options: gymnax `EnvParams` fields (e.g. `max_steps_in_episode`);
    for the point mass (`point/…`) `max_steps`, `dt`, `start`, `goal`, … (see `purerl.envs.pointmass`);
    for Brax `backend` ("mjx", "generalized", "positional", "spring"),
    `episode_length` (default 1000) and the environment's own keyword arguments.
    """
    import jax

    from purerl.envs.core import Environment

    check_name(name, field="name")
    wrapper = {k: overrides.pop(k) for k in _WRAPPER_OPTIONS if k in overrides}
    with jax.ensure_compile_time_eval():  # spaces are static even when first built under a trace
        return Environment(_backend(name, overrides), **wrapper)


def _backend(name: str, overrides: dict):
    if name in _REGISTERED:
        return _REGISTERED[name](**overrides)
    if name.startswith("brax/"):
        from purerl.envs.brax_backend import BraxBackend

        return BraxBackend(name[len("brax/"):], **overrides)
    if name.startswith("probe/"):
        from purerl.envs.probes import ProbeBackend

        if overrides:
            raise ValueError(f"make({name!r}): probes take no options, got {sorted(overrides)}")
        return ProbeBackend(name[len("probe/"):])
    if name.startswith("point/"):
        from purerl.envs.pointmass import PointMassBackend

        return PointMassBackend(name[len("point/"):], **overrides)
    from purerl.envs.gymnax_backend import GymnaxBackend

    return GymnaxBackend(name, **overrides)


__all__ = ["make", "available", "check_name", "register", "variant", "Environment", "EnvState", "TimeStep", "RunningMeanStd", "MacroBackend",
           "Box", "Discrete", "GYMNAX_ENVS", "BRAX_ENVS", "PROBES",
           "POINT_ENVS"]
