"""Render the README's algorithm table from benchmarks/results/learning_*.json (so the
numbers in README.md are exactly the measured ones). Prints Markdown."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.common import down  # noqa: E402  (every measured number rounded down at its precision)

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
ORDER = ["ppo", "a2c", "trpo", "reinforce", "actor_critic", "dqn", "sac", "td3", "ddpg"]


def main():
    rows = []
    for family in ("onpolicy", "offpolicy"):
        path = os.path.join(RESULTS, f"learning_{family}.json")
        if os.path.exists(path):
            rows += json.load(open(path))["rows"]
    rows.sort(key=lambda r: (ORDER.index(r["algorithm"]) if r["algorithm"] in ORDER else 99, r["env"]))
    print("| algorithm | env | steps/seed | seeds | final return mean | IQM [95% CI] | min / max | steps to threshold "
          "| compile s | env steps/s | load avg | machine |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        f = r["final_return"]
        thr = r.get("threshold")
        reach = f"{r['steps_to_threshold']:,} (≥ {thr:g})" if r.get("steps_to_threshold") else f"not reached (≥ {thr:g})"
        hw = r.get("hardware", {})
        load = hw.get("load_average_1_5_15min", [float("nan")])[0]
        cpu = hw.get("cpu", "?").replace("(R)", "").replace(" Processor", "")
        machine = f"{cpu}, jax {hw.get('jax', '?')}"
        print(f"| {r['algorithm']} | {r['env']} | {r['env_steps_per_seed']:,} | {r['num_seeds']} | {down(f['mean'])} | "
              f"{down(f['iqm'])} [{down(f['iqm_ci95'][0])}, {down(f['iqm_ci95'][1])}] | "
              f"{down(f['min'])} / {down(f['max'])} | {reach} | {down(r['compile_seconds'], 0)} | "
              f"{down(r['env_steps_per_second'], 0, thousands=True)} | {down(load)} | {machine} |")
    minatar()


def minatar():
    """The MinAtar rows (`learning.py minatar`) against gymnax's reference returns, with the
    preset fields each row overrode (a run shortened to fit a CPU)."""
    path = os.path.join(RESULTS, "learning_minatar.json")
    if not os.path.exists(path):
        return
    rows = sorted(json.load(open(path))["rows"], key=lambda r: (ORDER.index(r["algorithm"]), r["env"]))
    print()
    print("| algorithm | env | steps/seed | seeds | preset fields changed | final return mean | IQM [95% CI] "
          "| min / max | gymnax reference | env steps/s | load avg | machine |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        f, hw = r["final_return"], r.get("hardware", {})
        changed = ", ".join(f"{k} {','.join(map(str, v)) if isinstance(v, list) else v}"
                            for k, v in r.get("overrides", {}).items() if k != "eval_every") or "none"
        cpu = hw.get("cpu", "?").replace("(R)", "").replace(" Processor", "")
        print(f"| {r['algorithm']} | {r['env']} | {r['env_steps_per_seed']:,} | {r['num_seeds']} | {changed} | "
              f"{down(f['mean'])} | {down(f['iqm'])} [{down(f['iqm_ci95'][0])}, {down(f['iqm_ci95'][1])}] | "
              f"{down(f['min'])} / {down(f['max'])} | {r['reference_return']:g} (10M steps) | "
              f"{down(r['env_steps_per_second'], 0, thousands=True)} | "
              f"{down(hw.get('load_average_1_5_15min', [float('nan')])[0])} | {cpu}, jax {hw.get('jax', '?')} |")


if __name__ == "__main__":
    main()
