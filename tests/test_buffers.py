"""Replay buffer: wrap-around, sampling bounds, truncation flags, n-step returns, vmap isolation."""

import jax
import jax.numpy as jnp
import numpy as np

from purerl import buffers
from purerl.buffers import Transition


def _example():
    return Transition(obs=jnp.zeros(2), action=jnp.zeros((), jnp.int32), reward=jnp.zeros(()),
                      terminated=jnp.zeros((), bool), truncated=jnp.zeros((), bool), next_obs=jnp.zeros(2))


def _step(t, num_envs, terminated=None, truncated=None):
    """A batch whose every field encodes the step index t (and env index in obs[1])."""
    envs = jnp.arange(num_envs, dtype=jnp.float32)
    return Transition(
        obs=jnp.stack([jnp.full(num_envs, t, jnp.float32), envs], -1),
        action=jnp.full(num_envs, t, jnp.int32),
        reward=jnp.full(num_envs, 1.0),
        terminated=jnp.full(num_envs, False) if terminated is None else terminated,
        truncated=jnp.full(num_envs, False) if truncated is None else truncated,
        next_obs=jnp.stack([jnp.full(num_envs, t + 1, jnp.float32), envs], -1),
    )


def test_wraparound_overwrites_oldest_rows():
    buf = buffers.create(_example(), num_envs=2, capacity=6)  # 3 rows
    assert buf.rows == 3 and int(buf.size) == 0
    for t in range(5):
        buf = buffers.add(buf, _step(t, 2))
    assert int(buf.rows_filled) == 3 and int(buf.size) == 6 and int(buf.row) == 5 % 3
    # rows hold steps 3, 4, 2 (row = t mod 3)
    np.testing.assert_array_equal(np.asarray(buf.data.action[:, 0]), [3, 4, 2])


def test_sampling_stays_within_stored_data():
    buf = buffers.create(_example(), num_envs=3, capacity=30)  # 10 rows
    for t in range(4):
        buf = buffers.add(buf, _step(t, 3))
    batch = buffers.sample(buf, jax.random.PRNGKey(0), 2000)
    actions = np.asarray(batch.action)
    assert set(np.unique(actions)) == {0, 1, 2, 3}  # only written rows, never the zero padding beyond
    assert set(np.unique(np.asarray(batch.obs[:, 1]))) == {0.0, 1.0, 2.0}
    # after wrap-around every row is valid and sampling is roughly uniform
    for t in range(4, 25):
        buf = buffers.add(buf, _step(t, 3))
    actions = np.asarray(buffers.sample(buf, jax.random.PRNGKey(1), 20000).action)
    assert actions.min() == 15 and actions.max() == 24
    counts = np.bincount(actions - 15, minlength=10)
    assert counts.min() > 0.8 * 2000 and counts.max() < 1.2 * 2000


def test_terminated_and_truncated_are_kept_apart():
    buf = buffers.create(_example(), num_envs=2, capacity=4)
    buf = buffers.add(buf, _step(0, 2, terminated=jnp.array([True, False]), truncated=jnp.array([False, True])))
    batch = buffers.sample(buf, jax.random.PRNGKey(0), 200)
    env = np.asarray(batch.obs[:, 1]).astype(int)
    np.testing.assert_array_equal(np.asarray(batch.terminated), env == 0)
    np.testing.assert_array_equal(np.asarray(batch.truncated), env == 1)


def test_n_step_returns_stop_at_episode_end():
    gamma = 0.5
    buf = buffers.create(_example(), num_envs=1, capacity=10)
    # env 0: steps 0,1,2 (2 is truncated), then 3,4 (4 terminated), then 5,6,7
    for t in range(8):
        buf = buffers.add(buf, _step(t, 1, terminated=jnp.array([t == 4]), truncated=jnp.array([t == 2])))
    batch, discount = buffers.sample_n_step(buf, jax.random.PRNGKey(0), 500, n=3, gamma=gamma)
    start = np.asarray(batch.obs[:, 0]).astype(int)
    assert start.max() <= 5  # a start needs its 2 successors stored
    expected = {  # start: (n-step reward, bootstrap obs index, terminated, discount)
        0: (1 + 0.5 + 0.25, 3, False, 0.125),
        1: (1 + 0.5, 3, False, 0.25),  # stops at the truncation of step 2, bootstraps from its final obs
        2: (1.0, 3, False, 0.5),
        3: (1 + 0.5, 5, True, 0.25),  # terminal at step 4: no bootstrap
        4: (1.0, 5, True, 0.5),
        5: (1.75, 8, False, 0.125),
    }
    for i, s in enumerate(start):
        reward, next_index, term, disc = expected[s]
        assert np.isclose(float(batch.reward[i]), reward)
        assert int(batch.next_obs[i, 0]) == next_index
        assert bool(batch.terminated[i]) == term
        assert np.isclose(float(discount[i]), disc)
    assert len(set(start.tolist())) == 6


def test_n_step_before_n_rows_never_reads_unwritten_rows():
    """With 2 rows stored and n = 3, a 3-step return would read an all-zero third row
    (reward 0, next_obs 0, not terminal) and bootstrap from s = 0 with γ³. It stops at the
    newest stored row instead: start 0, reward 1 + γ, bootstrap from step 1's s′ with γ²;
    also after a wrap-around of a 2-row buffer."""
    gamma = 0.5
    buf = buffers.create(_example(), num_envs=2, capacity=8)  # 4 rows
    for t in range(2):
        buf = buffers.add(buf, _step(t, 2))
    batch, discount = buffers.sample_n_step(buf, jax.random.PRNGKey(0), 64, n=3, gamma=gamma)
    np.testing.assert_array_equal(np.asarray(batch.obs[:, 0]), 0.0)
    np.testing.assert_allclose(np.asarray(batch.reward), 1 + gamma)
    np.testing.assert_array_equal(np.asarray(batch.next_obs[:, 0]), 2.0)
    np.testing.assert_allclose(np.asarray(discount), gamma**2)

    one = buffers.add(buffers.create(_example(), num_envs=1, capacity=1), _step(7, 1))  # 1 row, full
    batch, discount = buffers.sample_n_step(one, jax.random.PRNGKey(1), 8, n=3, gamma=gamma)
    np.testing.assert_allclose(np.asarray(batch.reward), 1.0)
    np.testing.assert_array_equal(np.asarray(batch.next_obs[:, 0]), 8.0)
    np.testing.assert_allclose(np.asarray(discount), gamma)


def test_one_step_sampling_matches_plain_sampling_fields():
    buf = buffers.create(_example(), num_envs=2, capacity=8)
    for t in range(4):
        buf = buffers.add(buf, _step(t, 2))
    batch, discount = buffers.sample_n_step(buf, jax.random.PRNGKey(3), 100, n=1, gamma=0.9)
    np.testing.assert_allclose(np.asarray(batch.next_obs[:, 0]), np.asarray(batch.obs[:, 0]) + 1)
    np.testing.assert_allclose(np.asarray(discount), 0.9)
    np.testing.assert_allclose(np.asarray(batch.reward), 1.0)


def test_vmap_gives_every_seed_its_own_buffer():
    def fill(seed_value):
        buf = buffers.create(_example(), num_envs=2, capacity=8)

        def body(b, t):
            batch = _step(t, 2)
            batch = batch.replace(reward=jnp.full(2, seed_value))
            return buffers.add(b, batch), None

        buf, _ = jax.lax.scan(body, buf, jnp.arange(6))
        return buffers.sample(buf, jax.random.PRNGKey(0), 64).reward

    rewards = jax.jit(jax.vmap(fill))(jnp.arange(5, dtype=jnp.float32))
    for seed in range(5):
        assert np.all(np.asarray(rewards[seed]) == seed)



def test_shape_properties_of_a_buffer_stacked_over_seeds():
    """A train state returned from `vmap(train)` holds a buffer with a leading seed axis:
    rows, num_envs and size still describe one seed's buffer."""
    def fill(_):
        buf = buffers.create(_example(), num_envs=2, capacity=8)  # 4 rows
        return jax.lax.scan(lambda b, t: (buffers.add(b, _step(t, 2)), None), buf, jnp.arange(3))[0]

    stacked = jax.vmap(fill)(jnp.arange(5))
    assert stacked.rows == 4 and stacked.num_envs == 2
    np.testing.assert_array_equal(stacked.size, np.full(5, 6))

def test_nbytes_counts_every_field():
    # obs 2 + next_obs 2 floats, reward float, action int32, two bools: 4*4 + 4 + 4 + 2 = 26 bytes
    assert buffers.nbytes(_example(), 1000) == 26 * 1000


def test_sampling_normalizes_stored_raw_observations_with_the_given_statistics():
    """Raw observations are stored; `normalize_obs` maps `obs` and `next_obs` of the sampled
    minibatch (the statistics of the moment of sampling), and nothing else."""
    buf = buffers.create(_example(), num_envs=2, capacity=8)
    for t in range(4):
        buf = buffers.add(buf, _step(t, 2))
    key = jax.random.PRNGKey(5)
    plain = buffers.sample(buf, key, 32)
    scaled = buffers.sample(buf, key, 32, normalize_obs=lambda x: (x - 1.0) / 2.0)
    np.testing.assert_allclose(np.asarray(scaled.obs), (np.asarray(plain.obs) - 1.0) / 2.0)
    np.testing.assert_allclose(np.asarray(scaled.next_obs), (np.asarray(plain.next_obs) - 1.0) / 2.0)
    np.testing.assert_array_equal(np.asarray(scaled.reward), np.asarray(plain.reward))
    np.testing.assert_array_equal(np.asarray(buf.data.obs[:4, :, 0]), np.arange(4.0)[:, None] * np.ones(2))
    n_plain, _ = buffers.sample_n_step(buf, key, 32, n=2, gamma=0.9)
    n_scaled, _ = buffers.sample_n_step(buf, key, 32, n=2, gamma=0.9, normalize_obs=lambda x: 3.0 * x)
    np.testing.assert_allclose(np.asarray(n_scaled.obs), 3.0 * np.asarray(n_plain.obs))
    np.testing.assert_allclose(np.asarray(n_scaled.next_obs), 3.0 * np.asarray(n_plain.next_obs))


def test_observations_stored_as_bool_come_back_as_exact_float32():
    """A buffer may store observations narrower than float32 (MinAtar's bool grids): `add`
    casts to the stored dtype and both samplers give `obs`/`next_obs` back as float32, equal."""
    example = Transition(obs=jnp.zeros((3, 3, 2), bool), action=jnp.zeros((), jnp.int32), reward=jnp.zeros(()),
                         terminated=jnp.zeros((), bool), truncated=jnp.zeros((), bool),
                         next_obs=jnp.zeros((3, 3, 2), bool))
    assert buffers.nbytes(example, 10) == 10 * (2 * 18 + 4 + 4 + 2)  # 18 bytes per grid, not 72
    grids = jax.random.bernoulli(jax.random.PRNGKey(0), 0.3, (5, 2, 3, 3, 2)).astype(jnp.float32)
    buf = buffers.create(example, num_envs=2, capacity=10)
    for t in range(4):
        buf = buffers.add(buf, Transition(obs=grids[t], action=jnp.full(2, t, jnp.int32), reward=jnp.ones(2),
                                          terminated=jnp.zeros(2, bool), truncated=jnp.zeros(2, bool),
                                          next_obs=grids[t + 1]))
    assert buf.data.obs.dtype == jnp.bool_
    key = jax.random.PRNGKey(1)
    for batch in (buffers.sample(buf, key, 16), buffers.sample_n_step(buf, key, 16, n=2, gamma=0.9)[0],
                  buffers.sample(buf, key, 16, normalize_obs=lambda x: x)):
        assert batch.obs.dtype == jnp.float32 and batch.next_obs.dtype == jnp.float32
        stored = np.asarray(grids)[np.asarray(batch.action)]  # [16, envs, 3, 3, 2]: the step's grids (action = t)
        assert all(any(np.array_equal(np.asarray(batch.obs)[i], s) for s in stored[i]) for i in range(16))
    np.testing.assert_array_equal(np.asarray(buf.data.obs[:4], np.float32), np.asarray(grids[:4]))
