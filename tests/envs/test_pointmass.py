"""The 2-D point mass (`point/…`): its motion by hand, walls, the goal reward, the time limit
(truncation, never a terminal), options and their errors, and the trajectory picture."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl import envs
from purerl.envs.pointmass import WALLS, inside, render_trajectories


def _run(env, actions, seed=0):
    """Step one environment through `actions` [T, 2]; returns the TimeSteps stacked."""
    state, obs = env.reset(jax.random.PRNGKey(seed), 1)

    def body(state, inputs):
        key, action = inputs
        state, ts = env.step(key, state, action[None])
        return state, ts

    keys = jax.random.split(jax.random.PRNGKey(seed + 1), len(actions))
    return obs[0], jax.lax.scan(body, state, (keys, jnp.asarray(actions, jnp.float32)))[1]


def test_names_are_registered():
    for kind in ("open", "walls", "goal", "goal-walls"):
        assert f"point/{kind}" in envs.available()
    env = envs.make("point/open")
    assert env.obs_shape == (2,) and env.action_space.shape == (2,) and env.max_episode_steps == 50


def test_motion_by_hand_and_clipping_to_the_square():
    env = envs.make("point/open", start_noise=0.0, dt=0.1)
    actions = np.array([[1.0, 0.0]] * 3 + [[0.0, -1.0]] * 2 + [[5.0, 5.0]], np.float32)
    first, ts = _run(env, actions)
    np.testing.assert_allclose(first, [0.0, 0.0])
    expected = [[0.1, 0.0], [0.2, 0.0], [0.3, 0.0], [0.3, -0.1], [0.3, -0.2], [0.4, -0.1]]  # action clipped to 1
    np.testing.assert_allclose(ts.final_obs[:, 0], expected, atol=1e-6)
    _, ts = _run(envs.make("point/open", start_noise=0.0), np.ones((20, 2), np.float32))
    np.testing.assert_allclose(ts.final_obs[-1, 0], [1.0, 1.0])  # stays in [−1, 1]²


def test_walls_block_a_move_into_them():
    assert bool(inside(jnp.array([0.0, 0.5]), WALLS)) and not bool(inside(jnp.array([0.0, 0.0]), WALLS))
    env = envs.make("point/walls", start=(-0.5, 0.6), start_noise=0.0)
    _, ts = _run(env, np.tile([[1.0, 0.0]], (10, 1)))
    x = np.asarray(ts.final_obs[:, 0, 0])
    assert x.max() < WALLS[0][0] and x[-1] == pytest.approx(x[-2])  # stopped at the wall's face
    _, ts = _run(envs.make("point/open", start=(-0.5, 0.6), start_noise=0.0), np.tile([[1.0, 0.0]], (10, 1)))
    assert float(ts.final_obs[-1, 0, 0]) == pytest.approx(0.5, abs=1e-5)  # no wall: passes through


def test_goal_reward_sparse_and_dense():
    env = envs.make("point/goal", start_noise=0.0, goal=(0.3, 0.0), goal_radius=0.15)
    _, ts = _run(env, np.tile([[1.0, 0.0]], (5, 1)))
    # positions x = 0.1 … 0.5: within 0.15 of x = 0.3 at 0.2, 0.3, 0.4
    np.testing.assert_allclose(ts.reward[:, 0], [0, 1, 1, 1, 0])
    dense = envs.make("point/goal", start_noise=0.0, goal=(0.3, 0.0), reward="dense")
    _, ts = _run(dense, np.tile([[1.0, 0.0]], (2, 1)))
    np.testing.assert_allclose(ts.reward[:, 0], [-0.2, -0.1], atol=1e-6)
    _, ts = _run(envs.make("point/open"), np.ones((3, 2)))
    assert float(jnp.abs(ts.reward).sum()) == 0.0  # no task reward without a goal


def test_time_limit_truncates_and_resets():
    env = envs.make("point/open", max_steps=7, start_noise=0.0)
    _, ts = _run(env, np.tile([[1.0, 1.0]], (8, 1)))
    assert not bool(ts.terminated.any())
    np.testing.assert_array_equal(np.asarray(ts.truncated[:, 0]), [0, 0, 0, 0, 0, 0, 1, 0])
    np.testing.assert_allclose(ts.final_obs[6, 0], [0.7, 0.7], atol=1e-6)  # the true last position
    np.testing.assert_allclose(ts.obs[6, 0], [0.0, 0.0])  # the next episode's start
    assert int(ts.episode_length[6, 0]) == 7


@pytest.mark.parametrize("options, match", [
    (dict(speed=2.0), "unknown option.*speed"),
    (dict(reward="shaped"), "reward='shaped' is invalid"),
    (dict(dt=0.0), "dt > 0"),
])
def test_bad_options_are_named(options, match):
    with pytest.raises(ValueError, match=match):
        envs.make("point/goal", **options)


def test_render_trajectories_writes_a_png(tmp_path):
    positions = np.cumsum(np.random.default_rng(0).normal(0, 0.05, (3, 20, 2)), axis=1)
    path = render_trajectories(positions, tmp_path / "skills.png", walls=WALLS, goal=(0.7, 0.7), goal_radius=0.2,
                               labels=["a", "b", "c"], title="three")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
