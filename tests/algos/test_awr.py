"""AWR: the TD(λ) returns of a hand-made dataset with a terminal and a truncation, the clipped
weights exp(A/β), the value and policy losses against hand-computed values, state
normalization, config validation, a vmapped sweep of β on synthetic data (continuous and
discrete), and learning from Pendulum-v1 medium data beyond the behaviour policy."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl import buffers
from purerl.algos import awr
from purerl.config import sweep_axes

import offline_data  # tests/offline_data.py (tests/ is on sys.path via its conftest)


def _linear(kernel, bias):
    """Parameters of a network with no hidden layers: out = x @ kernel + bias."""
    return {"params": {"MLP_0": {"Dense_0": {"kernel": jnp.asarray(kernel, jnp.float32),
                                             "bias": jnp.asarray(bias, jnp.float32)}}}}


# Two episodes: t = 0, 1, 2 ending in a terminal, t = 3, 4 ending in a truncation.
REWARDS = [1.0, 2.0, 3.0, 4.0, 5.0]
VALUES = [10.0, 20.0, 30.0, 40.0, 50.0]  # V(s_t)
NEXT_VALUES = [20.0, 30.0, 99.0, 50.0, 60.0]  # V(s′_t): V(s_{t+1}) within an episode
TERMINATED = [False, False, True, False, False]
TRUNCATED = [False, False, False, False, True]
# γ = 0.9, λ = 0.5, by hand:
#   R_2 = 3                                   (terminal: no bootstrap, the 99 is never used)
#   R_1 = 2 + 0.9 (0.5·30 + 0.5·R_2) = 16.85
#   R_0 = 1 + 0.9 (0.5·20 + 0.5·R_1) = 17.5825
#   R_4 = 5 + 0.9·60 = 59                     (truncation: bootstrap from V(s′_4))
#   R_3 = 4 + 0.9 (0.5·50 + 0.5·R_4) = 53.05
LAMBDA_RETURNS = [17.5825, 16.85, 3.0, 53.05, 59.0]


# ----------------------------------------------------------------------------- math
def test_lambda_returns_with_a_terminal_and_a_truncation_match_hand_values():
    out = awr.lambda_returns(jnp.array(REWARDS), jnp.array(VALUES), jnp.array(NEXT_VALUES), jnp.array(TERMINATED),
                             jnp.array(TRUNCATED), 0.9, 0.5)
    np.testing.assert_allclose(np.asarray(out), LAMBDA_RETURNS, rtol=1e-6)
    # λ = 1: Monte-Carlo returns within an episode (bootstrapped at the truncation)
    out = awr.lambda_returns(jnp.array(REWARDS), jnp.array(VALUES), jnp.array(NEXT_VALUES), jnp.array(TERMINATED),
                             jnp.array(TRUNCATED), 0.9, 1.0)
    np.testing.assert_allclose(np.asarray(out), [1 + 0.9 * 2 + 0.81 * 3, 2 + 0.9 * 3, 3, 4 + 0.9 * 59, 59], rtol=1e-6)
    # λ = 0: one-step TD targets
    out = awr.lambda_returns(jnp.array(REWARDS), jnp.array(VALUES), jnp.array(NEXT_VALUES), jnp.array(TERMINATED),
                             jnp.array(TRUNCATED), 0.9, 0.0)
    np.testing.assert_allclose(np.asarray(out), [19.0, 29.0, 3.0, 49.0, 59.0], rtol=1e-6)


def test_dataset_lambda_returns_use_the_value_network_on_s_and_s_next():
    """The same dataset as observations: V(s) = s[0] (a linear V, no normalization), so the
    λ-returns over the dataset are the hand values above; `reward_scale` scales the rewards."""
    config = awr.Config(hidden_sizes=(), gamma=0.9, lam=0.5, normalize_obs=False, num_gradient_steps=1,
                        steps_per_update=1, batch_size=2)
    obs = np.zeros((5, 3), np.float32)
    obs[:, 0], obs[:, 1] = VALUES, np.arange(5)
    next_obs = np.zeros((5, 3), np.float32)
    next_obs[:, 0], next_obs[:, 2] = NEXT_VALUES, 7.0
    data = buffers.Transition(obs=jnp.asarray(obs), action=jnp.zeros((5, 1)), reward=jnp.array(REWARDS),
                              terminated=jnp.array(TERMINATED), truncated=jnp.array(TRUNCATED),
                              next_obs=jnp.asarray(next_obs))
    _, networks = awr._networks(config)
    state = awr.init(config, jax.random.PRNGKey(0), data).replace(value_params=_linear([[1.0], [0.0], [0.0]], [0.0]))
    np.testing.assert_allclose(np.asarray(awr.dataset_lambda_returns(config, networks, state, data)), LAMBDA_RETURNS,
                               rtol=1e-6)
    scaled = awr.dataset_lambda_returns(config.replace(reward_scale=2.0), networks, state, data)
    # R_2 = 2·3; R_4 = 2·5 + 0.9·60
    np.testing.assert_allclose(np.asarray(scaled)[[2, 4]], [6.0, 64.0], rtol=1e-6)


def test_advantage_weights_are_exp_a_over_beta_capped_at_w_max():
    """β is the temperature: w = min(exp(A / β), w_max)."""
    advantages = jnp.array([-2.0, 0.0, 1.0, 5.0])
    np.testing.assert_allclose(np.asarray(awr.advantage_weights(advantages, 1.0, 20.0)),
                               [math.exp(-2.0), 1.0, math.e, 20.0], rtol=1e-6)  # exp(5) = 148.4 → 20
    np.testing.assert_allclose(np.asarray(awr.advantage_weights(advantages, 2.0, 20.0)),
                               [math.exp(-1.0), 1.0, math.exp(0.5), math.exp(2.5)], rtol=1e-6)  # 12.18: not clipped
    np.testing.assert_allclose(np.asarray(awr.advantage_weights(advantages, 0.5, 5.0)),
                               [math.exp(-4.0), 1.0, 5.0, 5.0], rtol=1e-6)


def test_normalized_advantages():
    advantages = jnp.array([1.0, 2.0, 3.0, 6.0])  # mean 3, std sqrt(3.5)
    np.testing.assert_allclose(np.asarray(awr.normalize_advantages(advantages)),
                               (np.array([1.0, 2.0, 3.0, 6.0]) - 3.0) / (math.sqrt(3.5) + 1e-5), rtol=1e-6)


def test_value_loss_and_gaussian_policy_loss_match_hand_values():
    """Eq. (2) ½ mean (V − R)² with a linear V; eq. (3) −mean w · log N(a; tanh(w·s + b), 0.2²)."""
    config = awr.Config(hidden_sizes=(), num_gradient_steps=1, steps_per_update=1)
    _, networks = awr._networks(config)
    obs = jnp.array([[0.1, 0.2, 0.3], [1.0, -1.0, 0.5], [-0.5, 0.4, 2.0]])
    targets = jnp.array([1.0, -2.0, 0.5])
    loss, values = awr.value_loss(_linear([[0.5], [-1.0], [0.25]], [0.1]), networks, obs, targets)
    v_np = np.asarray(obs) @ np.array([0.5, -1.0, 0.25]) + 0.1
    np.testing.assert_allclose(np.asarray(values), v_np, rtol=1e-5)
    np.testing.assert_allclose(float(loss), 0.5 * np.mean((v_np - np.asarray(targets)) ** 2), rtol=1e-5)
    np.testing.assert_allclose(float(awr.value_loss_from_values(jnp.array([1.0, 3.0]), jnp.array([2.0, 0.0]))),
                               0.5 * (1.0 + 9.0) / 2, rtol=1e-6)

    actor = _linear([[1.0], [0.5], [-0.5]], [0.2])
    action = jnp.array([[0.3], [-1.0], [1.0]])
    weights = jnp.array([1.0, 20.0, 0.5])
    mean = np.tanh(np.asarray(obs) @ np.array([1.0, 0.5, -0.5]) + 0.2)
    log_prob = -0.5 * ((np.asarray(action)[:, 0] - mean) / 0.2) ** 2 - math.log(0.2) - 0.5 * math.log(2 * math.pi)
    loss = awr.actor_loss(actor, config, networks, obs, action, weights)
    np.testing.assert_allclose(float(loss), -np.mean(np.asarray(weights) * log_prob), rtol=1e-5)
    policy = awr.Policy(actor, jnp.zeros(3), jnp.ones(3))
    np.testing.assert_allclose(np.asarray(awr.act(config, policy, obs, jax.random.PRNGKey(0)))[:, 0], mean, rtol=1e-5)
    samples = awr.act(config.replace(action_std=5.0), policy, jnp.tile(obs, (100, 1)), jax.random.PRNGKey(1),
                      deterministic=False)
    assert samples.shape == (300, 1) and float(jnp.abs(samples).max()) == 1.0  # clipped to [−1, 1]


def test_categorical_policy_loss():
    config = awr.Config(env="CartPole-v1", hidden_sizes=(), num_gradient_steps=1, steps_per_update=1)
    _, networks = awr._networks(config)
    obs = jnp.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    actor = _linear([[1.0, -1.0], [0.0, 2.0], [0.0, 0.0], [0.0, 0.0]], [0.0, 0.0])  # logits (1, −1), (0, 2)
    loss = awr.actor_loss(actor, config, networks, obs, jnp.array([0, 0], jnp.int32), jnp.array([2.0, 1.0]))
    expected = -0.5 * (2.0 * (1.0 - math.log(math.e + math.exp(-1.0))) + (0.0 - math.log(1.0 + math.exp(2.0))))
    np.testing.assert_allclose(float(loss), expected, rtol=1e-6)
    assert awr.act(config, awr.Policy(actor, jnp.zeros(4), jnp.ones(4)), obs, jax.random.PRNGKey(0)).tolist() == [0, 1]


def test_state_normalization_in_training_and_acting():
    data = offline_data.synthetic("Pendulum-v1", n=128)
    config = awr.Config(hidden_sizes=(8,), batch_size=16, num_gradient_steps=2, steps_per_update=2)
    state = awr.init(config, jax.random.PRNGKey(0), data)
    np.testing.assert_allclose(np.asarray(state.obs_mean), np.asarray(data.obs).mean(0), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(state.obs_std), np.asarray(data.obs).std(0) + 1e-3, rtol=1e-5)
    raw = data.obs[:5]
    _, networks = awr._networks(config)
    by_hand = networks.actor.apply(state.actor_params, (raw - state.obs_mean) / state.obs_std)
    np.testing.assert_allclose(np.asarray(awr.act(config, awr.policy(state), raw, jax.random.PRNGKey(0))),
                               np.asarray(by_hand), rtol=1e-6)


def test_each_update_recomputes_the_lambda_returns_with_the_current_v():
    """Every transition a one-step episode (truncated) into the same s*, reward 1: each λ-return
    is 1 + γ V(s*), so `update`'s mean λ-return metric is exactly that, with V as it was when
    the update began (at init for the first update, after it for the second)."""
    rng = np.random.default_rng(0)
    n = 32
    data = buffers.Transition(obs=jnp.asarray(rng.normal(size=(n, 3)), jnp.float32), action=jnp.zeros((n, 1)),
                              reward=jnp.ones(n), terminated=jnp.zeros(n, bool), truncated=jnp.ones(n, bool),
                              next_obs=jnp.tile(jnp.array([[0.5, -1.0, 2.0]]), (n, 1)))
    config = awr.Config(hidden_sizes=(8,), batch_size=8, num_gradient_steps=100, steps_per_update=50,
                        value_lr=1e-2)
    _, networks = awr._networks(config)
    state = awr.init(config, jax.random.PRNGKey(0), data)
    update = jax.jit(lambda s: awr.update(config, s, data))
    first, metrics0 = update(state)
    _, metrics1 = update(first)

    def v_star(s):
        return float(networks.value.apply(s.value_params, (data.next_obs[:1] - s.obs_mean) / s.obs_std)[0])

    assert abs(v_star(first) - v_star(state)) > 0.1  # V(s*) moved towards 1 + γ V(s*)
    np.testing.assert_allclose(float(metrics0["lambda_return"]), 1.0 + 0.99 * v_star(state), rtol=1e-5)
    np.testing.assert_allclose(float(metrics1["lambda_return"]), 1.0 + 0.99 * v_star(first), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(awr.dataset_lambda_returns(config, networks, first, data)),
                               1.0 + 0.99 * v_star(first), rtol=1e-5)


# ----------------------------------------------------------------------------- program
@pytest.mark.parametrize("env", ["Pendulum-v1", "CartPole-v1"])
def test_vmapped_beta_sweep_in_one_program(env):
    """2 values of β × 2 seeds, 2 updates of 3 gradient steps each, on synthetic data: finite
    metrics and returns of the stated shapes; the two β train different policies, the same V."""
    data = offline_data.synthetic(env)
    config = awr.Config(env=env, hidden_sizes=(16,), batch_size=8, num_gradient_steps=6, steps_per_update=3,
                        eval_every=1, eval_episodes=2, normalize_advantages=env == "CartPole-v1",
                        beta=jnp.array([0.1, 10.0, 0.1, 10.0]))
    keys = jax.random.split(jax.random.PRNGKey(0), 2)[jnp.array([0, 0, 1, 1])]  # each key with both β
    train = jax.jit(jax.vmap(awr.train, in_axes=(sweep_axes(config, "beta"), 0, None)))
    state, metrics, returns = train(config, keys, data)
    assert returns.shape == (4, 2, 2) and np.all(np.isfinite(np.asarray(returns)))
    for name in ("loss/value", "loss/actor", "value", "lambda_return", "advantage", "weight"):
        assert metrics[name].shape == (4, 2) and np.all(np.isfinite(np.asarray(metrics[name]))), name
    np.testing.assert_array_equal(np.asarray(state.update_step), [2, 2, 2, 2])
    actor = jax.tree.leaves(state.actor_params)
    assert any(not np.allclose(a[0], a[1]) for a in actor)  # same key, different β
    value = jax.tree.leaves(state.value_params)
    assert all(np.allclose(v[0], v[1]) for v in value)  # V does not depend on β
    assert any(not np.allclose(v[0], v[2]) for v in value)  # different keys
    actions = awr.act(config, jax.tree.map(lambda x: x[0], awr.policy(state)), data.obs[:5], jax.random.PRNGKey(0))
    if env == "CartPole-v1":
        assert actions.shape == (5,) and jnp.issubdtype(actions.dtype, jnp.integer)
    else:
        assert actions.shape == (5, 1) and float(jnp.abs(actions).max()) <= 1.0


# ----------------------------------------------------------------------------- learning
@pytest.mark.learning
def test_learns_pendulum_from_medium_data():
    """6 seeds, the Pendulum-v1 preset (5 000 gradient steps of 256, (64, 64), rewards × 0.1,
    β 0.3, w_max 20, λ 0.95) on `offline_data.pendulum("medium")` (20 000 transitions of a SAC
    policy stopped at 2 500 steps, acting stochastically: its full episodes return −947 on
    average, −743 at best; acting deterministically it returns about −930): mean final return
    ≥ −830, better than the data. Measured in one vmap per key set (jax 0.9.2, AMD EPYC):
    −681.3, −715.7 and −748.7 for key sets PRNGKey(0) (this test's), (1), (2)."""
    dataset = offline_data.pendulum("medium")
    keys = jax.random.split(jax.random.PRNGKey(0), 6)
    config = awr.Config.for_env("Pendulum-v1")
    _, _, returns = jax.jit(jax.vmap(awr.train, in_axes=(None, 0, None)))(config, keys, dataset.transitions)
    final = float(np.asarray(returns[:, -1]).mean())
    print(f"AWR on Pendulum-v1 medium, 6 seeds: mean final return {final:.1f} (behaviour policy, deterministic: "
          f"{dataset.info['medium_return']:.1f})")
    assert final >= -830.0, final


# ----------------------------------------------------------------------------- config
@pytest.mark.parametrize("field, value", [
    ("env", "NoSuchEnv-v0"), ("dataset", 3), ("num_gradient_steps", 0), ("steps_per_update", 0), ("batch_size", 0),
    ("hidden_sizes", (64, 0)), ("normalize_obs", 1), ("normalize_advantages", "no"), ("eval_every", 0),
    ("eval_episodes", 0), ("actor_lr", 0.0), ("value_lr", -1.0), ("gamma", 1.5), ("lam", -0.1), ("lam", 1.1),
    ("beta", 0.0), ("max_weight", 0.0), ("action_std", 0.0), ("reward_scale", float("inf")),
])
def test_config_rejects_bad_value(field, value):
    with pytest.raises(ValueError, match=field):
        awr.Config(**{field: value})


def test_config_cross_field_checks_and_a_swept_vector():
    with pytest.raises(ValueError, match="num_gradient_steps"):
        awr.Config(num_gradient_steps=500, steps_per_update=1_000)
    with pytest.raises(ValueError, match="beta"):
        awr.Config(beta=jnp.array([1.0, -1.0]))
    awr.Config(beta=jnp.array([0.5, 1.0, 2.0]))  # a sweep is validated value by value


def test_properties_and_presets():
    config = awr.Config(num_gradient_steps=10_500, steps_per_update=1_000)
    assert awr.OFFLINE is True
    assert config.num_updates == 10 and config.env_steps_per_update == 1_000
    assert config.gradient_steps_per_update == 1_000
    default = awr.Config()
    assert (default.beta, default.max_weight, default.lam, default.gamma, default.action_std, default.hidden_sizes) == \
        (1.0, 20.0, 0.95, 0.99, 0.2, (128, 64))
    assert awr.Config.for_env("Pendulum-v1").num_gradient_steps == 5_000
    assert awr.Config.for_env("CartPole-v1", beta=3.0).beta == 3.0
