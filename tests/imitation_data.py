"""Training from scripted-expert demonstrations, shared by the GAIL and AIRL learning tests.

    learn_from_expert(module, env, key)   the module's preset on `env`, 4 episodes, 4 seeds
"""

from __future__ import annotations

import jax
import numpy as np

from purerl import experts


def learn_from_expert(module, env: str, key: int, episodes: int = 4, seeds: int = 4):
    """`module`'s preset for `env` (a module whose `train(config, key, demos)` takes demonstrations)
    trained on `episodes` scripted-expert episodes, `seeds` seeds of split(PRNGKey(key)) in one vmap.
    Returns (config, final states, final returns, fractions of the expert's return
    (R − R_random)/(R_expert − R_random)), the last two one per seed."""
    demos = experts.demonstrations(env, "scripted", episodes=episodes, seed=0)
    config = module.Config.for_env(env)
    keys = jax.random.split(jax.random.PRNGKey(key), seeds)
    state, _, returns = jax.jit(jax.vmap(module.train, in_axes=(None, 0, None)))(config, keys, demos.transitions)
    final = np.asarray(returns[:, -1]).mean(-1)
    expert, random = demos.info["expert_return"], demos.info["random_return"]
    return config, state, final, (final - random) / (expert - random)
