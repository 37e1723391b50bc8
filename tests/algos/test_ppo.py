"""PPO: loss math, probe environments, learning, sweeps, validation, Brax smoke."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl.algos import ppo
from purerl.config import sweep_axes


def _train(config, seed=0):
    return jax.jit(ppo.train)(config, jax.random.PRNGKey(seed))


def _probe_config(env, **kw):
    base = dict(env=env, num_envs=16, num_steps=8, total_timesteps=16 * 8 * 150, update_epochs=4, num_minibatches=2,
                hidden_sizes=(32,), learning_rate=3e-3, anneal_lr=False, eval_every=150, eval_episodes=4,
                normalize_advantages=False)
    base.update(kw)
    return ppo.Config(**base)


# ----------------------------------------------------------------------------- loss math
def test_clipped_surrogate_matches_hand_computation():
    config = ppo.Config(clip_eps=0.2, vf_coef=0.5, ent_coef=0.0, normalize_advantages=False)
    network = ppo.ActorCritic(obs_ndim=1, action_dim=2, discrete=True, hidden_sizes=(4,), activation="tanh")
    obs = jnp.zeros((3, 1))
    params = network.init(jax.random.PRNGKey(0), obs)
    dist, value = network.apply(params, obs)
    actions = jnp.array([0, 1, 0])
    log_prob_now = dist.log_prob(actions)
    ratios = np.array([1.5, 0.5, 1.1])  # chosen old probabilities give these ratios
    adv = jnp.array([1.0, 1.0, -2.0])
    targets = jnp.array([1.0, 0.0, -1.0])
    batch = ppo.Transition(obs=obs, action=actions, log_prob=log_prob_now - jnp.log(ratios), value=value,
                           reward=None, terminated=None, truncated=None, final_obs=None, episode_return=None,
                           episode_length=None, raw_obs=None, raw_final_obs=None)
    loss, aux = ppo.ppo_loss(params, network, config, batch, adv, targets)
    # min(ρA, clip(ρ)A): 1.5·1 → 1.2 (clipped); 0.5·1 → 0.5; 1.1·(−2) = −2.2 (inside the clip range)
    expected_policy = -np.mean([1.2, 0.5, -2.2])
    expected_value = 0.5 * np.mean((np.asarray(value) - np.asarray(targets)) ** 2)
    assert np.isclose(float(aux["loss/policy"]), expected_policy, atol=1e-5)
    assert np.isclose(float(aux["loss/value"]), expected_value, atol=1e-5)
    assert np.isclose(float(loss), expected_policy + 0.5 * expected_value, atol=1e-5)
    assert np.isclose(float(aux["clip_fraction"]), 2 / 3)


def test_clipped_value_loss_takes_the_pessimistic_branch():
    config = ppo.Config(clip_eps=0.1, clip_value_loss=True, ent_coef=0.0, normalize_advantages=False)
    network = ppo.ActorCritic(obs_ndim=1, action_dim=2, discrete=True, hidden_sizes=(4,), activation="tanh")
    obs = jnp.zeros((1, 1))
    params = network.init(jax.random.PRNGKey(0), obs)
    _, value = network.apply(params, obs)
    v = float(value[0])
    old_value = jnp.array([v - 1.0])  # the new value moved +1 from the old one: clipped to old + 0.1
    target = jnp.array([v + 2.0])
    batch = ppo.Transition(obs=obs, action=jnp.array([0]), log_prob=jnp.log(jnp.array([0.5])), value=old_value,
                           reward=None, terminated=None, truncated=None, final_obs=None, episode_return=None,
                           episode_length=None, raw_obs=None, raw_final_obs=None)
    _, aux = ppo.ppo_loss(params, network, config, batch, jnp.zeros(1), target)
    # unclipped error 2, clipped error (v − 0.9) − (v + 2) = −2.9 → max of squares is 2.9²
    assert np.isclose(float(aux["loss/value"]), 0.5 * 2.9**2, rtol=1e-5)


def test_learn_adds_an_extra_loss_with_a_fresh_key_per_sgd_step():
    """`learn(extra_loss=…)` (how ASE adds its diversity objective): the extra term's aux comes
    back per SGD step, each step gets its own key, and a strong L2 penalty on the parameters
    shrinks them against the same update without it."""
    config = ppo.Config(num_envs=2, num_steps=8, num_minibatches=2, update_epochs=2, hidden_sizes=(8,))
    state = ppo.init(config, jax.random.PRNGKey(0))
    _, traj = ppo.rollout(config, state.params, state.env_state, state.obs, state.rng)
    norm = lambda params: sum(jnp.sum(x**2) for x in jax.tree.leaves(params))  # noqa: E731

    def l2(params, batch, key):
        assert batch.obs.shape == (8, 4)  # one minibatch
        return 100.0 * norm(params), {"extra/key": jax.random.uniform(key)}

    plain, *_ = ppo.learn(config, state.params, state.opt_state, traj, state.rng)
    shrunk, _, _, aux = ppo.learn(config, state.params, state.opt_state, traj, state.rng, extra_loss=l2)
    keys = np.asarray(aux["extra/key"])
    assert keys.shape == (2, 2) and len(np.unique(keys)) == 4  # [epochs, minibatches], all different
    assert "loss/policy" in aux and float(norm(shrunk)) < float(norm(plain)) - 0.01


# ----------------------------------------------------------------------------- probes
def _value(config, state, obs):
    env = ppo.make_env(config.env, config.normalize_obs)
    net = ppo.make_network(config, env)
    return np.asarray(net.apply(state.params, jnp.asarray(obs, jnp.float32), method=ppo.ActorCritic.value))


def _policy(config, state, obs):
    env = ppo.make_env(config.env, config.normalize_obs)
    net = ppo.make_network(config, env)
    return net.apply(state.params, jnp.asarray(obs, jnp.float32), method=ppo.ActorCritic.policy)


def test_probe_constant_reward_value():
    config = _probe_config("probe/constant")
    state, _, _ = _train(config)
    assert np.allclose(_value(config, state, [[0.0]]), 1.0, atol=0.05)


def test_probe_observation_dependent_value():
    config = _probe_config("probe/observation")
    state, _, _ = _train(config)
    np.testing.assert_allclose(_value(config, state, [[-1.0], [1.0]]), [-1.0, 1.0], atol=0.1)


def test_probe_delayed_reward_is_discounted():
    config = _probe_config("probe/delayed", gamma=0.8, gae_lambda=0.0)
    state, _, _ = _train(config)
    np.testing.assert_allclose(_value(config, state, [[0.0], [1.0]]), [0.8, 1.0], atol=0.1)


def test_probe_time_limit_bootstraps_through_truncation():
    # reward 1 forever, cut at 5 steps: with truncation bootstrapped V = 1/(1−γ) = 5 at γ = 0.8;
    # treating the cut as terminal would give at most 1 + .8 + .64 + .512 + .41 ≈ 3.36.
    config = _probe_config("probe/time-limit", gamma=0.8, total_timesteps=16 * 8 * 400, eval_every=400)
    state, _, _ = _train(config)
    assert np.allclose(_value(config, state, [[0.0]]), 5.0, atol=0.3)


def test_probe_action_dependent_reward_policy():
    config = _probe_config("probe/action", ent_coef=0.0)
    state, _, returns = _train(config)
    assert float(_policy(config, state, [[0.0]]).probs[0, 1]) > 0.95
    assert float(returns[-1].mean()) == 1.0


def test_probe_observation_action_policy():
    config = _probe_config("probe/observation-action", ent_coef=0.0, total_timesteps=16 * 8 * 300, eval_every=300)
    state, _, returns = _train(config)
    probs = np.asarray(_policy(config, state, [[-1.0], [1.0]]).probs)
    assert probs[0, 0] > 0.9 and probs[1, 1] > 0.9
    assert float(returns[-1].mean()) == 1.0


def test_probe_continuous_action_mean():
    config = _probe_config("probe/action-continuous", ent_coef=0.0)
    state, _, returns = _train(config)
    mean = float(_policy(config, state, [[0.0]]).mode()[0, 0])
    assert abs(mean - 0.5) < 0.1
    assert float(returns[-1].mean()) > 0.99


# ----------------------------------------------------------------------------- contract
SMALL = dict(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 6, num_minibatches=2, update_epochs=2,
             hidden_sizes=(16,), eval_every=3, eval_episodes=2)


def test_vmap_over_64_seeds_shapes_and_independence():
    config = ppo.Config(**SMALL)
    keys = jax.random.split(jax.random.PRNGKey(0), 64)
    state, metrics, returns = jax.jit(jax.vmap(ppo.train, in_axes=(None, 0)))(config, keys)
    assert returns.shape == (64, 2, 2)
    assert metrics["loss/value"].shape == (64, 6)
    assert int(state.update_step[0]) == 6
    assert np.all(np.isfinite(np.asarray(metrics["loss/value"])))
    kernels = np.asarray(jax.tree.leaves(state.params)[1]).reshape(64, -1)
    assert len(np.unique(kernels.round(6), axis=0)) == 64  # every seed trained its own network


def test_learning_rate_sweep_is_one_program_and_matches_single_runs():
    lrs = jnp.array([1e-4, 1e-3, 1e-2])
    config = ppo.Config(**SMALL, learning_rate=lrs, gamma=jnp.array([0.9, 0.95, 0.99]))
    sweep = jax.jit(jax.vmap(ppo.train, in_axes=(sweep_axes(config, "learning_rate", "gamma"), None)))
    state, _, _ = sweep(config, jax.random.PRNGKey(0))
    leaves = [np.asarray(x) for x in jax.tree.leaves(state.params)]
    for i, (lr, gamma) in enumerate([(1e-4, 0.9), (1e-3, 0.95), (1e-2, 0.99)]):
        single, _, _ = _train(ppo.Config(**SMALL, learning_rate=lr, gamma=gamma))
        for a, b in zip(leaves, jax.tree.leaves(single.params)):
            np.testing.assert_allclose(a[i], np.asarray(b), rtol=2e-3, atol=2e-5)
    assert not np.allclose(leaves[1][0], leaves[1][2])


def test_sweep_axes_rejects_static_fields():
    with pytest.raises(ValueError, match="num_envs"):
        sweep_axes(ppo.Config(), "num_envs")


BAD_VALUES = [
    ("env", "CartPol-v1"), ("total_timesteps", 0), ("num_envs", 0), ("num_steps", -1), ("update_epochs", 0),
    ("num_minibatches", 3), ("eval_every", 0), ("eval_episodes", 0), ("hidden_sizes", (64, 0)),
    ("activation", "gelu"), ("anneal_lr", "yes"), ("normalize_advantages", 1), ("clip_value_loss", None),
    ("normalize_obs", "no"), ("learning_rate", 0.0), ("learning_rate", float("nan")), ("gamma", 1.5),
    ("gae_lambda", -0.1), ("clip_eps", 0.0), ("vf_coef", -1.0), ("ent_coef", -0.01), ("max_grad_norm", 0.0),
    ("init_log_std", 5.0), ("learning_rate", jnp.array([1e-3, -1e-3])),
]


@pytest.mark.parametrize("field,value", BAD_VALUES, ids=[f"{f}={v!r}"[:40] for f, v in BAD_VALUES])
def test_config_rejects_bad_value_naming_the_field(field, value):
    with pytest.raises(ValueError, match=rf"Config\.{field}=|{field}="):
        ppo.Config(**{field: value})


def test_every_validated_field_is_covered():
    covered = {f for f, _ in BAD_VALUES}
    assert covered == {f.name for f in dataclasses.fields(ppo.Config)}


def test_total_timesteps_smaller_than_one_rollout_is_rejected():
    with pytest.raises(ValueError, match="total_timesteps"):
        ppo.Config(total_timesteps=100, num_envs=4, num_steps=128)


# ----------------------------------------------------------------------------- learning
@pytest.mark.learning
def test_learns_cartpole_8_seeds():
    """CartPole-v1, 500k steps per seed, default Config: mean final evaluation return ≥ 490 and
    every seed ≥ 400 (issue 15's goal for the demo configuration).

    Measured in one vmap over all 24 keys (jax 0.9.2, AMD EPYC 2-core): every seed at 500 for each of the key
    sets PRNGKey(42), PRNGKey(0) and PRNGKey(1). Without the clipped value loss (the default
    before) the same key sets gave means 462, 442 and 460 and seeds as low as 163.
    """
    keys = jax.random.split(jax.random.PRNGKey(42), 8)
    _, _, returns = jax.jit(jax.vmap(ppo.train, in_axes=(None, 0)))(ppo.Config(), keys)
    final = np.asarray(returns[:, -1].mean(-1))
    assert final.mean() >= 490 and final.min() >= 400, final


@pytest.mark.learning
def test_learns_pendulum_continuous_8_seeds():
    """Pendulum-v1 with the preset, 204,800 steps per seed (100 updates): mean final return ≥ −300.

    Measured in one vmap over all 24 keys (jax 0.9.2, AMD EPYC 2-core), mean per 8 seeds: −181.3, −179.5 and −214.7 for the
    key sets PRNGKey(7) (this test's), PRNGKey(0) and PRNGKey(1).
    """
    config = ppo.Config.for_env("Pendulum-v1", total_timesteps=204_800)
    keys = jax.random.split(jax.random.PRNGKey(7), 8)
    _, _, returns = jax.jit(jax.vmap(ppo.train, in_axes=(None, 0)))(config, keys)
    final = np.asarray(returns[:, -1].mean(-1))
    assert final.mean() >= -300, final


# ----------------------------------------------------------------------------- brax
@pytest.mark.brax
def test_brax_smoke():
    """Two updates (init and update compiled, no 1000-step evaluation episode) on
    brax/inverted_pendulum; the ant's contacts are covered by tests/envs/test_envs.py."""
    config = ppo.Config(env="brax/inverted_pendulum", num_envs=2, num_steps=8, total_timesteps=2 * 8 * 2,
                        num_minibatches=2, update_epochs=1, hidden_sizes=(16,), eval_every=2, eval_episodes=1)
    state = jax.jit(jax.vmap(functools.partial(ppo.init, config)))(jax.random.split(jax.random.PRNGKey(0), 2))
    update = jax.jit(jax.vmap(functools.partial(ppo.update, config)))
    for _ in range(2):
        state, metrics = update(state)
    assert state.obs.shape == (2, 2, 4)
    np.testing.assert_array_equal(state.update_step, 2)
    for name, value in metrics.items():
        if name != "train/episode_return":  # episodes may or may not end in 16 steps
            assert value.shape == (2,) and np.all(np.isfinite(np.asarray(value))), name
