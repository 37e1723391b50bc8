"""Returns and advantages, as small pure functions over time-major arrays [T, ...].

Conventions (those of `purerl.envs.TimeStep`, documented in `purerl/envs/core.py`):
`terminated` is 1 only on a true terminal (no bootstrap); an episode cut by a time
limit is `truncated` and bootstraps from the value of its true final observation. `next_values[t]` is V(s′_t), the value of the
true next state of transition t (for a truncated step, of its final observation).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def gae(rewards, values, next_values, terminated, truncated, gamma, lam):
    """Generalized advantage estimation (Schulman et al. 2016, eq. 16).

        δ_t = r_t + γ (1 − term_t) V(s′_t) − V(s_t)
        A_t = δ_t + γ λ (1 − done_t) A_{t+1},      done_t = term_t ∨ trunc_t

    The trace is cut at every episode end; only a terminal removes the bootstrap.
    Returns (advantages, value targets A_t + V(s_t)), both shaped like `rewards`.
    """
    terminated = terminated.astype(jnp.float32)
    done = jnp.maximum(terminated, truncated.astype(jnp.float32))
    deltas = rewards + gamma * (1.0 - terminated) * next_values - values

    def backward(next_advantage, inputs):
        delta, done_t = inputs
        advantage = delta + gamma * lam * (1.0 - done_t) * next_advantage
        return advantage, advantage

    _, advantages = jax.lax.scan(backward, jnp.zeros_like(deltas[0]), (deltas, done), reverse=True)
    return advantages, advantages + values


def n_step_returns(rewards, next_values, terminated, truncated, gamma, bootstrap_value):
    """Bootstrapped discounted returns over a rollout (the A2C "n-step" target).

        G_t = r_t + γ (1 − term_t) · [ done_t ? V(s′_t) : G_{t+1} ],   G_T = bootstrap_value

    `next_values` supplies V(s′_t) where an episode ended by truncation;
    `bootstrap_value` is V of the observation after the last step.
    """
    terminated = terminated.astype(jnp.float32)
    done = jnp.maximum(terminated, truncated.astype(jnp.float32))

    def backward(next_return, inputs):
        reward, term, done_t, next_value = inputs
        continuation = done_t * next_value + (1.0 - done_t) * next_return
        g = reward + gamma * (1.0 - term) * continuation
        return g, g

    _, returns = jax.lax.scan(backward, bootstrap_value, (rewards, terminated, done, next_values), reverse=True)
    return returns


def reward_to_go(rewards, mask, gamma):
    """Monte-Carlo return-to-go of whole episodes: R̄_t = Σ_{t' ≥ t} γ^{t'−t} r_{t'}.

    `rewards`, `mask`: [T, ...]; `mask` is 1 on the episode's valid steps (padding
    after the episode's end is 0 and contributes nothing).
    """
    rewards = rewards * mask

    def backward(next_return, reward):
        g = reward + gamma * next_return
        return g, g

    _, returns = jax.lax.scan(backward, jnp.zeros_like(rewards[0]), rewards, reverse=True)
    return returns * mask
