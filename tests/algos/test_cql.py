"""CQL: the conservative gap with the exact logsumexp on a discrete Q table (closed form, and its
gradient), the importance-sampled logsumexp of continuous actions against a NumPy reference and a
brute-force numerical integral on a linear critic, the critic loss against NumPy, the sign of the
Lagrange dual step, config validation, a vmapped sweep of cql_alpha in one program, the discrete
variant, and learning from purerl's offline datasets against BC (Pendulum medium-replay,
CartPole medium)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl import buffers, datasets, envs
from purerl.algos import bc, cql, dqn, sac
from purerl.config import sweep_axes
from purerl.report import bootstrap_ci

import offline_data  # tests/offline_data.py (tests/ is on sys.path via its conftest)


# ----------------------------------------------------------------------------- helpers
def _linear_continuous(action_dim=2):
    """SAC networks without hidden layers for 3-dim states and `action_dim`-dim actions: the actor
    μ(s), log σ(s) = s·W + b, the critics Q_i(s, a) = v_i·[s, a] + c_i."""
    config = cql.Config(hidden_sizes=())
    networks = sac.make_networks(config, (3,), envs.Box.make(-1.0, 1.0, (action_dim,)))
    kernel = np.zeros((3, 2 * action_dim), np.float32)
    kernel[:, :action_dim] = np.array([[0.2, -0.1], [-0.3, 0.1], [0.1, 0.2]])[:, :action_dim]  # μ
    kernel[:, action_dim:] = 0.1  # log σ
    bias = np.concatenate([np.full(action_dim, 0.1), np.full(action_dim, -0.3)]).astype(np.float32)
    actor = {"params": {"MLP_0": {"Dense_0": {"kernel": jnp.asarray(kernel), "bias": jnp.asarray(bias)}}}}
    critic_kernel = np.array([[1.0, 2.0, -1.0, 0.8, -0.5], [-0.5, 1.0, 0.5, -0.6, 0.4]], np.float32)[:, :3 + action_dim]
    critic = {"params": {"VmapMLP_0": {"Dense_0": {"kernel": jnp.asarray(critic_kernel[..., None]),
                                                   "bias": jnp.array([[0.5], [0.2]])}}}}
    return networks, actor, critic


def _np_actor(actor, obs, action_dim):
    d = actor["params"]["MLP_0"]["Dense_0"]
    out = np.asarray(obs, np.float64) @ np.asarray(d["kernel"], np.float64) + np.asarray(d["bias"], np.float64)
    return out[..., :action_dim], np.exp(out[..., action_dim:])  # mean, std


def _np_tanh_gaussian_log_prob(action, mean, std):
    u = np.arctanh(np.asarray(action, np.float64))
    normal = -0.5 * ((u - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)
    return normal.sum(-1) - np.log(1.0 - np.tanh(u) ** 2).sum(-1)


def _np_critic(critic, obs, action, i):
    d = critic["params"]["VmapMLP_0"]["Dense_0"]
    x = np.concatenate([np.broadcast_to(np.asarray(obs, np.float64), np.shape(action)[:-1] + (3,)),
                        np.asarray(action, np.float64)], -1)
    return x @ np.asarray(d["kernel"][i], np.float64)[:, 0] + float(d["bias"][i, 0])


def _pendulum_batch(n=3, seed=0):
    rng = np.random.default_rng(seed)
    return buffers.Transition(
        obs=jnp.asarray(rng.normal(size=(n, 3)), jnp.float32),
        action=jnp.asarray(rng.uniform(-1, 1, size=(n, 1)), jnp.float32),
        reward=jnp.asarray(rng.normal(size=n), jnp.float32),
        terminated=jnp.asarray(np.arange(n) % 3 == 1),
        truncated=jnp.asarray(np.arange(n) % 3 == 2),
        next_obs=jnp.asarray(rng.normal(size=(n, 3)), jnp.float32))


def _synthetic(env_name, n=256, seed=0):
    """A dataset of `n` random transitions shaped for `env_name`."""
    env = envs.make(env_name)
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n,) + env.obs_shape).astype(np.float32)
    action = (rng.integers(0, env.action_space.n, n).astype(np.int32) if env.discrete
              else rng.uniform(-1, 1, (n,) + env.action_space.shape).astype(np.float32))
    return buffers.Transition(obs=obs, action=action, reward=rng.normal(size=n).astype(np.float32),
                              terminated=rng.uniform(size=n) < 0.05, truncated=rng.uniform(size=n) < 0.02,
                              next_obs=(obs + 0.1 * rng.normal(size=obs.shape)).astype(np.float32))


# ----------------------------------------------------------------------------- discrete: exact logsumexp
def _q_table():
    """A Q-network without hidden layers on one-hot states: Q(s_i, ·) = row i of the table."""
    table = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, math.log(2.0)]], np.float32)
    network = dqn.QNetwork(obs_ndim=1, num_actions=3, hidden_sizes=())
    params = {"params": {"Dense_0": {"kernel": jnp.asarray(table), "bias": jnp.zeros(3)}}}
    batch = buffers.Transition(obs=jnp.eye(2), action=jnp.array([2, 0], jnp.int32), reward=jnp.zeros(2),
                               terminated=jnp.zeros(2, bool), truncated=jnp.zeros(2, bool), next_obs=jnp.eye(2))
    return table, network, params, batch


def test_discrete_conservative_gap_matches_the_closed_form():
    """Q(s₁, ·) = (1, 2, 3), Q(s₂, ·) = (0, 0, ln 2); dataset actions 3 and 1:
    logsumexp = 3 + ln(1 + e⁻¹ + e⁻²) and ln 4, so the gap is
    ½(3 + ln(1 + e⁻¹ + e⁻²) + ln 4) − ½(3 + 0) = ½(0.40760596 + 1.38629436) = 0.89695016."""
    table, network, params, batch = _q_table()
    np.testing.assert_allclose(cql.discrete_logsumexp(jnp.asarray(table)), [3.40760596, 1.38629436], rtol=1e-6)
    gap = cql.conservative_gap(cql.discrete_logsumexp(jnp.asarray(table)), jnp.array([3.0, 0.0]))
    np.testing.assert_allclose(gap, 0.89695016, rtol=1e-6)
    # the full loss: Huber TD (errors 0.5 and 0: ½·0.5²/2 = 0.0625) + α·gap with α = 2
    loss, (td_loss, gap, q) = cql.discrete_critic_loss(params, network, batch, jnp.array([2.5, 0.0]), 2.0)
    np.testing.assert_allclose(q, [3.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(td_loss, 0.0625, rtol=1e-6)
    np.testing.assert_allclose(gap, [0.89695016], rtol=1e-6)
    np.testing.assert_allclose(loss, 0.0625 + 2.0 * 0.89695016, rtol=1e-6)


def test_discrete_penalty_gradient_is_softmax_minus_the_data_action():
    """With TD errors of 0, ∂loss/∂Q(s, ·) = α (softmax Q(s, ·) − onehot(a)) / B: every action is
    pushed down in proportion to its softmax weight and the dataset's action up."""
    table, network, params, batch = _q_table()
    alpha = 2.0
    grads, _ = jax.grad(cql.discrete_critic_loss, has_aux=True)(params, network, batch, jnp.array([3.0, 0.0]), alpha)
    softmax = np.exp(table) / np.exp(table).sum(-1, keepdims=True)
    expected = alpha * (softmax - np.eye(3)[[2, 0]]) / 2
    np.testing.assert_allclose(grads["params"]["Dense_0"]["kernel"], expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(grads["params"]["Dense_0"]["bias"], expected.sum(0), rtol=1e-5, atol=1e-7)


# ----------------------------------------------------------------------------- continuous: importance sampling
def test_proposal_actions_and_their_log_densities():
    """N actions from Uniform[−1, 1]^|A| (log density |A| log ½), from π(·|s) and from π(·|s′) (the
    tanh-Gaussian log-density of eq. (6) of SAC, recomputed in NumPy), in that order."""
    networks, actor, _ = _linear_continuous(action_dim=2)
    batch = _pendulum_batch(n=4)
    num = 5
    actions, log_density = cql.proposal_actions(networks, actor, batch.obs, batch.next_obs, jax.random.PRNGKey(3), num)
    assert actions.shape == (4, 3 * num, 2) and log_density.shape == (4, 3 * num)
    actions, log_density = np.asarray(actions, np.float64), np.asarray(log_density, np.float64)
    assert np.all(np.abs(actions) <= 1.0)
    np.testing.assert_allclose(log_density[:, :num], 2 * math.log(0.5), rtol=1e-6)
    for block, obs in ((1, batch.obs), (2, batch.next_obs)):
        mean, std = _np_actor(actor, obs, 2)
        part = actions[:, block * num:(block + 1) * num]
        expected = _np_tanh_gaussian_log_prob(part, mean[:, None], std[:, None])
        np.testing.assert_allclose(log_density[:, block * num:(block + 1) * num], expected, rtol=2e-3, atol=2e-3)
    # the policy blocks are the policy's: their spread follows σ(s), not the uniform's
    assert not np.allclose(actions[:, num:2 * num], actions[:, 2 * num:])


def test_importance_sampled_logsumexp_and_critic_loss_match_numpy():
    """Eqs. (1)–(3) for a linear twin critic with N = 3: logsumexp_j[Q_i(s, a_j) − log p_j] − log 9,
    the gap per critic, SAC's TD loss Σ_i ½ mean (Q_i − y)² and the total TD + α Σ_i gap_i."""
    networks, actor, critic = _linear_continuous(action_dim=1)
    batch = _pendulum_batch(n=3)
    actions, log_density = cql.proposal_actions(networks, actor, batch.obs, batch.next_obs, jax.random.PRNGKey(0), 3)
    target = jnp.array([0.5, -1.0, 2.0])
    loss, (td_loss, gap, q) = cql.critic_loss(critic, networks, batch, target, actions, log_density, 4.0)
    lse, q_data, td = [], [], 0.0
    for i in (0, 1):
        values = _np_critic(critic, np.asarray(batch.obs)[:, None], np.asarray(actions), i) - np.asarray(log_density)
        m = values.max(-1, keepdims=True)
        lse.append((m[:, 0] + np.log(np.exp(values - m).sum(-1))) - math.log(9))
        q_data.append(_np_critic(critic, np.asarray(batch.obs), np.asarray(batch.action), i))
        td += 0.5 * np.mean((q_data[-1] - np.asarray(target)) ** 2)
    expected_gap = np.array([lse[i].mean() - q_data[i].mean() for i in (0, 1)])
    np.testing.assert_allclose(q, np.stack(q_data), rtol=1e-5)
    np.testing.assert_allclose(td_loss, td, rtol=1e-5)
    np.testing.assert_allclose(gap, expected_gap, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(loss, td + 4.0 * expected_gap.sum(), rtol=1e-5)
    # the log-densities are constants: no gradient reaches them, nor the actor through the actions
    grad = jax.grad(lambda d: cql.importance_sampled_logsumexp(jnp.ones(4), d))(jnp.zeros(4))
    np.testing.assert_array_equal(grad, 0.0)


def test_importance_sampled_logsumexp_converges_to_the_integral():
    """With many samples the estimate of eq. (3) approaches log ∫_{[−1,1]²} exp Q_i(s, a) da, here
    integrated by brute force on a 400 × 400 midpoint grid (and in closed form for the linear
    critic: c + Σ_j log((e^{k_j} − e^{−k_j}) / k_j))."""
    networks, actor, critic = _linear_continuous(action_dim=2)
    batch = _pendulum_batch(n=2, seed=1)
    num = 20_000
    actions, log_density = cql.proposal_actions(networks, actor, batch.obs, batch.next_obs, jax.random.PRNGKey(1), num)
    obs = jnp.broadcast_to(batch.obs[:, None], actions.shape[:2] + (3,))
    q = networks.critic.apply(critic, obs, actions)
    estimate = np.asarray(cql.importance_sampled_logsumexp(q, log_density))
    # each proposal alone (uniform, π(·|s), π(·|s′)) estimates the same integral
    blocks = [np.asarray(cql.importance_sampled_logsumexp(q[..., j * num:(j + 1) * num],
                                                          log_density[:, j * num:(j + 1) * num])) for j in range(3)]
    grid = (np.arange(400) + 0.5) / 400 * 2 - 1
    a1, a2 = np.meshgrid(grid, grid, indexing="ij")
    grid_actions = np.stack([a1.ravel(), a2.ravel()], -1)
    cell = (2 / 400) ** 2
    for i in (0, 1):
        d = critic["params"]["VmapMLP_0"]["Dense_0"]
        v, k = np.asarray(d["kernel"][i, :3, 0], np.float64), np.asarray(d["kernel"][i, 3:, 0], np.float64)
        for b in range(2):
            q = _np_critic(critic, np.asarray(batch.obs)[b], grid_actions, i)
            brute = math.log(np.exp(q).sum() * cell)
            c = float(np.asarray(batch.obs[b], np.float64) @ v + float(d["bias"][i, 0]))
            closed = c + np.sum(np.log((np.exp(k) - np.exp(-k)) / k))
            np.testing.assert_allclose(brute, closed, atol=1e-4)
            np.testing.assert_allclose(estimate[i, b], brute, atol=0.03)
            for block in blocks:
                np.testing.assert_allclose(block[i, b], brute, atol=0.06)


# ----------------------------------------------------------------------------- Lagrange
def test_lagrange_loss_value_and_the_sign_of_its_gradient():
    """−α′·mean(gap − τ) at α′ = 2, τ = 1: gaps (3, 5) give −2·3 = −6 and ∂/∂log α′ = −6 < 0, so a
    descent step raises α′; gaps (0.5, 0.5) give +1 and a positive gradient, so α′ falls."""
    log_alpha_prime = jnp.log(2.0)
    loss, grad = jax.value_and_grad(cql.lagrange_loss)(log_alpha_prime, jnp.array([3.0, 5.0]), 1.0)
    np.testing.assert_allclose([loss, grad], [-6.0, -6.0], rtol=1e-6)
    loss, grad = jax.value_and_grad(cql.lagrange_loss)(log_alpha_prime, jnp.array([0.5, 0.5]), 1.0)
    np.testing.assert_allclose([loss, grad], [1.0, 1.0], rtol=1e-6)
    # the gap is a constant of the dual step
    np.testing.assert_array_equal(jax.grad(cql.lagrange_loss, argnums=1)(log_alpha_prime, jnp.array([3.0]), 1.0), 0.0)
    np.testing.assert_allclose(cql.alpha_prime(jnp.array([0.0, 100.0])), [1.0, cql.ALPHA_PRIME_MAX])


def test_dual_step_raises_alpha_prime_above_the_threshold_and_lowers_it_below():
    for lagrange in (True, False):
        config = cql.Config(hidden_sizes=(8,), lagrange=lagrange, cql_alpha=2.0, lagrange_threshold=1.0,
                            lagrange_lr=0.1)
        state = cql.init(config, jax.random.PRNGKey(0), _synthetic("Pendulum-v1"))
        for gap, direction in ((jnp.array([3.0, 5.0]), 1), (jnp.array([0.2, 0.4]), -1)):
            new, _, _ = cql.dual_step(config, state.log_alpha_prime, state.alpha_prime_opt_state, gap)
            change = float(new - state.log_alpha_prime)
            if lagrange:
                np.testing.assert_allclose(change, direction * 0.1, rtol=1e-4)  # Adam's first step: ±lr
            else:
                assert change == 0.0


@pytest.mark.parametrize("env_name", ["Pendulum-v1", "CartPole-v1"])
def test_gradient_step_moves_alpha_prime_with_the_gap(env_name):
    """A full gradient step: with τ far below the gap α′ grows, with τ far above it it shrinks; a fixed
    α stays and is the weight of the gap."""
    data = _synthetic(env_name, n=64)
    batch = jax.tree.map(lambda x: jnp.asarray(x[:32]), data)
    for lagrange, threshold, direction in ((True, -100.0, 1), (True, 100.0, -1), (False, 0.0, 0)):
        config = cql.Config(env=env_name, hidden_sizes=(8,), lagrange=lagrange, lagrange_threshold=threshold,
                            cql_alpha=3.0)
        state = cql.init(config, jax.random.PRNGKey(0), data)
        new, metrics = jax.jit(lambda s, b, k: cql.gradient_step(config, s, b, k))(state, batch, jax.random.PRNGKey(1))
        change = float(new.log_alpha_prime - state.log_alpha_prime)
        assert np.sign(change) == direction, (lagrange, threshold, change)
        np.testing.assert_allclose(metrics["cql/weight"], 3.0, rtol=1e-5)  # α′ starts at cql_alpha
        assert all(np.isfinite(float(v)) for v in metrics.values())


# ----------------------------------------------------------------------------- programs
def test_vmapped_sweep_of_cql_alpha():
    """One compiled program: 2 values of α × 2 seeds. The conservative term lowers the gap: after
    200 gradient steps it is smaller with α = 10 than with α = 0 (SAC on the data)."""
    config = cql.Config(hidden_sizes=(16,), num_gradient_steps=200, steps_per_update=50, batch_size=32,
                        num_sampled_actions=3, eval_every=2, eval_episodes=2, critic_lr=1e-3,
                        cql_alpha=jnp.array([0.0, 10.0]))
    data = _synthetic("Pendulum-v1")
    train = jax.vmap(jax.vmap(cql.train, in_axes=(None, 0, None)),
                     in_axes=(sweep_axes(config, "cql_alpha"), None, None))
    state, metrics, returns = jax.jit(train)(config, jax.random.split(jax.random.PRNGKey(0), 2), data)
    assert returns.shape == (2, 2, 2, 2) and np.all(np.isfinite(np.asarray(returns)))
    assert metrics["cql/gap"].shape == (2, 2, 4)
    np.testing.assert_array_equal(state.update_step, 4)
    for name, value in metrics.items():
        assert np.all(np.isfinite(np.asarray(value))), name
    np.testing.assert_allclose(metrics["cql/weight"][:, :, -1], [[0.0, 0.0], [10.0, 10.0]])
    gap = np.asarray(metrics["cql/gap"])[:, :, -1]
    assert np.all(gap[1] < gap[0]), gap


def test_discrete_train_and_act():
    """Discrete CQL (DQN base, CQL-Lagrange, Double DQN) under jit(vmap(train)): shapes, finite
    metrics, greedy integer actions from `policy(config, state)`."""
    config = cql.Config(env="CartPole-v1", hidden_sizes=(16,), num_gradient_steps=100, steps_per_update=50,
                        batch_size=32, eval_every=1, eval_episodes=2, lagrange=True, double_q=True, layer_norm=True)
    assert config.discrete and not cql.Config().discrete
    data = _synthetic("CartPole-v1")
    state, metrics, returns = jax.jit(jax.vmap(cql.train, in_axes=(None, 0, None)))(
        config, jax.random.split(jax.random.PRNGKey(0), 3), data)
    assert returns.shape == (3, 2, 2) and np.all(np.asarray(returns) >= 1)
    for name in ("loss/critic", "loss/td", "loss/alpha_prime", "cql/gap", "cql/weight", "q_mean"):
        assert metrics[name].shape == (3, 2) and np.all(np.isfinite(np.asarray(metrics[name]))), name
    one = jax.tree.map(lambda x: x[0], state)
    action = cql.act(config, cql.policy(config, one), jnp.asarray(data.obs[:5]), jax.random.PRNGKey(0))
    assert action.shape == (5,) and jnp.issubdtype(action.dtype, jnp.integer)


def test_continuous_act_and_observation_normalization():
    config = cql.Config(hidden_sizes=(8,), num_gradient_steps=10, steps_per_update=10)
    data = _synthetic("Pendulum-v1")
    state = cql.init(config, jax.random.PRNGKey(0), data)
    np.testing.assert_allclose(state.obs_mean, data.obs.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(state.obs_std, data.obs.std(0) + datasets.OBS_STD_EPS, rtol=1e-5)
    raw = cql.Config(hidden_sizes=(8,), num_gradient_steps=10, steps_per_update=10, normalize_obs=False)
    plain = cql.init(raw, jax.random.PRNGKey(0), data)
    np.testing.assert_array_equal(plain.obs_mean, 0.0)
    np.testing.assert_array_equal(plain.obs_std, 1.0)
    policy = cql.policy(config, state)
    action = cql.act(config, policy, jnp.asarray(data.obs[:4]), jax.random.PRNGKey(0))
    sampled = cql.act(config, policy, jnp.asarray(data.obs[:4]), jax.random.PRNGKey(0), deterministic=False)
    assert action.shape == sampled.shape == (4, 1) and np.all(np.abs(np.asarray(sampled)) <= 1.0)


# ----------------------------------------------------------------------------- config
@pytest.mark.parametrize("field, value", [
    ("env", "NoSuchEnv-v0"), ("num_gradient_steps", 0), ("steps_per_update", 0), ("batch_size", 0),
    ("hidden_sizes", (64, 0)), ("num_sampled_actions", 0), ("lagrange", "yes"), ("autotune_alpha", 1),
    ("backup_entropy", None), ("double_q", "no"), ("layer_norm", 0), ("normalize_obs", "true"), ("eval_every", 0),
    ("eval_episodes", 0), ("critic_lr", 0.0), ("actor_lr", -1e-4), ("lagrange_lr", 0.0), ("gamma", 1.5),
    ("tau", 0.0), ("tau", 1.5), ("alpha", 0.0), ("target_entropy_scale", 11.0), ("cql_alpha", -1.0),
    ("cql_alpha", float("nan")), ("lagrange_threshold", float("inf")),
])
def test_config_rejects_bad_value(field, value):
    with pytest.raises(ValueError, match=field):
        cql.Config(**{field: value})


def test_config_cross_field_checks_and_dataset_shapes():
    with pytest.raises(ValueError, match="num_gradient_steps"):
        cql.Config(num_gradient_steps=500, steps_per_update=1_000)
    with pytest.raises(ValueError, match="cql_alpha"):  # α′ = exp(log α′) cannot start at 0
        cql.Config(lagrange=True, cql_alpha=0.0)
    cql.Config(lagrange=False, cql_alpha=0.0)  # plain SAC on the data
    with pytest.raises(ValueError, match="observations"):
        cql.init(cql.Config(), jax.random.PRNGKey(0), _synthetic("CartPole-v1"))
    with pytest.raises(ValueError, match="actions"):
        data = _synthetic("Pendulum-v1")
        cql.init(cql.Config(), jax.random.PRNGKey(0), data.replace(action=data.action[:, 0]))


def test_properties_and_presets():
    config = cql.Config(num_gradient_steps=10_000, steps_per_update=1_000)
    assert cql.OFFLINE
    assert config.num_updates == 10 and config.env_steps_per_update == 1_000
    assert config.gradient_steps_per_update == 1_000
    default = cql.Config()
    assert (default.critic_lr, default.actor_lr, default.cql_alpha, default.batch_size,
            default.num_sampled_actions) == (3e-4, 1e-4, 5.0, 256, 10)
    for env_name in ("Pendulum-v1", "CartPole-v1"):
        preset = cql.Config.for_env(env_name, eval_episodes=3)
        assert preset.env == env_name and preset.eval_episodes == 3
        assert preset.num_gradient_steps == cql.PRESETS[env_name]["num_gradient_steps"]


# ----------------------------------------------------------------------------- learning
def _final_scores(module, config, dataset, key):
    keys = jax.random.split(key, 8)
    _, _, returns = jax.jit(jax.vmap(module.train, in_axes=(None, 0, None)))(config, keys, dataset.transitions)
    return dataset.normalized_score(np.asarray(returns)[:, -1].mean(-1))  # [seeds] final normalized score


@pytest.mark.learning
def test_learns_pendulum_medium_replay_better_than_bc():
    """8 seeds each of continuous CQL (preset: 2 000 gradient steps) and BC (its preset) on
    Pendulum-v1 medium-replay (2 500 transitions of SAC's first steps, mostly random): CQL's 95%
    bootstrap CI of the mean final normalized score lies above BC's. Measured (jax 0.9.2, AMD
    EPYC), CQL mean [CI] vs BC mean [CI] for key sets PRNGKey(0) (this test's), (1), (2):
    50.1 [38.0, 61.3] vs −9.7 [−17.7, −1.5]; 56.8 [50.5, 64.1] vs −12.1 [−19.0, −4.5];
    51.1 [41.6, 59.1] vs −20.7 [−26.8, −15.1] (a normalized 50 is a return of about −700, BC's
    −10 about −1 395). Asserted: CQL's mean ≥ 30, its CI's low end ≥ 20 and above BC's high end."""
    dataset = offline_data.pendulum("medium-replay")
    key = jax.random.PRNGKey(0)
    cql_scores = _final_scores(cql, cql.Config.for_env("Pendulum-v1"), dataset, key)
    bc_scores = _final_scores(bc, bc.Config.for_env("Pendulum-v1"), dataset, key)
    cql_ci, bc_ci = bootstrap_ci(cql_scores, "mean"), bootstrap_ci(bc_scores, "mean")
    print(f"Pendulum medium-replay: CQL {cql_scores.mean():.1f} {cql_ci}, BC {bc_scores.mean():.1f} {bc_ci}")
    assert cql_scores.mean() >= 30.0, cql_scores
    assert cql_ci[0] >= 20.0 and cql_ci[0] > bc_ci[1], (cql_ci, bc_ci)


@pytest.mark.learning
def test_learns_cartpole_medium_better_than_bc():
    """8 seeds each of discrete CQL (preset: 5 000 gradient steps) and BC (its preset) on
    CartPole-v1 medium (20 000 transitions of a PPO policy at about a third of the expert's return):
    CQL's mean final normalized score is above BC's and so is its 95% bootstrap CI. Measured
    (jax 0.9.2, AMD EPYC), CQL mean [CI] vs BC mean [CI] for key sets PRNGKey(0) (this test's), (1),
    (2): 85.9 [62.7, 103.2] vs 22.7 [19.3, 26.1]; 88.2 [68.8, 104.1] vs 19.7 [16.4, 22.7];
    70.2 [49.0, 88.5] vs 19.7 [17.0, 22.8] (104.6 is a return of 500, the time limit; 20 is about
    112). Asserted: CQL's mean ≥ 50 and its CI's low end above BC's high end."""
    dataset = offline_data.cartpole("medium")
    key = jax.random.PRNGKey(0)
    cql_scores = _final_scores(cql, cql.Config.for_env("CartPole-v1"), dataset, key)
    bc_scores = _final_scores(bc, bc.Config.for_env("CartPole-v1"), dataset, key)
    cql_ci, bc_ci = bootstrap_ci(cql_scores, "mean"), bootstrap_ci(bc_scores, "mean")
    print(f"CartPole medium: CQL {cql_scores.mean():.1f} {cql_ci}, BC {bc_scores.mean():.1f} {bc_ci}")
    assert cql_scores.mean() >= 50.0, cql_scores
    assert cql_ci[0] > bc_ci[1], (cql_ci, bc_ci)
