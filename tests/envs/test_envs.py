"""The environment interface: names, spaces, terminated vs truncated, auto-reset,
episode statistics, observation normalization, action rescaling, probes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl import envs


def _rollout(env, num_envs, steps, action_fn, seed=0):
    state, obs = env.reset(jax.random.PRNGKey(seed), num_envs)

    @jax.jit
    def run(state, obs):
        def body(carry, key):
            state, obs = carry
            state, ts = env.step(key, state, action_fn(obs))
            return (state, ts.obs), ts

        return jax.lax.scan(body, (state, obs), jax.random.split(jax.random.PRNGKey(seed + 1), steps))

    (state, _), traj = run(state, obs)
    return state, traj


def test_unknown_name_lists_available():
    with pytest.raises(ValueError, match="available: .*CartPole-v1.*brax/ant"):
        envs.make("CartPol-v1")


def test_unknown_option_names_it():
    with pytest.raises(ValueError, match="max_stepz"):
        envs.make("CartPole-v1", max_stepz=3)


@pytest.mark.parametrize("name", envs.GYMNAX_ENVS)
def test_every_gymnax_env_steps(name):
    env = envs.make(name)
    action = (lambda o: jnp.zeros(o.shape[0], jnp.int32)) if env.discrete else (
        lambda o: jnp.zeros((o.shape[0],) + env.action_space.shape))
    _, traj = _rollout(env, 2, 5, action)
    assert traj.obs.shape == (5, 2) + env.obs_shape
    assert traj.reward.shape == (5, 2) and traj.terminated.dtype == bool
    assert np.all(np.isfinite(np.asarray(traj.obs)))


def test_cartpole_terminates_and_never_truncates_early():
    env = envs.make("CartPole-v1")
    _, traj = _rollout(env, 8, 300, lambda o: jnp.zeros(o.shape[0], jnp.int32))  # always push left: falls fast
    assert int(traj.terminated.sum()) > 0 and int(traj.truncated.sum()) == 0
    # episode stats: a reported return equals its length for CartPole (+1 per step)
    done = np.asarray(traj.done)
    np.testing.assert_allclose(np.asarray(traj.episode_return)[done], np.asarray(traj.episode_length)[done])
    assert np.all(np.asarray(traj.episode_return)[~done] == 0)


def test_time_limit_is_truncation_with_true_final_obs():
    env = envs.make("Pendulum-v1")  # never terminates, 200-step limit
    _, traj = _rollout(env, 3, 450, lambda o: jnp.zeros((o.shape[0], 1)))
    trunc = np.asarray(traj.truncated)
    assert not np.asarray(traj.terminated).any()
    np.testing.assert_array_equal(np.nonzero(trunc[:, 0])[0], [199, 399])
    assert np.all(np.asarray(traj.episode_length)[trunc] == 200)
    # auto-reset: obs after the cut is a new episode's, final_obs is the old episode's last state
    obs, final = np.asarray(traj.obs), np.asarray(traj.final_obs)
    assert not np.allclose(obs[199], final[199])
    np.testing.assert_allclose(obs[198], final[198])


def test_override_changes_time_limit():
    env = envs.make("Pendulum-v1", max_steps_in_episode=10)
    assert env.max_episode_steps == 10
    _, traj = _rollout(env, 1, 25, lambda o: jnp.zeros((o.shape[0], 1)))
    np.testing.assert_array_equal(np.nonzero(np.asarray(traj.truncated[:, 0]))[0], [9, 19])


def test_continuous_actions_are_rescaled_and_clipped():
    env = envs.make("Pendulum-v1")  # torque bounds ±2
    assert isinstance(env.action_space, envs.Box) and float(env.action_space.high[0]) == 1.0
    np.testing.assert_allclose(np.asarray(env._to_native(jnp.array([[-1.0], [0.5], [7.0]]))), [[-2.0], [1.0], [2.0]])
    raw = envs.make("Pendulum-v1", rescale_actions=False)
    assert float(raw.action_space.high[0]) == 2.0
    np.testing.assert_allclose(np.asarray(raw._to_native(jnp.array([[-3.0], [1.5]]))), [[-2.0], [1.5]])


def test_observation_normalization_statistics():
    env = envs.make("Pendulum-v1", normalize_obs=True)
    state, traj = _rollout(env, 16, 400, lambda o: jnp.ones((o.shape[0], 1)))
    raw = envs.make("Pendulum-v1")
    _, raw_traj = _rollout(raw, 16, 400, lambda o: jnp.ones((o.shape[0], 1)))
    # same seed, same dynamics: the normalizer's mean tracks the raw observations' mean
    raw_obs = np.asarray(raw_traj.final_obs).reshape(-1, 3)
    np.testing.assert_allclose(np.asarray(state.obs_stats.mean), raw_obs.mean(0), atol=0.05)
    np.testing.assert_allclose(np.asarray(state.obs_stats.var), raw_obs.var(0), rtol=0.1, atol=0.05)
    late = np.asarray(traj.obs[200:]).reshape(-1, 3)
    assert np.all(np.abs(late.mean(0)) < 0.5) and np.all(np.abs(late.std(0) - 1) < 0.5)
    # frozen statistics do not move
    s2, _ = env.step(jax.random.PRNGKey(0), state, jnp.ones((16, 1)), update_stats=False)
    np.testing.assert_array_equal(np.asarray(s2.obs_stats.mean), np.asarray(state.obs_stats.mean))


def test_raw_observations_are_the_unnormalized_ones():
    """`raw_final_obs` and `EnvState.raw_obs` are what the backend returned: equal to the
    observations of the same rollout without normalization, and mapped onto `final_obs` /
    `obs` by `normalize` with the statistics of that step."""
    env = envs.make("Pendulum-v1", normalize_obs=True)
    state, traj = _rollout(env, 4, 30, lambda o: jnp.ones((o.shape[0], 1)))
    _, raw_traj = _rollout(envs.make("Pendulum-v1"), 4, 30, lambda o: jnp.ones((o.shape[0], 1)))
    np.testing.assert_array_equal(np.asarray(traj.raw_final_obs), np.asarray(raw_traj.final_obs))
    np.testing.assert_array_equal(np.asarray(state.raw_obs), np.asarray(raw_traj.obs[-1]))
    np.testing.assert_allclose(np.asarray(env.normalize(state.obs_stats, traj.raw_final_obs[-1])),
                               np.asarray(traj.final_obs[-1]), rtol=1e-6)
    plain_state, obs = envs.make("CartPole-v1").reset(jax.random.PRNGKey(0), 3)
    np.testing.assert_array_equal(np.asarray(plain_state.raw_obs), np.asarray(obs))


MINATAR = [n for n in envs.available() if n.endswith("-MinAtar")]


def test_every_minatar_game_is_declared_binary():
    """A MinAtar game added to `envs.names` is stored as bool only once it is declared in
    `gymnax_backend.BINARY_OBSERVATIONS`, and checked by the test below."""
    from purerl.envs import gymnax_backend

    assert len(MINATAR) >= 4 and set(MINATAR) == set(gymnax_backend.BINARY_OBSERVATIONS)


@pytest.mark.parametrize("name", MINATAR)
def test_minatar_observations_are_binary_so_bool_holds_them_exactly(name):
    """Replay buffers store MinAtar observations as bool (`raw_obs_dtype`): every value of 200
    random steps of 8 environments, final observations included, must be 0 or 1. The agent
    still sees float32."""
    env = envs.make(name)
    assert env.raw_obs_dtype == jnp.bool_ and envs.make(name, normalize_obs=True).raw_obs_dtype == jnp.bool_

    @jax.jit
    def rollout(key):
        state, obs = env.reset(key, 8)

        def step(state, key):
            action_key, step_key = jax.random.split(key)
            action = jax.random.randint(action_key, (8,), 0, env.action_space.n)
            state, ts = env.step(step_key, state, action)
            return state, (ts.obs, ts.raw_final_obs)
        return obs, jax.lax.scan(step, state, jax.random.split(key, 200))[1]

    obs, (later, finals) = rollout(jax.random.PRNGKey(0))
    assert obs.dtype == jnp.float32
    values = np.unique(np.concatenate([np.ravel(obs), np.ravel(later), np.ravel(finals)]))
    assert set(values.tolist()) <= {0.0, 1.0} and 1.0 in values
    assert envs.make("CartPole-v1").raw_obs_dtype == jnp.float32
    # A variant (other parameters, or another reward) has the same observations.
    changed = envs.variant(f"{name}-reward-test", name, reward_fn=lambda obs, action, next_obs: jnp.sum(next_obs))
    assert envs.make(changed).raw_obs_dtype == jnp.bool_


def test_running_mean_std_matches_numpy():
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, size=(n, 2)) for n in (5, 17, 40)]
    stats = envs.RunningMeanStd.create((2,))
    for b in batches:
        stats = stats.update(jnp.asarray(b))
    data = np.concatenate(batches)
    np.testing.assert_allclose(np.asarray(stats.mean), data.mean(0), rtol=1e-3)
    np.testing.assert_allclose(np.asarray(stats.var), data.var(0), rtol=1e-3)


@pytest.mark.parametrize("kind", envs.PROBES)
def test_probes_give_their_stated_rewards(kind):
    env = envs.make(f"probe/{kind}")
    if env.discrete:
        action = lambda o: jnp.ones(o.shape[0], jnp.int32)  # noqa: E731
    else:
        action = lambda o: jnp.full((o.shape[0], 1), 0.5)  # noqa: E731
    _, traj = _rollout(env, 64, 10, action)
    r, obs = np.asarray(traj.reward), np.asarray(traj.obs)
    if kind == "observation":
        prev_obs = np.concatenate([np.asarray(env.reset(jax.random.PRNGKey(0), 64)[1])[None], obs[:-1]])[..., 0]
        np.testing.assert_allclose(r, prev_obs)
    elif kind == "delayed":
        np.testing.assert_allclose(r[::2], 0.0)
        np.testing.assert_allclose(r[1::2], 1.0)
        assert np.asarray(traj.terminated)[1::2].all() and not np.asarray(traj.terminated)[::2].any()
    elif kind == "time-limit":
        assert not np.asarray(traj.terminated).any()
        np.testing.assert_array_equal(np.asarray(traj.truncated)[:, 0], [t % 5 == 4 for t in range(10)])
        np.testing.assert_allclose(r, 1.0)
    elif kind == "observation-action":
        prev_obs = np.concatenate([np.asarray(env.reset(jax.random.PRNGKey(0), 64)[1])[None], obs[:-1]])[..., 0]
        np.testing.assert_allclose(r, (prev_obs > 0).astype(float))
    else:  # constant, action (a=1), action-continuous (a=0.5): all pay 1
        np.testing.assert_allclose(r, 1.0)


@pytest.mark.brax
def test_brax_traces_reset_and_step_once_per_process(monkeypatch):
    """MJX's `reset` and `step` (seconds of tracing each on a CPU) are traced once in a process:
    a later program over another number of environments, or another `Environment` of the same
    Brax task, reuses the trace."""
    from brax import envs as brax_envs

    from purerl.envs import brax_backend

    calls = {"reset": 0, "step": 0}

    class Counting:
        def __init__(self, env):
            self.env = env

        def reset(self, key):
            calls["reset"] += 1
            return self.env.reset(key)

        def step(self, state, action):
            calls["step"] += 1
            return self.env.step(state, action)

        def __getattr__(self, name):
            return getattr(self.env, name)

    get = brax_envs.get_environment
    monkeypatch.setattr(brax_envs, "get_environment", lambda *a, **k: Counting(get(*a, **k)))
    brax_backend._load.cache_clear()
    try:
        for num_envs in (2, 3):
            env = envs.make("brax/inverted_pendulum", episode_length=5)

            def program(key, env=env, num_envs=num_envs):
                state, _ = env.reset(key, num_envs)
                return env.step(key, state, jnp.zeros((num_envs, 1)))

            jax.make_jaxpr(program)(jax.random.PRNGKey(0))
        assert calls == {"reset": 1, "step": 1}
    finally:
        brax_backend._load.cache_clear()  # the next test loads the real environment again


@pytest.mark.brax
def test_brax_ant_interface():
    env = envs.make("brax/ant", episode_length=5)
    assert env.obs_shape == (27,) and env.action_space.shape == (8,)
    _, traj = _rollout(env, 2, 12, lambda o: jnp.zeros((o.shape[0], 8)))
    trunc = np.asarray(traj.truncated)
    # standing still the ant does not fall: every episode ends by the 5-step time limit
    np.testing.assert_array_equal(np.nonzero(trunc[:, 0])[0], [4, 9])
    assert not np.asarray(traj.terminated).any()
    assert np.all(np.isfinite(np.asarray(traj.obs)))
    np.testing.assert_array_equal(np.asarray(traj.episode_length)[trunc], 5)
