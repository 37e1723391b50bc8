"""gymnax (≥ 1.0) backend: classic control, MinAtar, bsuite and misc environments."""

from __future__ import annotations

import dataclasses

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


class GymnaxBackend:
    """Wraps a gymnax environment; `overrides` replace fields of its `EnvParams`
    (e.g. `max_steps_in_episode=200`)."""

    def __init__(self, name: str, **overrides):
        import gymnax

        self.name = name
        self.env, params = gymnax.make(name)
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

    def reset(self, key):
        obs, state = self.env.reset(key, self.params)
        return state, obs

    def step(self, key, state, action):
        # gymnax ≥ 1.0 auto-resets and keeps terminated and truncated apart.
        obs, state, reward, terminated, truncated, info = self.env.step(key, state, action, self.params)
        return state, obs, reward, terminated, truncated, info["final_observation"]
