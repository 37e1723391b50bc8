"""Saved policies (`purerl.policy`): evaluation repeats the run's own final evaluation, `--best`
is the argmax seed, export → load gives the run's actions, rendering writes one frame per
step, and every bad CLI input is an `error:` line, exit code 2 and no file written."""

import json
import os
import shutil

import imageio.v3 as iio
import jax
import numpy as np
import pytest

import purerl
from purerl import datasets, envs, experts, policy, run
from purerl.algos import ppo

TINY = dict(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 10, num_minibatches=2, update_epochs=2,
            hidden_sizes=(16,), eval_every=5, eval_episodes=3)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 2-seed PPO run on CartPole and a 1-seed one on Pendulum (normalized observations)."""
    root = tmp_path_factory.mktemp("runs")
    opts = dict(runs_dir=str(root), progress=False, plot=False)
    run.train("ppo", ppo.Config.for_env("CartPole-v1", **TINY), run.RunOptions(num_seeds=2, run_name="cp", **opts))
    run.train("ppo", ppo.Config.for_env("Pendulum-v1", **TINY), run.RunOptions(num_seeds=1, run_name="pd", **opts))
    return str(root / "cp"), str(root / "pd")


def _finals(run_dir):
    with open(os.path.join(run_dir, "results.json")) as f:
        return json.load(f)["final_eval_return_per_seed"]


def _files(*dirs):
    return {d: sorted(os.listdir(d)) for d in dirs}


def test_evaluation_repeats_the_runs_final_evaluation(runs):
    """With the train state's evaluation key, `evaluate_run` gives the returns whose mean is in
    results.json; a fixed key gives the same returns twice."""
    for run_dir in runs:
        for seed, final in enumerate(_finals(run_dir)):
            _, config, state = datasets.load_run(run_dir, seed)
            r = policy.evaluate_run(run_dir, seed, episodes=config.eval_episodes,
                                    key=jax.random.fold_in(state.rng, 0x5EED))
            assert len(r["returns"]) == config.eval_episodes and r["seed"] == seed
            assert r["mean"] == pytest.approx(final, rel=1e-5, abs=1e-4)
    a = policy.evaluate_run(runs[0], 1, episodes=4, key_seed=3)
    b = policy.evaluate_run(runs[0], 1, episodes=4, key_seed=3)
    assert a["returns"] == b["returns"] and len(a["returns"]) == 4 and np.all(np.isfinite(a["returns"]))
    assert a["min"] <= a["mean"] <= a["max"] and a["std"] == pytest.approx(np.std(a["returns"]))


def test_best_is_the_seed_with_the_highest_final_return(runs, tmp_path):
    copy = str(tmp_path / "cp")
    shutil.copytree(runs[0], copy)
    path = os.path.join(copy, "results.json")
    results = json.load(open(path))
    for finals, best in (([1.0, 5.0], 1), ([7.0, 5.0], 0), ([None, -3.0], 1)):
        results["final_eval_return_per_seed"] = finals
        json.dump(results, open(path, "w"))
        assert policy.pick_seed(copy, best=True) == best
        assert policy.load_run_policy(copy, best=True).seed == best
    assert policy.pick_seed(runs[0], best=True) == int(np.argmax(_finals(runs[0])))


def test_export_then_load_acts_like_the_run(runs, tmp_path):
    obs_key, act_key = jax.random.split(jax.random.PRNGKey(0))
    for run_dir, seed in ((runs[0], 1), (runs[1], 0)):
        out = str(tmp_path / f"{os.path.basename(run_dir)}.npz")
        policy.export_policy(run_dir, out, seed=seed)
        with np.load(out, allow_pickle=False) as data:  # no pickled object arrays
            assert all(data[k].dtype != object for k in data.files)
            meta = json.loads(str(data[policy.META_KEY]))
        expected_env = "CartPole-v1" if run_dir == runs[0] else "Pendulum-v1"
        assert meta["format"] == "purerl-policy" and meta["version"] == 1 and meta["algorithm"] == "ppo"
        assert meta["env"] == expected_env and meta["seed"] == seed
        assert ("obs_stats" in meta) == (expected_env == "Pendulum-v1")
        loaded, reference = policy.load_policy(out), experts.from_run(run_dir, seed)
        assert loaded.env == expected_env and loaded.algorithm == "ppo"
        env = envs.make(expected_env)
        obs = jax.random.uniform(obs_key, (64,) + env.obs_shape, minval=-2.0, maxval=2.0)
        got = np.asarray(jax.jit(loaded)(obs, act_key))
        np.testing.assert_array_equal(got, np.asarray(jax.jit(reference)(obs, act_key)))
        assert len(np.unique(got.round(3), axis=0)) > 1  # actions depend on the observation
    # the other seed's parameters give other actions (the comparison can fail)
    other = policy.load_run_policy(runs[0], seed=0)
    cp = policy.load_policy(str(tmp_path / "cp.npz"))
    obs = jax.random.uniform(obs_key, (256, 4), minval=-2.0, maxval=2.0)
    assert not np.array_equal(np.asarray(cp(obs, act_key)), np.asarray(other(obs, act_key)))


def test_load_policy_checks_key_paths_and_shapes(runs, tmp_path):
    out = str(tmp_path / "p.npz")
    policy.export_policy(runs[0], out)
    with np.load(out, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    name = next(k for k in arrays if k.endswith("['kernel']"))
    bad = dict(arrays, **{name: arrays[name][:1]})
    np.savez(tmp_path / "shape.npz", **bad)
    with pytest.raises(ValueError, match="has shape"):
        policy.load_policy(str(tmp_path / "shape.npz"))
    bad = {("x" + k if k == name else k): v for k, v in arrays.items()}
    np.savez(tmp_path / "keys.npz", **bad)
    with pytest.raises(ValueError, match="missing"):
        policy.load_policy(str(tmp_path / "keys.npz"))


def test_render_cartpole_one_frame_per_step(runs, tmp_path):
    out = str(tmp_path / "cp.gif")
    r = policy.render_episode(runs[0], out, seed=1)
    frames = iio.imread(out, index=None)
    assert os.path.getsize(out) > 0 and frames.shape == (r["frames"], 240, 240, 3)
    assert r["frames"] == r["length"] == r["return"]  # CartPole: reward 1 per step
    assert not np.array_equal(frames[0], frames[-1])
    assert sorted(os.listdir(tmp_path)) == ["cp.gif"]  # no temporary file left


def test_render_pendulum_scripted(tmp_path):
    out = str(tmp_path / "pd.gif")
    r = policy.render_policy("Pendulum-v1", experts.SCRIPTED["Pendulum-v1"], out, jax.random.PRNGKey(2), max_steps=30)
    frames = iio.imread(out, index=None)
    assert r["frames"] == 30 and r["length"] == 200 and frames.shape[0] == 30
    assert np.abs(frames[0].astype(int) - frames[-1]).sum() > 1000  # the rod moved, not only the label


def test_render_pendulum_mp4_and_its_refusal_without_ffmpeg(tmp_path, monkeypatch):
    """An MP4 has one frame per step and the rod moves, and starting ffmpeg shows no JAX os.fork
    warning; without imageio-ffmpeg the render is refused up front, naming the package, and
    nothing is written."""
    import warnings

    out = str(tmp_path / "pd.mp4")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = policy.render_policy("Pendulum-v1", experts.SCRIPTED["Pendulum-v1"], out, jax.random.PRNGKey(2),
                                 max_steps=24)
    assert not [w for w in caught if "os.fork" in str(w.message)], [str(w.message) for w in caught]
    with policy.quiet_fork_warning():
        frames = iio.imread(out, index=None, plugin="FFMPEG")
    assert r["frames"] == 24 and frames.shape == (24, 240, 240, 3)
    assert np.abs(frames[0].astype(int) - frames[-1]).sum() > 1000
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "imageio_ffmpeg" else real(name, *a))
    with pytest.raises(ValueError, match="imageio-ffmpeg"):
        policy.render_policy("Pendulum-v1", experts.SCRIPTED["Pendulum-v1"], str(tmp_path / "b.mp4"), max_steps=2)
    assert sorted(os.listdir(tmp_path)) == ["pd.mp4"]


@pytest.mark.parametrize("env_name, out", [("CartPole-v1", "a.html"), ("CartPole-v1", "a.txt"),
                                           ("brax/ant", "a.gif"), ("probe/constant", "a.gif")])
def test_render_refuses_formats_the_env_cannot_make(env_name, out, tmp_path):
    with pytest.raises(ValueError, match="allowed|renderable"):
        policy.render_policy(env_name, None, str(tmp_path / out))
    assert os.listdir(tmp_path) == []


def _bad_inputs(cp, tmp):
    empty = os.path.join(tmp, "empty")
    no_ckpt = os.path.join(tmp, "no-ckpt")
    os.makedirs(empty)
    os.makedirs(no_ckpt)
    shutil.copy(os.path.join(cp, "config.json"), no_ckpt)
    exists = os.path.join(tmp, "exists.npz")
    open(exists, "w").close()
    return [
        (policy.eval_main, [empty], "config.json"),
        (policy.eval_main, [no_ckpt], "checkpoint"),
        (policy.eval_main, [cp, "--seed", "2"], "seeds 0…1"),
        (policy.eval_main, [cp, "--seed", "0", "--best"], "not allowed with"),
        (policy.eval_main, [cp, "--render", os.path.join(tmp, "x.txt")], "allowed: .gif"),
        (policy.eval_main, [cp, "--render", os.path.join(tmp, "x.html")], "allowed: .gif"),
        (policy.eval_main, [cp, "--episodes", "0"], "--episodes"),
        (policy.export_main, [empty, os.path.join(tmp, "o.npz")], "config.json"),
        (policy.export_main, [no_ckpt, os.path.join(tmp, "o.npz")], "checkpoint"),
        (policy.export_main, [cp, os.path.join(tmp, "o.npz"), "--seed", "-1"], "seeds 0…1"),
        (policy.export_main, [cp, os.path.join(tmp, "o.npz"), "--best", "--seed", "1"], "not allowed with"),
        (policy.export_main, [cp, exists], "exists"),
        (policy.export_main, [cp, os.path.join(tmp, "o.txt")], ".npz"),
    ]


def test_cli_bad_inputs_exit_2_and_write_nothing(runs, tmp_path, capsys):
    tmp = str(tmp_path)
    cases = _bad_inputs(runs[0], tmp)
    before = _files(tmp, runs[0], os.path.join(tmp, "empty"), os.path.join(tmp, "no-ckpt"))
    for main, argv, words in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and words in err, (argv, err)
    assert _files(tmp, runs[0], os.path.join(tmp, "empty"), os.path.join(tmp, "no-ckpt")) == before


def test_cli_eval_and_export(runs, tmp_path, capsys):
    gif, out = str(tmp_path / "e.gif"), str(tmp_path / "p.npz")
    assert policy.eval_main([runs[0], "--best", "--episodes", "3", "--render", gif]) == 0
    lines = capsys.readouterr().out.splitlines()
    best = int(np.argmax(_finals(runs[0])))
    assert f"best seed {best}" in lines[0] and len([x for x in lines if x.startswith("episode ")]) == 3
    assert lines[4].startswith("mean ") and lines[5].startswith(f"rendered: {gif} (")
    assert len(iio.imread(gif, index=None)) == int(lines[5].split("(")[1].split()[0])
    from purerl import cli

    assert cli.main(["export", runs[1], out]) == 0  # the `purerl export` command
    assert out in capsys.readouterr().out and purerl.load_policy(out).env == "Pendulum-v1"
    assert cli.main(["eval", runs[1], "--seed", "1"]) == 2 and "seeds 0…0" in capsys.readouterr().err


@pytest.mark.brax
def test_brax_run_evaluates_renders_and_exports(tmp_path, capsys):
    """A trained Brax (MJX) run end to end through the CLI: the runner checkpoints its state (zero-size
    MJX arrays included), `purerl eval` evaluates and renders the same episode to Brax's HTML viewer,
    `purerl export` → `load_policy` acts like the run's own policy."""
    from purerl import cli

    config = ppo.Config(env="brax/inverted_pendulum", num_envs=2, num_steps=8, total_timesteps=2 * 8 * 2,
                        num_minibatches=2, update_epochs=1, hidden_sizes=(16,), eval_every=2, eval_episodes=1)
    run.train("ppo", config, run.RunOptions(num_seeds=1, run_name="ip", runs_dir=str(tmp_path), progress=False,
                                            plot=False))
    run_dir, html, out = str(tmp_path / "ip"), str(tmp_path / "ip.html"), str(tmp_path / "ip.npz")
    capsys.readouterr()  # the run's own table
    assert cli.main(["eval", run_dir, "--episodes", "1", "--render", html]) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if not x.startswith("Failed to import")]  # MJX's warp
    assert lines[0].startswith("ppo on brax/inverted_pendulum, seed 0") and lines[1].startswith("episode 0: return ")
    frames, episode_return = lines[3].split("(")[1].split(" frames, episode return ")
    assert lines[3].startswith(f"rendered: {html} (") and float(episode_return.rstrip(")")) == float(
        lines[1].split()[-1])  # the rendered episode is the evaluated one (same key, deterministic)
    page = open(html).read()
    assert "<html" in page.lower() and 1 <= int(frames) <= 1000

    assert cli.main(["export", run_dir, out]) == 0 and out in capsys.readouterr().out
    loaded, own = purerl.load_policy(out), policy.load_run_policy(run_dir, 0)
    obs = jax.random.normal(jax.random.PRNGKey(1), (5, 4))
    np.testing.assert_array_equal(loaded(obs, jax.random.PRNGKey(2)), own(obs, jax.random.PRNGKey(2)))
    assert loaded.env == "brax/inverted_pendulum" and sorted(os.listdir(tmp_path)) == ["ip", "ip.html", "ip.npz"]


@pytest.mark.parametrize("name, words", [("pcgrad", "takes task"), ("diayn", "takes skill"), ("bandits", "no act"),
                                         ("alphazero", "no act")])
def test_algorithms_without_a_single_policy_are_refused(name, words):
    from purerl import algos

    with pytest.raises(ValueError, match=words) as error:
        policy._check_act(algos.get(name), name)
    assert "supported: " in str(error.value) and "ppo" in str(error.value)
    for ok in ("ppo", "trpo", "sac", "dqn"):  # trpo's act names its params policy_params
        policy._check_act(algos.get(ok), ok)
        assert ok in policy.supported_algorithms()


@pytest.fixture(scope="module")
def dataset_runs(tmp_path_factory):
    """Runs whose `init` takes a dataset: DAgger and GAIL (normalized observations) from one
    scripted CartPole demonstration, BC (offline) on the same transitions."""
    from purerl import cli
    from purerl.algos import bc, dagger, gail

    root = tmp_path_factory.mktemp("dataset_runs")
    demos = str(root / "demos")
    assert cli.main(["collect", "--kind", "expert", "--expert", "scripted", "--env", "CartPole-v1", "--episodes", "1",
                     "--out", demos]) == 0
    opts = dict(runs_dir=str(root), progress=False, plot=False, num_seeds=2)
    configs = {
        "dagger": dagger.Config(env="CartPole-v1", dataset=demos, num_rounds=2, num_envs=2, rollout_steps=10,
                                steps_per_update=5, hidden_sizes=(8,), eval_episodes=2),
        "gail": gail.Config(env="CartPole-v1", dataset=demos, total_timesteps=4 * 16 * 4, num_envs=4, num_steps=16,
                            num_minibatches=2, update_epochs=1, hidden_sizes=(8,), disc_hidden_sizes=(8,),
                            disc_batch_size=32, normalize_obs=True, eval_every=2, eval_episodes=2),
        "bc": bc.Config(env="CartPole-v1", dataset=demos, num_gradient_steps=20, steps_per_update=10, batch_size=32,
                        hidden_sizes=(8,), eval_episodes=2),
    }
    for name, config in configs.items():
        run.train(name, config, run.RunOptions(run_name=name, **opts))
    return {name: str(root / name) for name in configs}


def test_offline_and_imitation_runs_evaluate_and_export(dataset_runs, tmp_path):
    """A run whose train state was built from a dataset loads from its checkpoint alone (the shapes
    from the dataset size in config.json), evaluates to its own final evaluation, and exports a
    policy that acts like it: the statistics of a self-normalizing policy (DAgger, BC) travel in its
    parameters, GAIL's running statistics (those of the PPO inside) as obs_stats."""
    obs = jax.random.uniform(jax.random.PRNGKey(1), (64, 4), minval=-2.0, maxval=2.0)
    for name, run_dir in dataset_runs.items():
        assert name in policy.supported_algorithms()
        for seed, final in enumerate(_finals(run_dir)):
            _, config, state = datasets.load_run(run_dir, seed)
            r = policy.evaluate_run(run_dir, seed, episodes=config.eval_episodes,
                                    key=jax.random.fold_in(state.rng, 0x5EED))
            assert r["mean"] == pytest.approx(final, rel=1e-5, abs=1e-4), name
        out = str(tmp_path / f"{name}.npz")
        meta = policy.export_policy(run_dir, out, seed=1)
        assert ("obs_stats" in meta) == (name == "gail"), name
        loaded, reference = policy.load_policy(out), experts.from_run(run_dir, 1)
        assert (loaded.obs_stats is None) == (name != "gail")
        run_params = policy.load_run_policy(run_dir, seed=1).params  # every leaf, statistics included
        leaves, expected = jax.tree.leaves(loaded.params), jax.tree.leaves(run_params)
        assert len(leaves) == len(expected) and len(leaves) > 2, name
        for got, want in zip(leaves, expected):
            np.testing.assert_array_equal(np.asarray(got), np.asarray(want), err_msg=name)
        np.testing.assert_array_equal(np.asarray(jax.jit(loaded)(obs, jax.random.PRNGKey(2))),
                                      np.asarray(jax.jit(reference)(obs, jax.random.PRNGKey(2))), err_msg=name)
    dagger_policy = policy.load_run_policy(dataset_runs["dagger"], seed=1)
    assert float(np.abs(dagger_policy.params.obs_mean).sum()) > 0  # the demonstrations' statistics
