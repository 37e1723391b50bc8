"""Probe environments: tiny MDPs whose exact values are known, for testing that a
value function, a policy and the terminated/truncated plumbing are right.

After Andy Jones, "Debugging RL, without the agony" (2021). γ is the agent's discount.

| name                     | obs          | reward                          | ends            | what must be learned                |
|--------------------------|--------------|---------------------------------|-----------------|-------------------------------------|
| probe/constant           | 0            | 1                               | terminal, 1 step| V(0) = 1                            |
| probe/observation        | ±1 at random | = obs                           | terminal, 1 step| V(s) = s                            |
| probe/delayed            | 0 then 1     | 0 then 1                        | terminal, 2 steps| V(0) = γ, V(1) = 1                 |
| probe/action             | 0            | 1 if a = 1 else 0               | terminal, 1 step| π(1) → 1, V → 1                     |
| probe/action-continuous  | 0            | 1 − (a − 0.5)² (a ∈ [−1, 1])    | terminal, 1 step| mean action → 0.5                   |
| probe/observation-action | ±1 at random | 1 if a matches the obs sign     | terminal, 1 step| π(a|s) follows s, V → 1             |
| probe/time-limit         | 0            | 1                               | truncated at 5 steps, never terminal | V(0) = 1/(1 − γ) (bootstraps) |
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from purerl.envs.names import PROBES
from purerl.envs.spaces import Box, Discrete


@struct.dataclass
class ProbeState:
    obs: jax.Array  # [1]
    time: jax.Array


class ProbeBackend:
    def __init__(self, kind: str):
        self.kind = kind
        self.name = f"probe/{kind}"
        self.observation_space = Box.make(-1.0, 1.0, (1,))
        self.action_space = Box.make(-1.0, 1.0, (1,)) if kind == "action-continuous" else Discrete(2)
        self.max_episode_steps = {"delayed": 2, "time-limit": 5}.get(kind, 1)

    def _first_obs(self, key):
        if self.kind in ("observation", "observation-action"):
            return jnp.where(jax.random.bernoulli(key), 1.0, -1.0)[None]
        return jnp.zeros((1,), jnp.float32)

    def reset(self, key):
        obs = self._first_obs(key)
        return ProbeState(obs=obs, time=jnp.zeros((), jnp.int32)), obs

    def step(self, key, state: ProbeState, action):
        kind, s = self.kind, state.obs[0]
        time = state.time + 1
        if kind in ("constant", "time-limit"):
            reward = jnp.asarray(1.0)
        elif kind == "observation":
            reward = s
        elif kind == "delayed":
            reward = jnp.where(time == 2, 1.0, 0.0)
        elif kind == "action":
            reward = jnp.where(action == 1, 1.0, 0.0)
        elif kind == "action-continuous":
            reward = 1.0 - (jnp.clip(action[0], -1.0, 1.0) - 0.5) ** 2
        else:  # observation-action
            reward = jnp.where((action == 1) == (s > 0), 1.0, 0.0)
        if kind == "time-limit":
            terminated, truncated = jnp.asarray(False), time >= self.max_episode_steps
        else:
            terminated, truncated = time >= self.max_episode_steps, jnp.asarray(False)
        done = terminated | truncated
        final_obs = jnp.ones((1,), jnp.float32) if kind == "delayed" else state.obs
        reset_state, reset_obs = self.reset(key)
        next_state = ProbeState(obs=final_obs, time=time)
        new = jax.tree.map(lambda r, n: jnp.where(done, r, n), reset_state, next_state)
        return new, new.obs, reward.astype(jnp.float32), terminated, truncated, final_obs


