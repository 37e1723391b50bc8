"""Environments: `make(name, **overrides)` → `Environment` (see `purerl.envs.core`)."""

from __future__ import annotations

import jax

from purerl.envs.brax_backend import BRAX_ENVS, BraxBackend
from purerl.envs.core import Environment, EnvState, RunningMeanStd, TimeStep
from purerl.envs.gymnax_backend import GymnaxBackend
from purerl.envs.probes import PROBES, ProbeBackend
from purerl.envs.spaces import Box, Discrete

GYMNAX_ENVS = (
    "CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0", "Pendulum-v1",
    "Asterix-MinAtar", "Breakout-MinAtar", "Freeway-MinAtar", "SpaceInvaders-MinAtar",
    "BernoulliBandit-misc", "GaussianBandit-misc",
)
_WRAPPER_OPTIONS = ("normalize_obs", "rescale_actions", "obs_clip")


def available() -> list[str]:
    """Every name `make` accepts."""
    return list(GYMNAX_ENVS) + [f"brax/{n}" for n in BRAX_ENVS] + [f"probe/{p}" for p in PROBES]


def check_name(name: str, field: str = "env") -> None:
    """Raise a ValueError naming `field` when `name` is not an environment purerl knows."""
    if name not in available():
        raise ValueError(f"{field}={name!r} is not a known environment; available: {', '.join(available())}")


def make(name: str, **overrides) -> Environment:
    """Build an environment by name.

    `overrides` are the wrapper options `normalize_obs` (default False),
    `rescale_actions` (default True: continuous agents act in [−1, 1]) and `obs_clip`,
    plus backend options: gymnax `EnvParams` fields (e.g. `max_steps_in_episode`);
    for Brax `backend` ("mjx", "generalized", "positional", "spring"),
    `episode_length` (default 1000) and the environment's own keyword arguments.
    """
    check_name(name, field="name")
    wrapper = {k: overrides.pop(k) for k in _WRAPPER_OPTIONS if k in overrides}
    with jax.ensure_compile_time_eval():  # spaces are static even when first built under a trace
        return Environment(_backend(name, overrides), **wrapper)


def _backend(name: str, overrides: dict):
    if name.startswith("brax/"):
        backend = BraxBackend(name[len("brax/"):], **overrides)
    elif name.startswith("probe/"):
        if overrides:
            raise ValueError(f"make({name!r}): probes take no options, got {sorted(overrides)}")
        backend = ProbeBackend(name[len("probe/"):])
    else:
        backend = GymnaxBackend(name, **overrides)
    return backend


__all__ = ["make", "available", "check_name", "Environment", "EnvState", "TimeStep", "RunningMeanStd",
           "Box", "Discrete", "GYMNAX_ENVS", "BRAX_ENVS", "PROBES"]
