"""The runner with an offline algorithm: the dataset checked before compiling, passed to the
compiled programs once (broadcast over seeds, not in the train state), the normalized score
reported, a resume refused when the dataset changed, `purerl train bc --dataset PATH`."""

import json
import os

import jax
import numpy as np
import pytest

from purerl import cli, datasets, envs, run
from purerl.algos import bc


def _dataset(path, steps=389, num_envs=2, seed=0, env_name="Pendulum-v1") -> str:
    env = envs.make(env_name)
    data = jax.jit(lambda k: datasets.rollout(env, datasets.random_policy(env), k, num_envs, steps))(
        jax.random.PRNGKey(seed))
    d = datasets.Dataset(datasets.to_host(data), dict(env=env_name, kind="random", random_return=-1200.0,
                                                      expert_return=-150.0))
    return datasets.save(d, str(path))


TINY = dict(num_gradient_steps=40, steps_per_update=10, batch_size=32, hidden_sizes=(16,), eval_every=2,
            eval_episodes=2)


def test_offline_run_reports_the_normalized_score_and_records_the_dataset(tmp_path, capsys):
    path = _dataset(tmp_path / "data")
    config = bc.Config(env="Pendulum-v1", dataset=path, **TINY)
    result = run.train("bc", config, run.RunOptions(num_seeds=3, run_name="r", runs_dir=str(tmp_path),
                                                    progress=False, plot=False))
    assert result.finished and result.eval_returns.shape == (3, 2, 2)
    out = capsys.readouterr().out
    assert "40 gradient steps per seed" in out and "normalized score" in out and "gradient steps/s" in out
    results = json.load(open(tmp_path / "r" / "results.json"))
    final = np.array(results["final_eval_return_per_seed"])
    expected = 100 * (final - (-1200.0)) / (-150.0 + 1200.0)
    assert results["normalized_score"]["mean"] == pytest.approx(expected.mean())
    assert results["gradient_steps_per_seed"] == 40
    meta = json.load(open(tmp_path / "r" / "config.json"))
    assert meta["dataset"]["content_hash"] == datasets.load(path).info["content_hash"]
    assert meta["dataset"]["transitions"] == 778


def test_the_dataset_is_an_argument_not_part_of_the_state(tmp_path):
    """No leaf of the train state has the dataset's 778 rows: the compiled programs take the
    dataset as an argument, replicated, and the seeds share it."""
    dataset = datasets.load(_dataset(tmp_path / "data"))
    config = bc.Config(env="Pendulum-v1", **TINY)
    mesh = run.seed_mesh(jax.devices())
    program = run.compile_program(bc, config, mesh, 2, dataset)
    assert all(778 not in leaf.shape for leaf in jax.tree.leaves(program.state_info))
    states = program.init(np.asarray(jax.random.split(jax.random.PRNGKey(0), 2)))
    states, metrics, returns = program.block(states, np.int32(0))
    assert returns.shape == (2, 2) and np.isfinite(np.asarray(returns)).all()


def test_bad_offline_requests_fail_before_compiling(tmp_path):
    options = run.RunOptions(num_seeds=1, runs_dir=str(tmp_path), progress=False)
    with pytest.raises(ValueError, match="Config.dataset is empty.*--dataset PATH"):
        run.train("bc", bc.Config(**TINY), options)
    path = _dataset(tmp_path / "data", steps=20, num_envs=1)
    with pytest.raises(ValueError, match="collected on 'Pendulum-v1'.*CartPole-v1"):
        run.train("bc", bc.Config(env="CartPole-v1", dataset=path, **TINY), options)
    with pytest.raises(ValueError, match="20 transitions are fewer than batch_size=32"):
        run.train("bc", bc.Config(env="Pendulum-v1", dataset=path, **TINY), options)
    assert os.listdir(tmp_path) == ["data"]  # no run directory was left behind


def test_resume_refuses_a_changed_dataset_and_the_cli_takes_the_dataset_env(tmp_path, capsys):
    path = _dataset(tmp_path / "data")
    assert cli.main(["train", "bc", "--dataset", path, "--num-gradient-steps", "40", "--steps-per-update", "10",
                     "--batch-size", "32", "--hidden-sizes", "16", "--eval-every", "2", "--eval-episodes", "2",
                     "--num-seeds", "2", "--run-name", "r", "--runs-dir", str(tmp_path), "--stop-after", "1",
                     "--no-progress", "--no-plot"]) == 0
    meta = json.load(open(tmp_path / "r" / "config.json"))
    assert meta["config"]["env"] == "Pendulum-v1" and meta["algorithm"] == "bc"
    # the dataset at that path is replaced by another: the resumed run would train on other data
    os.rename(path, str(tmp_path / "old"))
    _dataset(tmp_path / "data", seed=1)
    assert cli.main(["train", "bc", "--resume", str(tmp_path / "r"), "--no-progress"]) == 2
    assert "content hash differs" in capsys.readouterr().err
