"""benchmarks/gpu_suite.py cannot rot while no GPU is at hand: its dry run traces every
configuration (PPO on 2048 CartPole seeds, Brax ant and halfcheetah, the throughput sweeps,
every algorithm's many-seed program) and compiles and runs the CartPole one."""

import json
import math
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import gpu_suite  # noqa: E402
from purerl import algos  # noqa: E402


@pytest.mark.brax
def test_dry_run_traces_every_configuration(tmp_path):
    out = tmp_path / "gpu.json"
    results = gpu_suite.run_suite(dry=True, trace=True, out=str(out))
    parts = results["parts"]
    assert set(parts) == set(gpu_suite.PARTS)
    assert all(parts[p]["ok"] for p in gpu_suite.PARTS), {p: parts[p].get("error") for p in parts}
    cartpole = parts["cartpole"]
    assert cartpole["num_seeds"] == 2 and math.isfinite(cartpole["final_mean_eval_return"])
    assert cartpole["wall_seconds"] >= cartpole["compile_seconds"] > 0
    assert parts["ant"]["env"] == "brax/ant" and parts["halfcheetah"]["env"] == "brax/halfcheetah"
    rows = parts["algorithms"]["rows"]
    assert {r["algorithm"] for r in rows} == set(algos.ALGORITHMS)
    assert all(r["ok"] for r in rows), [(r["algorithm"], r.get("error")) for r in rows if not r["ok"]]
    assert json.loads(out.read_text())["parts"].keys() == parts.keys()  # saved as it went


@pytest.mark.parametrize("algo", sorted(algos.ALGORITHMS))
def test_few_updates(algo):
    """The dry run's configurations really are a few updates with one evaluation at the end."""
    module = algos.get(algo)
    config = gpu_suite.few_updates(module, module.Config.for_env(gpu_suite.ALGORITHM_ENVS[algo]), 3)
    one_each = getattr(config, "num_tasks", 1)  # PCGrad evaluates one episode of every task
    assert config.num_updates == 3 and config.eval_every == 3 and config.eval_episodes == one_each


def test_full_configurations_are_valid():
    """The GPU-sized settings construct (a Config validates on construction)."""
    from purerl.algos import ppo, sac

    ant, cheetah = ppo.Config(**gpu_suite.ANT_PPO), sac.Config(**gpu_suite.HALFCHEETAH_SAC)
    assert ant.num_envs * ant.num_steps // ant.num_minibatches == 10_240  # Brax's minibatch: 2048 unrolls of 5
    assert cheetah.env == "brax/halfcheetah"


def test_trace_requires_dry_run():
    with pytest.raises(SystemExit):
        gpu_suite.main(["--trace"])
