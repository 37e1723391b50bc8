"""GAE, n-step returns and reward-to-go against hand-written NumPy references,
with a truncated and a terminated episode in the same rollout."""

import jax.numpy as jnp
import numpy as np
import pytest

from purerl.returns import gae, n_step_returns, reward_to_go


def gae_reference(rewards, values, next_values, terminated, truncated, gamma, lam):
    """Textbook loop: δ_t = r_t + γ(1−term_t)V(s′_t) − V(s_t); A_t = δ_t + γλ(1−done_t)A_{t+1}."""
    T = len(rewards)
    advantages = np.zeros(T)
    next_adv = 0.0
    for t in reversed(range(T)):
        delta = rewards[t] + gamma * (1 - terminated[t]) * next_values[t] - values[t]
        done = terminated[t] or truncated[t]
        next_adv = delta + gamma * lam * (1 - done) * next_adv
        advantages[t] = next_adv
    return advantages, advantages + values


# One environment, 7 steps: an episode truncated at t=2 (time limit), one terminated at t=4,
# and an unfinished one bootstrapped from V(s′_6).
REWARDS = np.array([1.0, 0.5, 2.0, 1.0, -1.0, 0.3, 0.7])
VALUES = np.array([0.2, 0.4, 0.6, 0.1, -0.3, 0.5, 0.9])
NEXT_VALUES = np.array([0.4, 0.6, 5.0, -0.3, 9.0, 0.9, 1.5])  # 5.0: V(final obs) of the truncated episode
TERMINATED = np.array([0, 0, 0, 0, 1, 0, 0], bool)  # 9.0 above must be ignored (terminal)
TRUNCATED = np.array([0, 0, 1, 0, 0, 0, 0], bool)


def test_gae_matches_reference():
    adv, ret = gae(jnp.asarray(REWARDS), jnp.asarray(VALUES), jnp.asarray(NEXT_VALUES), jnp.asarray(TERMINATED),
                   jnp.asarray(TRUNCATED), 0.9, 0.8)
    ref_adv, ref_ret = gae_reference(REWARDS, VALUES, NEXT_VALUES, TERMINATED, TRUNCATED, 0.9, 0.8)
    np.testing.assert_allclose(np.asarray(adv), ref_adv, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(ret), ref_ret, rtol=1e-5, atol=1e-6)


def test_gae_hand_computed_ends():
    adv, _ = gae(jnp.asarray(REWARDS), jnp.asarray(VALUES), jnp.asarray(NEXT_VALUES), jnp.asarray(TERMINATED),
                 jnp.asarray(TRUNCATED), 0.9, 0.8)
    # truncated step: bootstraps from V(final obs) = 5.0 and does not look past the episode
    assert np.isclose(float(adv[2]), 2.0 + 0.9 * 5.0 - 0.6)
    # terminated step: no bootstrap at all
    assert np.isclose(float(adv[4]), -1.0 - (-0.3))


def test_gae_lambda_one_is_monte_carlo_and_zero_is_td():
    T = 5
    rewards = np.arange(1.0, T + 1)
    values = np.full(T, 0.5)
    next_values = np.full(T, 0.5)
    term = np.array([0, 0, 0, 0, 1], bool)
    trunc = np.zeros(T, bool)
    _, ret = gae(jnp.asarray(rewards), jnp.asarray(values), jnp.asarray(next_values), jnp.asarray(term),
                 jnp.asarray(trunc), 0.9, 1.0)
    mc = [sum(0.9 ** (k - t) * rewards[k] for k in range(t, T)) for t in range(T)]
    np.testing.assert_allclose(np.asarray(ret), mc, rtol=1e-5)
    adv, _ = gae(jnp.asarray(rewards), jnp.asarray(values), jnp.asarray(next_values), jnp.asarray(term),
                 jnp.asarray(trunc), 0.9, 0.0)
    np.testing.assert_allclose(np.asarray(adv), rewards + 0.9 * (1 - term) * 0.5 - 0.5, rtol=1e-5)


def test_gae_batched_over_environments():
    rng = np.random.default_rng(0)
    T, N = 9, 3
    r, v, nv = rng.normal(size=(T, N)), rng.normal(size=(T, N)), rng.normal(size=(T, N))
    term, trunc = rng.random((T, N)) < 0.2, rng.random((T, N)) < 0.2
    adv, _ = gae(*map(jnp.asarray, (r, v, nv, term, trunc)), 0.97, 0.9)
    for n in range(N):
        ref, _ = gae_reference(r[:, n], v[:, n], nv[:, n], term[:, n], trunc[:, n], 0.97, 0.9)
        np.testing.assert_allclose(np.asarray(adv[:, n]), ref, rtol=1e-4, atol=1e-5)


def test_n_step_returns_matches_reference():
    gamma, bootstrap = 0.9, 2.0
    out = n_step_returns(jnp.asarray(REWARDS), jnp.asarray(NEXT_VALUES), jnp.asarray(TERMINATED),
                         jnp.asarray(TRUNCATED), gamma, jnp.asarray(bootstrap))
    ref = np.zeros(7)
    g = bootstrap
    for t in reversed(range(7)):
        done = TERMINATED[t] or TRUNCATED[t]
        cont = NEXT_VALUES[t] if done else g
        g = REWARDS[t] + gamma * (1 - TERMINATED[t]) * cont
        ref[t] = g
    np.testing.assert_allclose(np.asarray(out), ref, rtol=1e-5)
    assert np.isclose(ref[2], 2.0 + 0.9 * 5.0) and np.isclose(ref[4], -1.0)


@pytest.mark.parametrize("gamma", [1.0, 0.5])
def test_reward_to_go_masks_padding(gamma):
    rewards = jnp.array([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0], [4.0, 1.0]])
    mask = jnp.array([[1, 1], [1, 1], [1, 0], [0, 0]], jnp.float32)  # episodes of length 3 and 2
    out = np.asarray(reward_to_go(rewards, mask, gamma))
    np.testing.assert_allclose(out[:, 0], [1 + gamma * 2 + gamma**2 * 3, 2 + gamma * 3, 3, 0])
    np.testing.assert_allclose(out[:, 1], [1 + gamma, 1, 0, 0])
