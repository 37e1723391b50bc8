"""Evaluation episodes and the train-with-evaluation loop, inside the compiled program.

`evaluate` runs `num_episodes` fresh episodes in parallel for the environment's
full time limit and returns the undiscounted return of each (the first episode in
each slot; later auto-reset episodes are masked out).

`train_loop` is `lax.scan` of an algorithm's `update`, with an evaluation after
every `eval_every` updates and once more at the end: a scan of blocks, each a scan
of updates then one evaluation, so the evaluation runs only at its interval with no
branch. The runner calls `run_block` directly, one block per host step.

Under `vmap` over seeds every counter in the train state is batched, and a `lax.cond`
on one becomes a `select` that runs both branches. So `run_block` hands an update that
takes an `update_index` keyword the update's number, `block_index · block_size + i`,
which is never batched: the algorithm's learning gates on it are real branches.
"""

from __future__ import annotations

import inspect
from typing import Callable

import jax
import jax.numpy as jnp

from purerl.envs import Environment, RunningMeanStd


def evaluate(env: Environment, act: Callable, key: jax.Array, num_episodes: int,
             obs_stats: RunningMeanStd | None = None) -> jax.Array:
    """Returns of `num_episodes` episodes of `act(obs, key) -> action` (batched obs).

    Pass the training `obs_stats` for an agent trained on normalized observations;
    they are used frozen.
    """
    reset_key, run_key = jax.random.split(key)
    state, obs = env.reset(reset_key, num_episodes, obs_stats)

    def step(carry, step_key):
        state, obs, total, alive = carry
        act_key, env_key = jax.random.split(step_key)
        action = act(obs, act_key)
        state, ts = env.step(env_key, state, action, update_stats=False)
        total = total + ts.reward * alive
        alive = alive * (1.0 - ts.done.astype(jnp.float32))
        return (state, ts.obs, total, alive), None

    init = (state, obs, jnp.zeros(num_episodes), jnp.ones(num_episodes))
    (_, _, total, _), _ = jax.lax.scan(step, init, jax.random.split(run_key, env.max_episode_steps))
    return total


def run_block(update: Callable, evaluate_fn: Callable, state, block_index, block_size: int,
              total_updates: int):
    """Updates number `block_index·block_size …` (those below `total_updates`; the rest of
    a final, partial block are skipped), then `evaluate_fn(state) -> returns`.

    Returns (state, metrics stacked over the block (NaN where skipped), returns).
    `block_index` must not be batched under `vmap`: the skip is then a real branch, and so
    are the gates of an `update(state, update_index=None)`, which gets the update's number.
    """
    takes_index = accepts_update_index(update)

    def step(s, i):
        index = block_index * block_size + i
        traced = {}  # the update's metrics, as the `run` branch traced them

        def run(s):
            out = update(s, update_index=index) if takes_index else update(s)
            traced["metrics"] = out[1]
            return out

        def skip(s):  # the same metrics, NaN; `cond` traces `run` first, so `update` is traced once
            metrics = traced["metrics"] if "metrics" in traced else jax.eval_shape(run, s)[1]
            return s, jax.tree.map(lambda m: jnp.full(m.shape, jnp.nan, m.dtype), metrics)

        if total_updates % block_size == 0:  # every block is full: no branch needed
            return run(s)
        return jax.lax.cond(index < total_updates, run, skip, s)

    state, metrics = jax.lax.scan(step, state, jnp.arange(block_size))
    return state, metrics, evaluate_fn(state)


def accepts_update_index(update: Callable) -> bool:
    """Whether `update` (e.g. `functools.partial(module.update, config)`) takes `update_index`."""
    try:
        return "update_index" in inspect.signature(update).parameters
    except (TypeError, ValueError):
        return False


def num_blocks(num_updates: int, eval_every: int) -> int:
    """Evaluation blocks in a run: one every `eval_every` updates, the last one at the end."""
    return -(-num_updates // eval_every)


def train_loop(update: Callable, evaluate_fn: Callable, state, num_updates: int, eval_every: int):
    """Scan `update` `num_updates` times, evaluating every `eval_every` updates and at the end.

    Returns (state, metrics [num_updates, ...], eval_returns [num_evals, episodes]).
    """
    def block(s, index):
        s, metrics, returns = run_block(update, evaluate_fn, s, index, eval_every, num_updates)
        return s, (metrics, returns)

    state, (metrics, returns) = jax.lax.scan(block, state, jnp.arange(num_blocks(num_updates, eval_every)))
    metrics = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:])[:num_updates], metrics)
    return state, metrics, returns
