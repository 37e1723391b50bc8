"""BC: the tanh-Gaussian and categorical log-likelihood losses and the MSE loss against
hand-computed values, state normalization in training and acting, config validation, a
vmapped learning-rate sweep on synthetic data (continuous and discrete), and learning from
Pendulum-v1 expert data."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl import buffers, datasets
from purerl.algos import bc
from purerl.config import sweep_axes

import offline_data  # tests/offline_data.py (tests/ is on sys.path via its conftest)


def _synthetic(env: str, n: int = 64, seed: int = 0) -> buffers.Transition:
    """`n` random transitions with `env`'s shapes (Pendulum-v1: obs 3, action 1; CartPole-v1:
    obs 4, actions 0/1)."""
    rng = np.random.default_rng(seed)
    obs_dim = 3 if env == "Pendulum-v1" else 4
    obs = rng.normal(size=(n, obs_dim)).astype(np.float32) * np.arange(1, obs_dim + 1, dtype=np.float32) + 2.0
    if env == "Pendulum-v1":
        action = np.clip(rng.normal(size=(n, 1)), -1.0, 1.0).astype(np.float32)
    else:
        action = rng.integers(0, 2, size=(n,)).astype(np.int32)
    return buffers.Transition(obs=jnp.asarray(obs), action=jnp.asarray(action),
                              reward=jnp.asarray(rng.normal(size=n), jnp.float32), terminated=jnp.zeros(n, bool),
                              truncated=jnp.zeros(n, bool), next_obs=jnp.asarray(np.roll(obs, -1, 0)))


# ----------------------------------------------------------------------------- math
def test_gaussian_log_likelihood_loss_matches_hand_value():
    """Eq. (1): −mean log π(a|s) = −mean[log N(atanh a; μ, σ²) − log(1 − a²)]; an action of
    exactly ±1 counts as ±(1 − 1e-6) (finite)."""
    mean = np.array([[0.3, -1.2], [0.0, 0.5], [1.0, 0.0]])
    std = np.array([[0.5, 1.5], [0.2, 1.0], [0.7, 2.0]])
    action = np.array([[0.5, -0.8], [-0.1, 0.95], [1.0, -1.0]])  # the last row at the bounds
    clipped = np.clip(action, -1 + 1e-6, 1 - 1e-6).astype(np.float32).astype(np.float64)
    u = np.arctanh(clipped)
    normal = -0.5 * ((u - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)
    log_prob = normal.sum(-1) - np.log(1.0 - clipped ** 2).sum(-1)
    dist = bc.sac.tanh_gaussian(jnp.asarray(mean, jnp.float32), jnp.asarray(std, jnp.float32))
    loss = bc.log_likelihood_loss(dist, jnp.asarray(action, jnp.float32))
    assert np.isfinite(float(loss))
    np.testing.assert_allclose(float(loss), -log_prob.mean(), rtol=1e-3)
    # the two interior rows alone, to float32 precision
    interior = bc.log_likelihood_loss(bc.sac.tanh_gaussian(jnp.asarray(mean[:2], jnp.float32),
                                                           jnp.asarray(std[:2], jnp.float32)),
                                      jnp.asarray(action[:2], jnp.float32))
    np.testing.assert_allclose(float(interior), -log_prob[:2].mean(), rtol=1e-5)


def test_categorical_log_likelihood_loss_is_cross_entropy():
    logits = jnp.array([[1.0, 2.0, 0.5], [0.0, 0.0, 3.0]])
    action = jnp.array([1, 0], jnp.int32)
    # −mean[log softmax(logits)_a]
    expected = -0.5 * ((2.0 - math.log(math.exp(1.0) + math.exp(2.0) + math.exp(0.5)))
                       + (0.0 - math.log(2.0 + math.exp(3.0))))
    loss = bc.log_likelihood_loss(bc.distrax.Categorical(logits=logits), action)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-6)


def test_mse_loss_sums_action_dimensions():
    predicted = jnp.array([[0.5, -0.5], [0.0, 1.0]])
    action = jnp.array([[0.0, 0.5], [0.25, 1.0]])
    # mean(0.25 + 1.0, 0.0625 + 0) = 0.65625
    np.testing.assert_allclose(float(bc.mse_loss(predicted, action)), 0.65625, rtol=1e-6)


def _linear_deterministic(config):
    """μ(s) = tanh(w·s + b) for Pendulum's 3-dimensional observations (no hidden layers)."""
    return {"params": {"MLP_0": {"Dense_0": {"kernel": jnp.array([[0.5], [-1.0], [0.25]]),
                                             "bias": jnp.array([0.1])}}}}


def test_deterministic_loss_and_act_on_a_linear_policy_with_normalized_states():
    config = bc.Config(policy="deterministic", hidden_sizes=(), num_gradient_steps=1_000)
    params = _linear_deterministic(config)
    w, b = np.array([0.5, -1.0, 0.25]), 0.1
    obs = np.array([[0.1, 0.2, 0.3], [1.0, -1.0, 0.5], [-0.5, 0.4, 2.0]], np.float32)
    action = np.array([[0.3], [-0.7], [1.0]], np.float32)
    mean, std = np.array([0.2, 0.0, -1.0]), np.array([2.0, 0.5, 1.0])
    normalized = (obs - mean) / std
    loss, aux = bc.bc_loss(params, config, jnp.asarray(normalized, jnp.float32), jnp.asarray(action))
    mu = np.tanh(normalized @ w + b)
    np.testing.assert_allclose(float(loss), np.mean((mu - action[:, 0]) ** 2), rtol=1e-5)
    policy = bc.Policy(params, jnp.asarray(mean, jnp.float32), jnp.asarray(std, jnp.float32))
    acted = bc.act(config, policy, jnp.asarray(obs), jax.random.PRNGKey(0))
    np.testing.assert_allclose(np.asarray(acted)[:, 0], mu, rtol=1e-5, atol=1e-6)


def test_observation_stats_and_normalization():
    obs = jnp.array([[1.0, 10.0], [3.0, 10.0], [5.0, 10.0]])
    mean, std = datasets.observation_stats(obs)
    np.testing.assert_allclose(np.asarray(mean), [3.0, 10.0], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(std), [math.sqrt(8 / 3) + 1e-3, 1e-3], rtol=1e-5)  # constant: std 1e-3
    np.testing.assert_allclose(np.asarray(datasets.normalize_obs(obs, mean, std))[:, 0],
                               np.array([-2.0, 0.0, 2.0]) / (math.sqrt(8 / 3) + 1e-3), rtol=1e-5)
    mean, std = datasets.observation_stats(obs, normalize=False)
    np.testing.assert_array_equal(np.asarray(mean), [0.0, 0.0])
    np.testing.assert_array_equal(np.asarray(std), [1.0, 1.0])


def test_init_keeps_the_dataset_statistics_not_the_dataset():
    data = _synthetic("Pendulum-v1")
    state = bc.init(bc.Config(hidden_sizes=(8,)), jax.random.PRNGKey(0), data)
    np.testing.assert_allclose(np.asarray(state.obs_mean), np.asarray(data.obs).mean(0), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(state.obs_std), np.asarray(data.obs).std(0) + 1e-3, rtol=1e-5)
    assert all(leaf.shape[:1] != (64,) for leaf in jax.tree.leaves(state))
    off = bc.init(bc.Config(hidden_sizes=(8,), normalize_obs=False), jax.random.PRNGKey(0), data)
    np.testing.assert_array_equal(np.asarray(off.obs_std), np.ones(3))


def test_gradient_step_lowers_the_loss_for_every_policy():
    for env, policy in (("Pendulum-v1", "gaussian"), ("Pendulum-v1", "deterministic"), ("CartPole-v1", "gaussian")):
        config = bc.Config(env=env, policy=policy, hidden_sizes=(16,), batch_size=64, learning_rate=1e-2)
        data = _synthetic(env)
        state = bc.init(config, jax.random.PRNGKey(0), data)
        step = jax.jit(lambda s: bc.gradient_step(config, s, data))
        _, first = step(state)
        for _ in range(50):
            state, metrics = step(state)
        assert float(metrics["loss/bc"]) < float(first["loss/bc"]), (env, policy)
    assert config.policy_kind == "categorical" and "accuracy" in metrics


# ----------------------------------------------------------------------------- program
@pytest.mark.parametrize("env", ["Pendulum-v1", "CartPole-v1"])
def test_vmapped_learning_rate_sweep_and_seeds(env):
    """One compiled program: 2 learning rates × 2 seeds, 4 updates of 5 gradient steps,
    evaluations after updates 2 and 4."""
    config = bc.Config(env=env, hidden_sizes=(8,), num_gradient_steps=20, steps_per_update=5, batch_size=16,
                       eval_every=2, eval_episodes=2, learning_rate=jnp.array([1e-3, 1e-2]))
    assert config.num_updates == 4 and config.env_steps_per_update == 5 == config.gradient_steps_per_update
    data = _synthetic(env)
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    by_seed = jax.vmap(bc.train, in_axes=(None, 0, None))
    train = jax.jit(jax.vmap(by_seed, in_axes=(sweep_axes(config, "learning_rate"), None, None)))
    state, metrics, returns = train(config, keys, data)
    assert returns.shape == (2, 2, 2, 2) and np.all(np.isfinite(np.asarray(returns)))
    assert metrics["loss/bc"].shape == (2, 2, 4) and np.all(np.isfinite(np.asarray(metrics["loss/bc"])))
    np.testing.assert_array_equal(np.asarray(state.update_step), 4)
    # the larger step size moved the parameters further from the same initialization
    init = bc.init(config.replace(learning_rate=1e-3), keys[0], data)
    moved = [sum(float(jnp.sum((a[i, 0] - b) ** 2)) for a, b in zip(jax.tree.leaves(state.params),
                                                                     jax.tree.leaves(init.params)))
             for i in (0, 1)]
    assert 0 < moved[0] < moved[1]


def test_act_shapes_and_sampling():
    data = _synthetic("Pendulum-v1")
    config = bc.Config(hidden_sizes=(8,))
    state = bc.init(config, jax.random.PRNGKey(0), data)
    obs = data.obs[:5]
    mode = bc.act(config, bc.policy(state), obs, jax.random.PRNGKey(1))
    sample = bc.act(config, bc.policy(state), obs, jax.random.PRNGKey(1), deterministic=False)
    assert mode.shape == sample.shape == (5, 1) and np.all(np.abs(np.asarray(sample)) <= 1.0)
    assert not np.allclose(np.asarray(mode), np.asarray(sample))
    config = bc.Config(env="CartPole-v1", hidden_sizes=(8,))
    state = bc.init(config, jax.random.PRNGKey(0), _synthetic("CartPole-v1"))
    action = bc.act(config, bc.policy(state), _synthetic("CartPole-v1").obs[:5], jax.random.PRNGKey(1))
    assert action.shape == (5,) and jnp.issubdtype(action.dtype, jnp.integer)


# ----------------------------------------------------------------------------- config
@pytest.mark.parametrize("field, value", [
    ("env", "NoSuchEnv-v0"), ("num_gradient_steps", 0), ("steps_per_update", 0), ("batch_size", 0),
    ("eval_every", 0), ("eval_episodes", 0), ("hidden_sizes", (64, 0)), ("policy", "beta"),
    ("normalize_obs", 1), ("learning_rate", 0.0), ("learning_rate", float("nan")),
])
def test_config_rejects_bad_value(field, value):
    with pytest.raises(ValueError, match=field):
        bc.Config(**{field: value})


def test_config_cross_field_checks_and_presets():
    with pytest.raises(ValueError, match="num_gradient_steps"):
        bc.Config(num_gradient_steps=100, steps_per_update=1_000)
    config = bc.Config.for_env("CartPole-v1", learning_rate=3e-3)
    assert config.policy_kind == "categorical" and config.learning_rate == 3e-3 and config.hidden_sizes == (64, 64)
    assert bc.Config.for_env("Pendulum-v1").policy_kind == "gaussian"
    assert bc.OFFLINE is True


def test_init_rejects_a_dataset_of_another_environment():
    with pytest.raises(ValueError, match="observations"):
        bc.init(bc.Config(), jax.random.PRNGKey(0), _synthetic("CartPole-v1"))
    with pytest.raises(ValueError, match="actions"):
        bc.init(bc.Config(env="CartPole-v1"), jax.random.PRNGKey(0),
                _synthetic("CartPole-v1").replace(action=jnp.zeros((64, 1))))


# ----------------------------------------------------------------------------- learning
@pytest.mark.learning
def test_learns_pendulum_from_expert_data():
    """8 seeds, the Pendulum-v1 preset (5 000 gradient steps of 256, (64, 64), lr 1e-3) on
    `offline_data.pendulum("expert")`: mean final normalized score ≥ 90 (the issue's bar).
    Measured in one vmap per key set (jax 0.9.2, AMD EPYC): 98.3, 97.6 and 96.1 for key sets
    PRNGKey(0) (this test's), (1), (2)."""
    dataset = offline_data.pendulum("expert")
    config = bc.Config.for_env("Pendulum-v1")
    keys = jax.random.split(jax.random.PRNGKey(0), 8)
    _, _, returns = jax.jit(jax.vmap(bc.train, in_axes=(None, 0, None)))(config, keys, dataset.transitions)
    score = float(dataset.normalized_score(np.asarray(returns[:, -1]).mean(-1)).mean())
    print(f"BC on Pendulum-v1 expert, 8 seeds: mean final normalized score {score:.1f}")
    assert score >= 90.0, score
