"""The runner: result files, resume = uninterrupted, sharding over devices = one device,
memory planning, CLI."""

import functools
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
from xla_flags import with_host_devices  # tests/xla_flags.py (tests/ is on sys.path via its conftest)

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


def test_checkpoints_keep_zero_size_arrays(tmp_path):
    """orbax refuses zero-size arrays (a Brax MJX state has some): the runner's checkpoint tree saves
    each as a 0-d placeholder and the restore puts the empty array back, the rest bit for bit."""
    import orbax.checkpoint as ocp

    tree = {"act": np.zeros((3, 0), np.float32), "qpos": np.arange(6, dtype=np.float32).reshape(3, 2),
            "step": np.array([1, 2, 3], np.int32)}
    manager = ocp.CheckpointManager(str(tmp_path / "ckpt"), options=ocp.CheckpointManagerOptions(create=True))
    with pytest.raises(ValueError, match="zero size"):
        manager.save(0, args=ocp.args.StandardSave(tree), force=True)
    manager.save(1, args=ocp.args.StandardSave(run.checkpoint_tree(tree)), force=True)
    manager.wait_until_finished()
    target = jax.tree.map(np.zeros_like, tree)
    restored = manager.restore(1, args=ocp.args.StandardRestore(run.checkpoint_tree(target)))
    back = run.from_checkpoint_tree(jax.tree.map(np.asarray, restored), target)
    assert jax.tree.map(lambda x: (x.shape, x.dtype), back) == jax.tree.map(lambda x: (x.shape, x.dtype), tree)
    assert _leaves_equal(back, tree)


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
    env = {**os.environ, "XLA_FLAGS": with_host_devices(4), "JAX_PLATFORMS": "cpu"}  # this process's other flags
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=600)
    multi = np.load(tmp_path / "multi.npz")
    leaves = jax.tree.leaves(uninterrupted.states)
    for i, leaf in enumerate(leaves):
        np.testing.assert_allclose(multi[f"arr_{i}"], leaf, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(multi["returns"], uninterrupted.eval_returns)


@pytest.mark.parametrize("rows, cores, count", [(1, 2, 1), (3, 2, 1), (2, 2, 2), (8, 2, 2), (16, 8, 8),
                                                (12, 8, 6), (7, 64, 7), (5, 4, 1), (96, 16, 16)])
def test_cpu_device_count_is_the_most_cores_that_split_the_seeds_evenly(rows, cores, count):
    assert run.cpu_device_count(rows, cores) == count


def test_cli_splits_the_cpu_into_one_device_per_core_unless_told_otherwise(tmp_path):
    """`purerl train` with 4 seeds on a CPU-only host: one XLA device per core (as many as
    divide 4) in config.json; with `XLA_FLAGS=--xla_force_host_platform_device_count=1` the
    run resumes on one device (the checkpoint is host arrays, any layout), and that count wins."""
    cores = len(os.sched_getaffinity(0))
    script = textwrap.dedent(f"""
        import sys
        from purerl import cli
        if sys.argv[1] == "resume":
            assert cli.main(["train", "ppo", "--resume", {str(tmp_path)!r} + "/auto", "--no-progress"]) == 0
            sys.exit()
        assert cli.main(["train", "ppo", "--env", "CartPole-v1", "--num-seeds", "4", "--total-timesteps", "128",
                         "--num-envs", "2", "--num-steps", "16", "--num-minibatches", "1", "--update-epochs", "1",
                         "--hidden-sizes", "8", "--eval-every", "2", "--eval-episodes", "1", "--no-plot",
                         "--checkpoint-every", "1", "--stop-after", "1",
                         "--runs-dir", {str(tmp_path)!r}, "--run-name", sys.argv[1], "--no-progress"]) == 0
        """)

    def purerl(mode, host_devices):
        env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": with_host_devices(host_devices)}
        return subprocess.run([sys.executable, "-c", script, mode], check=True, env=env, timeout=600,
                              capture_output=True, text=True).stdout

    purerl("auto", None)
    devices = json.load(open(tmp_path / "auto" / "config.json"))["devices"]
    assert len(devices) == run.cpu_device_count(4, cores), (cores, devices)
    assert "128 env steps per seed" in purerl("resume", 1)  # the split run's first block, resumed on one device
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": with_host_devices(1)}
    check = "import jax; from purerl import run; print(run.use_cpu_cores(4), jax.device_count())"
    assert subprocess.run([sys.executable, "-c", check], env=env, check=True, capture_output=True, text=True,
                          timeout=300).stdout.split() == ["None", "1"]  # the user's count wins
    jax.devices()  # in this process JAX has started (and conftest fixed one CPU device): left alone
    assert run.use_cpu_cores(4) is None and jax.device_count() == 1


@pytest.mark.parametrize("algo", ["dqn", "sac", "td3", "ddpg", "muzero", "diayn"])
def test_runner_block_keeps_the_learning_gates_real_branches_over_seeds(algo):
    """The runner's block passes each update its unbatched number (`update_index`), so under the
    seed `vmap` the algorithm's learning-starts gate stays a `lax.cond` holding the gradient
    steps, and the replay buffer is never `select`ed. (Until 12-08 the runner wrapped `update`
    in a lambda that hid `update_index`: the gates were selects on the batched state counters,
    and DQN's acting phase ran 12× slower under `purerl train` with 2 seeds.)"""
    from purerl import algos

    from jaxpr_stats import jaxpr_stats

    module = algos.get(algo)
    config = module.Config()  # traced only
    states = jax.eval_shape(jax.vmap(functools.partial(module.init, config)), jax.random.split(jax.random.PRNGKey(0), 3))
    stats = jaxpr_stats(jax.vmap(run.block_fn(module, config), in_axes=(0, None, 0)), states, 0, {})
    assert stats["conds"] >= 1 and stats["dots_in_cond"] > 0, stats
    buffer_shapes = {leaf.shape for leaf in jax.tree.leaves(states.buffer) if leaf.ndim >= 3}  # [seeds, size, …]
    assert not buffer_shapes & stats["select_shapes"], buffer_shapes & stats["select_shapes"]


# ----------------------------------------------------------------------------- diverged seeds
def test_diverged_seed_is_named_not_hidden(tmp_path, monkeypatch, capsys):
    """Seed 1's evaluation return turns NaN from the third evaluation on: it is reported as
    non-finite (table, results.json, CSV), never as its last finite value, and the
    statistics are over the other seeds."""
    import jax.numpy as jnp

    real_block = run.run_block

    def diverging_block(update, evaluate_fn, state, index, size, total):
        state, metrics, returns = real_block(update, evaluate_fn, state, index, size, total)
        diverged = (jax.lax.axis_index("seed") == 1) & (index >= 2)
        return state, metrics, jnp.where(diverged, jnp.nan, returns)

    monkeypatch.setattr(run, "run_block", diverging_block)
    result = run.train("ppo", SMALL, _opts(tmp_path, "nan", num_seeds=3))
    out = capsys.readouterr().out
    assert "non-finite final return (diverged), not in the statistics: 1 of 3 seeds: 1" in out
    results = json.load(open(tmp_path / "nan" / "results.json"))
    per_seed = results["final_eval_return_per_seed"]
    assert per_seed[1] is None and per_seed[0] is not None and per_seed[2] is not None
    summary = results["final_eval_return"]
    assert summary["nonfinite_seeds"] == [1] and summary["num_finite"] == 2 and summary["num_seeds"] == 3
    assert np.isclose(summary["mean"], (per_seed[0] + per_seed[2]) / 2)
    assert result.summary == summary and list(result.evals_done) == [4, 4, 4]
    rows = [r.split(",") for r in open(tmp_path / "nan" / "curves.csv").read().splitlines()[1:]]
    assert len(rows) == 3 * 4
    assert [r[2] for r in rows if r[0] == "1"][2:] == ["nan", "nan"]
    assert os.path.getsize(tmp_path / "nan" / "curve.png") > 0


def test_summarize_names_nonfinite_seeds_and_iqm_matches_trimmed_mean():
    from scipy.stats import trim_mean  # a dependency of rliable; purerl itself uses numpy

    from purerl import report

    s = report.summarize(np.array([1.0, np.nan, 3.0, np.inf, 2.0]), seeds=[10, 11, 12, 13, 14])
    assert s["nonfinite_seeds"] == [11, 13] and s["num_finite"] == 3 and s["mean"] == 2.0
    assert "mean" not in report.summarize(np.array([np.nan]))
    for n in range(1, 12):
        x = np.random.default_rng(n).normal(size=n)
        assert np.isclose(report.iqm(x), trim_mean(x, 0.25))


# ----------------------------------------------------------------------------- memory
def test_plan_chunks():
    gib = 2**30
    assert run.plan_chunks(16, gib // 100, 10 * gib, 1) == 16  # fits: one chunk
    assert run.plan_chunks(16, gib, 10 * gib, 1) == 10  # 1 GiB per seed, 10 GiB free: 10 seeds per chunk
    assert run.plan_chunks(16, 2 * gib, 10 * gib, 2) == 10  # 5 per device, 2 devices
    with pytest.raises(ValueError, match="not even one seed fits"):
        run.plan_chunks(4, 11 * gib, 10 * gib, 1)
    with pytest.raises(ValueError, match=r"16 seeds need about 1.0 GiB per seed .* 10.0 GiB is free"):
        run.plan_chunks(16, gib, 10 * gib, 1, on_memory="error")


def _mesh():
    return run.seed_mesh(jax.devices()[:1])


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_memory_estimate_is_within_2x_of_the_compiled_program(algo):
    """The per-seed estimate the chunk plan uses (from the program compiled for 4 seeds)
    is within 2× of what the program compiled for one seed needs (XLA memory_analysis:
    arguments + outputs + temporaries), the rollout and the replay buffer included."""
    from purerl.algos import sac

    config = (ppo.Config(num_envs=16, num_steps=64, total_timesteps=16 * 64 * 2, num_minibatches=2, update_epochs=1,
                         hidden_sizes=(16,), eval_every=1, eval_episodes=2) if algo == "ppo" else
              sac.Config(total_timesteps=200, buffer_size=2000, batch_size=64, learning_starts=50,
                         hidden_sizes=(16,), eval_every=100, eval_episodes=2))
    module = ppo if algo == "ppo" else sac
    estimate = run.bytes_per_seed(run.compile_program(module, config, _mesh(), 4))
    used = run.compile_program(module, config, _mesh(), 1).bytes_per_device
    assert used / 2 <= estimate <= 2 * used, (estimate, used)
    if algo == "ppo":  # the rollout alone: observations and final observations of 16 envs × 64 steps
        assert estimate > 2 * 16 * 64 * 4 * 4


@pytest.fixture(scope="module")
def one_seed_memory(uninterrupted):
    """Free memory (bytes) that holds the SMALL program for one seed but not for two."""
    three = uninterrupted.timing["program_bytes_per_device"]  # compiled for all 3 seeds
    one = run.compile_program(ppo, SMALL, _mesh(), 1).bytes_per_device
    limit = max(one, int(1.2 * three / 3))
    assert limit < 2 * three // 3
    return limit


def test_chunked_run_resumed_under_other_memory_keeps_its_chunk_plan(uninterrupted, one_seed_memory, tmp_path,
                                                                     monkeypatch, capsys):
    """A run planned in 3 chunks of 1 seed, stopped in its second chunk, resumes in the
    same chunks when more memory is free (and matches the uninterrupted run), and is
    refused, touching nothing, when its chunks no longer fit."""
    monkeypatch.setattr(run, "available_memory_bytes", lambda device: one_seed_memory)
    first = run.train("ppo", SMALL, _opts(tmp_path, "chunked", num_seeds=3, plot=False, stop_after=5,
                                          checkpoint_every=1))
    assert "3 sequential chunks of 1" in capsys.readouterr().err and not first.finished
    meta = json.load(open(os.path.join(first.run_dir, "config.json")))
    assert meta["chunk_plan"]["chunk_size"] == 1 and meta["chunk_plan"]["num_chunks"] == 3
    np.testing.assert_array_equal(first.evals_done, [4, 1, 0])

    def snapshot():
        files = sorted(os.path.join(d, f) for d, _, fs in os.walk(first.run_dir) for f in fs)
        return {f: open(f, "rb").read() for f in files}

    before = snapshot()
    monkeypatch.setattr(run, "available_memory_bytes", lambda device: one_seed_memory // 4)
    with pytest.raises(ValueError, match=r"cannot resume: this run's seed-chunk plan \(chunks of 1 seeds"):
        run.resume(first.run_dir, progress=False)
    assert snapshot() == before  # a refused resume leaves checkpoints and results as they were

    monkeypatch.setattr(run, "available_memory_bytes", lambda device: 2**40)
    resumed = run.resume(first.run_dir, progress=False)
    assert resumed.finished and resumed.timing["seed_chunks"] == 3
    for a, b in zip(jax.tree.leaves(uninterrupted.states), jax.tree.leaves(resumed.states)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)  # batch size 1 vs 3: rounding only
    np.testing.assert_allclose(resumed.eval_returns, uninterrupted.eval_returns, rtol=1e-5)


def test_memory_refusal_names_the_numbers_and_writes_nothing(one_seed_memory, tmp_path):
    limit = one_seed_memory / 2**30
    with pytest.raises(ValueError, match="Use fewer seeds"):
        run.train("ppo", SMALL, _opts(tmp_path, "refused", num_seeds=3, memory_limit_gb=limit, on_memory="error"))
    assert not os.path.exists(tmp_path / "refused" / "config.json")


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


def test_cli_errors_from_the_runner_are_one_line_with_exit_code_2(uninterrupted, tmp_path, capsys):
    runs_dir, name = os.path.split(uninterrupted.run_dir)
    assert cli.main(["train", "ppo", "--runs-dir", runs_dir, "--run-name", name, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: run directory") and "Traceback" not in err
    tiny = ["--num-envs", "2", "--num-steps", "8", "--total-timesteps", "16", "--num-minibatches", "1",
            "--hidden-sizes", "8", "--eval-episodes", "1"]
    assert cli.main(["train", "ppo", *tiny, "--runs-dir", str(tmp_path), "--run-name", "oom", "--no-progress",
                     "--memory-limit-gb", "1e-9", "--on-memory", "error"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: out of memory before running") and "Traceback" not in err


def test_cli_resume_refuses_what_it_cannot_honour(uninterrupted, capsys):
    d = uninterrupted.run_dir
    assert cli.main(["train", "ppo", "--resume", d, "--gamma", "0.9", "--num-seeds=4", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "cannot honour --gamma, --num-seeds" in err
    assert cli.main(["train", "sac", "--resume", d]) == 2
    assert "that run trains 'ppo', not 'sac'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="cannot change gamma, num_seeds"):
        run.train("ppo", SMALL.replace(gamma=0.9), run.RunOptions(resume=d, num_seeds=7, progress=False))


# ----------------------------------------------------------------------------- compilation cache
def test_second_run_loads_both_programs_from_the_compilation_cache(tmp_path, capsys, monkeypatch):
    config = SMALL.replace(hidden_sizes=(12,), total_timesteps=4 * 16 * 3)  # a program no other test compiles
    first = run.train("ppo", config, _opts(tmp_path, "first", num_seeds=1, plot=False))
    assert first.timing["compile_cache_dir"] == os.environ["PURERL_CACHE_DIR"]
    assert "compilation cache: miss" in capsys.readouterr().out
    second = run.train("ppo", config, _opts(tmp_path, "second", num_seeds=1, plot=False))
    assert second.timing["compile_cache_hits"] == 2
    assert "compilation cache hit: 2 of 2 programs loaded" in capsys.readouterr().out
    assert _leaves_equal(first.states, second.states)
    off = run.train("ppo", config, _opts(tmp_path, "off", num_seeds=1, plot=False, compile_cache=False))
    assert off.timing["compile_cache_dir"] is None and off.timing["compile_cache_hits"] == 0
    run.use_compilation_cache(True)  # the other tests of this worker keep the cache


def test_default_cache_dir(monkeypatch):
    monkeypatch.delenv("PURERL_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere")
    assert run.default_cache_dir() == f"/somewhere/purerl/jax/{run.cpu_fingerprint()}"
    assert len(run.cpu_fingerprint()) == 12 and run.cpu_fingerprint() == run.cpu_fingerprint()
    monkeypatch.setenv("PURERL_CACHE_DIR", "/elsewhere")
    assert run.default_cache_dir() == "/elsewhere"


def test_one_seed_runs_the_unbatched_program(tmp_path):
    """A one-seed run compiles the unbatched `init` and block (a vmap over a batch of one is far
    slower on XLA:CPU) and gives exactly what `jax.jit(train)` gives for the same key."""
    result = run.train("ppo", SMALL, _opts(tmp_path, "one", num_seeds=1, plot=False))
    key = jax.random.split(jax.random.PRNGKey(0), 1)[0]
    state, _, returns = jax.jit(ppo.train)(SMALL, key)
    assert _leaves_equal(jax.tree.map(lambda x: x[0], result.states.params), state.params)
    np.testing.assert_array_equal(result.eval_returns[0], returns)
