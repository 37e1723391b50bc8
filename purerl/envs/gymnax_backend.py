"""gymnax (≥ 1.0) backend: classic control, MinAtar and misc environments.

`gymnax.make` would import every gymnax environment, and with them matplotlib, seaborn,
pandas and scipy (about 1.3 s of a 2-core machine's start-up); `load_environment` imports
only the one module that defines the requested environment.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import sys
import types

import jax.numpy as jnp
import numpy as np

from purerl.envs.spaces import Box, Discrete


def _space(space) -> Box | Discrete:
    kind = type(space).__name__
    if kind == "Discrete":
        return Discrete(int(space.n))
    if kind == "Box":
        shape = tuple(space.shape)
        return Box.make(np.asarray(space.low, np.float32), np.asarray(space.high, np.float32), shape)
    raise ValueError(f"unsupported gymnax space {space!r}")


def load_environment(name: str):
    """`gymnax.make(name)` without importing the rest of gymnax: (environment, default params).

    When gymnax is not imported yet, its package `__init__` files (which import every
    environment) are stood in for by empty packages while the one module loads, and removed
    afterwards: a later `import gymnax` runs the real ones and reuses the loaded module."""
    from purerl.envs.names import GYMNAX_CLASSES

    module_path, class_name = GYMNAX_CLASSES[name]
    full = f"gymnax.environments.{module_path}"
    if "gymnax" in sys.modules or full in sys.modules:
        module = importlib.import_module(full)
    else:
        spec = importlib.util.find_spec("gymnax")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("gymnax is not installed: pip install 'gymnax>=0.0.9'")
        root = list(spec.submodule_search_locations)[0]
        packages = ["gymnax", "gymnax.environments", f"gymnax.environments.{module_path.split('.')[0]}"]
        stubs = {}
        for package in packages:
            stub = types.ModuleType(package)
            stub.__path__ = [root + package[len("gymnax"):].replace(".", "/")]
            stubs[package] = sys.modules[package] = stub
        try:
            module = importlib.import_module(full)
        finally:
            for package, stub in stubs.items():
                if sys.modules.get(package) is stub:
                    del sys.modules[package]
    env = getattr(module, class_name)()
    return env, env.default_params


BINARY_OBSERVATIONS = ("Asterix-MinAtar", "Breakout-MinAtar", "Freeway-MinAtar", "SpaceInvaders-MinAtar")


class GymnaxBackend:
    """Wraps a gymnax environment; `overrides` replace fields of its `EnvParams`
    (e.g. `max_steps_in_episode=200`)."""

    def __init__(self, name: str, **overrides):
        self.name = name
        self.env, params = load_environment(name)
        fields = {f.name for f in dataclasses.fields(params)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise ValueError(f"make({name!r}): unknown option(s) {unknown}; the environment's parameters are "
                             f"{sorted(fields)} (plus normalize_obs, rescale_actions, obs_clip)")
        self.params = params.replace(**overrides) if overrides else params
        self.action_space = _space(self.env.action_space(self.params))
        obs_space = self.env.observation_space(self.params)
        shape = tuple(obs_space.shape)
        if type(obs_space).__name__ == "Box":
            self.observation_space = Box.make(np.asarray(obs_space.low, np.float32),
                                              np.asarray(obs_space.high, np.float32), shape)
        else:  # Discrete observations are given to the agent as float scalars
            self.observation_space = Box.make(0.0, float(obs_space.n - 1), shape)
        self.max_episode_steps = int(getattr(self.params, "max_steps_in_episode", 1000))
        # gymnax hands MinAtar's 0/1 grids over as float32; bool holds them exactly (see
        # `Environment.raw_obs_dtype`; tests/envs/test_envs.py checks the values are 0 or 1).
        self.raw_obs_dtype = np.dtype(bool) if name in BINARY_OBSERVATIONS else np.dtype(np.float32)

    def reset(self, key):
        obs, state = self.env.reset(key, self.params)
        return state, obs

    def step(self, key, state, action):
        # gymnax ≥ 1.0 auto-resets and keeps terminated and truncated apart.
        obs, state, reward, terminated, truncated, info = self.env.step(key, state, action, self.params)
        return state, obs, reward, terminated, truncated, info["final_observation"]
