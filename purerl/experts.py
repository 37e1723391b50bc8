"""Experts for imitation learning: pure functions `act(obs, key) -> action` (batched, raw
observations in, actions in the agent's space out), callable inside a compiled program.

    scripted             controllers that need no training (`SCRIPTED`):
        CartPole-v1      linear state feedback: push right iff k·(x, ẋ, θ, θ̇) > 0
        Pendulum-v1      energy-shaping swing-up, then LQR balance near upright
    from_run(run_dir)    a trained purerl agent's deterministic policy (its latest checkpoint)

`get(name, env)` returns the expert by name: "scripted", or a name given to `register`
(e.g. `register("ppo-cartpole", from_run("runs/ppo"))`), so that an algorithm's `Config` can
name its expert with a static string. `demonstrations(env, expert, episodes, key)` records whole
expert episodes as a `purerl.datasets.Dataset` (kind "expert", the offline format), which is
what BC, DAgger, GAIL and AIRL learn from; `purerl collect --kind expert --expert scripted
--env Pendulum-v1 --episodes 4 --out PATH` saves one.

Pendulum (gymnax, θ = 0 upright): θ̈ = (3g/2l) sin θ + (3/ml²) u with g = 10, m = l = 1, torque
u = 2a ∈ [−2, 2], semi-implicit Euler with dt = 0.05. With ω₀² = 15 and b = 3,

    (1) E = ½ θ̇² + ω₀² (cos θ − 1)            (0 upright at rest, −30 hanging at rest)
    (2) Ė = b u θ̇  →  swing-up: u = 2 · sign(θ̇ · (0 − E))   (bang-bang energy pumping)
    (3) near upright (cos θ > cos 0.6 rad and |E| small enough to be caught): u = −K (θ, θ̇),
        K the discrete-time LQR gain of the linearized step for the task's cost θ² + 0.1 θ̇² + 0.001 u²
        (`pendulum_lqr_gain`, checked against scipy's Riccati solution in tests/test_experts.py).
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from purerl import envs

Expert = Callable[[jax.Array, jax.Array], jax.Array]

# ----------------------------------------------------------------------------- scripted experts
# CartPole-v1 observation (x, ẋ, θ, θ̇); action 1 pushes right. Chosen by a small grid search on
# 256 episodes (every one reached the 500-step limit; see tests/test_experts.py).
CARTPOLE_GAINS = (0.1, 0.5, 10.0, 2.0)


def cartpole_linear(obs: jax.Array, key: jax.Array = None) -> jax.Array:
    """CartPole-v1: 1 (push right) where k·obs > 0, else 0, with k = `CARTPOLE_GAINS`."""
    return (obs @ jnp.asarray(CARTPOLE_GAINS, jnp.float32) > 0).astype(jnp.int32)


PENDULUM_DT, PENDULUM_OMEGA2, PENDULUM_B, PENDULUM_MAX_TORQUE = 0.05, 15.0, 3.0, 2.0


def pendulum_linearization() -> tuple[np.ndarray, np.ndarray]:
    """(A, B) of gymnax Pendulum's step linearized at upright: θ̇′ = θ̇ + (ω₀²θ + b u)dt, θ′ = θ + θ̇′dt."""
    dt, w2, b = PENDULUM_DT, PENDULUM_OMEGA2, PENDULUM_B
    a = np.array([[1.0 + w2 * dt * dt, dt], [w2 * dt, 1.0]])
    bb = np.array([[b * dt * dt], [b * dt]])
    return a, bb


@functools.lru_cache(maxsize=None)
def pendulum_lqr_gain(q=(1.0, 0.1), r=0.001, iterations=2000) -> tuple[float, float]:
    """Eq. (3)'s K (u = −K x): the discrete Riccati recursion iterated to its fixed point."""
    a, b = pendulum_linearization()
    qm, p = np.diag(q), np.diag(q)
    for _ in range(iterations):
        k = np.linalg.solve(r + b.T @ p @ b, b.T @ p @ a)
        p = qm + a.T @ p @ (a - b @ k)
    return tuple(float(v) for v in k[0])


def pendulum_swingup(obs: jax.Array, key: jax.Array = None) -> jax.Array:
    """Pendulum-v1: eqs. (1)–(3); returns the action in [−1, 1] (the agent's space, torque / 2)."""
    cos, sin, theta_dot = obs[..., 0], obs[..., 1], obs[..., 2]
    theta = jnp.arctan2(sin, cos)  # in (−π, π], 0 upright
    energy = 0.5 * theta_dot**2 + PENDULUM_OMEGA2 * (cos - 1.0)  # eq. (1)
    pump = PENDULUM_MAX_TORQUE * jnp.where(theta_dot * (0.0 - energy) >= 0, 1.0, -1.0)  # eq. (2)
    k_theta, k_theta_dot = pendulum_lqr_gain()
    balance = -(k_theta * theta + k_theta_dot * theta_dot)  # eq. (3)
    near = cos > np.cos(0.6)
    torque = jnp.where(near, balance, pump)
    return jnp.clip(torque / PENDULUM_MAX_TORQUE, -1.0, 1.0)[..., None]


SCRIPTED: dict[str, Expert] = {"CartPole-v1": cartpole_linear, "Pendulum-v1": pendulum_swingup}

# ----------------------------------------------------------------------------- by name
_REGISTERED: dict[str, Expert] = {}


def register(name: str, expert: Expert) -> None:
    """Make `expert` available as `get(name, env)` (and so to a Config's `expert` field)."""
    if name == "scripted":
        raise ValueError("expert name 'scripted' is reserved for the scripted controllers")
    _REGISTERED[name] = expert


def names() -> list[str]:
    return ["scripted", *sorted(_REGISTERED)]


def check(name: str, env: str, field: str = "Config.expert") -> None:
    """Raise a ValueError naming `field` when `name` is no expert for `env`."""
    if name == "scripted":
        if env not in SCRIPTED:
            raise ValueError(f"{field}='scripted' is invalid for env={env!r}: scripted experts exist for "
                             f"{', '.join(SCRIPTED)}; register a trained one with purerl.experts.register")
    elif name not in _REGISTERED:
        raise ValueError(f"{field}={name!r} is invalid: must be one of {names()} "
                         "(purerl.experts.register adds more)")


def get(name: str, env: str) -> Expert:
    check(name, env)
    return SCRIPTED[env] if name == "scripted" else _REGISTERED[name]


def from_run(run_dir: str, seed_index: int = 0, deterministic: bool = True) -> Expert:
    """The policy of seed `seed_index` of the purerl run in `run_dir` (latest checkpoint), acting
    on raw observations (normalized with the run's frozen statistics if it normalized them)."""
    from purerl import datasets

    module, config, state = datasets.load_run(run_dir, seed_index)
    params, stats = jax.tree.map(jnp.asarray, datasets.acting(module, config, state))
    env = envs.make(config.env, normalize_obs=stats is not None)

    def act(obs, key):
        return module.act(config, params, env.normalize(stats, obs), key, deterministic=deterministic)

    act.env = config.env
    return act


# ----------------------------------------------------------------------------- demonstrations
def episodes_rollout(env: envs.Environment, expert: Expert, key: jax.Array, episodes: int):
    """The first episode of each of `episodes` environments: transitions [episodes, T, ...] with
    raw observations, and a mask [episodes, T] of the steps inside that episode (T = the time limit)."""
    from purerl import buffers

    reset_key, run_key = jax.random.split(key)
    state, obs = env.reset(reset_key, episodes)

    def step(carry, step_key):
        state, obs, alive = carry
        act_key, env_key = jax.random.split(step_key)
        raw = state.raw_obs
        action = expert(raw, act_key)
        state, ts = env.step(env_key, state, action, update_stats=False)
        out = buffers.Transition(raw, action, ts.reward, ts.terminated, ts.truncated, ts.raw_final_obs)
        return (state, ts.obs, alive & ~ts.done), (out, alive)

    carry = (state, obs, jnp.ones(episodes, bool))
    _, (data, mask) = jax.lax.scan(step, carry, jax.random.split(run_key, env.max_episode_steps))
    return jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), data), mask.T


def demonstrations(env_name: str, expert: Expert | str = "scripted", episodes: int = 4, seed: int = 0,
                   reference_episodes: int = 100):
    """`episodes` whole expert episodes of `env_name` as a `datasets.Dataset` (kind "expert"),
    episode after episode; R_expert is the expert's mean return over `reference_episodes` other
    episodes and R_random that of uniformly random actions (the normalized score's ends)."""
    from purerl import datasets

    if not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes={episodes!r} is invalid: must be an integer ≥ 1")
    name = expert if isinstance(expert, str) else getattr(expert, "__name__", "custom")
    act = get(expert, env_name) if isinstance(expert, str) else expert
    env = envs.make(env_name)
    demo_key, ref_key, rand_key = jax.random.split(jax.random.PRNGKey(seed), 3)
    data, mask = jax.jit(lambda k: episodes_rollout(env, act, k, episodes))(demo_key)
    mask = np.asarray(mask).reshape(-1)
    transitions = jax.tree.map(lambda x: np.asarray(x).reshape((-1,) + x.shape[2:])[mask], data)
    expert_return = datasets.mean_return(env, act, ref_key, reference_episodes)
    random_return = datasets.mean_return(env, datasets.random_policy(env), rand_key, reference_episodes)
    from purerl.run import package_versions

    info = {"env": env_name, "kind": "expert", "expert": name, "episodes": episodes, "seed": seed,
            "steps": int(mask.sum()), "random_return": random_return, "expert_return": expert_return,
            "versions": package_versions()}
    return datasets.Dataset(datasets.to_host(transitions), info)
