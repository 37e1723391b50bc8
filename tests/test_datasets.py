"""Offline datasets: the rollout's episode layout, the Minari round trip (and Minari's own
loader), the content hash, clear errors for bad input, collection from a run's checkpoint
through `purerl collect`."""

import json
import os

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl import buffers, cli, datasets, envs, run
from purerl.algos import sac


def _random_dataset(env_name="Pendulum-v1", num_envs=3, steps=250, seed=0) -> datasets.Dataset:
    env = envs.make(env_name)
    data = jax.jit(lambda k: datasets.rollout(env, datasets.random_policy(env), k, num_envs, steps))(
        jax.random.PRNGKey(seed))
    return datasets.Dataset(datasets.to_host(data), dict(env=env_name, kind="random", random_return=-1000.0,
                                                         expert_return=-100.0))


def _same(a: buffers.Transition, b: buffers.Transition):
    for name in datasets.FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        np.testing.assert_array_equal(x, y, err_msg=name)


def test_rollout_is_episode_ordered_and_each_stream_ends_truncated():
    """3 environments × 250 steps of Pendulum (time limit 200): streams one after another;
    within an episode s′ is the next s; every episode ends terminated or truncated, the
    collection's end included."""
    d = _random_dataset()
    t = d.transitions
    assert d.size == 750 and t.obs.shape == (750, 3) and t.action.shape == (750, 1)
    ends = t.terminated | t.truncated
    assert not t.terminated.any()  # Pendulum has no terminal
    np.testing.assert_array_equal(np.flatnonzero(ends), [199, 249, 449, 499, 699, 749])
    inner = ~ends[:-1]
    np.testing.assert_array_equal(t.next_obs[:-1][inner], t.obs[1:][inner])
    assert [s.stop - s.start for s in datasets.episodes(t)] == [200, 50] * 3
    assert np.all(np.abs(t.action) <= 1.0)


def test_cartpole_terminals_are_kept_apart_from_truncations():
    d = _random_dataset("CartPole-v1", num_envs=2, steps=100)
    t = d.transitions
    assert t.terminated.sum() > 4  # random CartPole episodes end in a fall
    assert not (t.terminated & t.truncated).any()
    assert t.truncated[99] != t.terminated[99] and t.truncated[199] != t.terminated[199]
    assert t.action.dtype == np.int32 and set(np.unique(t.action)) <= {0, 1}


def test_round_trip_is_identical_and_minari_reads_it(tmp_path):
    import minari

    d = _random_dataset("CartPole-v1", num_envs=2, steps=120)
    path = datasets.save(d, str(tmp_path / "cartpole-random"))
    loaded = datasets.load(path)
    _same(loaded.transitions, d.transitions)
    assert loaded.info["content_hash"] == datasets.content_hash(d.transitions)
    assert loaded.info["env"] == "CartPole-v1" and loaded.info["kind"] == "random"
    # Minari's own reader: the same episodes, spaces and reference scores
    m = minari.MinariDataset(os.path.join(path, "data"))
    episodes = list(m.iterate_episodes())
    spans = datasets.episodes(d.transitions)
    assert m.total_steps == d.size and len(episodes) == len(spans)
    for ep, span in zip(episodes, spans):
        np.testing.assert_array_equal(ep.observations[:-1], d.transitions.obs[span])
        np.testing.assert_array_equal(ep.actions, d.transitions.action[span])
    assert m.action_space.n == 2 and m.observation_space.shape == (4,)
    assert m.storage.metadata["ref_min_score"] == -1000.0 and m.storage.metadata["ref_max_score"] == -100.0
    with pytest.raises(ValueError, match="exists already"):
        datasets.save(d, path)


def test_a_corrupt_or_missing_dataset_is_refused(tmp_path):
    path = datasets.save(_random_dataset(steps=50), str(tmp_path / "d"))
    with h5py.File(os.path.join(path, "data", "main_data.hdf5"), "r+") as f:
        rewards = f["episode_0"]["rewards"]
        rewards[3] = rewards[3] + 1.0
    with pytest.raises(ValueError, match="corrupt: its content hash"):
        datasets.load(path)
    with pytest.raises(ValueError, match="no Minari dataset there"):
        datasets.load(str(tmp_path / "nothing"))
    broken = tmp_path / "broken"
    os.makedirs(broken / "data")
    (broken / "data" / "metadata.json").write_text(json.dumps({"dataset_id": "x"}))
    (broken / "data" / "main_data.hdf5").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="cannot be read"):
        datasets.load(str(broken))


def test_a_dataset_that_does_not_fit_the_env_or_batch_is_refused():
    d = _random_dataset(steps=20, num_envs=1)
    with pytest.raises(ValueError, match="collected on 'Pendulum-v1'.*CartPole-v1"):
        datasets.check_dataset(d, envs.make("CartPole-v1"))
    foreign = datasets.Dataset(d.transitions, {**d.info, "env": None})
    with pytest.raises(ValueError, match=r"observations of shape \(3,\) do not match CartPole-v1's \(4,\)"):
        datasets.check_dataset(foreign, envs.make("CartPole-v1"))
    with pytest.raises(ValueError, match="20 transitions are fewer than batch_size=256"):
        datasets.check_dataset(d, envs.make("Pendulum-v1"), batch_size=256)


def test_normalized_score_and_sampling():
    np.testing.assert_allclose(datasets.normalized_score([-1000.0, -100.0, -550.0], -1000.0, -100.0), [0, 100, 50])
    d = _random_dataset(steps=10, num_envs=1)
    batch = jax.jit(datasets.sample, static_argnums=2)(d.transitions, jax.random.PRNGKey(0), 64)
    assert batch.obs.shape == (64, 3) and batch.action.shape == (64, 1)
    rows = [int(np.flatnonzero((d.transitions.obs == o).all(-1))[0]) for o in np.asarray(batch.obs)]
    np.testing.assert_array_equal(np.asarray(batch.reward), d.transitions.reward[rows])


def test_concatenate_refuses_mixed_environments():
    a, b = _random_dataset(steps=5, num_envs=1), _random_dataset("CartPole-v1", steps=5, num_envs=1)
    with pytest.raises(ValueError, match="different environments"):
        datasets.concatenate(a, b)
    both = datasets.concatenate(a, a, kind="medium-expert")
    assert both.size == 10 and both.info["kind"] == "medium-expert"


def test_collect_from_a_run_through_the_cli(tmp_path, capsys):
    """A one-seed SAC run on Pendulum (2 000 steps); `purerl collect` makes its expert,
    medium-replay (the run's whole buffer) and random datasets, R_expert measured from the run."""
    config = sac.Config.for_env("Pendulum-v1", total_timesteps=2_000, buffer_size=2_000, eval_every=1_000,
                                hidden_sizes=(32, 32))
    run.train("sac", config, run.RunOptions(num_seeds=2, run_name="sac", runs_dir=str(tmp_path), progress=False,
                                            plot=False))
    run_dir = str(tmp_path / "sac")
    for kind in ("expert", "medium-replay", "random"):
        out = str(tmp_path / kind)
        assert cli.main(["collect", "--kind", kind, "--run", run_dir, "--expert-run", run_dir, "--steps", "1000",
                         "--out", out, "--seed-index", "1"]) == 0
        d = datasets.load(out)
        assert d.info["kind"] == kind and d.info["env"] == "Pendulum-v1"
        assert d.info["random_return"] < -900 and d.info["expert_return"] > d.info["random_return"]
        assert d.size == (2_000 if kind == "medium-replay" else 1_000)
    # the medium-replay data is seed 1's buffer, oldest first
    module, _, state = datasets.load_run(run_dir, seed_index=1)
    replay = datasets.load(str(tmp_path / "medium-replay")).transitions
    np.testing.assert_array_equal(replay.obs, np.asarray(state.buffer.data.obs)[:, 0])
    out = capsys.readouterr().out
    assert "2,000 transitions" in out and "kind medium-replay" in out
    # bad requests: a clear message, exit code 2, nothing written
    assert cli.main(["collect", "--kind", "medium", "--expert-run", run_dir, "--steps", "10",
                     "--out", str(tmp_path / "x")]) == 2
    assert "needs run (--run)" in capsys.readouterr().err
    assert cli.main(["collect", "--kind", "expert", "--run", run_dir, "--steps", "10",
                     "--out", str(tmp_path / "random")]) == 2
    assert "exists already" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "x")
