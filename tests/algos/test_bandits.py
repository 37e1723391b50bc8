"""Bandits: the UCB index, ε-greedy probabilities and the Beta / Gaussian posteriors against
hand-computed values, Thompson's choice probability against its closed form, the regret
bookkeeping, the fixed bandit problem, Config validation; learning: UCB1's logarithmic regret,
UCB1 against fixed-ε greedy, Thompson against UCB1 (Bernoulli), Thompson on the Gaussian bandit."""

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl.algos import bandits
from purerl.config import sweep_axes


def run(config, base: int, seeds: int):
    """`train` vmapped over `seeds` keys from PRNGKey(base)."""
    keys = jax.random.split(jax.random.PRNGKey(base), seeds)
    return jax.jit(jax.vmap(bandits.train, in_axes=(None, 0)))(config, keys)


def cumulative_regret_at(metrics, config, horizons):
    """Mean over seeds and problems of R(t) for each t in `horizons`."""
    t, curve = bandits.regret_curve(metrics, config)
    mean = np.asarray(curve).mean(axis=0)
    return {h: float(mean[np.searchsorted(t, h)]) for h in horizons}


# ----------------------------------------------------------------------------- math
def test_ucb_index_matches_hand_values():
    counts = jnp.array([[2.0, 3.0], [0.0, 4.0]])
    sums = jnp.array([[1.0, 2.0], [0.0, 3.0]])
    index = bandits.ucb_index(counts, sums, math.sqrt(2.0))
    # problem 0: t = 5; arm 0: 1/2 + sqrt(2 ln 5 / 2) = 1.76864; arm 1: 2/3 + sqrt(2 ln 5 / 3) = 1.70250
    np.testing.assert_allclose(index[0], [0.5 + math.sqrt(math.log(5.0)), 2 / 3 + math.sqrt(2 * math.log(5.0) / 3)],
                               rtol=1e-6)
    assert index[0, 0] == pytest.approx(1.76864, abs=1e-5) and index[0, 1] == pytest.approx(1.70250, abs=1e-5)
    assert np.isinf(index[1, 0]) and index[1, 1] == pytest.approx(0.75 + math.sqrt(2 * math.log(4.0) / 4), rel=1e-6)
    # c = 0 is the greedy index
    np.testing.assert_allclose(bandits.ucb_index(counts, sums, 0.0)[0], [0.5, 2 / 3], rtol=1e-6)
    # the arm chosen: the less-pulled arm 0 wins by its larger exploration bonus; the unplayed arm first
    arms = bandits.select_arms(bandits.Config(strategy="ucb1"), counts, sums, jax.random.PRNGKey(0))
    np.testing.assert_array_equal(arms, [0, 0])


def test_epsilon_greedy_probabilities_split_ties():
    counts = jnp.array([[1.0, 1.0, 1.0], [2.0, 0.0, 2.0]])
    sums = jnp.array([[0.2, 0.9, 0.9], [2.0, 0.0, 0.0]])
    probs = bandits.epsilon_greedy_probs(counts, sums, 0.3)
    # problem 0: arms 1 and 2 tie for the best mean: (1 − 0.3)/2 + 0.3/3 = 0.45 each, 0.1 for arm 0
    np.testing.assert_allclose(probs[0], [0.1, 0.45, 0.45], rtol=1e-6)
    # problem 1: the unplayed arm 1 counts as +∞: 0.7 + 0.1 for it, 0.1 for the others
    np.testing.assert_allclose(probs[1], [0.1, 0.8, 0.1], rtol=1e-6)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-6)


def test_beta_posterior_counts_successes_and_failures():
    counts = jnp.array([4.0, 0.0, 3.0])
    sums = jnp.array([3.0, 0.0, 0.0])  # 3 of 4 successes, unplayed, 0 of 3
    alpha, beta = bandits.beta_posterior(counts, sums, 1.0, 1.0)
    np.testing.assert_allclose(alpha, [4.0, 1.0, 1.0])
    np.testing.assert_allclose(beta, [2.0, 1.0, 4.0])
    alpha, beta = bandits.beta_posterior(counts, sums, 0.5, 2.0)
    np.testing.assert_allclose(alpha, [3.5, 0.5, 0.5])
    np.testing.assert_allclose(beta, [3.0, 2.0, 5.0])


def test_gaussian_posterior_matches_hand_values():
    # prior N(0, 1), noise σ = 0.5, 4 pulls summing to 2: precision 1 + 4/0.25 = 17, mean (2/0.25)/17 = 8/17
    mean, std = bandits.gaussian_posterior(jnp.array([4.0, 0.0]), jnp.array([2.0, 0.0]), 0.0, 1.0, 0.5)
    np.testing.assert_allclose(mean, [8 / 17, 0.0], rtol=1e-6)
    np.testing.assert_allclose(std, [1 / math.sqrt(17), 1.0], rtol=1e-6)
    # prior N(1, 2²), σ = 1, one pull of 3: precision 1/4 + 1 = 5/4, mean (1/4 + 3)/(5/4) = 2.6
    mean, std = bandits.gaussian_posterior(jnp.array([1.0]), jnp.array([3.0]), 1.0, 2.0, 1.0)
    np.testing.assert_allclose(mean, [2.6], rtol=1e-6)
    np.testing.assert_allclose(std, [math.sqrt(0.8)], rtol=1e-6)


def test_thompson_choice_probability_matches_closed_form():
    """Beta(2, 1) against Beta(1, 1): P(θ₀ > θ₁) = ∫ 2x·x dx = 2/3 (a Monte-Carlo check over
    100 000 problems, standard error 0.0015)."""
    n = 100_000
    counts = jnp.tile(jnp.array([1.0, 0.0]), (n, 1))
    sums = jnp.tile(jnp.array([1.0, 0.0]), (n, 1))  # arm 0: one success → Beta(2, 1); arm 1: Beta(1, 1)
    arms = bandits.select_arms(bandits.Config(strategy="thompson"), counts, sums, jax.random.PRNGKey(3))
    assert float(jnp.mean(arms == 0)) == pytest.approx(2 / 3, abs=0.006)
    # Gaussian model, prior N(0, 1), σ = 1: arm 0 posterior N(1/2, 1/2) after one reward of 1, arm 1 the prior:
    # P(θ₀ > θ₁) = Φ(0.5 / sqrt(1/2 + 1)) = Φ(0.40825) = 0.65846
    config = bandits.Config(env="GaussianBandit-misc", strategy="thompson", noise_std=1.0)
    arms = bandits.select_arms(config, counts, sums, jax.random.PRNGKey(4))
    assert float(jnp.mean(arms == 0)) == pytest.approx(0.65846, abs=0.006)


def test_ties_are_broken_at_random():
    counts = jnp.zeros((20_000, 4))
    arms = bandits.select_arms(bandits.Config(strategy="ucb1"), counts, counts, jax.random.PRNGKey(1))
    np.testing.assert_allclose(np.bincount(np.asarray(arms), minlength=4) / 20_000, 0.25, atol=0.015)


@pytest.mark.parametrize("env", bandits.BANDIT_ENVS)
def test_regret_bookkeeping_and_the_problem_stays_fixed(env):
    """R(T) accumulated pull by pull equals Σ_a n_a Δ_a (eq. 6); the arms drawn at init are
    those of gymnax's reset and never change (no episode ends: gymnax would redraw them at
    its default 100-pull limit), and the counts add up to T."""
    config = bandits.Config(env=env, strategy="epsilon_greedy", epsilon=0.5, num_envs=32, pulls_per_update=50,
                            total_timesteps=32 * 300, eval_every=3, eval_episodes=2)
    state, metrics, returns = jax.jit(functools.partial(bandits.train, config))(jax.random.PRNGKey(0))
    means = np.asarray(state.arm_means)
    gaps = means.max(-1, keepdims=True) - means
    np.testing.assert_allclose(state.cumulative_regret, (np.asarray(state.counts) * gaps).sum(-1), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(np.asarray(state.counts).sum(-1), 300)
    assert int(state.t) == 300 and config.horizon == 300
    assert float(np.sum(metrics["train/resets"])) == 0.0
    np.testing.assert_allclose(bandits.true_arm_means(state.env_state.backend_state), means)  # still the same arms
    if env == "BernoulliBandit-misc":  # gymnax draws (0.1, 0.9) or (0.9, 0.1)
        np.testing.assert_allclose(np.sort(means, -1), np.tile([0.1, 0.9], (32, 1)), rtol=1e-6)
        assert 0 < means[:, 0].mean() < 1  # both orders occur
        sums = np.asarray(state.sums)
        np.testing.assert_array_equal(sums, np.round(sums))  # Bernoulli rewards: integer successes
    else:  # arm 0 pays 0; arm 1's mean ~ N(−1, 1)
        assert np.all(means[:, 0] == 0) and np.std(means[:, 1]) > 0.3
    assert returns.shape == (config.num_updates // config.eval_every, config.eval_episodes)
    assert metrics["regret/cumulative"].shape == (config.num_updates,)


def test_evaluate_pulls_the_greedy_arm():
    """With statistics that make the best arm greedy in every problem, the evaluation's mean
    reward is μ* (0.9 on the default Bernoulli bandit, 256 problems × 16 pulls: s.e. 0.005);
    with the worst arm greedy it is 0.1."""
    config = bandits.Config(num_envs=256, eval_episodes=16)
    state = bandits.init(config, jax.random.PRNGKey(2))
    best = jax.nn.one_hot(jnp.argmax(state.arm_means, -1), 2)
    good = state.replace(counts=jnp.ones_like(best), sums=best)
    assert float(jnp.mean(bandits.evaluate(config, good))) == pytest.approx(0.9, abs=0.025)
    bad = state.replace(counts=jnp.ones_like(best), sums=1.0 - best)
    assert float(jnp.mean(bandits.evaluate(config, bad))) == pytest.approx(0.1, abs=0.025)
    thompson = dataclasses.replace(config, strategy="thompson")
    assert float(jnp.mean(bandits.evaluate(thompson, good))) == pytest.approx(0.9, abs=0.025)


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="Config.strategy"):
        bandits.Config(strategy="softmax")
    with pytest.raises(ValueError, match="Config.env"):
        bandits.Config(env="CartPole-v1")
    with pytest.raises(ValueError, match="Config.posterior"):
        bandits.Config(env="GaussianBandit-misc", posterior="beta")
    with pytest.raises(ValueError, match="Config.reward_prob"):
        bandits.Config(env="GaussianBandit-misc", reward_prob=0.3)
    with pytest.raises(ValueError, match="Config.epsilon"):
        bandits.Config(epsilon=1.5)
    with pytest.raises(ValueError, match="Config.prior_std"):
        bandits.Config(prior_std=0.0)
    with pytest.raises(ValueError, match="Config.total_timesteps"):
        bandits.Config(num_envs=64, pulls_per_update=10, total_timesteps=100)
    config = bandits.Config.for_env("GaussianBandit-misc", strategy="thompson")
    assert config.model == "gaussian" and bandits.Config().model == "beta"
    assert config.env_steps_per_update == 640 and config.num_updates == 1000 and config.horizon == 10_000


def test_sweep_over_c_and_epsilon_in_one_program():
    """Floats are vmappable. c = 0 is pure greedy: where the first pulls give the 0.9 arm a 0 and
    the 0.1 arm a 1 (probability 0.09 per problem) it keeps the 0.1 arm for ever, so its regret
    exceeds c = √2's; ε = 1 (uniform play) has regret Δ/2 = 0.4 per pull."""
    base = bandits.Config(strategy="ucb1", num_envs=64, pulls_per_update=50, total_timesteps=64 * 500,
                          eval_every=10, eval_episodes=1)
    config = dataclasses.replace(base, c=jnp.array([0.0, math.sqrt(2.0)]))
    train = jax.jit(jax.vmap(bandits.train, in_axes=(sweep_axes(config, "c"), None)))
    state, metrics, _ = train(config, jax.random.PRNGKey(0))
    assert metrics["regret/cumulative"].shape == (2, 10)
    regret = np.asarray(state.cumulative_regret).mean(-1)
    assert regret[0] > regret[1], regret  # measured 19.5 against 11.4
    uniform = dataclasses.replace(base, strategy="epsilon_greedy", epsilon=jnp.array([1.0]))
    train = jax.jit(jax.vmap(bandits.train, in_axes=(sweep_axes(uniform, "epsilon"), None)))
    state, _, _ = train(uniform, jax.random.PRNGKey(0))
    # expected R(500) = 500 · 0.8 / 2 = 200; over 64 problems the s.e. is about 1.1
    assert float(np.mean(state.cumulative_regret)) == pytest.approx(200.0, abs=6.0)


# ----------------------------------------------------------------------------- learning
# Measured on the 2-core machine (shared with other jobs), PRNGKey bases 0, 1, 2: the numbers
# are in the comments of each test. All learning runs use the gymnax default Bernoulli bandit
# (arms 0.1 / 0.9, Δ = 0.8) or Gaussian bandit. The four learning tests took 47 s together at a
# load average of ~1.5 and 89 s at ~7 (other jobs): almost all of it is XLA compilation (four
# programs, 5–20 s each); the pulls themselves run in 1–3 s per test.
UCB = bandits.Config(strategy="ucb1", num_envs=128, pulls_per_update=100, total_timesteps=128 * 10_000,
                     eval_every=100, eval_episodes=1)


@pytest.fixture(scope="module")
def ucb_run():
    return run(UCB, base=0, seeds=2)  # 256 problems, T = 10 000


@pytest.mark.learning
def test_ucb1_regret_grows_logarithmically(ucb_run):
    """For finite T, UCB1's regret is a·ln T + b with a clearly negative b (about −8 here: in the
    first pulls both arms' bonuses are large and the arms are alternated less than
    ln t/Δ² would suggest), so the plain ratio R(T₂)/R(T₁) converges to ln T₂/ln T₁ only
    for astronomically large T. Subtracting the regret at T₀ = 100 removes b:
        (R(10⁴) − R(10²)) / (R(10³) − R(10²))  →  ln(10⁴/10²)/ln(10³/10²) = 2.
    Measured 2.011 / 2.027 / 2.033 (key bases 0, 1, 2; 256 problems each). Stated tolerance
    ±15 % (1.7 … 2.3): √T growth would give 4.2, linear growth 11, a constant regret 0/0.
    The plain ratio R(10⁴)/R(10³) (measured 1.546 / 1.550 / 1.548) must lie between ln 10⁴/ln 10³
    = 1.33 (what b < 0 can only raise) and 2 — far from √10 = 3.16 or 10."""
    _, metrics, _ = ucb_run
    r = cumulative_regret_at(metrics, UCB, (100, 1000, 10_000))
    growth = (r[10_000] - r[100]) / (r[1000] - r[100])
    assert growth == pytest.approx(2.0, rel=0.15), r
    assert math.log(1e4) / math.log(1e3) < r[10_000] / r[1000] < 2.0, r
    assert 15.0 < r[10_000] < 30.0, r  # measured 21.0 / 21.0 / 20.9; bound of Auer et al.: 8 ln T/Δ + … ≈ 95


@pytest.mark.learning
def test_ucb1_beats_fixed_epsilon_greedy(ucb_run):
    """ε = 0.1 pulls the wrong arm 5 % of the time for ever: R(10⁴) ≈ 0.05·0.8·10⁴ = 400
    (measured 400.1 / 402.1 for key bases 1 / 2, 256 problems; 401.8 for base 0 with 1024) against
    UCB1's 21."""
    config = dataclasses.replace(UCB, strategy="epsilon_greedy", epsilon=0.1)
    _, metrics, _ = run(config, base=0, seeds=2)
    eps = cumulative_regret_at(metrics, config, (1000, 10_000))
    ucb = cumulative_regret_at(ucb_run[1], UCB, (1000, 10_000))
    assert ucb[1000] < 0.6 * eps[1000], (ucb, eps)  # measured 13.6 against 41.1 / 41.5
    assert ucb[10_000] < 0.2 * eps[10_000], (ucb, eps)  # measured 21.0 against 400.1 / 402.1
    assert eps[10_000] / eps[1000] > 5.0  # linear: measured 9.7


@pytest.mark.learning
def test_thompson_matches_or_beats_ucb1_on_bernoulli_arms(ucb_run):
    """Beta-Bernoulli Thompson sampling reaches the Lai–Robbins rate Δ/KL(0.1, 0.9) ln T = 0.46 ln T
    against UCB1's ≈ 3.2 ln T: measured R(10³) = 2.75 / 2.77 (Thompson, key bases 1 / 2, 256 problems;
    2.71 for base 0 with 1024) against UCB1's 13.6; greedy-arm evaluation 0.91 / 0.94."""
    config = dataclasses.replace(UCB, strategy="thompson", total_timesteps=128 * 1000, eval_every=10)
    state, metrics, returns = run(config, base=0, seeds=2)
    ts = cumulative_regret_at(metrics, config, (1000,))[1000]
    ucb = cumulative_regret_at(ucb_run[1], UCB, (1000,))[1000]
    assert ts <= ucb, (ts, ucb)
    assert ts < 0.5 * ucb, (ts, ucb)
    assert float(np.mean(returns[:, -1])) > 0.85  # greedy arm's reward ≈ μ* = 0.9


@pytest.mark.learning
def test_thompson_on_the_gaussian_bandit():
    """Gaussian Thompson sampling (prior N(0, 1), σ = 0.1) against the regret of uniform play,
    T·E[Δ]/2 (E[Δ] = E|μ| over the drawn problems): measured R(10³) = 1.40 / 1.30 (key bases 1 / 2,
    256 problems; 1.40 for base 0 with 1024) where uniform play gives 607 / 544; the greedy arms' mean
    μ equals the mean μ* to 1e-7 (0.0956 / 0.0825)."""
    config = bandits.Config(env="GaussianBandit-misc", strategy="thompson", num_envs=128, pulls_per_update=100,
                            total_timesteps=128 * 1000, eval_every=10, eval_episodes=1)
    state, metrics, _ = run(config, base=0, seeds=2)
    means = np.asarray(state.arm_means)
    uniform = 1000 * np.mean(means.max(-1) - means.min(-1)) / 2
    ts = float(np.mean(state.cumulative_regret))
    assert ts < 0.02 * uniform, (ts, uniform)
    assert float(np.mean(metrics["train/greedy_arm_mean"][:, -1])) == pytest.approx(
        float(np.mean(means.max(-1))), abs=0.01)
