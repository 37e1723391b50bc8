"""Algorithms, one file each. `get(name)` imports one by its registry name.

Every module provides `Config` (frozen, validated), `TrainState`, `init(config, key)`,
`update(config, state) -> (state, metrics)`, `evaluate(config, state) -> returns`
and `train(config, key)`; `Config` has `num_updates`, `env_steps_per_update`,
`eval_every` and `eval_episodes`.

Offline algorithms (`OFFLINE = True`: bc, cql, iql, awr, edac, td3_bc) learn from a fixed
dataset (`purerl.datasets`), a `buffers.Transition` with leaves [N, ...] that is an argument of
the compiled program, broadcast across seeds and never copied per seed or stored in the state:

    init(config, key, dataset) -> TrainState      (may keep dataset statistics, e.g. obs mean/std)
    update(config, state, dataset) -> (state, metrics)   `steps_per_update` gradient steps
    evaluate(config, state) -> returns            episodes in `config.env`, inside the program
    train(config, key, dataset)                   under jax.jit(jax.vmap(train, in_axes=(None, 0, None)))

Their `Config` has `dataset` (a path the runner loads: `purerl train iql --dataset PATH`),
`num_gradient_steps`, `steps_per_update`, and `env_steps_per_update = steps_per_update`: for
an offline algorithm the runner's step axis counts gradient steps.

Imitation algorithms (`DEMONSTRATIONS = True`: dagger, gail, airl, apprenticeship) take expert
demonstrations (`purerl.experts.demonstrations`, `purerl collect --expert …`) the same way, as
the third argument of `init`, `update` and `train` and `--dataset PATH` for the runner, but they
act in the environment: their step axis counts environment steps, and the runner reports the
normalized score 100·(R − R_random)/(R_expert − R_random) (the fraction of the expert's return).
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
    "bc": "purerl.algos.bc",
    "cql": "purerl.algos.cql",
    "iql": "purerl.algos.iql",
    "awr": "purerl.algos.awr",
    "edac": "purerl.algos.edac",
    "td3_bc": "purerl.algos.td3_bc",
    "dagger": "purerl.algos.dagger",
    "gail": "purerl.algos.gail",
    "airl": "purerl.algos.airl",
    "apprenticeship": "purerl.algos.apprenticeship",
    "diayn": "purerl.algos.diayn",
    "pcgrad": "purerl.algos.pcgrad",
    "ase": "purerl.algos.ase",
    "bandits": "purerl.algos.bandits",
    "alphazero": "purerl.algos.alphazero",
    "muzero": "purerl.algos.muzero",
    "gps": "purerl.algos.gps",
}


def get(name: str):
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}; available: {', '.join(sorted(ALGORITHMS))}")
    return importlib.import_module(ALGORITHMS[name])
