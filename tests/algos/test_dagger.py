"""DAgger: the aggregated dataset keeps every labelled pair once and in order, sampling draws
only filled rows, the β-mixture schedule and the expert's actions at β = 1, config validation,
a vmapped learning-rate × β sweep (one program), and learning CartPole-v1 from one expert
episode where BC with the same gradient steps does not."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl import buffers, experts
from purerl.algos import bc, dagger
from purerl.config import sweep_axes


def _synthetic(env: str = "CartPole-v1", n: int = 40, seed: int = 0) -> buffers.Transition:
    """`n` random pairs with `env`'s shapes (CartPole-v1: obs 4, actions 0/1; Pendulum-v1: obs 3,
    actions [1] in [−1, 1])."""
    rng = np.random.default_rng(seed)
    obs_dim = 4 if env == "CartPole-v1" else 3
    obs = rng.normal(size=(n, obs_dim)).astype(np.float32)
    if env == "CartPole-v1":
        action = jnp.asarray(rng.integers(0, 2, n), jnp.int32)
    else:
        action = jnp.asarray(rng.uniform(-1, 1, (n, 1)), jnp.float32)
    return buffers.Transition(obs=jnp.asarray(obs), action=action, reward=jnp.ones(n), terminated=jnp.zeros(n, bool),
                              truncated=jnp.zeros(n, bool), next_obs=jnp.asarray(np.roll(obs, -1, 0)))


def _small(**overrides) -> dagger.Config:
    return dagger.Config(**{"env": "CartPole-v1", "num_rounds": 3, "num_envs": 2, "rollout_steps": 5,
                            "steps_per_update": 4, "batch_size": 8, "hidden_sizes": (8,), "eval_episodes": 1,
                            **overrides})


# ----------------------------------------------------------------------------- math
def test_aggregate_appends_every_pair_once_in_order():
    """Step (4): D ← D ∪ D_i writes the new pairs right after the `size` filled rows and leaves
    the rest of the buffer untouched."""
    data = dagger.Aggregate(obs=jnp.zeros((7, 2)), action=jnp.zeros((7,), jnp.int32), size=jnp.zeros((), jnp.int32))
    data = dagger.aggregate(data, jnp.array([[1.0, 1.0], [2.0, 2.0]]), jnp.array([1, 2]))
    data = dagger.aggregate(data, jnp.array([[3.0, 3.0], [4.0, 4.0], [5.0, 5.0]]), jnp.array([3, 4, 5]))
    assert int(data.size) == 5
    np.testing.assert_array_equal(np.asarray(data.obs[:, 0]), [1, 2, 3, 4, 5, 0, 0])
    np.testing.assert_array_equal(np.asarray(data.action), [1, 2, 3, 4, 5, 0, 0])


def test_sample_draws_only_filled_rows():
    data = dagger.Aggregate(obs=jnp.concatenate([jnp.ones((3, 1)), jnp.full((97, 1), -1.0)]),
                            action=jnp.concatenate([jnp.ones(3, jnp.int32), jnp.zeros(97, jnp.int32)]),
                            size=jnp.array(3, jnp.int32))
    batch = dagger.sample(data, jax.random.PRNGKey(0), 512)
    assert batch.obs.shape == (512, 1) and batch.action.shape == (512,)
    np.testing.assert_array_equal(np.asarray(batch.obs), 1.0)
    np.testing.assert_array_equal(np.asarray(batch.action), 1)


def test_mixture_beta_schedule():
    """β_i = β · β_decay^(i−1) for round i = round_index + 1."""
    config = dagger.Config(beta=0.8, beta_decay=0.5)
    got = [float(dagger.mixture_beta(config, jnp.array(i))) for i in range(4)]
    np.testing.assert_allclose(got, [0.8, 0.4, 0.2, 0.1], rtol=1e-6)
    assert float(dagger.mixture_beta(dagger.Config(), jnp.array(3))) == 0.0  # β = 0: the learner alone


@pytest.mark.parametrize("env", ["CartPole-v1", "Pendulum-v1"])
def test_beta_one_runs_the_expert_and_labels_with_it(env):
    """With β = 1 every step takes the expert's action, so the recorded labels are the expert's
    action on each recorded state, and the environment follows the expert's trajectory."""
    config = _small(env=env, beta=1.0)
    state = dagger.init(config, jax.random.PRNGKey(1), _synthetic(env))
    env_state, obs, rng, visited, labels, returns, done = dagger.collect(config, state, state.learner)
    expert = experts.get("scripted", env)
    assert visited.shape[0] == labels.shape[0] == config.labels_per_round == 10
    np.testing.assert_allclose(np.asarray(labels), np.asarray(expert(visited, None)), atol=1e-6)
    # the first recorded states are the reset observations; the next ones follow the expert's actions
    np.testing.assert_allclose(np.asarray(visited[:2]), np.asarray(state.obs), atol=1e-6)
    env_ = dagger.make_env(env)
    _, ts = env_.step(jax.random.PRNGKey(2), state.env_state, expert(state.obs, None))
    if env == "CartPole-v1":  # deterministic dynamics: the second step's states are these
        np.testing.assert_allclose(np.asarray(visited[2:4]), np.asarray(ts.obs), atol=1e-5)


def test_update_aggregates_labels_and_counts():
    """One round: BC steps on D, num_envs × rollout_steps labelled pairs appended; the labels in
    D after the demonstrations are the expert's actions on the stored states."""
    demos = _synthetic()
    config = _small()
    state = dagger.init(config, jax.random.PRNGKey(0), demos)
    assert int(state.data.size) == 40 and state.data.obs.shape[0] == 40 + 3 * 10
    np.testing.assert_array_equal(np.asarray(state.data.action[:40]), np.asarray(demos.action))
    new, metrics = jax.jit(lambda s: dagger.update(config, s, demos))(state)
    assert int(new.data.size) == 50 and int(new.update_step) == 1 and float(metrics["aggregate_size"]) == 50
    stored, labels = new.data.obs[40:50], new.data.action[40:50]
    np.testing.assert_array_equal(np.asarray(labels), np.asarray(experts.cartpole_linear(stored)))
    assert 0.0 <= float(metrics["expert_disagreement"]) <= 1.0 and np.isfinite(float(metrics["loss/bc"]))
    assert not np.array_equal(np.asarray(jax.tree.leaves(new.params)[0]), np.asarray(jax.tree.leaves(state.params)[0]))


# ----------------------------------------------------------------------------- program
def test_vmapped_learning_rate_and_beta_sweep_and_seeds():
    """One compiled program: (learning rate, β) pairs × 2 seeds; evaluations after each round;
    with β = 1 in round 1 the labels equal the actions taken, so the disagreement is measured on
    states the expert visited."""
    config = _small(learning_rate=jnp.array([1e-4, 1e-2]), beta=jnp.array([0.0, 1.0]))
    demos = _synthetic()
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    by_seed = jax.vmap(dagger.train, in_axes=(None, 0, None))
    train = jax.jit(jax.vmap(by_seed, in_axes=(sweep_axes(config, "learning_rate", "beta"), None, None)))
    state, metrics, returns = train(config, keys, demos)
    assert returns.shape == (2, 2, 3, 1) and np.all(np.isfinite(np.asarray(returns)))
    np.testing.assert_array_equal(np.asarray(state.update_step), 3)
    np.testing.assert_array_equal(np.asarray(state.data.size), 40 + 3 * 10)
    np.testing.assert_allclose(np.asarray(metrics["beta"][1, 0]), [1.0, 0.5, 0.25])
    np.testing.assert_allclose(np.asarray(metrics["beta"][0, 0]), 0.0)
    init = dagger.init(config.replace(learning_rate=1e-4, beta=0.0), keys[0], demos)
    moved = [sum(float(jnp.sum((a[i, 0] - b) ** 2)) for a, b in zip(jax.tree.leaves(state.learner.params),
                                                                     jax.tree.leaves(init.learner.params)))
             for i in (0, 1)]
    assert 0 < moved[0] < moved[1]


# ----------------------------------------------------------------------------- config
@pytest.mark.parametrize("field, value", [
    ("env", "NoSuchEnv-v0"), ("expert", "nobody"), ("num_rounds", 0), ("num_envs", 0), ("rollout_steps", 0),
    ("steps_per_update", 0), ("batch_size", -1), ("hidden_sizes", (64, 0)), ("policy", "beta"),
    ("normalize_obs", 1), ("learning_rate", 0.0), ("learning_rate", float("nan")), ("beta", 1.5), ("beta", -0.1),
    ("beta_decay", 2.0),
])
def test_config_rejects_bad_value(field, value):
    with pytest.raises(ValueError, match=field):
        dagger.Config(**{field: value})


def test_config_presets_contract_and_shape_check():
    config = dagger.Config.for_env("CartPole-v1", beta=0.5)
    assert config.num_envs == 4 and config.rollout_steps == 250 and config.beta == 0.5
    assert config.num_updates == config.num_rounds and config.env_steps_per_update == 1000
    inner = dagger.bc_config(config)
    assert isinstance(inner, bc.Config) and inner.steps_per_update == config.steps_per_update
    assert dagger.DEMONSTRATIONS is True and dagger.Config().dataset == ""
    with pytest.raises(ValueError, match="scripted"):
        dagger.Config(env="Acrobot-v1")  # no scripted expert for Acrobot
    with pytest.raises(ValueError, match="observations"):
        dagger.init(dagger.Config(), jax.random.PRNGKey(0), _synthetic("CartPole-v1"))


# ----------------------------------------------------------------------------- learning
@pytest.mark.learning
def test_learns_cartpole_from_one_episode_where_bc_does_not():
    """CartPole-v1 from one scripted-expert episode (500 pairs), the CartPole preset (6 rounds of
    4 × 250 learner steps and 500 gradient steps), 8 seeds in one vmap; fraction of the expert
    = (R − R_random)/(R_expert − R_random), R_expert 500, R_random 22.8, each evaluation 10
    deterministic episodes. Asserted: after 6 rounds every seed ≥ 0.95; after 2 rounds (1,000
    gradient steps) DAgger's mean ≥ 0.85 while BC's with the same learner and the same 1,000
    gradient steps on the demonstrations alone is ≤ 0.75.
    Measured (jax 0.9.2, AMD EPYC 2-core; these programs run on other keys), key sets
    split(PRNGKey(k), 8) for k = 0, 1, 2, 3 (this test's is k = 0):
      DAgger final, every seed of every key set: 1.0; after 2 rounds, mean 0.969, 0.979, 0.932, 0.956;
      BC after 1,000 steps, mean 0.621, 0.654, 0.528, 0.541 (after 3,000 steps 0.979, 0.957, 0.957,
      0.971, its worst seed 0.916, 0.858, 0.887, 0.930)."""
    demos = experts.demonstrations("CartPole-v1", "scripted", episodes=1, seed=0)
    expert, random = demos.info["expert_return"], demos.info["random_return"]
    keys = jax.random.split(jax.random.PRNGKey(0), 8)
    config = dagger.Config.for_env("CartPole-v1")
    _, _, returns = jax.jit(jax.vmap(dagger.train, in_axes=(None, 0, None)))(config, keys, demos.transitions)
    fraction = (np.asarray(returns).mean(-1) - random) / (expert - random)  # [seeds, rounds]
    bcc = bc.Config(env="CartPole-v1", num_gradient_steps=2 * config.steps_per_update,
                    steps_per_update=config.steps_per_update, eval_every=2, batch_size=config.batch_size,
                    hidden_sizes=config.hidden_sizes, learning_rate=config.learning_rate,
                    eval_episodes=config.eval_episodes)
    _, _, bc_returns = jax.jit(jax.vmap(bc.train, in_axes=(None, 0, None)))(bcc, keys, demos.transitions)
    bc_fraction = (np.asarray(bc_returns[:, -1]).mean(-1) - random) / (expert - random)
    print(f"DAgger CartPole-v1 from 1 episode: per-round mean fraction {fraction.mean(0).round(3)}, final "
          f"{fraction[:, -1].round(3)}; BC after 1,000 steps {bc_fraction.round(3)}")
    assert np.all(fraction[:, -1] >= 0.95), fraction[:, -1]
    assert fraction[:, 1].mean() >= 0.85, fraction[:, 1]
    assert bc_fraction.mean() <= 0.75, bc_fraction
