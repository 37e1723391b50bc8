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


def _check_cartpole(value):
    assert value["num_seeds"] == 2 and math.isfinite(value["final_mean_eval_return"])
    assert value["wall_seconds"] >= value["compile_seconds"] > 0


def _check_algorithms(value, names=tuple(algos.ALGORITHMS)):
    rows = value["rows"]
    assert {r["algorithm"] for r in rows} == set(names)
    assert all(r["ok"] for r in rows), [(r["algorithm"], r.get("error")) for r in rows if not r["ok"]]


def _check_minatar(value):
    minatar = {(r["algorithm"], r["env"]) for r in value["runs"]}
    assert minatar == {(a, e) for a in ("ppo", "dqn") for e in ("Breakout-MinAtar", "SpaceInvaders-MinAtar")}


CHECKS = {"cartpole": _check_cartpole, "algorithms": _check_algorithms, "minatar": _check_minatar,
          "ant": lambda value: value["env"] == "brax/ant" or pytest.fail(value["env"]),
          "halfcheetah": lambda value: value["env"] == "brax/halfcheetah" or pytest.fail(value["env"]),
          "throughput": lambda value: None}


def test_every_part_is_dry_run_below():
    assert set(CHECKS) == set(gpu_suite.PARTS)


ALGORITHM_GROUPS = 3  # the `algorithms` part (every algorithm traced, about 65 s here) in three tests


@pytest.mark.parametrize("part", [pytest.param(p, marks=pytest.mark.brax) if p in ("ant", "halfcheetah")
                                  else p for p in gpu_suite.PARTS if p != "algorithms"]
                         + [f"algorithms:{i}" for i in range(ALGORITHM_GROUPS)])
def test_dry_run_traces_every_configuration(part, tmp_path):
    """One part per test, the `algorithms` part in groups (the whole dry run took 140-156 s as
    one test, the longest of the unit tests: split, xdist spreads it over the workers)."""
    out = tmp_path / "gpu.json"
    part, _, group = part.partition(":")
    names = sorted(algos.ALGORITHMS)[int(group)::ALGORITHM_GROUPS] if group else None
    results = gpu_suite.run_suite(parts=(part,), dry=True, trace=True, out=str(out), algorithms=names)
    value = results["parts"][part]
    assert value["ok"], value.get("error")
    CHECKS[part](value, names) if names else CHECKS[part](value)
    assert json.loads(out.read_text())["parts"].keys() == {part}  # saved as it went


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
    assert not ant.clip_value_loss  # as Brax's PPO (benchmarks/ppo_ablation.py)
    assert cheetah.env == "brax/halfcheetah"


def test_minatar_presets_are_the_reference_settings():
    """The `minatar` part runs the presets: gymnax-blines' PPO (10M steps, 64 envs × 128, 256-256
    ReLU, γ 0.999) and the MinAtar paper's DQN (5M steps, 100k replay, target every 1000 steps)."""
    from purerl.algos import dqn, ppo

    for env in gpu_suite.MINATAR_REFERENCES:
        p, d = ppo.Config.for_env(env), dqn.Config.for_env(env)
        assert (p.total_timesteps, p.num_envs, p.num_steps, p.hidden_sizes, p.activation) == (
            10_000_000, 64, 128, (256, 256), "relu")
        assert p.gamma == 0.999 and p.learning_rate == 5e-4 and not p.anneal_lr
        assert (d.total_timesteps, d.buffer_size, d.batch_size, d.target_update_interval) == (
            5_000_000, 100_000, 32, 1_000)
        # ε reaches 0.1 after 100k env steps, as in Young & Tian (2019)
        assert d.exploration_fraction * d.total_timesteps == 100_000 and d.final_epsilon == 0.1


def test_learning_benchmark_overrides():
    from benchmarks import learning
    from purerl.algos import dqn, ppo

    got = learning.parse_overrides(ppo.Config, ["hidden_sizes=64,64", "total_timesteps=1_000_000",
                                                "anneal_lr=false", "learning_rate=3e-4", "activation=tanh"])
    assert got == {"hidden_sizes": (64, 64), "total_timesteps": 1_000_000, "anneal_lr": False,
                   "learning_rate": 3e-4, "activation": "tanh"}
    assert ppo.Config.for_env("Breakout-MinAtar", **got).hidden_sizes == (64, 64)
    with pytest.raises(SystemExit, match="exploration_fraction"):  # unknown: the message lists the fields
        learning.parse_overrides(dqn.Config, ["no_such_field=1"])
    with pytest.raises(SystemExit, match="true or false"):
        learning.parse_overrides(ppo.Config, ["anneal_lr=maybe"])


def test_set_changes_the_brax_settings_and_rejects_bad_input_before_compiling():
    """`--set PART.KEY=VALUE` (an A/B run on a leased machine) reaches the ant/halfcheetah
    Config; an unknown part or field or an invalid value exits naming it."""
    got = gpu_suite.brax_overrides(["ant.anneal_lr=false", "ant.max_grad_norm=1e9", "halfcheetah.gradient_steps=4"])
    assert got == {"ant": {"anneal_lr": False, "max_grad_norm": 1e9}, "halfcheetah": {"gradient_steps": 4}}
    assert gpu_suite.brax_overrides([]) == {}
    with pytest.raises(SystemExit, match="ant.*halfcheetah"):  # the allowed parts
        gpu_suite.main(["--dry-run", "--set", "cartpole.num_envs=4"])
    with pytest.raises(SystemExit, match="clip_value_loss"):  # an unknown field: the message lists the fields
        gpu_suite.brax_overrides(["ant.no_such_field=1"])
    with pytest.raises(SystemExit, match="learning_rate"):  # a value the Config rejects
        gpu_suite.brax_overrides(["ant.learning_rate=-1"])
    with pytest.raises(SystemExit, match="ant.*not in --parts cartpole"):  # it would change nothing: said, not ignored
        gpu_suite.main(["--dry-run", "--parts", "cartpole", "--set", "ant.anneal_lr=false"])


def test_trace_requires_dry_run():
    with pytest.raises(SystemExit):
        gpu_suite.main(["--trace"])
