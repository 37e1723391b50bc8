"""The runner: result files, resume = uninterrupted, sharding over devices = one device,
memory planning, CLI."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from purerl import cli, run
from purerl.algos import ppo

SMALL = ppo.Config(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 10, num_minibatches=2, update_epochs=2,
                   hidden_sizes=(16,), eval_every=3, eval_episodes=2)


def _opts(tmp_path, name, **kw):
    return run.RunOptions(runs_dir=str(tmp_path), run_name=name, progress=False, **kw)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return run.train("ppo", SMALL, _opts(tmp_path_factory.mktemp("runs"), "full", num_seeds=3))


def _leaves_equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_run_directory_holds_config_curves_plot_and_results(uninterrupted, capsys):
    d = uninterrupted.run_dir
    for name in ("config.json", "curves.npz", "curves.csv", "curve.png", "results.json"):
        assert os.path.getsize(os.path.join(d, name)) > 0, name
    meta = json.load(open(os.path.join(d, "config.json")))
    assert meta["algorithm"] == "ppo" and meta["config"]["num_envs"] == 4
    assert meta["versions"]["jax"] == jax.__version__ and "git_revision" in meta
    results = json.load(open(os.path.join(d, "results.json")))
    assert results["finished"] and results["env_steps_per_seed"] == 640
    assert len(results["final_eval_return_per_seed"]) == 3
    curves = np.load(os.path.join(d, "curves.npz"))
    np.testing.assert_array_equal(curves["env_steps"], [192, 384, 576, 640])  # every 3 updates, and the end
    assert curves["eval_returns"].shape == (3, 4, 2)
    rows = open(os.path.join(d, "curves.csv")).read().splitlines()
    assert rows[0] == "seed,env_steps,eval_return" and len(rows) == 1 + 3 * 4
    s = uninterrupted.summary
    assert s["min"] <= s["iqm"] <= s["max"] and s["iqm_ci95"][0] <= s["iqm"] <= s["iqm_ci95"][1]
    assert np.isclose(s["mean"], np.asarray(results["final_eval_return_per_seed"]).mean())


def test_resume_reaches_the_same_parameters(uninterrupted, tmp_path):
    first = run.train("ppo", SMALL, _opts(tmp_path, "cut", num_seeds=3, stop_after=2, checkpoint_every=1))
    assert not first.finished
    resumed = run.resume(first.run_dir, progress=False)
    assert resumed.finished
    assert _leaves_equal(uninterrupted.states, resumed.states)
    np.testing.assert_array_equal(uninterrupted.eval_returns, resumed.eval_returns)


def test_existing_run_is_never_overwritten(uninterrupted):
    before = open(os.path.join(uninterrupted.run_dir, "results.json")).read()
    runs_dir, name = os.path.split(uninterrupted.run_dir)
    with pytest.raises(ValueError, match="already holds a run"):
        run.train("ppo", SMALL, run.RunOptions(runs_dir=runs_dir, run_name=name, progress=False))
    assert open(os.path.join(uninterrupted.run_dir, "results.json")).read() == before


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    from purerl import report

    path = tmp_path / "results.json"
    report.atomic_json(str(path), {"ok": 1})
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        report.atomic_json(str(path), {"ok": 2})
    assert json.load(open(path)) == {"ok": 1}


def test_sharded_over_four_devices_equals_one_device(uninterrupted, tmp_path):
    """Seeds sharded over 4 (forced host) devices, with 3 seeds padded to 4, give the
    single-device parameters."""
    script = textwrap.dedent(f"""
        import jax, numpy as np
        from purerl import run
        from purerl.algos import ppo
        assert jax.device_count() == 4, jax.devices()
        config = ppo.Config(num_envs=4, num_steps=16, total_timesteps=640, num_minibatches=2, update_epochs=2,
                            hidden_sizes=(16,), eval_every=3, eval_episodes=2)
        r = run.train("ppo", config, run.RunOptions(num_seeds=3, runs_dir={str(tmp_path)!r}, run_name="multi",
                                                    progress=False, plot=False))
        np.savez({str(tmp_path / "multi.npz")!r}, *jax.tree.leaves(r.states), returns=r.eval_returns)
        """)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=600)
    multi = np.load(tmp_path / "multi.npz")
    leaves = jax.tree.leaves(uninterrupted.states)
    for i, leaf in enumerate(leaves):
        np.testing.assert_allclose(multi[f"arr_{i}"], leaf, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(multi["returns"], uninterrupted.eval_returns)


# ----------------------------------------------------------------------------- memory
def test_plan_chunks():
    gib = 2**30
    assert run.plan_chunks(16, gib // 100, 10 * gib, 1) == 16  # fits: one chunk
    assert run.plan_chunks(16, gib, 10 * gib, 1) == 3  # 3 GiB per seed, 10 GiB free: 3 seeds per chunk
    assert run.plan_chunks(16, gib, 10 * gib, 2) == 6  # 3 per device, 2 devices
    with pytest.raises(ValueError, match="not even one seed fits"):
        run.plan_chunks(4, 4 * gib, 10 * gib, 1)
    with pytest.raises(ValueError, match=r"16 seeds need about 3 × 1.0 GiB per seed .* 10.0 GiB is free"):
        run.plan_chunks(16, gib, 10 * gib, 1, on_memory="error")


def test_state_bytes_counts_the_whole_train_state():
    per_seed = run.state_bytes_per_seed(ppo, SMALL)
    state = jax.jit(ppo.init, static_argnums=())(SMALL, jax.random.PRNGKey(0))
    assert per_seed == sum(x.nbytes for x in jax.tree.leaves(state))


def test_run_in_sequential_chunks_matches_one_chunk(uninterrupted, tmp_path, capsys):
    per_seed = run.state_bytes_per_seed(ppo, SMALL)
    limit = run.MEMORY_FACTOR * per_seed * 1.5 / 2**30  # room for one seed at a time
    chunked = run.train("ppo", SMALL, _opts(tmp_path, "chunked", num_seeds=3, memory_limit_gb=limit, plot=False))
    assert chunked.timing["seed_chunks"] == 3
    assert "3 sequential chunks of 1" in capsys.readouterr().err
    for a, b in zip(jax.tree.leaves(uninterrupted.states), jax.tree.leaves(chunked.states)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)  # batch size 1 vs 3: rounding only
    with pytest.raises(ValueError, match="Use fewer seeds"):
        run.train("ppo", SMALL, _opts(tmp_path, "refused", num_seeds=3, memory_limit_gb=limit, on_memory="error"))


@pytest.mark.parametrize("field,value", [("num_seeds", 0), ("checkpoint_every", -1), ("stop_after", 0),
                                         ("on_memory", "swap"), ("memory_limit_gb", 0.0)])
def test_run_options_validation(field, value):
    with pytest.raises(ValueError, match=f"RunOptions.{field}="):
        run.RunOptions(**{field: value})


# ----------------------------------------------------------------------------- CLI
def test_cli_trains_and_resumes(tmp_path, capsys):
    args = ["train", "ppo", "--env", "CartPole-v1", "--num-seeds", "2", "--total-timesteps", "640", "--num-envs", "4",
            "--num-steps", "16", "--num-minibatches", "2", "--hidden-sizes", "16", "--eval-every", "3",
            "--eval-episodes", "2", "--runs-dir", str(tmp_path), "--run-name", "cli", "--stop-after", "1",
            "--checkpoint-every", "1", "--no-progress"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "stopped early" in out and "IQM" in out
    assert cli.main(["train", "ppo", "--resume", str(tmp_path / "cli")]) == 0
    assert "640 env steps per seed" in capsys.readouterr().out
    meta = json.load(open(tmp_path / "cli" / "config.json"))
    assert meta["config"]["hidden_sizes"] == [16] and meta["options"]["num_seeds"] == 2


def test_cli_bad_value_names_the_field(capsys):
    assert cli.main(["train", "ppo", "--gamma", "1.5"]) == 2
    assert "Config.gamma=1.5" in capsys.readouterr().err
    assert cli.main(["train", "ppo", "--env", "Nope-v0"]) == 2
    assert "available:" in capsys.readouterr().err
    assert cli.main(["train", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown algorithm 'nope'; available:" in err and "ppo" in err


def test_cli_env_preset_defaults():
    import tyro  # noqa: F401  (the CLI's parser)

    config = ppo.Config.for_env("Pendulum-v1")
    assert config.gamma == 0.9 and config.normalize_obs and config.env == "Pendulum-v1"
    assert ppo.Config.for_env("Pendulum-v1", gamma=0.95).gamma == 0.95
