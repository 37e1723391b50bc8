"""Datasets for the offline-RL tests, made with the D4RL recipe in the test session itself.

    pendulum("medium-replay")   SAC on Pendulum-v1: the medium policy and its replay buffer
    cartpole("medium")          PPO on CartPole-v1 stopped at about a third of the expert's return

Each is made once per test session: the first xdist worker that asks writes it (Minari format,
`purerl.datasets.save`) under `$PURERL_CACHE_DIR/offline-data` while holding a file lock; the
others, and later tests, load it (`purerl.datasets.load`, content hash checked).
"""

from __future__ import annotations

import fcntl
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

from purerl import datasets, envs
from purerl.algos import ppo, sac
from purerl.config import to_dict

# Pendulum: SAC (purerl's preset) for 20k steps is the expert; its state after MEDIUM_STEPS
# steps is the medium policy and its buffer then the medium-replay data.
PENDULUM_EXPERT_STEPS = 20_000
PENDULUM_MEDIUM_STEPS = 2_500
# CartPole: PPO (default config, 200 updates of 512 steps) is the expert; after CARTPOLE_MEDIUM_UPDATES
# updates it is the medium policy.
CARTPOLE_EXPERT_UPDATES = 200
CARTPOLE_MEDIUM_UPDATES = 14
DATASET_STEPS = 20_000  # transitions of random / medium / expert data
REFERENCE_EPISODES = 50


def _cache_dir() -> str:
    path = os.path.join(os.environ.get("PURERL_CACHE_DIR", "/tmp/purerl-test-cache"), "offline-data")
    os.makedirs(path, exist_ok=True)
    return path


def _cached(name: str, make) -> dict[str, datasets.Dataset]:
    """`make() -> {kind: Dataset}` saved under the cache directory once, then loaded."""
    root = os.path.join(_cache_dir(), name)
    with open(root + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(os.path.join(root, "done")):
            os.makedirs(root, exist_ok=True)
            for kind, dataset in make().items():
                if not os.path.exists(os.path.join(root, kind)):
                    datasets.save(dataset, os.path.join(root, kind))
            open(os.path.join(root, "done"), "w").close()
        return {kind: datasets.load(os.path.join(root, kind)) for kind in sorted(os.listdir(root))
                if os.path.isdir(os.path.join(root, kind)) and not kind.startswith(".")}


def _collect(env, policy, key, steps, info) -> datasets.Dataset:
    data = jax.jit(lambda k: datasets.rollout(env, policy, k, 16, -(-steps // 16)))(key)
    return datasets.Dataset(datasets.to_host(jax.tree.map(lambda x: np.asarray(x)[:steps], data)), info)


def _make(env_name, module, config, state_medium, state_expert, params, replay=None) -> dict:
    env = envs.make(env_name)
    keys = jax.random.split(jax.random.PRNGKey(7), 6)
    act = lambda state, deterministic: functools.partial(  # noqa: E731
        module.act, config, params(state), deterministic=deterministic)
    random_return = datasets.mean_return(env, datasets.random_policy(env), keys[0], REFERENCE_EPISODES)
    expert_return = datasets.mean_return(env, act(state_expert, True), keys[1], REFERENCE_EPISODES)
    medium_return = datasets.mean_return(env, act(state_medium, True), keys[2], REFERENCE_EPISODES)
    info = dict(env=env_name, random_return=random_return, expert_return=expert_return,
                medium_return=medium_return, algorithm=module.__name__.rsplit(".", 1)[-1],
                config=to_dict(config), seed=0)
    out = {
        "random": _collect(env, datasets.random_policy(env), keys[3], DATASET_STEPS, {**info, "kind": "random"}),
        "medium": _collect(env, act(state_medium, False), keys[4], DATASET_STEPS, {**info, "kind": "medium"}),
        "expert": _collect(env, act(state_expert, False), keys[5], DATASET_STEPS, {**info, "kind": "expert"}),
    }
    out["medium-expert"] = datasets.concatenate(out["medium"], out["expert"], kind="medium-expert")
    if replay is not None:
        out["medium-replay"] = datasets.Dataset(datasets.to_host(replay), {**info, "kind": "medium-replay"})
    return out


def _make_pendulum() -> dict:
    config = sac.Config.for_env("Pendulum-v1", total_timesteps=PENDULUM_EXPERT_STEPS)
    state = jax.jit(functools.partial(sac.init, config))(jax.random.PRNGKey(0))

    @functools.partial(jax.jit, static_argnums=1)
    def updates(state, n):
        return jax.lax.scan(lambda s, _: (sac.update(config, s)[0], None), state, None, length=n)[0]

    medium = updates(state, PENDULUM_MEDIUM_STEPS // config.env_steps_per_update)
    expert = updates(medium, (PENDULUM_EXPERT_STEPS - PENDULUM_MEDIUM_STEPS) // config.env_steps_per_update)
    replay = datasets.replay_transitions(jax.tree.map(np.asarray, medium))
    return _make("Pendulum-v1", sac, config, medium, expert, lambda s: s.agent.actor_params, replay)


def _make_cartpole() -> dict:
    config = ppo.Config(env="CartPole-v1", total_timesteps=CARTPOLE_EXPERT_UPDATES * ppo.Config().env_steps_per_update)
    state = jax.jit(functools.partial(ppo.init, config))(jax.random.PRNGKey(0))

    @functools.partial(jax.jit, static_argnums=1)
    def updates(state, n):
        return jax.lax.scan(lambda s, _: (ppo.update(config, s)[0], None), state, None, length=n)[0]

    medium = updates(state, CARTPOLE_MEDIUM_UPDATES)
    expert = updates(medium, CARTPOLE_EXPERT_UPDATES - CARTPOLE_MEDIUM_UPDATES)
    return _make("CartPole-v1", ppo, config, medium, expert, lambda s: s.params)


def pendulum(kind: str) -> datasets.Dataset:
    return _cached("pendulum-sac", _make_pendulum)[kind]


def cartpole(kind: str) -> datasets.Dataset:
    return _cached("cartpole-ppo", _make_cartpole)[kind]
