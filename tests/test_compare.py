"""`purerl compare`: rliable's aggregates against hand values, curves per evaluation, a sweep's
grid points as entries, the files written, and bad input as `error:`, exit 2, nothing written."""

import json
import os

import numpy as np
import pytest

from purerl import compare, report, run
from purerl.algos import ppo


def _fake_run(path, final, curves=None, env="CartPole-v1", algorithm="ppo", sweep=None, steps=None):
    """A run directory as run.py writes it: results.json and curves.npz (`curves` [seeds, evals])."""
    os.makedirs(path)
    final = np.asarray(final, np.float64)
    curves = np.asarray(final[:, None] if curves is None else curves, np.float64)
    steps = np.arange(1, curves.shape[1] + 1) * 1000 if steps is None else np.asarray(steps)
    np.savez(os.path.join(path, "curves.npz"), env_steps=steps, eval_returns=curves[:, :, None],
             evals_done=np.full(len(final), curves.shape[1]))
    results = {"algorithm": algorithm, "env": env, "env_steps_per_seed": int(steps[-1]),
               "final_eval_return_per_seed": [float(x) if np.isfinite(x) else None for x in final]}
    if sweep is not None:
        results["sweep"] = sweep
    with open(os.path.join(path, "results.json"), "w") as f:
        json.dump(results, f)
    return str(path)


def test_aggregates_against_hand_values(tmp_path):
    a = _fake_run(tmp_path / "a", [2.0, 5.0, 12.0, 1.0, 7.0, 3.0, 9.0, 4.0])
    b = _fake_run(tmp_path / "b", [102.0, 105.0, np.nan, 101.0], algorithm="dqn")
    entries = compare.load_entries([a, b])
    assert [e.label for e in entries] == ["ppo", "dqn"]
    ref = compare.references(entries, (0.0, 10.0))
    rows = compare.aggregates(entries, ref, reps=500)
    # IQM of 8 seeds: the middle four of 1 2 3 4 5 7 9 12 → (3 + 4 + 5 + 7)/4
    assert rows[0]["iqm"] == pytest.approx(19 / 4) and rows[0]["mean"] == pytest.approx(43 / 8)
    # optimality gap: mean of max(1 − R/10, 0) = (0.8 + 0.5 + 0 + 0.9 + 0.3 + 0.7 + 0.1 + 0.6)/8
    assert rows[0]["optimality_gap"] == pytest.approx(3.9 / 8)
    # the diverged seed is counted and left out; every finite seed of b beats every seed of a
    assert rows[1]["num_seeds"] == 4 and rows[1]["num_finite"] == 3
    assert rows[1]["mean"] == pytest.approx(308 / 3) and rows[1]["optimality_gap"] == 0.0
    assert rows[1]["p_improvement"] == 1.0 and "p_improvement" not in rows[0]
    for row in rows:
        for name in ("mean", "iqm", "optimality_gap"):
            low, high = row[name + "_ci95"]
            assert low <= row[name] <= high
    low, high = rows[0]["mean_ci95"]
    assert 1.0 < low < 43 / 8 - 0.5 and 43 / 8 + 0.5 < high < 12.0  # a real interval, inside the data


def test_probability_of_improvement_counts_ties_half(tmp_path):
    a = _fake_run(tmp_path / "a", [1.0, 2.0])
    b = _fake_run(tmp_path / "b", [1.0, 3.0, 0.0], algorithm="sac")
    rows = compare.aggregates(compare.load_entries([a, b]), {"low": 0.0, "high": 3.0}, reps=200)
    # pairs (b, a): (1,1) ½, (1,2) 0, (3,1) 1, (3,2) 1, (0,1) 0, (0,2) 0 → 2.5/6
    assert rows[1]["p_improvement"] == pytest.approx(2.5 / 6)


def test_curve_iqm_per_evaluation_drops_diverged_seeds(tmp_path):
    rng = np.random.default_rng(0)
    curves = rng.normal(size=(9, 4)) * 10
    curves[3, 2] = np.nan
    e = compare.load_entries([_fake_run(tmp_path / "a", curves[:, -1], curves),
                              _fake_run(tmp_path / "b", [1.0, 2.0], algorithm="dqn")])[0]
    steps, point, ci, used = compare.curve_iqm(e, reps=200)
    assert used == 8 and steps.tolist() == [1000, 2000, 3000, 4000]
    kept = np.delete(curves, 3, axis=0)
    np.testing.assert_allclose(point, [report.iqm(kept[:, j]) for j in range(4)])
    assert np.all(ci[0] <= point) and np.all(point <= ci[1]) and np.all(ci[0] < ci[1])


def test_labels_sweeps_and_references(tmp_path, monkeypatch):
    sweep = {"fields": ["learning_rate"], "points": [[1e-3], [3e-4]], "seeds": 2}
    s = _fake_run(tmp_path / "sw", [1.0, 2.0, 30.0, 40.0], sweep=sweep, env="Pendulum-v1")
    other = _fake_run(tmp_path / "other", [5.0, 6.0], env="Pendulum-v1")
    entries = compare.load_entries([s, other])
    assert [e.label for e in entries] == ["ppo learning_rate=0.001", "ppo learning_rate=0.0003", "ppo"]
    assert entries[1].final.tolist() == [30.0, 40.0]
    # two runs of one algorithm are named by their directories
    names = [e.label for e in compare.load_entries([other, _fake_run(tmp_path / "again", [1.0], env="Pendulum-v1")])]
    assert names == ["other", "again"]
    assert [e.label for e in compare.load_entries([s, other], ["x", "y", "z"])] == ["x", "y", "z"]
    # no known maximum for Pendulum: R_high is the best seed compared (R_low measured: patched here)
    monkeypatch.setattr(compare, "random_return", lambda env: -1200.0)
    ref = compare.references(entries)
    assert ref["low"] == -1200.0 and ref["high"] == 40.0 and "best final return" in ref["source"]


def test_compare_writes_every_file_and_prints_the_table(tmp_path, capsys):
    a = _fake_run(tmp_path / "a", [400.0, 450.0, 500.0], [[100, 400], [200, 450], [150, 500]])
    b = _fake_run(tmp_path / "b", [300.0, 350.0, 320.0], [[50, 300], [60, 350], [70, 320]], algorithm="dqn")
    out = str(tmp_path / "cmp")
    assert compare.main([a, b, "--out", out, "--reference", "0,500", "--reps", "200"]) == 0
    printed = capsys.readouterr().out
    assert sorted(os.listdir(out)) == ["aggregates.png", "compare.json", "compare.md", "profiles.png",
                                       "sample_efficiency.png"]
    table = open(os.path.join(out, "compare.md")).read()
    assert table.strip() in printed and "| ppo | 3 | 2,000 | 450.0 [" in table and "| dqn | 3 |" in table
    result = json.load(open(os.path.join(out, "compare.json")))
    assert result["reference"] == {"low": 0.0, "high": 500.0, "source": "given (--reference)"}
    assert result["rows"][1]["p_improvement"] == 0.0
    assert result["curves"][0]["iqm"] == pytest.approx([150.0, 450.0])  # IQM of 3 = the mean of all 3
    for name in ("aggregates.png", "profiles.png", "sample_efficiency.png"):
        with open(os.path.join(out, name), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert [n for n in os.listdir(tmp_path) if n.startswith(".tmp")] == []


def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys):
    a = _fake_run(tmp_path / "a", [1.0, 2.0])
    b = _fake_run(tmp_path / "b", [1.0, 2.0], algorithm="dqn")
    pend = _fake_run(tmp_path / "pend", [1.0], env="Pendulum-v1")
    empty = tmp_path / "empty"
    empty.mkdir()
    index = tmp_path / "index"
    index.mkdir()
    (index / "sweep.json").write_text("{}")
    (tmp_path / "taken").mkdir()
    out = str(tmp_path / "out")
    cases = [([a, pend, "--out", out], "different environments"),
             ([a, str(empty), "--out", out], "no results.json"),
             ([a, str(tmp_path / "missing"), "--out", out], "does not exist"),
             ([a, "--out", out], "at least two"),
             ([a, str(index), "--out", out], "static fields"),
             ([a, b, "--out", str(tmp_path / "taken")], "exists already"),
             ([a, b, "--out", str(tmp_path / "no" / "dir")], "parent directory"),
             ([a, b, "--out", out, "--labels", "x"], "--labels has 1"),
             ([a, b, "--out", out, "--labels", "x,x"], "unique"),
             ([a, b, "--out", out, "--reference", "5"], "LOW,HIGH"),
             ([a, b, "--out", out, "--reference", "5,1"], "R_high > R_low"),
             ([a, b, "--out", out, "--reps", "10"], "--reps")]
    before = sorted(os.listdir(tmp_path))
    for argv, words in cases:
        assert compare.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and words in err, (argv, err)
    from purerl import cli

    assert cli.main(["compare", a, "--out", out]) == 2 and "at least two" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == before


def test_compare_a_real_sweep(tmp_path, capsys):
    """A 2-point learning-rate sweep of PPO on CartPole (2 seeds each) as written by the runner,
    compared with R_low measured from a random policy."""
    config = ppo.Config.for_env("CartPole-v1", num_envs=4, num_steps=16, total_timesteps=4 * 16 * 8,
                                num_minibatches=2, update_epochs=1, hidden_sizes=(16,), eval_every=4,
                                eval_episodes=2)
    from purerl import sweep

    sweep.sweep("ppo", config, {"learning_rate": [1e-3, 3e-4]},
                run.RunOptions(num_seeds=2, runs_dir=str(tmp_path), run_name="lr", progress=False, plot=False), {})
    capsys.readouterr()
    out = str(tmp_path / "cmp")
    assert compare.main([str(tmp_path / "lr"), "--out", out, "--reps", "200"]) == 0
    result = json.load(open(os.path.join(out, "compare.json")))
    assert [r["label"] for r in result["rows"]] == ["ppo learning_rate=0.001", "ppo learning_rate=0.0003"]
    assert [r["num_seeds"] for r in result["rows"]] == [2, 2]
    assert 10.0 < result["reference"]["low"] < 40.0 and result["reference"]["high"] == 500.0  # random CartPole
    finals = json.load(open(tmp_path / "lr" / "results.json"))["final_eval_return_per_seed"]
    assert result["rows"][1]["mean"] == pytest.approx(np.mean(finals[2:]))
    assert len(result["curves"][0]["steps"]) == 2
