"""TRPO: conjugate gradient against numpy.linalg.solve, the Fisher-vector product against an
explicit Fisher matrix from per-sample score vectors, the KL bound after an update, the
line search's rejection, the natural-gradient option, probe environments, config
validation, a float sweep, learning tests with 8 vmapped seeds, and a Brax smoke test."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from purerl.algos import trpo
from purerl.config import sweep_axes
from purerl.report import iqm


# ----------------------------------------------------------------------------- math
def test_conjugate_gradient_solves_an_spd_system():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    a = (q * np.linspace(1.0, 8.0, 6)) @ q.T  # SPD, eigenvalues 1 … 8
    b = rng.normal(size=6)
    x = trpo.conjugate_gradient(lambda v: jnp.asarray(a, jnp.float32) @ v, jnp.asarray(b, jnp.float32), 10)
    np.testing.assert_allclose(x, np.linalg.solve(a, b), atol=1e-5)


def test_conjugate_gradient_stays_put_after_an_exact_solve():
    a = jnp.diag(jnp.array([2.0, 4.0]))
    x = trpo.conjugate_gradient(lambda v: a @ v, jnp.array([2.0, 0.0]), 25)  # solved in one step
    np.testing.assert_allclose(x, [1.0, 0.0], atol=1e-7)
    assert np.all(np.isfinite(x))


def _tiny_policy(discrete):
    config = trpo.Config(env="CartPole-v1" if discrete else "Pendulum-v1", hidden_sizes=(4,), init_log_std=-0.5)
    policy, _ = trpo.make_networks(config, trpo.make_env(config.env, False))
    obs = jax.random.normal(jax.random.PRNGKey(1), (5, 4 if discrete else 3))
    params = policy.init(jax.random.PRNGKey(2), obs)
    # give the output layer some weight so that the policy is not uniform
    params = jax.tree.map(lambda p: p + 0.3 * jax.random.normal(jax.random.PRNGKey(3), p.shape), params)
    return policy, params, obs


def _fvp(policy, params, obs, v):
    flat, unravel = ravel_pytree(params)
    old_dist = policy.apply(params, obs)
    kl_fn = lambda f: trpo.mean_kl(unravel(f), policy, obs, old_dist)  # noqa: E731
    return trpo.fisher_vector_product(kl_fn, flat, v, damping=0.0), flat, unravel


def test_fisher_vector_product_matches_explicit_fisher_discrete():
    policy, params, obs = _tiny_policy(discrete=True)
    flat, unravel = ravel_pytree(params)
    v = jax.random.normal(jax.random.PRNGKey(4), flat.shape)
    fv, _, _ = _fvp(policy, params, obs, v)

    # F = E_s Σ_a π(a|s) ∇log π(a|s) ∇log π(a|s)ᵀ, the expectation over actions exact.
    def log_prob(f, s, a):
        return policy.apply(unravel(f), s[None]).log_prob(jnp.asarray([a]))[0]
    scores = jax.jit(jax.vmap(jax.vmap(jax.grad(log_prob), (None, None, 0)), (None, 0, None)))(
        flat, obs, jnp.arange(2))  # [state, action, P] score vectors
    probs = np.asarray(policy.apply(params, obs).probs, np.float64)
    scores = np.asarray(scores, np.float64)
    fisher = np.einsum("sa,sap,saq->pq", probs, scores, scores) / len(obs)
    np.testing.assert_allclose(fv, fisher @ np.asarray(v), rtol=1e-4, atol=1e-6)


def test_fisher_vector_product_matches_explicit_fisher_gaussian():
    policy, params, obs = _tiny_policy(discrete=False)
    flat, unravel = ravel_pytree(params)
    v = jax.random.normal(jax.random.PRNGKey(4), flat.shape)
    fv, _, _ = _fvp(policy, params, obs, v)

    # F = E_s E_a[∇log π ∇log πᵀ] by Monte Carlo: per-sample score vectors of many actions.
    samples = 20_000
    actions = policy.apply(params, obs).sample(seed=jax.random.PRNGKey(5), sample_shape=(samples,))  # [K, 5, 1]

    def score(a, s):
        return jax.grad(lambda f: policy.apply(unravel(f), s[None]).log_prob(a[None])[0])(flat)
    scores = jax.jit(jax.vmap(lambda a_k: jax.vmap(score)(a_k, obs)))(actions)  # [K, 5, P]
    scores = np.asarray(scores, np.float64).reshape(-1, flat.size)
    fisher = scores.T @ scores / len(scores)
    expected = fisher @ np.asarray(v, np.float64)
    cosine = np.dot(fv, expected) / (np.linalg.norm(fv) * np.linalg.norm(expected))
    assert cosine > 0.995, cosine
    np.testing.assert_allclose(np.linalg.norm(fv), np.linalg.norm(expected), rtol=0.03)


def _rollouts(config, seeds=(0,), updates=0):
    """States after `updates` TRPO updates (one per seed, stacked) and a fresh rollout from each."""
    def run(key):
        state = trpo.init(config, key)
        if updates:
            state, _ = jax.lax.scan(lambda s, _: trpo.update(config, s), state, None, length=updates)
        _, _, _, traj, advantages, _ = trpo.collect_rollout(config, state)
        flat = lambda x: x.reshape((-1,) + x.shape[2:])  # noqa: E731
        return state, flat(traj.obs), flat(traj.action), flat(traj.log_prob), flat(advantages)
    return jax.jit(jax.vmap(run))(jnp.stack([jax.random.PRNGKey(s) for s in seeds]))


def _first(tree):
    return jax.tree.map(lambda x: x[0], tree)


@pytest.mark.parametrize("env", ["CartPole-v1", "Pendulum-v1"])
def test_update_respects_the_kl_bound(env):
    config = trpo.Config(env=env, num_envs=4, num_steps=64, hidden_sizes=(32, 32), max_kl=0.02)
    policy, _ = trpo.make_networks(config, trpo.make_env(env, False))
    states, *batch = _rollouts(config, seeds=(0, 1, 2), updates=3)
    step = jax.jit(jax.vmap(lambda params, *b: trpo.policy_step(config, policy, params, *b)))
    new_params, info = step(states.policy_params, *batch)
    for i in range(3):
        obs = batch[0][i]
        # KL(π_old ‖ π_new) measured independently, in float64, from the two policies' outputs
        old = policy.apply(jax.tree.map(lambda x: x[i], states.policy_params), obs)
        new = policy.apply(jax.tree.map(lambda x: x[i], new_params), obs)
        if env == "CartPole-v1":
            p, q = np.asarray(old.probs, np.float64), np.asarray(new.probs, np.float64)
            kl = np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=-1))
        else:
            m0, s0 = np.asarray(old.loc, np.float64), np.asarray(old.stddev(), np.float64)
            m1, s1 = np.asarray(new.loc, np.float64), np.asarray(new.stddev(), np.float64)
            kl = np.mean(np.sum(np.log(s1 / s0) + (s0**2 + (m0 - m1) ** 2) / (2 * s1**2) - 0.5, axis=-1))
        assert info["line_search/accepted"][i] == 1.0
        assert 0.1 * config.max_kl < kl <= 1.05 * config.max_kl, kl
        np.testing.assert_allclose(info["kl"][i], kl, rtol=1e-3, atol=1e-6)
        assert info["surrogate_improvement"][i] > 0


def test_line_search_keeps_old_parameters_when_nothing_improves():
    config = trpo.Config(num_envs=4, num_steps=16, hidden_sizes=(8,))
    policy, _ = trpo.make_networks(config, trpo.make_env(config.env, False))
    state, obs, action, log_prob, advantages = _first(_rollouts(config))
    new_params, info = trpo.policy_step(config, policy, state.policy_params, obs, action, log_prob,
                                        jnp.zeros_like(advantages))  # no gradient: no step improves L
    assert info["line_search/accepted"] == 0.0
    for old, new in zip(jax.tree.leaves(state.policy_params), jax.tree.leaves(new_params)):
        np.testing.assert_array_equal(old, new)


def test_natural_gradient_step_is_alpha_times_the_damped_fisher_solve():
    config = trpo.Config(num_envs=2, num_steps=8, hidden_sizes=(4,), natural_gradient=True, npg_step_size=0.1,
                         cg_damping=0.1, cg_iterations=60)
    policy, _ = trpo.make_networks(config, trpo.make_env(config.env, False))
    state, obs, action, log_prob, advantages = _first(_rollouts(config))
    new_params, info = trpo.policy_step(config, policy, state.policy_params, obs, action, log_prob, advantages)
    flat, unravel = ravel_pytree(state.policy_params)
    g = jax.grad(lambda f: trpo.surrogate(unravel(f), policy, obs, action, log_prob, advantages))(flat)
    old_dist = policy.apply(state.policy_params, obs)
    kl_hessian = jax.jit(jax.hessian(lambda f: trpo.mean_kl(unravel(f), policy, obs, old_dist)))(flat)
    expected = 0.1 * np.linalg.solve(np.asarray(kl_hessian, np.float64) + 0.1 * np.eye(flat.size),
                                     np.asarray(g, np.float64))
    np.testing.assert_allclose(ravel_pytree(new_params)[0] - flat, expected, rtol=1e-3, atol=1e-5)


# ----------------------------------------------------------------------------- probes
def _train_probe(config, num_updates, seeds=2):
    def run(key):
        state = trpo.init(config, key)
        state, _ = jax.lax.scan(lambda s, _: trpo.update(config, s), state, None, length=num_updates)
        return state
    return jax.jit(jax.vmap(run))(jax.random.split(jax.random.PRNGKey(0), seeds))


def _values(config, states, obs):
    value_net = trpo.make_networks(config, trpo.make_env(config.env, False))[1]
    return jax.vmap(lambda p: value_net.apply(p, obs))(states.value_params)


def test_probe_delayed_value():
    # two steps 0 → 1 → terminal, reward only at the end: V(0) = γ, V(1) = 1
    config = trpo.Config(env="probe/delayed", num_envs=8, num_steps=8, hidden_sizes=(16,), gamma=0.9,
                         gae_lambda=1.0, critic_learning_rate=1e-2, critic_minibatches=2)
    states = _train_probe(config, 60)
    np.testing.assert_allclose(_values(config, states, jnp.array([[0.0], [1.0]])), [[0.9, 1.0]] * 2, atol=0.05)


def test_probe_time_limit_bootstraps_through_truncation():
    config = trpo.Config(env="probe/time-limit", num_envs=8, num_steps=8, hidden_sizes=(16,), gamma=0.9,
                         gae_lambda=0.9, critic_learning_rate=1e-2, critic_minibatches=2)
    states = _train_probe(config, 150)
    np.testing.assert_allclose(_values(config, states, jnp.zeros((1, 1))), 10.0, rtol=0.05)


@pytest.mark.parametrize("env", ["probe/observation-action", "probe/action-continuous"])
def test_probe_policy(env):
    config = trpo.Config(env=env, num_envs=8, num_steps=8, hidden_sizes=(16,), max_kl=0.05)
    states = _train_probe(config, 60)
    policy = trpo.make_networks(config, trpo.make_env(env, False))[0]
    obs = jnp.array([[-1.0], [1.0]])
    actions = jax.vmap(lambda p: trpo.act(config, p, obs, None))(states.policy_params)
    if env == "probe/observation-action":
        np.testing.assert_array_equal(actions, [[0, 1]] * 2)  # follows the observation's sign
        probs = jax.vmap(lambda p: policy.apply(p, obs).probs)(states.policy_params)
        assert np.all(probs[:, 0, 0] > 0.9) and np.all(probs[:, 1, 1] > 0.9), probs
    else:
        np.testing.assert_allclose(actions[:, 0, 0], 0.5, atol=0.1)  # argmax of 1 − (a − 0.5)²


# ----------------------------------------------------------------------------- config
@pytest.mark.parametrize("field, value", [
    ("env", "NoSuchEnv-v0"),
    ("total_timesteps", 0),
    ("num_envs", 0),
    ("num_steps", 0),
    ("cg_iterations", 0),
    ("line_search_steps", 0),
    ("critic_epochs", 0),
    ("critic_minibatches", 3),  # does not divide 8 × 128
    ("eval_every", 0),
    ("eval_episodes", 0),
    ("natural_gradient", "yes"),
    ("hidden_sizes", (64, -1)),
    ("activation", "gelu"),
    ("normalize_obs", 1),
    ("max_kl", 0.0),
    ("cg_damping", -0.1),
    ("backtrack_ratio", 1.0),
    ("npg_step_size", 0.0),
    ("critic_learning_rate", -1e-3),
    ("gamma", 1.01),
    ("gae_lambda", 2.0),
    ("init_log_std", -20.0),
])
def test_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        trpo.Config(**{field: value})


def test_config_rejects_budget_below_one_rollout():
    with pytest.raises(ValueError, match="total_timesteps"):
        trpo.Config(num_envs=8, num_steps=128, total_timesteps=1000)


def test_presets_build():
    for env in trpo.PRESETS:
        config = trpo.Config.for_env(env)
        assert config.env == env and config.num_updates > 0


def test_sweep_over_max_kl():
    config = trpo.Config(env="probe/action", num_envs=4, num_steps=8, hidden_sizes=(8,), total_timesteps=32 * 5,
                         eval_every=5, eval_episodes=2, max_kl=jnp.array([0.001, 0.1]))
    train = jax.jit(jax.vmap(trpo.train, in_axes=(sweep_axes(config, "max_kl"), None)))
    _, metrics, returns = train(config, jax.random.PRNGKey(0))
    assert returns.shape == (2, 1, 2)
    kl = np.asarray(metrics["kl"])
    assert kl.shape == (2, 5)
    assert np.all(kl[0] <= 0.001 * 1.05) and np.all(kl[1] <= 0.1 * 1.05)
    assert kl[1].max() > 0.001  # the wider trust region took larger steps


# ----------------------------------------------------------------------------- learning
def _learn(config, seed=0, seeds=8):
    keys = jax.random.split(jax.random.PRNGKey(seed), seeds)
    _, metrics, returns = jax.jit(jax.vmap(trpo.train, in_axes=(None, 0)))(config, keys)
    assert np.all(np.asarray(metrics["kl"]) <= 1.05 * np.asarray(config.max_kl))
    return np.asarray(returns)


@pytest.mark.learning
def test_learns_cartpole():
    """Preset: 8 envs × 128 steps per update, δ 0.01, λ 0.98 (the RL Zoo's), 200k steps per seed.
    IQM of the 8 final returns ≥ 475 and mean ≥ 450.

    TRPO solves CartPole-v1 on most seeds but now and then leaves one stuck near 200–350 at a
    given evaluation, so a plain mean of 8 seeds is no stable level: the old test (λ 0.95, 100k
    steps, mean ≥ 475) passed on its key set on one machine and failed (432.9, two seeds near
    230) on another. The IQM (rliable's statistic) asks that the typical seed solves it; the
    mean bounds what a stuck seed may cost. Measured (jax 0.9.2, AMD EPYC), 8-seed vmaps as
    here: key sets PRNGKey(0) (this test's), (1), (2): every seed at 500; PRNGKey(3): mean
    465.6, IQM 500 (one seed at 225). With 16 seeds: means 488.3, 500.0, 478.7.
    """
    returns = _learn(trpo.Config.for_env("CartPole-v1"))
    final = returns[:, -1].mean(axis=-1)
    assert iqm(final) >= 475.0 and final.mean() >= 450.0, final


@pytest.mark.learning
def test_learns_acrobot():
    # preset: observation normalization, δ 0.02; 100k steps per seed. Measured in one vmap over
    # all 24 keys (jax 0.9.2, AMD EPYC): mean −81.9, −87.4 and −84.5 for key sets PRNGKey(0)
    # (this test's), (1) and (2).
    returns = _learn(trpo.Config.for_env("Acrobot-v1"))
    assert returns[:, -1].mean() >= -100.0, returns[:, -1].mean(axis=-1)


@pytest.mark.learning
def test_learns_pendulum_continuous():
    # preset: γ 0.9, λ 0.9, observation normalization, δ 0.02, critic step size 3e-3, 200k steps
    # per seed. Measured in vmapped sweeps (jax 0.9.2, AMD EPYC), mean over 8 seeds: −180.4,
    # −183.1 and −172.1 for key sets PRNGKey(0) (this test's), (1) and (2) (−182.8 over the
    # benchmark's 16); random play ≈ −1200, the RL Zoo's TRPO with gSDE exploration ≈ −170. A
    # seed or two per 16 ends near −350 (an evaluation episode stuck at the bottom), so the
    # level keeps a margin: −250 (it was −300 with λ 0.95, −400 with the critic step size 1e-3).
    returns = _learn(trpo.Config.for_env("Pendulum-v1"))
    assert returns[:, -1].mean() >= -250.0, returns[:, -1].mean(axis=-1)


# ----------------------------------------------------------------------------- brax
@pytest.mark.brax
def test_brax_smoke():
    config = trpo.Config(env="brax/inverted_pendulum", total_timesteps=2 * 4 * 2, num_envs=2, num_steps=4,
                         critic_minibatches=2, critic_epochs=2, hidden_sizes=(16,), eval_every=100, eval_episodes=1)
    state, metrics, returns = jax.jit(jax.vmap(trpo.train, in_axes=(None, 0)))(
        config, jax.random.split(jax.random.PRNGKey(0), 2))
    assert returns.shape == (2, 1, 1) and np.all(np.isfinite(returns))
    assert metrics["kl"].shape == (2, config.num_updates)
    for name in ("kl", "loss/value", "loss/entropy", "surrogate_improvement", "natural_grad_sFs"):
        assert np.all(np.isfinite(metrics[name])), name
    assert np.all(metrics["kl"] <= 1.05 * config.max_kl)
    assert state.obs.shape == (2, 2, 4)  # inverted pendulum: 4-dimensional observations
