"""Learning benchmarks: each algorithm with its preset (`Config.for_env`) on each
environment, several seeds at once, through the runner. Prints and saves, per row:
final evaluation return across seeds (mean, IQM with 95% stratified-bootstrap CI),
env steps for the mean over seeds to first reach the threshold, compile seconds,
env-steps/s (and gradient-updates/s for off-policy algorithms).

    python benchmarks/learning.py onpolicy     # → benchmarks/results/learning_onpolicy.json
    python benchmarks/learning.py offpolicy    # → benchmarks/results/learning_offpolicy.json
    python benchmarks/learning.py onpolicy --algos ppo a2c --envs CartPole-v1 --seeds 8
    python benchmarks/learning.py minatar      # → benchmarks/results/learning_minatar.json
    python benchmarks/learning.py minatar --algos ppo --set total_timesteps=1000000 hidden_sizes=64,64
    python benchmarks/learning_curves.py       # → one IQM-curve figure per environment
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.common import RESULTS_DIR, hardware, learning_run, print_rows, save  # noqa: E402
from purerl import algos  # noqa: E402
from purerl.config import to_dict  # noqa: E402

FAMILIES = {
    "onpolicy": {"algos": ["ppo", "a2c", "trpo", "reinforce", "actor_critic"],
                 "envs": ["CartPole-v1", "Pendulum-v1"]},
    "offpolicy": {"algos": ["dqn", "sac", "td3", "ddpg"], "envs": ["CartPole-v1", "Pendulum-v1"]},
    # the presets are 10M (PPO) and 5M (DQN) steps: the GPU suite's `minatar` part runs them
    # whole; on a CPU, `--set` shortens them (recorded in each row's `overrides`)
    "minatar": {"algos": ["ppo", "dqn"], "envs": ["Breakout-MinAtar", "SpaceInvaders-MinAtar"]},
}
# gymnax's published returns of its trained PPO agents (gymnax README; gymnax-blines' PPO at 10M steps)
REFERENCES = {"Breakout-MinAtar": 28.0, "SpaceInvaders-MinAtar": 131.0}
THRESHOLDS = {"CartPole-v1": 475.0, "Pendulum-v1": -200.0, "Acrobot-v1": -100.0, **REFERENCES}


def parse_overrides(config_cls, items: list[str]) -> dict:
    """`KEY=VALUE` strings to Config overrides, each VALUE read as its field's type
    (`hidden_sizes=64,64`, `anneal_lr=false`, `total_timesteps=1000000`)."""
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    out = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or key not in fields:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE with KEY one of {sorted(fields)}")
        default = fields[key].default
        if isinstance(default, bool):
            if text.lower() not in ("true", "false", "1", "0"):
                raise SystemExit(f"--set {item!r}: {key} takes true or false")
            out[key] = text.lower() in ("true", "1")
        elif isinstance(default, tuple):
            out[key] = tuple(int(v) for v in text.split(",") if v)
        elif isinstance(default, int):
            out[key] = int(text.replace("_", ""))
        elif isinstance(default, float):
            out[key] = float(text)
        else:
            out[key] = text
    return out


def supports(module, env: str) -> bool:
    try:
        module.Config.for_env(env)
        return True
    except ValueError:  # e.g. DDPG/TD3 on a discrete environment, DQN on a continuous one
        return False


def _merge_and_save(family: str, rows: list[dict], failures: list[dict]) -> None:
    """Merge into the family's results file (rows measured now replace the same (algorithm, env)).
    Called after every row, so a crash later in the family keeps the rows measured so far."""
    path = os.path.join(RESULTS_DIR, f"learning_{family}.json")
    old = json.load(open(path)) if os.path.exists(path) else {"rows": []}
    fresh = {(r["algorithm"], r["env"]) for r in rows}
    merged = [r for r in old["rows"] if (r["algorithm"], r["env"]) not in fresh] + rows
    save(f"learning_{family}", {"rows": merged, "failures": failures})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("family", choices=sorted(FAMILIES))
    parser.add_argument("--algos", nargs="*")
    parser.add_argument("--envs", nargs="*")
    parser.add_argument("--seeds", type=int, default=16)  # rliable: ≥ 10 for IQM CIs
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="override preset fields in every row (e.g. a shorter run on a CPU)")
    args = parser.parse_args()
    family = FAMILIES[args.family]
    command = "python benchmarks/learning.py " + " ".join(sys.argv[1:])
    rows, failures = [], []
    # every --set checked against every algorithm's Config before anything compiles
    overrides_of = {name: parse_overrides(algos.get(name).Config, args.set)
                    for name in args.algos or family["algos"] if name in algos.ALGORITHMS}
    for name in args.algos or family["algos"]:
        if name not in algos.ALGORITHMS:
            failures.append({"algorithm": name, "error": "not registered"})
            continue
        module, overrides = algos.get(name), overrides_of[name]
        for env in args.envs or family["envs"]:
            if not supports(module, env):
                continue
            config = module.Config.for_env(env, **overrides)
            try:
                row = learning_run(name, config, args.seeds, THRESHOLDS.get(env))
            except Exception as error:  # noqa: BLE001 - record and go on with the other rows
                traceback.print_exc()
                failures.append({"algorithm": name, "env": env, "error": repr(error)})
                continue
            grad = getattr(config, "gradient_steps_per_update", None)
            if grad is not None:
                row["gradient_updates_per_second"] = (row["env_steps_per_second"] / config.env_steps_per_update
                                                      * grad)
            row["command"], row["hardware"] = command, hardware()
            row["config"] = to_dict(config)
            row["overrides"] = {k: row["config"][k] for k in overrides}
            if env in REFERENCES:
                row["reference_return"] = REFERENCES[env]
            rows.append(row)
            print_rows([row])
            _merge_and_save(args.family, rows, failures)
    print()
    print_rows(rows)
    _merge_and_save(args.family, rows, failures)


if __name__ == "__main__":
    main()
