"""One functional environment interface over gymnax, Brax and purerl's own probes.

An `Environment` is a static Python object (never traced) holding pure functions:

    state, obs = env.reset(key, num_envs)
    state, ts  = env.step(key, state, action)          # action: [num_envs, *action_shape]

`ts` is a `TimeStep`. Its fields are the ones RL targets need:

* `terminated` — a true terminal: the value of the next state is 0, do not bootstrap.
* `truncated`  — the episode was cut by a time limit: bootstrap from `final_obs`.
* `obs` is already the first observation of the next episode where an episode
  ended (auto-reset); `final_obs` is the true next observation s′ of this
  transition (equal to `obs` where the episode goes on).
* `raw_final_obs` is `final_obs` before observation normalization, and
  `EnvState.raw_obs` the raw observation the agent acts on next: what a replay
  buffer stores, to be normalized at sample time with the statistics of that
  moment (as Stable-Baselines3's `VecNormalize` buffers do). Without
  `normalize_obs` they equal `final_obs` and `obs`.
* `episode_return`, `episode_length` — of the episode that ended at this step
  (0 elsewhere); use them with `ts.done` as a mask.

Options applied here, identically for every backend:
* `normalize_obs` — running mean/variance of observations carried in
  `EnvState.obs_stats` (per seed, shared by the batch of environments); the
  agent sees `clip((x − mean)/sqrt(var + 1e-8), −obs_clip, obs_clip)`.
* `rescale_actions` — for continuous actions the agent acts in [−1, 1]^d; the
  action is clipped there and mapped linearly onto the environment's bounds.
"""

from __future__ import annotations

from typing import Any, Protocol

import jax
import jax.numpy as jnp
from flax import struct

from purerl.envs.spaces import Box, Discrete


class Backend(Protocol):
    """What an environment backend provides, for a single (unbatched) environment.

    `step` auto-resets: where the episode ended it returns the next episode's first
    observation as `obs` and the true next observation as `final_obs`.
    """

    name: str
    observation_space: Box
    action_space: Box | Discrete
    max_episode_steps: int

    def reset(self, key) -> tuple[Any, jax.Array]: ...

    def step(self, key, state, action) -> tuple[Any, jax.Array, jax.Array, jax.Array, jax.Array, jax.Array]:
        """-> (state, obs, reward, terminated, truncated, final_obs)."""
        ...


class RewardBackend:
    """`backend` with its reward replaced by `reward_fn(obs, action, next_obs)` (one transition,
    unbatched; `next_obs` the true next observation, before any auto-reset). Terminations,
    truncations and observations are the backend's own."""

    def __init__(self, backend: Backend, reward_fn):
        self.inner, self.reward_fn = backend, reward_fn
        self.name = backend.name
        self.observation_space = backend.observation_space
        self.raw_obs_dtype = getattr(backend, "raw_obs_dtype", jnp.float32)  # the backend's own observations
        self.action_space = backend.action_space
        self.max_episode_steps = backend.max_episode_steps

    def reset(self, key):
        state, obs = self.inner.reset(key)
        return (state, obs), obs

    def step(self, key, state, action):
        inner_state, obs = state
        inner_state, next_obs, _, terminated, truncated, final_obs = self.inner.step(key, inner_state, action)
        reward = jnp.asarray(self.reward_fn(obs, action, final_obs), jnp.float32).reshape(())
        return (inner_state, next_obs), next_obs, reward, terminated, truncated, final_obs


class MacroBackend:
    """A high-level MDP over a frozen low-level controller: one action `m` of `action_space` runs
    `controller(obs, m, key) -> action` (one unbatched step, in `task`'s units) in `task` for
    `steps` steps, or until the episode ends; the reward is the sum of `task`'s rewards on the way.
    Terminated/truncated are those of the task's step that ended the episode. (DIAYN's skills,
    ASE's latents: a purerl learner then trains the policy that picks `m`.)"""

    def __init__(self, task: Backend, action_space, controller, steps: int, name: str):
        self.task, self.controller, self.steps, self.name = task, controller, int(steps), name
        self.observation_space = task.observation_space
        self.raw_obs_dtype = getattr(task, "raw_obs_dtype", jnp.float32)  # the task's own observations
        self.action_space = action_space
        self.max_episode_steps = -(-task.max_episode_steps // self.steps)

    def reset(self, key):
        state, obs = self.task.reset(key)
        return (state, obs), obs

    def step(self, key, state, macro_action):
        def inner(carry, step_key):
            state, obs, done, total, terminated, truncated, final_obs = carry
            action = self.controller(jnp.asarray(obs, jnp.float32), macro_action, step_key)
            new_state, new_obs, reward, term, trunc, fin = self.task.step(step_key, state, action)
            keep = lambda old, new: jax.tree.map(lambda o, n: jnp.where(done, o, n), old, new)  # noqa: E731
            return (keep(state, new_state), keep(obs, new_obs), done | term | trunc,
                    total + jnp.where(done, 0.0, reward), terminated | (~done & term),
                    truncated | (~done & trunc), keep(final_obs, fin)), None

        inner_state, obs = state
        false = jnp.asarray(False)
        carry = (inner_state, obs, false, jnp.zeros(()), false, false, obs)
        (inner_state, obs, _, total, terminated, truncated, final_obs), _ = jax.lax.scan(
            inner, carry, jax.random.split(key, self.steps))
        return (inner_state, obs), obs, total, terminated, truncated, final_obs


@struct.dataclass
class RunningMeanStd:
    """Running mean and variance over a stream of batches (Chan et al. parallel update)."""

    mean: jax.Array
    var: jax.Array
    count: jax.Array

    @classmethod
    def create(cls, shape) -> "RunningMeanStd":
        return cls(jnp.zeros(shape, jnp.float32), jnp.ones(shape, jnp.float32), jnp.asarray(1e-4, jnp.float32))

    def update(self, batch: jax.Array) -> "RunningMeanStd":
        batch_mean = jnp.mean(batch, axis=0)
        batch_var = jnp.var(batch, axis=0)
        batch_count = batch.shape[0]
        delta = batch_mean - self.mean
        total = self.count + batch_count
        mean = self.mean + delta * batch_count / total
        m2 = self.var * self.count + batch_var * batch_count + delta**2 * self.count * batch_count / total
        return RunningMeanStd(mean, m2 / total, total)

    def normalize(self, x: jax.Array, clip: float) -> jax.Array:
        return jnp.clip((x - self.mean) / jnp.sqrt(self.var + 1e-8), -clip, clip)


@struct.dataclass
class EnvState:
    backend_state: Any  # batched backend state, leading axis num_envs
    episode_return: jax.Array  # [num_envs] running return of the current episode
    episode_length: jax.Array  # [num_envs] int32
    obs_stats: RunningMeanStd
    raw_obs: jax.Array  # [num_envs, *obs_shape] float32, the observation the agent acts on next, unnormalized


@struct.dataclass
class TimeStep:
    obs: jax.Array  # [N, *obs_shape] observation the agent acts on next (after auto-reset)
    reward: jax.Array  # [N] float32
    terminated: jax.Array  # [N] bool — true terminal, no bootstrap
    truncated: jax.Array  # [N] bool — time limit, bootstrap from final_obs
    final_obs: jax.Array  # [N, *obs_shape] true next observation s′ of this transition
    raw_final_obs: jax.Array  # [N, *obs_shape] final_obs before observation normalization
    episode_return: jax.Array  # [N] return of the episode that ended here (0 elsewhere)
    episode_length: jax.Array  # [N] int32 length of the episode that ended here (0 elsewhere)

    @property
    def done(self) -> jax.Array:
        return jnp.logical_or(self.terminated, self.truncated)


class Environment:
    """A batch of parallel environments with the options above. Hashable, static."""

    def __init__(self, backend: Backend, *, normalize_obs: bool = False, rescale_actions: bool = True,
                 obs_clip: float = 10.0):
        self.backend = backend
        self.name = backend.name
        self.normalize_obs = bool(normalize_obs)
        self.obs_clip = float(obs_clip)
        self.observation_space: Box = backend.observation_space
        self.native_action_space = backend.action_space
        space = backend.action_space
        self.rescale_actions = bool(rescale_actions) and isinstance(space, Box)
        if self.rescale_actions:
            self.action_space = Box.make(-1.0, 1.0, space.shape)
        else:
            self.action_space = space
        self.max_episode_steps = int(backend.max_episode_steps)

    # -- descriptions -----------------------------------------------------------------
    @property
    def obs_shape(self) -> tuple[int, ...]:
        return self.observation_space.shape

    @property
    def raw_obs_dtype(self) -> jnp.dtype:
        """The narrowest dtype that holds this environment's raw observations exactly, as its
        backend declares it (`bool` for MinAtar's 0/1 grids; float32 where none is declared).
        Replay buffers store raw observations in it (a quarter of float32's memory for
        MinAtar); the agent always sees float32 (`reset`, `step`, `normalize`)."""
        return jnp.dtype(getattr(self.backend, "raw_obs_dtype", jnp.float32))

    @property
    def discrete(self) -> bool:
        return isinstance(self.action_space, Discrete)

    def __repr__(self) -> str:
        return (f"Environment({self.name!r}, obs={self.observation_space}, action={self.action_space}, "
                f"max_episode_steps={self.max_episode_steps}, normalize_obs={self.normalize_obs})")

    # -- pure functions ---------------------------------------------------------------
    def normalize(self, obs_stats: RunningMeanStd, obs: jax.Array) -> jax.Array:
        """What the agent sees of a raw observation."""
        obs = obs.astype(jnp.float32)
        return obs_stats.normalize(obs, self.obs_clip) if self.normalize_obs else obs

    def reset(self, key: jax.Array, num_envs: int, obs_stats: RunningMeanStd | None = None,
              ) -> tuple[EnvState, jax.Array]:
        """Reset `num_envs` environments. Pass `obs_stats` to reuse normalization statistics
        (e.g. from training, for evaluation); otherwise fresh ones start from this batch."""
        keys = jax.random.split(key, num_envs)
        backend_state, obs = jax.vmap(self.backend.reset)(keys)
        obs = obs.astype(jnp.float32)
        if obs_stats is None:
            obs_stats = RunningMeanStd.create(self.obs_shape)
            if self.normalize_obs:
                obs_stats = obs_stats.update(obs)
        state = EnvState(
            backend_state=backend_state,
            episode_return=jnp.zeros(num_envs, jnp.float32),
            episode_length=jnp.zeros(num_envs, jnp.int32),
            obs_stats=obs_stats,
            raw_obs=obs,
        )
        return state, self.normalize(obs_stats, obs)

    def step(self, key: jax.Array, state: EnvState, action: jax.Array, update_stats: bool = True,
             ) -> tuple[EnvState, TimeStep]:
        """Step every environment once (auto-resetting finished ones).

        `update_stats=False` freezes observation-normalization statistics (evaluation).
        """
        num_envs = state.episode_return.shape[0]
        action = self._to_native(action)
        keys = jax.random.split(key, num_envs)
        backend_state, obs, reward, terminated, truncated, final_obs = jax.vmap(self.backend.step)(
            keys, state.backend_state, action)
        obs, final_obs = obs.astype(jnp.float32), final_obs.astype(jnp.float32)
        reward = reward.astype(jnp.float32)
        terminated = terminated.astype(bool)
        truncated = jnp.logical_and(truncated.astype(bool), ~terminated)
        done = terminated | truncated

        obs_stats = state.obs_stats
        if self.normalize_obs and update_stats:
            obs_stats = obs_stats.update(final_obs)

        episode_return = state.episode_return + reward
        episode_length = state.episode_length + 1
        new_state = EnvState(
            backend_state=backend_state,
            episode_return=jnp.where(done, 0.0, episode_return),
            episode_length=jnp.where(done, 0, episode_length),
            obs_stats=obs_stats,
            raw_obs=obs,
        )
        timestep = TimeStep(
            obs=self.normalize(obs_stats, obs),
            reward=reward,
            terminated=terminated,
            truncated=truncated,
            final_obs=self.normalize(obs_stats, final_obs),
            raw_final_obs=final_obs,
            episode_return=jnp.where(done, episode_return, 0.0),
            episode_length=jnp.where(done, episode_length, 0),
        )
        return new_state, timestep

    def _to_native(self, action: jax.Array) -> jax.Array:
        space = self.native_action_space
        if isinstance(space, Discrete):
            return action.astype(jnp.int32)
        action = action.astype(jnp.float32)
        low, high = jnp.asarray(space.low), jnp.asarray(space.high)
        if self.rescale_actions:
            action = jnp.clip(action, -1.0, 1.0)
            return low + (action + 1.0) * 0.5 * (high - low)
        return jnp.clip(action, low, high)
