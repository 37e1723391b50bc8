"""Datasets for the offline-RL tests, made with the D4RL recipe in the test session itself.

    pendulum("medium-replay")   SAC on Pendulum-v1: the medium policy and its replay buffer
    cartpole("medium")          PPO on CartPole-v1 stopped at about a third of the expert's return
    synthetic(env)              a few random transitions with env's shapes, for the math tests

Each is made once per test session: the first xdist worker that asks writes it (Minari format,
`purerl.datasets.save`) under `$PURERL_CACHE_DIR/offline-data` while holding a file lock; the
others, and later tests, load it (`purerl.datasets.load`, content hash checked).
"""

from __future__ import annotations

import fcntl
import os

import jax
import jax.numpy as jnp
import numpy as np

from purerl import buffers, datasets
from purerl.algos import ppo, sac

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


def _make_pendulum() -> dict:
    config = sac.Config.for_env("Pendulum-v1", total_timesteps=PENDULUM_EXPERT_STEPS)
    return datasets.from_training(sac, config, PENDULUM_MEDIUM_STEPS // config.env_steps_per_update, DATASET_STEPS,
                                  jax.random.PRNGKey(0), reference_episodes=REFERENCE_EPISODES)


def _make_cartpole() -> dict:
    config = ppo.Config(env="CartPole-v1", total_timesteps=CARTPOLE_EXPERT_UPDATES * ppo.Config().env_steps_per_update)
    return datasets.from_training(ppo, config, CARTPOLE_MEDIUM_UPDATES, DATASET_STEPS, jax.random.PRNGKey(0),
                                  reference_episodes=REFERENCE_EPISODES)


def pendulum(kind: str) -> datasets.Dataset:
    return _cached("pendulum-sac", _make_pendulum)[kind]


def cartpole(kind: str) -> datasets.Dataset:
    return _cached("cartpole-ppo", _make_cartpole)[kind]


def synthetic(env: str, n: int = 64, seed: int = 0) -> buffers.Transition:
    """`n` random transitions with `env`'s shapes (Pendulum-v1: obs 3, action 1; CartPole-v1:
    obs 4, actions 0/1), a terminal and a truncation among them."""
    rng = np.random.default_rng(seed)
    obs_dim = 3 if env == "Pendulum-v1" else 4
    obs = rng.normal(size=(n, obs_dim)).astype(np.float32) * np.arange(1, obs_dim + 1, dtype=np.float32) + 2.0
    if env == "Pendulum-v1":
        action = np.clip(rng.normal(size=(n, 1)), -1.0, 1.0).astype(np.float32)
    else:
        action = rng.integers(0, 2, size=(n,)).astype(np.int32)
    terminated, truncated = np.zeros(n, bool), np.zeros(n, bool)
    terminated[n // 2], truncated[-1] = True, True
    return buffers.Transition(obs=jnp.asarray(obs), action=jnp.asarray(action),
                              reward=jnp.asarray(rng.normal(size=n), jnp.float32), terminated=jnp.asarray(terminated),
                              truncated=jnp.asarray(truncated), next_obs=jnp.asarray(np.roll(obs, -1, 0)))
