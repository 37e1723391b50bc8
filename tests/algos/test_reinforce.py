"""REINFORCE: returns and baselines against NumPy, the baseline's variance reduction,
probes, CartPole learning, Config validation, Brax smoke test."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl.algos import reinforce

GAMMA = 0.9

# A hand-made batch, time-major [T=5, N=3]: episode 0 runs 5 steps and is truncated by the
# time limit, episode 1 terminates after 2 steps, episode 2 terminates after 4.
REWARDS = np.array([[1.0, 2.0, -1.0],
                     [0.5, 1.0, 0.0],
                     [2.0, 7.0, 3.0],
                     [-1.0, 7.0, 1.0],
                     [1.5, 7.0, 7.0]], np.float32)  # the 7s are padding and must not count
LENGTHS = np.array([5, 2, 4])
MASK = (np.arange(5)[:, None] < LENGTHS[None, :]).astype(np.float32)
TRUNCATED = np.zeros((5, 3), bool)
TRUNCATED[4, 0] = True
FINAL_VALUE = 3.0  # V(s′) of episode 0's final observation


def numpy_reward_to_go(bootstrap_truncated=False):
    out = np.zeros((5, 3), np.float64)
    for n in range(3):
        h = LENGTHS[n]
        tail = FINAL_VALUE if (bootstrap_truncated and TRUNCATED[h - 1, n]) else 0.0
        for t in range(h):
            out[t, n] = sum(GAMMA ** (k - t) * REWARDS[k, n] for k in range(t, h)) + GAMMA ** (h - t) * tail
    return out


def numpy_leave_one_out_baseline(returns):
    b = np.zeros((5, 3))
    for t in range(5):
        live = [n for n in range(3) if t < LENGTHS[n]]
        for n in live:
            others = [returns[t, m] for m in live if m != n]
            b[t, n] = np.mean(others) if others else 0.0
    return b


# ----------------------------------------------------------------------------- math
def test_reward_to_go_and_trajectory_return_match_numpy():
    rtg = reinforce.episode_returns(jnp.asarray(REWARDS), jnp.asarray(MASK), GAMMA, "reward_to_go")
    np.testing.assert_allclose(rtg, numpy_reward_to_go(), rtol=1e-6, atol=1e-6)
    traj = reinforce.episode_returns(jnp.asarray(REWARDS), jnp.asarray(MASK), GAMMA, "trajectory")
    expected = numpy_reward_to_go()[0][None, :] * MASK  # R(τ) on every valid step
    np.testing.assert_allclose(traj, expected, rtol=1e-6, atol=1e-6)
    assert traj[0, 1] == pytest.approx(2.0 + GAMMA * 1.0)  # hand value: 2 + 0.9·1


def test_truncated_return_bootstraps_from_final_value():
    bootstrap = GAMMA * FINAL_VALUE * TRUNCATED.astype(np.float32)
    rtg = reinforce.episode_returns(jnp.asarray(REWARDS), jnp.asarray(MASK), GAMMA, "reward_to_go",
                                    jnp.asarray(bootstrap))
    np.testing.assert_allclose(rtg, numpy_reward_to_go(bootstrap_truncated=True), rtol=1e-6, atol=1e-6)
    assert rtg[4, 0] == pytest.approx(1.5 + GAMMA * FINAL_VALUE)


def test_baselines_match_numpy():
    returns = jnp.asarray(numpy_reward_to_go(), jnp.float32)
    mask = jnp.asarray(MASK)
    np.testing.assert_allclose(reinforce.baselines(returns, mask, "none"), 0.0)
    mean = reinforce.baselines(returns, mask, "mean")
    np.testing.assert_allclose(mean, numpy_leave_one_out_baseline(np.asarray(returns)), rtol=1e-6, atol=1e-6)
    # t = 0: all three run, episode 0's baseline is the mean of episodes 1 and 2
    assert mean[0, 0] == pytest.approx((returns[0, 1] + returns[0, 2]) / 2)
    # t = 3: only episodes 0 and 2 are running, so each one's baseline is the other's return
    assert mean[3, 0] == pytest.approx(returns[3, 2]) and mean[3, 2] == pytest.approx(returns[3, 0])
    # t = 4: episode 0 runs alone: no other episode, baseline 0 (the plain mean would cancel G)
    assert mean[4, 0] == 0.0 and mean[4, 1] == 0.0
    values = jnp.arange(15.0).reshape(5, 3)
    np.testing.assert_allclose(reinforce.baselines(returns, mask, "value", values), np.arange(15.0).reshape(5, 3) * MASK)


def test_policy_loss_is_masked_sum_over_time_mean_over_episodes():
    config = reinforce.Config()
    env = reinforce.make_env(config.env, config.normalize_obs)
    policy, _ = reinforce.make_networks(config, env)
    obs = jax.random.normal(jax.random.PRNGKey(0), (5, 3, 4))
    params = policy.init(jax.random.PRNGKey(1), obs)
    action = jnp.asarray(np.arange(15).reshape(5, 3) % 2)
    weights = jnp.asarray(numpy_reward_to_go(), jnp.float32)
    loss, aux = jax.jit(reinforce.policy_loss, static_argnums=1)(params, policy, obs, action, weights,
                                                                 jnp.asarray(MASK), 0.0)
    log_prob = np.asarray(policy.apply(params, obs).log_prob(action))
    expected = -np.sum(MASK * numpy_reward_to_go() * log_prob) / 3
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    assert float(aux["loss/policy"]) == pytest.approx(expected, rel=1e-5)


class _LogitsPolicy:
    """A stand-in policy: π_θ = softmax(θ) whatever the observation (θ are the parameters)."""

    def apply(self, logits, obs):
        return reinforce.distrax.Categorical(logits=jnp.broadcast_to(logits, obs.shape[:-1] + logits.shape))


def _leave_one_out(returns, mask):
    return reinforce.baselines(returns, mask, "mean")


def _inclusive_mean(returns, mask):
    """The baseline before the leave-one-out fix: the mean of G_t over ALL episodes still
    running at step t, the episode's own return included."""
    live = mask.sum(axis=1, keepdims=True)
    return (returns * mask).sum(axis=1, keepdims=True) / jnp.maximum(live, 1.0) * mask


def _gradient_estimates(logits, sample_batch, num_episodes, baseline, num_batches=50_000):
    """The estimate −∇θ eq. (5) on `num_batches` independent batches of `num_episodes`
    episodes from `sample_batch(key, N) -> (action, reward, mask)`, each [T, N], with γ = 1.

    Returns (mean estimate, its standard error), both [K]."""
    def estimate(key):
        action, reward, mask = sample_batch(key, num_episodes)
        returns = reinforce.episode_returns(reward, mask, 1.0, "reward_to_go")
        weights = returns - baseline(returns, mask)
        obs = jnp.zeros(action.shape + (1,))
        loss = lambda p: reinforce.policy_loss(p, _LogitsPolicy(), obs, action, weights, mask, 0.0)[0]  # noqa: E731
        return -jax.grad(loss)(logits)
    estimates = np.asarray(jax.jit(jax.vmap(estimate))(jax.random.split(jax.random.PRNGKey(0), num_batches)))
    return estimates.mean(axis=0), estimates.std(axis=0) / np.sqrt(num_batches)


BANDIT_LOGITS = jnp.array([0.3, -0.2, 0.5])
BANDIT_MEANS = jnp.array([1.0, 2.0, -0.5])  # arm k pays BANDIT_MEANS[k] + N(0, 0.5²)


def _bandit_batch(key, n):
    action_key, noise_key = jax.random.split(key)
    action = jax.random.categorical(action_key, BANDIT_LOGITS, shape=(1, n))
    reward = BANDIT_MEANS[action] + 0.5 * jax.random.normal(noise_key, (1, n))
    return action, reward, jnp.ones((1, n))


@pytest.mark.parametrize("num_episodes", [1, 2, 4])
def test_leave_one_out_baseline_is_unbiased_on_a_bandit(num_episodes):
    """A 3-armed Gaussian bandit, one step per episode: ∇θ E[r] = π ⊙ (μ − π·μ) exactly
    (≈ [0.16, 0.29, −0.45]). The mean of 50,000 batch estimates with the leave-one-out
    baseline matches it within 4 standard errors (SE ≈ 0.002–0.005 per component), while
    the inclusive mean of algorithm 3.5 as written converges to (1 − 1/N) times it:
    0 for N = 1, ½ for N = 2, ¾ for N = 4."""
    pi = jax.nn.softmax(BANDIT_LOGITS)
    true_gradient = np.asarray(pi * (BANDIT_MEANS - pi @ BANDIT_MEANS))
    mean, standard_error = _gradient_estimates(BANDIT_LOGITS, _bandit_batch, num_episodes, _leave_one_out)
    np.testing.assert_array_less(np.abs(mean - true_gradient), 4 * standard_error)
    mean, standard_error = _gradient_estimates(BANDIT_LOGITS, _bandit_batch, num_episodes, _inclusive_mean)
    np.testing.assert_array_less(np.abs(mean - (1 - 1 / num_episodes) * true_gradient), 4 * standard_error + 1e-7)


TREE_LOGITS = jnp.array([0.4, -0.3])


def _tree_batch(key, n):
    """Two-step episodes: a_0 = 1 pays 1 and ends; a_0 = 0 pays 0 and goes on to a_1, which
    pays 3 (a_1 = 0) or −1 (a_1 = 1) and ends. So the number of episodes still running at
    t = 1 varies from batch to batch (sometimes one, sometimes none)."""
    action = jax.random.categorical(key, TREE_LOGITS, shape=(2, n))
    reward = jnp.stack([jnp.where(action[0] == 1, 1.0, 0.0), jnp.where(action[1] == 0, 3.0, -1.0)])
    mask = jnp.stack([jnp.ones(n), (action[0] == 0).astype(jnp.float32)])
    return action, reward * mask, mask


def test_leave_one_out_baseline_is_unbiased_per_time_step():
    """The per-step generalization (leave-one-out over the other episodes still running at
    t) on variable-length episodes, N = 4: the mean of 50,000 estimates matches the exact
    gradient of J(θ) = π_1 + π_0 (3π_0 − π_1) within 4 standard errors; the inclusive mean
    misses it by more than 10 (it scales each step's term by (1 − 1/live_t))."""
    def objective(logits):
        pi = jax.nn.softmax(logits)
        return pi[1] * 1.0 + pi[0] * (pi[0] * 3.0 + pi[1] * -1.0)
    true_gradient = np.asarray(jax.grad(objective)(TREE_LOGITS))
    mean, standard_error = _gradient_estimates(TREE_LOGITS, _tree_batch, 4, _leave_one_out)
    np.testing.assert_array_less(np.abs(mean - true_gradient), 4 * standard_error)
    mean, standard_error = _gradient_estimates(TREE_LOGITS, _tree_batch, 4, _inclusive_mean)
    assert np.all(np.abs(mean - true_gradient) > 10 * standard_error), (mean, true_gradient, standard_error)


def test_mean_baseline_reduces_gradient_variance_on_the_same_batches():
    """Across 64 batches of 8 CartPole episodes from one fixed initial policy, the total
    variance of the policy-gradient estimate is lower with the (leave-one-out) mean baseline
    of algorithm 3.5 than without it (same batches), and lower with reward-to-go than with
    the whole-trajectory return."""
    config = reinforce.Config(num_envs=8)
    state = reinforce.init(config, jax.random.PRNGKey(0))
    env = reinforce.make_env(config.env, config.normalize_obs)
    policy, _ = reinforce.make_networks(config, env)
    variants = {"trajectory/none": ("trajectory", "none"), "rtg/none": ("reward_to_go", "none"),
                "rtg/mean": ("reward_to_go", "mean")}

    def gradients(key):
        _, episodes = reinforce.collect_episodes(config, state.params["policy"], state.obs_stats, key)
        out = {}
        for name, (returns, baseline) in variants.items():
            variant = config.replace(returns=returns, baseline=baseline)
            g, b = reinforce.policy_weights(variant, state.params, episodes)
            grads = jax.grad(lambda p: reinforce.policy_loss(p, policy, episodes.obs, episodes.action, g - b,
                                                            episodes.mask, 0.0)[0])(state.params["policy"])
            out[name] = jnp.concatenate([x.ravel() for x in jax.tree.leaves(grads)])
        return out

    grads = jax.jit(jax.vmap(gradients))(jax.random.split(jax.random.PRNGKey(1), 64))
    total_var = {name: float(jnp.sum(jnp.var(g, axis=0))) for name, g in grads.items()}
    assert total_var["rtg/mean"] < 0.5 * total_var["rtg/none"], total_var
    assert total_var["rtg/none"] < total_var["trajectory/none"], total_var


# ----------------------------------------------------------------------------- probes
def _train(config, seed=0):
    return jax.jit(reinforce.train)(config, jax.random.PRNGKey(seed))


def test_action_probe_policy_learns_action_one():
    config = reinforce.Config(env="probe/action", num_envs=16, total_timesteps=16 * 150, learning_rate=1e-2,
                              eval_every=50)
    state, _, eval_returns = _train(config)
    env = reinforce.make_env(config.env, False)
    policy, _ = reinforce.make_networks(config, env)
    probs = policy.apply(state.params["policy"], jnp.zeros((1, 1))).probs[0]
    assert float(probs[1]) > 0.9
    assert float(eval_returns[-1].mean()) == 1.0


def test_continuous_action_probe_mean_moves_to_optimum():
    config = reinforce.Config(env="probe/action-continuous", num_envs=16, total_timesteps=16 * 300,
                              learning_rate=1e-2, init_log_std=-1.0, eval_every=100)
    state, _, _ = _train(config)
    mean_action = reinforce.act(config, state.params, jnp.zeros((1, 1)), jax.random.PRNGKey(0))
    assert abs(float(mean_action[0, 0]) - 0.5) < 0.1


def test_observation_probe_value_baseline_learns_v_of_s():
    config = reinforce.Config(env="probe/observation", baseline="value", num_envs=16, total_timesteps=16 * 300,
                              value_learning_rate=1e-2, eval_every=100)
    state, metrics, _ = _train(config)
    _, value = reinforce.make_networks(config, reinforce.make_env(config.env, False))
    v = value.apply(state.params["value"], jnp.array([[1.0], [-1.0]]))
    np.testing.assert_allclose(v, [1.0, -1.0], atol=0.1)
    assert float(metrics["loss/value"][-1]) < 0.01


def test_time_limit_probe_value_baseline_bootstraps_truncation():
    """probe/time-limit: reward 1 forever, cut at 5 steps. With the bootstrapped return,
    V(0) → 1/(1−γ) = 2 for γ = 0.5 (a plain 5-step sum would average to less)."""
    config = reinforce.Config(env="probe/time-limit", baseline="value", gamma=0.5, num_envs=8,
                              total_timesteps=8 * 5 * 400, value_learning_rate=1e-2, eval_every=100)
    state, _, _ = _train(config)
    _, value = reinforce.make_networks(config, reinforce.make_env(config.env, False))
    assert float(value.apply(state.params["value"], jnp.zeros((1, 1)))[0]) == pytest.approx(2.0, abs=0.1)


# ----------------------------------------------------------------------------- learning
@pytest.mark.learning
def test_cartpole_learns():
    """CartPole-v1, 8 seeds vmapped, preset (reward-to-go, leave-one-out mean baseline,
    lr 3e-3), 40 updates of 16 whole episodes = 320,000 simulated env steps per seed (each
    update runs 16 envs × 500 steps, masked after each episode). Asserts the mean final
    deterministic-evaluation return over the 8 seeds ≥ 475. Measured (keys =
    split(PRNGKey(k), 8)): k = 42 (this test), 7, 123, 0, 1 → 500.0, 500.0, 498.2, 499.0,
    500.0 (worst single seed 485.8); about 10 s per run after a 40 s compilation. With the
    earlier inclusive-mean baseline k = 42, 7, 123 gave 500.0, 492.8, 497.6 (threshold 460)."""
    config = reinforce.Config.for_env("CartPole-v1", total_timesteps=320_000)
    keys = jax.random.split(jax.random.PRNGKey(42), 8)
    _, _, eval_returns = jax.jit(jax.vmap(reinforce.train, in_axes=(None, 0)))(config, keys)
    assert eval_returns.shape == (8, 4, config.eval_episodes)
    assert float(eval_returns[:, -1].mean()) >= 475.0, eval_returns[:, -1].mean(axis=-1)


# ----------------------------------------------------------------------------- contract
def test_vmap_over_seeds_and_sweep_a_float_field():
    from purerl.config import sweep_axes

    config = reinforce.Config(env="probe/action", num_envs=4, total_timesteps=40, eval_every=5,
                              learning_rate=jnp.array([1e-3, 1e-2]))
    train = jax.jit(jax.vmap(reinforce.train, in_axes=(sweep_axes(config, "learning_rate"), None)))
    _, metrics, eval_returns = train(config, jax.random.PRNGKey(0))
    assert eval_returns.shape == (2, 2, config.eval_episodes)
    assert metrics["loss/policy"].shape == (2, 10)


def test_clip_by_global_norm_scales_to_the_limit_and_zero_disables():
    grads = {"a": jnp.array([3.0, 0.0]), "b": jnp.array([[4.0]])}  # global norm 5

    def clipped(max_norm):
        return reinforce.clip_by_global_norm(max_norm).update(grads, None)[0]

    np.testing.assert_allclose(clipped(1.0)["a"], [0.6, 0.0], rtol=1e-6)
    np.testing.assert_allclose(clipped(1.0)["b"], [[0.8]], rtol=1e-6)
    for max_norm in (0.0, 5.0, 10.0):  # off, at the limit, below the limit: unchanged
        assert jax.tree.all(jax.tree.map(lambda x, y: bool(jnp.array_equal(x, y)), clipped(max_norm), grads))
    swept = jax.vmap(clipped)(jnp.array([0.0, 2.5]))  # a traced (swept) limit
    np.testing.assert_allclose(swept["a"][:, 0], [3.0, 1.5], rtol=1e-6)


def test_max_grad_norm_clips_the_update_and_default_is_unclipped():
    """Adam's first moment after one step is (1 − β₁)·g: its global norm is 0.1·‖g‖ without
    clipping (the logged, unclipped norm) and 0.1·max_grad_norm when clipping binds, for the
    policy and V_φ alike."""
    from optax import global_norm

    base = reinforce.Config(env="probe/observation", baseline="value", num_envs=4, total_timesteps=4 * 10)

    def first_moments(config):
        state, metrics = jax.jit(functools.partial(reinforce.update, config))(reinforce.init(config, jax.random.PRNGKey(3)))
        mu = {k: global_norm(state.opt_state[k][1][0].mu) for k in ("policy", "value")}
        return state, metrics, mu

    state0, metrics0, mu0 = first_moments(base)
    grad_norm = float(metrics0["train/policy_grad_norm"])
    assert grad_norm > 1e-3
    assert float(mu0["policy"]) == pytest.approx(0.1 * grad_norm, rel=1e-4)
    assert float(mu0["value"]) > 1e-3
    # A limit above both gradient norms changes nothing, bit for bit.
    state_big, _, _ = first_moments(base.replace(max_grad_norm=1e6))
    assert jax.tree.all(jax.tree.map(lambda x, y: bool(jnp.array_equal(x, y)), state_big.params, state0.params))
    _, metrics, mu = first_moments(base.replace(max_grad_norm=1e-4))
    assert float(metrics["train/policy_grad_norm"]) == pytest.approx(grad_norm, rel=1e-6)  # logged before clipping
    assert float(mu["policy"]) == pytest.approx(1e-5, rel=1e-4)
    assert float(mu["value"]) == pytest.approx(1e-5, rel=1e-4)


@pytest.mark.parametrize("field, value", [
    ("env", "NoSuchEnv-v0"), ("total_timesteps", 0), ("num_envs", 0), ("eval_every", 0), ("eval_episodes", 0),
    ("returns", "sum"), ("baseline", "median"), ("hidden_sizes", (0,)), ("activation", "gelu"),
    ("normalize_obs", "yes"), ("learning_rate", 0.0), ("value_learning_rate", -1.0), ("gamma", 1.5),
    ("ent_coef", -0.1), ("init_log_std", 5.0), ("max_grad_norm", -1.0), ("max_grad_norm", float("inf")),
])
def test_config_rejects_bad_value(field, value):
    with pytest.raises(ValueError, match=field):
        reinforce.Config(**{field: value})


def test_config_rejects_trajectory_return_with_value_baseline_and_too_few_steps():
    with pytest.raises(ValueError, match="baseline"):
        reinforce.Config(returns="trajectory", baseline="value")
    with pytest.raises(ValueError, match="total_timesteps"):
        reinforce.Config(num_envs=4, total_timesteps=1999)  # one update is 4 × 500 steps


@pytest.mark.brax
def test_brax_smoke():
    config = reinforce.Config(env="brax/inverted_pendulum", baseline="value", num_envs=2, hidden_sizes=(16,),
                              total_timesteps=4000, eval_episodes=1)

    @jax.jit
    def two_updates(key):  # one compiled program: init, then a scan of 2 updates
        state = reinforce.init(config, key)
        return jax.lax.scan(lambda s, _: reinforce.update(config, s), state, None, length=2)

    state, metrics = two_updates(jax.random.PRNGKey(0))
    metrics = jax.tree.map(lambda m: m[-1], metrics)
    for name, value in metrics.items():
        assert np.isfinite(float(value)), name
    assert float(metrics["train/valid_steps"]) >= 2
    assert state.params["policy"]["params"]["log_std"].shape == (1,)
    assert int(state.update_step) == 2
