"""Algorithms, one file each. `get(name)` imports one by its registry name.

Every module provides `Config` (frozen, validated), `TrainState`, `init(config, key)`,
`update(config, state) -> (state, metrics)`, `evaluate(config, state) -> returns`
and `train(config, key)`; `Config` has `num_updates`, `env_steps_per_update`,
`eval_every` and `eval_episodes`.
"""

from __future__ import annotations

import importlib

ALGORITHMS = {
    "ppo": "purerl.algos.ppo",
    "reinforce": "purerl.algos.reinforce",
    "actor_critic": "purerl.algos.actor_critic",
    "dqn": "purerl.algos.dqn",
    "sac": "purerl.algos.sac",
    "a2c": "purerl.algos.a2c",
    "trpo": "purerl.algos.trpo",
    "ddpg": "purerl.algos.ddpg",
    "td3": "purerl.algos.td3",
}


def get(name: str):
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}; available: {', '.join(sorted(ALGORITHMS))}")
    return importlib.import_module(ALGORITHMS[name])
