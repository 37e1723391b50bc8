"""Q actor-critic (algorithm 3.6): SARSA target and losses on a hand-made batch, probes,
CartPole learning, Config validation, Brax smoke test."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl.algos import actor_critic as ac


def _networks(config):
    return ac.make_networks(config, ac.make_env(config.env, config.normalize_obs))


# ----------------------------------------------------------------------------- math
def test_sarsa_target_bootstraps_except_on_terminal():
    reward = jnp.array([1.0, 0.5, -1.0, 2.0])
    terminated = jnp.array([False, True, False, True])
    next_q = jnp.array([10.0, 10.0, -4.0, 3.0])
    y = ac.sarsa_targets(reward, terminated, next_q, 0.9)
    np.testing.assert_allclose(y, [1.0 + 0.9 * 10.0, 0.5, -1.0 - 0.9 * 4.0, 2.0], rtol=1e-6)


def test_critic_and_actor_losses_match_numpy_discrete():
    config = ac.Config()
    actor, critic = _networks(config)
    obs = jax.random.normal(jax.random.PRNGKey(0), (6, 4))
    action = jnp.array([0, 1, 1, 0, 1, 0])
    targets = jnp.array([1.0, -2.0, 0.5, 3.0, 0.0, 1.5])
    critic_params = critic.init(jax.random.PRNGKey(1), obs)
    actor_params = actor.init(jax.random.PRNGKey(2), obs)

    q_all = np.asarray(jax.jit(critic.apply)(critic_params, obs))
    q = q_all[np.arange(6), np.asarray(action)]
    loss, q_out = jax.jit(ac.critic_loss, static_argnums=1)(critic_params, critic, obs, action, targets)
    np.testing.assert_allclose(q_out, q, rtol=1e-6)
    assert float(loss) == pytest.approx(0.5 * np.mean((q - np.asarray(targets)) ** 2), rel=1e-5)

    logits = np.asarray(jax.jit(lambda p, o: actor.apply(p, o).logits)(actor_params, obs))
    log_pi = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    log_prob = log_pi[np.arange(6), np.asarray(action)]
    entropy = -(np.exp(log_pi) * log_pi).sum(-1).mean()
    loss, aux = jax.jit(ac.actor_loss, static_argnums=1)(actor_params, actor, obs, action, jnp.asarray(q), 0.1)
    assert float(aux["loss/actor"]) == pytest.approx(-np.mean(q * log_prob), rel=1e-5)
    assert float(loss) == pytest.approx(-np.mean(q * log_prob) - 0.1 * entropy, rel=1e-5)

    # the "expected_q" baseline is Σ_a π(a|s) Q(s,a)
    params = {"actor": actor_params, "critic": critic_params}
    b = jax.jit(functools.partial(ac.expected_q, config, actor, critic))(params, obs, jax.random.PRNGKey(3))
    np.testing.assert_allclose(b, (np.exp(log_pi) * q_all).sum(-1), rtol=1e-5)


def test_actor_gradient_is_q_times_score():
    """∇_θ of eq. (4) = −mean_i Q_i ∇_θ log π(a_i|s_i) (alg. 3.6 step 4), checked against
    per-sample score vectors."""
    config = ac.Config()
    actor, _ = _networks(config)
    obs = jax.random.normal(jax.random.PRNGKey(0), (5, 4))
    action = jnp.array([1, 0, 1, 1, 0])
    weights = jnp.array([2.0, -1.0, 0.5, 3.0, 1.0])
    params = actor.init(jax.random.PRNGKey(1), obs)
    grads = jax.jit(jax.grad(lambda p: ac.actor_loss(p, actor, obs, action, weights, 0.0)[0]))(params)
    scores = jax.jit(jax.vmap(jax.grad(lambda p, o, a: actor.apply(p, o[None]).log_prob(a[None])[0]),
                              in_axes=(None, 0, 0)))(params, obs, action)
    expected = jax.tree.map(lambda s: -jnp.tensordot(weights, s, axes=1) / 5, scores)
    for g, e in zip(jax.tree.leaves(grads), jax.tree.leaves(expected)):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-6)


def test_continuous_critic_takes_clipped_action():
    config = ac.Config(env="Pendulum-v1")
    actor, critic = _networks(config)
    obs = jnp.ones((3, 3))
    params = critic.init(jax.random.PRNGKey(0), obs, jnp.zeros((3, 1)))
    q_big = ac.q_value(critic, params, obs, jnp.full((3, 1), 5.0))
    q_one = ac.q_value(critic, params, obs, jnp.ones((3, 1)))
    np.testing.assert_allclose(q_big, q_one)
    assert q_one.shape == (3,)


# ----------------------------------------------------------------------------- probes
def _train(config, seed=0):
    return jax.jit(ac.train)(config, jax.random.PRNGKey(seed))


def test_action_probe_policy_learns_action_one():
    config = ac.Config(env="probe/action", num_envs=16, total_timesteps=16 * 400, actor_learning_rate=1e-2,
                       critic_learning_rate=1e-2, eval_every=100)
    state, _, eval_returns = _train(config)
    actor, critic = _networks(config)
    probs = actor.apply(state.params["actor"], jnp.zeros((1, 1))).probs[0]
    q = critic.apply(state.params["critic"], jnp.zeros((1, 1)))[0]
    assert float(probs[1]) > 0.9
    assert float(q[1]) == pytest.approx(1.0, abs=0.1)
    assert float(eval_returns[-1].mean()) == 1.0


def test_time_limit_probe_sarsa_bootstraps_truncation():
    """probe/time-limit: reward 1 forever, truncated at 5 steps. Q(0, a) → 1/(1−γ) = 2 for
    γ = 0.5 only if the truncated step bootstraps (a terminal would pull Q(0,·) below 2)."""
    config = ac.Config(env="probe/time-limit", num_envs=16, total_timesteps=16 * 1500, gamma=0.5,
                       critic_learning_rate=3e-3, eval_every=500)
    state, _, _ = _train(config)
    _, critic = _networks(config)
    q = critic.apply(state.params["critic"], jnp.zeros((1, 1)))[0]
    np.testing.assert_allclose(q, [2.0, 2.0], atol=0.1)


def test_continuous_action_probe_mean_moves_to_optimum():
    config = ac.Config(env="probe/action-continuous", num_envs=16, total_timesteps=16 * 1000,
                       actor_learning_rate=3e-3, critic_learning_rate=1e-2, eval_every=500)
    state, _, _ = _train(config)
    mean_action = ac.act(config, state.params, jnp.zeros((1, 1)), jax.random.PRNGKey(0))
    assert abs(float(mean_action[0, 0]) - 0.5) < 0.15


# ----------------------------------------------------------------------------- learning
@pytest.mark.learning
def test_cartpole_learns():
    """CartPole-v1, 8 seeds vmapped, 32 envs × 9,375 updates = 300,000 env steps per seed,
    the algorithm as written (no baseline), preset learning rates (actor 1e-4, critic 1e-3).
    Measured mean final deterministic-evaluation return over the 8 seeds: 466.5, 498.3,
    496.7 for seed sets 42, 7, 123 (about 75 s with compilation on the loaded 2-core
    machine; single seeds sometimes stall near 250). Threshold 400."""
    config = ac.Config.for_env("CartPole-v1", total_timesteps=300_000)
    keys = jax.random.split(jax.random.PRNGKey(42), 8)
    _, _, eval_returns = jax.jit(jax.vmap(ac.train, in_axes=(None, 0)))(config, keys)
    assert float(eval_returns[:, -1].mean()) >= 400.0


@pytest.mark.learning
def test_pendulum_learns_with_the_expected_q_baseline():
    """Pendulum-v1, the preset: 8 seeds vmapped, 8 envs × 125,000 updates = 1M env steps per seed,
    actor_baseline="expected_q" (eq. 4 with b(s) = E_a Q(s, a)), actor lr 5e-5, γ 0.95. Measured
    with this exact call (jax 0.9.2, idle 2-core AMD EPYC, 58–79 s with compilation), mean final
    deterministic-evaluation return per key set jax.random.split(PRNGKey(k), 8): −196.7 (k = 0, this
    test's), −209.2, −205.8, −190.9 (k = 1, 2, 3); worst seed −427.7. Random play scores about
    −1200, the preset without the baseline −1059. Threshold −300."""
    config = ac.Config.for_env("Pendulum-v1")
    keys = jax.random.split(jax.random.PRNGKey(0), 8)
    _, _, eval_returns = jax.jit(jax.vmap(ac.train, in_axes=(None, 0)))(config, keys)
    assert float(eval_returns[:, -1].mean()) >= -300.0


# ----------------------------------------------------------------------------- contract
def test_vmap_over_seeds_and_sweep_a_float_field():
    from purerl.config import sweep_axes

    config = ac.Config(env="probe/action", num_envs=4, total_timesteps=40, eval_every=5,
                       critic_learning_rate=jnp.array([1e-3, 1e-2]))
    train = jax.jit(jax.vmap(ac.train, in_axes=(sweep_axes(config, "critic_learning_rate"), None)))
    _, metrics, eval_returns = train(config, jax.random.PRNGKey(0))
    assert eval_returns.shape == (2, 2, config.eval_episodes)
    assert metrics["loss/critic"].shape == (2, 10)


@pytest.mark.parametrize("field, value", [
    ("env", "NoSuchEnv-v0"), ("total_timesteps", 0), ("num_envs", 0), ("baseline_samples", 0), ("eval_every", 0),
    ("eval_episodes", 0), ("actor_baseline", "value"), ("hidden_sizes", (0,)), ("activation", "gelu"),
    ("normalize_obs", 1), ("actor_learning_rate", 0.0), ("critic_learning_rate", -1e-3), ("gamma", -0.1),
    ("ent_coef", -1.0), ("init_log_std", -11.0),
])
def test_config_rejects_bad_value(field, value):
    with pytest.raises(ValueError, match=field):
        ac.Config(**{field: value})


@pytest.mark.brax
def test_brax_smoke():
    config = ac.Config(env="brax/inverted_pendulum", num_envs=2,
                       hidden_sizes=(16,), total_timesteps=4, eval_episodes=1)

    @jax.jit
    def two_updates(key):  # one compiled program: init, then a scan of 2 updates
        state = ac.init(config, key)
        return jax.lax.scan(lambda s, _: ac.update(config, s), state, None, length=2)

    state, metrics = two_updates(jax.random.PRNGKey(0))
    metrics = jax.tree.map(lambda m: m[-1], metrics)
    for name, value in metrics.items():
        if name != "train/episode_return":  # NaN until an episode ends
            assert np.isfinite(float(value)), name
    assert state.obs.shape == (2,) + ac.make_env(config.env, False).obs_shape
    assert state.params["actor"]["params"]["log_std"].shape == (1,)
    assert int(state.update_step) == 2
