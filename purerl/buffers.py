"""A replay buffer that lives inside the train state: a fixed-size circular pytree.

Layout is time-major per environment: every leaf is `[rows, num_envs, ...]`, and
`add` writes one row (one step of all `num_envs` environments). Capacity is
`rows · num_envs` transitions. Being a plain pytree, `vmap` over seeds gives every
seed its own buffer and seeds never see each other's data.

Transitions keep `terminated` and `truncated` apart and store the true next
observation (`next_obs`, the environment's `final_obs`), so targets bootstrap through
time-limit truncation and not through terminals. `sample_n_step` forms n-step returns
from consecutive rows of one environment, stopping at an episode's end:

    G = Σ_{k<m} γ^k r_{t+k},   target = G + γ^m (1 − term) Q(s_{t+m}, ·)

where m ≤ n is the number of steps taken before the episode ended (or n);
`sample_n_step` returns γ^m alongside. `sample` draws single transitions.

Store raw observations (`EnvState.raw_obs`, `TimeStep.raw_final_obs`) and pass
`normalize_obs` (e.g. `functools.partial(env.normalize, env_state.obs_stats)`) when
sampling: a minibatch is then normalized with the statistics of the moment it is used,
not those of the moment it was stored (Stable-Baselines3's practice).

Observations may be stored in a narrower dtype than float32 (`Environment.raw_obs_dtype`:
bool for MinAtar's grids): `add` casts to the stored dtype, and `sample`/`sample_n_step`
give a `Transition`'s `obs` and `next_obs` back as float32.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class Transition:
    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array  # true terminal: no bootstrap
    truncated: jax.Array  # time limit: bootstrap from next_obs
    next_obs: jax.Array  # true next observation s′ (the final observation where an episode ended)


@struct.dataclass
class ReplayBuffer:
    data: Any  # pytree of [rows, num_envs, ...]
    row: jax.Array  # int32, next row to write
    rows_filled: jax.Array  # int32, rows holding data (≤ rows)

    # Leading axes of `rows_filled` are batch axes (seeds stacked by `vmap` and returned to
    # the host): the data's row and env axes come right after them.
    @property
    def rows(self) -> int:
        return jax.tree.leaves(self.data)[0].shape[jnp.ndim(self.rows_filled)]

    @property
    def num_envs(self) -> int:
        return jax.tree.leaves(self.data)[0].shape[jnp.ndim(self.rows_filled) + 1]

    @property
    def size(self) -> jax.Array:
        """Transitions stored (per seed, for a buffer stacked over seeds)."""
        return self.rows_filled * self.num_envs


def create(example: Any, num_envs: int, capacity: int) -> ReplayBuffer:
    """An empty buffer for items shaped like `example` (one transition, no batch axis),
    holding `capacity` transitions (rounded down to whole rows of `num_envs`)."""
    rows = capacity // num_envs
    if rows < 1:
        raise ValueError(f"buffer capacity={capacity} is smaller than num_envs={num_envs}")
    data = jax.tree.map(lambda x: jnp.zeros((rows, num_envs) + jnp.shape(x), jnp.asarray(x).dtype), example)
    return ReplayBuffer(data=data, row=jnp.zeros((), jnp.int32), rows_filled=jnp.zeros((), jnp.int32))


def nbytes(example: Any, capacity: int) -> int:
    """Bytes a buffer of `capacity` items shaped like `example` occupies."""
    return capacity * sum(jnp.asarray(x).dtype.itemsize * max(1, jnp.size(x)) for x in jax.tree.leaves(example))


def add(buffer: ReplayBuffer, batch: Any) -> ReplayBuffer:
    """Write one step of every environment (`batch` leaves: [num_envs, ...]), overwriting
    the oldest row once full."""
    data = jax.tree.map(lambda store, x: store.at[buffer.row].set(x.astype(store.dtype)), buffer.data, batch)
    return ReplayBuffer(data=data, row=(buffer.row + 1) % buffer.rows,
                        rows_filled=jnp.minimum(buffer.rows_filled + 1, buffer.rows))


def sample(buffer: ReplayBuffer, key: jax.Array, batch_size: int, normalize_obs=None) -> Any:
    """`batch_size` items drawn uniformly (with replacement) from the stored transitions;
    `normalize_obs(x)`, if given, maps their `obs` and `next_obs` (the data is then a `Transition`)."""
    row_key, env_key = jax.random.split(key)
    oldest = (buffer.row - buffer.rows_filled) % buffer.rows
    offset = jax.random.randint(row_key, (batch_size,), 0, jnp.maximum(buffer.rows_filled, 1))
    rows = (oldest + offset) % buffer.rows
    envs = jax.random.randint(env_key, (batch_size,), 0, buffer.num_envs)
    return _normalized(jax.tree.map(lambda x: x[rows, envs], buffer.data), normalize_obs)


def _normalized(batch, normalize_obs):
    if isinstance(batch, Transition):  # observations stored narrower (bool, uint8) come back as float32
        batch = batch.replace(obs=_as_float(batch.obs), next_obs=_as_float(batch.next_obs))
    if normalize_obs is None:
        return batch
    return batch.replace(obs=normalize_obs(batch.obs), next_obs=normalize_obs(batch.next_obs))


def _as_float(x: jax.Array) -> jax.Array:
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.float32)


def sample_n_step(buffer: ReplayBuffer, key: jax.Array, batch_size: int, n: int, gamma, normalize_obs=None,
                  ) -> tuple[Transition, jax.Array]:
    """`batch_size` n-step transitions: (Transition with the n-step discounted reward, the
    bootstrap observation as `next_obs` and whether the episode terminated on the way;
    the bootstrap discount γ^m). Starts are uniform over rows whose n − 1 successors are
    stored. Until the buffer holds n rows only the oldest row can start, and its return
    stops at the newest stored row (m ≤ `rows_filled`): rows not yet written are never read.
    `buffer.data` must be a `Transition`; `normalize_obs` as in `sample`."""
    row_key, env_key = jax.random.split(key)
    oldest = (buffer.row - buffer.rows_filled) % buffer.rows
    starts = jnp.maximum(buffer.rows_filled - (n - 1), 1)
    offset = jax.random.randint(row_key, (batch_size,), 0, starts)
    rows = (oldest + offset) % buffer.rows
    envs = jax.random.randint(env_key, (batch_size,), 0, buffer.num_envs)
    data: Transition = buffer.data
    first = jax.tree.map(lambda x: x[rows, envs], data)

    total = jnp.zeros(batch_size, jnp.float32)
    discount = jnp.ones(batch_size, jnp.float32)
    alive = jnp.ones(batch_size, jnp.float32)
    terminated = jnp.zeros(batch_size, bool)
    next_obs = first.next_obs
    for k in range(n):  # n is static and small
        step = jax.tree.map(lambda x: x[(rows + k) % buffer.rows, envs], data)
        alive = jnp.where(offset + k < buffer.rows_filled, alive, 0.0)  # row k is stored
        live = alive > 0
        total = total + alive * discount * step.reward
        next_obs = jnp.where(live.reshape((-1,) + (1,) * (next_obs.ndim - 1)), step.next_obs, next_obs)
        terminated = jnp.where(live, step.terminated, terminated)
        discount = jnp.where(live, discount * gamma, discount)
        alive = alive * (1.0 - (step.terminated | step.truncated).astype(jnp.float32))
    out = Transition(obs=first.obs, action=first.action, reward=total, terminated=terminated,
                     truncated=jnp.zeros(batch_size, bool), next_obs=next_obs)
    return _normalized(out, normalize_obs), discount
