"""Brax backend (MJX physics by default; `backend=` selects generalized/positional/spring).

The raw Brax environment is wrapped here, not with Brax's own wrappers, so that a
time-limit truncation (`max_episode_steps`, Brax's `episode_length`) is reported
apart from a true termination. Auto-reset follows Brax's training wrapper: each
environment returns to the initial state it was first reset to (a reset through
MJX on every step would dominate the step cost).
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from purerl.envs.names import BRAX_ENVS  # noqa: F401 (re-exported)
from purerl.envs.spaces import Box

PHYSICS_BACKENDS = ("mjx", "generalized", "positional", "spring")


@struct.dataclass
class BraxState:
    state: object  # brax.envs.State of the running episode
    first: object  # the state this environment was first reset to
    time: jax.Array  # steps taken in the running episode


# Observation sizes of the Brax environments with their default keyword arguments (Brax
# 0.12–0.14, every physics backend). Brax's `observation_size` property runs `reset`, and
# tracing MJX's `reset` takes seconds on a CPU; `reset` below checks the size at trace time.
OBS_SIZES = {"ant": 27, "halfcheetah": 17, "hopper": 11, "walker2d": 17, "humanoid": 244, "reacher": 11,
             "inverted_pendulum": 4}


class _Loaded(NamedTuple):
    env: object  # the raw brax.envs.Env
    obs_size: int
    reset: Callable  # jax.jit(env.reset)
    step: Callable  # jax.jit(env.step)


@functools.lru_cache(maxsize=None)
def _load(name: str, backend: str, kwargs: tuple) -> _Loaded:
    """The Brax environment, its observation size, and its `reset`/`step` under `jax.jit`, one
    per (name, backend, kwargs) in a process.

    Tracing MJX's `reset` and `step` takes seconds on a CPU. Called inside a traced program, a
    `jax.jit` function is traced once per input shape and then reused (`vmap` batches the traced
    program without tracing the Python again): every later program of any algorithm, seed count or
    number of environments in this process skips it (a new `Config`'s `train`, the evaluation
    loop, the runner's memory estimate). XLA inlines the call; the fusions around it can change
    results in the last bits (a PPO ant metric: 7.4987189e-04 against 7.4986892e-04 unwrapped).
    """
    from brax import envs

    env = envs.get_environment(name, backend=backend, **dict(kwargs))
    reset, step = jax.jit(env.reset), jax.jit(env.step)
    if not kwargs and name in OBS_SIZES:
        return _Loaded(env, OBS_SIZES[name], reset, step)
    # Traced abstractly, not through the `observation_size` property: under
    # `jax.ensure_compile_time_eval` (where `purerl.envs.make` builds environments) that runs
    # MJX op by op, about 20 s on a CPU.
    obs = jax.eval_shape(reset, jax.ShapeDtypeStruct((2,), jnp.uint32)).obs
    return _Loaded(env, int(obs.shape[-1]), reset, step)


class BraxBackend:
    def __init__(self, name: str, backend: str = "mjx", episode_length: int = 1000, **kwargs):
        if backend not in PHYSICS_BACKENDS:
            raise ValueError(f"make('brax/{name}'): backend={backend!r} is not one of {list(PHYSICS_BACKENDS)}")
        if int(episode_length) < 1:
            raise ValueError(f"make('brax/{name}'): episode_length must be ≥ 1, got {episode_length}")
        self.name = f"brax/{name}"
        self._loaded = _load(name, backend, tuple(sorted(kwargs.items())))
        self.env = self._loaded.env
        self.observation_space = Box.make(-jnp.inf, jnp.inf, (self._loaded.obs_size,))
        self.action_space = Box.make(-1.0, 1.0, (self.env.action_size,))
        self.max_episode_steps = int(episode_length)

    def reset(self, key):
        state = self._loaded.reset(key)
        if state.obs.shape != self.observation_space.shape:
            raise ValueError(f"{self.name}: Brax returned observations of shape {state.obs.shape}, not "
                             f"{self.observation_space.shape} as brax_backend.OBS_SIZES says; correct that table")
        return BraxState(state=state, first=state, time=jnp.zeros((), jnp.int32)), state.obs

    def step(self, key, bstate: BraxState, action):
        del key  # Brax dynamics are deterministic
        state = self._loaded.step(bstate.state, action)
        time = bstate.time + 1
        terminated = state.done > 0.5
        truncated = (time >= self.max_episode_steps) & ~terminated
        done = terminated | truncated
        final_obs = state.obs
        running = jax.tree.map(lambda first, now: jnp.where(done, first, now), bstate.first, state)
        running = running.replace(done=jnp.zeros_like(state.done))
        new = BraxState(state=running, first=bstate.first, time=jnp.where(done, 0, time))
        return new, running.obs, state.reward, terminated, truncated, final_obs
