"""`purerl sweep` / `purerl.sweep`: a grid of float hyperparameters × seeds in one program, static
fields as separate programs, validation before anything compiles, resume."""

import json
import os

import jax
import numpy as np
import pytest

from purerl import cli, run, sweep
from purerl.algos import ppo

SMALL = ppo.Config(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 10, num_minibatches=2, update_epochs=2,
                   hidden_sizes=(16,), eval_every=3, eval_episodes=2)
SMALL_FLAGS = ["--env", "CartPole-v1", "--num-envs", "4", "--num-steps", "16", "--total-timesteps", "640",
               "--num-minibatches", "2", "--update-epochs", "2", "--hidden-sizes", "16", "--eval-every", "3",
               "--eval-episodes", "2", "--no-progress"]


def _opts(tmp_path, name, **kw):
    return run.RunOptions(runs_dir=str(tmp_path), run_name=name, progress=False, plot=False, **kw)


def test_field_kinds_and_split_flags():
    kinds = sweep.field_kinds(ppo)
    assert kinds["learning_rate"] == kinds["gamma"] == "float"
    assert kinds["num_envs"] == "static" and kinds["env"] == kinds["anneal_lr"] == kinds["hidden_sizes"] == "fixed"
    rest, floats, statics = sweep.split_flags(
        ppo, ["--env", "CartPole-v1", "--learning-rate", "1e-4,3e-4", "--gamma=0.9,0.99", "--num-envs", "4,8"])
    assert rest == ["--env", "CartPole-v1"]
    assert floats == {"learning_rate": [1e-4, 3e-4], "gamma": [0.9, 0.99]}
    assert statics == {"num_envs": [4, 8]} and all(isinstance(v, int) for v in statics["num_envs"])
    assert sweep.grid_points(floats) == ((1e-4, 0.9), (1e-4, 0.99), (3e-4, 0.9), (3e-4, 0.99))


@pytest.mark.parametrize("flags, message", [
    (["--learning-rat", "1e-4,3e-4"], "has no field 'learning_rat'"),
    (["--activation", "tanh,relu"], "activation is not a number"),
    (["--num-seeds", "4,8"], "a run option takes one value"),
    (["--learning-rate", "1e-4,fast"], "'fast': not a number"),
    (["--gamma", "0.9,0.9"], "repeated"),
    (["--gamma", "0.9,1.5"], "gamma"),  # refused by the Config itself
    (["--gamma", "0.99"], "nothing to sweep"),
])
def test_bad_sweeps_exit_2_and_write_nothing(tmp_path, capsys, flags, message):
    runs = tmp_path / "runs"
    code = cli.main(["sweep", "ppo", *SMALL_FLAGS, "--runs-dir", str(runs), *flags])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error:") and message in err
    assert not runs.exists()


def test_grid_rows_are_the_runs_of_each_value_and_resume(tmp_path):
    """Row (point p, seed s) of a sweep is the run of point p's values from seed s's key: a
    learning rate of 1e-12 leaves the network where `init` put it, and the other point matches a plain
    run of its value; a sweep stopped after one block and resumed ends the same."""
    grid = run.Grid(("learning_rate",), ((1e-12,), (3e-3,)), seeds=2)
    first = run.train("ppo", SMALL, _opts(tmp_path, "grid", num_seeds=2, stop_after=1, checkpoint_every=1), grid=grid)
    assert not first.finished and first.grid == grid
    swept = run.resume(first.run_dir, progress=False)
    assert swept.finished and swept.eval_returns.shape[0] == 4
    plain = run.train("ppo", SMALL.replace(learning_rate=3e-3), _opts(tmp_path, "plain", num_seeds=2))

    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    initial = jax.vmap(lambda k: ppo.init(SMALL, k))(keys)
    for a, b in zip(jax.tree.leaves(initial.params), jax.tree.leaves(swept.states.params)):
        np.testing.assert_allclose(np.asarray(a), b[:2], rtol=0, atol=1e-8)  # learning rate 1e-12: unchanged
        assert not np.allclose(np.asarray(a), b[2:])  # 3e-3: trained
    for a, b in zip(jax.tree.leaves(plain.states.params), jax.tree.leaves(swept.states.params)):
        np.testing.assert_allclose(a, b[2:], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(plain.eval_returns, swept.eval_returns[2:])

    results = json.load(open(os.path.join(swept.run_dir, "results.json")))
    per_point = results["sweep"]["per_point"]
    assert [p["values"] for p in per_point] == [{"learning_rate": 1e-12}, {"learning_rate": 3e-3}]
    final = np.asarray(results["final_eval_return_per_seed"], float)
    assert per_point[1]["summary"]["mean"] == pytest.approx(final[2:].mean())
    assert per_point[0]["summary"]["mean"] == pytest.approx(final[:2].mean())


def test_cli_static_fields_run_as_separate_programs(tmp_path, capsys):
    runs = tmp_path / "runs"
    code = cli.main(["sweep", "ppo", *SMALL_FLAGS, "--runs-dir", str(runs), "--run-name", "s", "--num-seeds", "2",
                     "--learning-rate", "1e-3,3e-3", "--num-envs", "2,4"])
    out = capsys.readouterr().out
    assert code == 0
    assert "num_envs is static" in out and "2 separate programs" in out
    assert out.count("2 grid points × 2 seeds in one program") == 2
    index = json.load(open(runs / "s" / "sweep.json"))
    assert [p["run_dir"] for p in index["programs"]] == ["num_envs=2", "num_envs=4"]
    assert [p["config"]["num_envs"] for p in index["programs"]] == [2, 4]
    for sub in ("num_envs=2", "num_envs=4"):
        assert (runs / "s" / sub / "sweep.png").stat().st_size > 0
        assert len(json.load(open(runs / "s" / sub / "results.json"))["sweep"]["per_point"]) == 2
    # the same sweep again is refused before anything compiles; --resume of a finished sweep is a no-op
    assert cli.main(["sweep", "ppo", *SMALL_FLAGS, "--runs-dir", str(runs), "--run-name", "s", "--num-seeds", "2",
                     "--learning-rate", "1e-3,3e-3", "--num-envs", "2,4"]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert cli.main(["sweep", "ppo", "--resume", str(runs / "s"), "--gamma", "0.9"]) == 2
    assert "cannot honour --gamma" in capsys.readouterr().err
