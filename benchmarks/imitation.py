"""Imitation benchmark: the fraction of the expert's return against the number of demonstrations.

For each environment (CartPole-v1, Pendulum-v1) and each number of scripted-expert episodes
(`purerl.experts.demonstrations(env, "scripted", N, seed=0)`; default 1, 4, 16), every imitation
algorithm trains with its preset (`Config.for_env`), `--seeds` seeds in one vmapped program.
Per row: the normalized score 100·(R − R_random)/(R_expert − R_random) of each seed's final
evaluation (deterministic policy, true reward), mean ± std and IQM with its 95% stratified
bootstrap CI (rliable), environment steps and gradient steps per seed, compile and run seconds.
BC learns from the demonstrations alone (its preset: 5,000 gradient steps);
DAgger also queries the expert in the states it visits; GAIL, AIRL and apprenticeship learning
(when registered) interact with the environment and never see the expert's reward.

    python benchmarks/imitation.py                          # → benchmarks/results/imitation.json + .png
    python benchmarks/imitation.py --envs CartPole-v1 --algos bc dagger --episodes 1 4 --seeds 10
    python benchmarks/imitation.py --readme imitation       # the README's table from saved JSON
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.common import RESULTS_DIR, save  # noqa: E402

ALGOS = ["bc", "dagger", "gail", "airl", "apprenticeship"]
ENVS = ["CartPole-v1", "Pendulum-v1"]
EPISODES = [1, 4, 16]


def run_row(algo: str, env: str, episodes: int, seeds: int, seed: int = 0) -> dict:
    import jax

    from purerl import algos, experts, report

    demos = experts.demonstrations(env, "scripted", episodes=episodes, seed=0)
    module = algos.get(algo)
    config = module.Config.for_env(env)
    keys = jax.random.split(jax.random.PRNGKey(seed), seeds)
    program = jax.jit(jax.vmap(module.train, in_axes=(None, 0, None)), static_argnums=0)
    t0 = time.perf_counter()
    compiled = program.lower(config, keys, demos.transitions).compile()
    compile_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, _, returns = compiled(keys, demos.transitions)
    returns = np.asarray(jax.block_until_ready(returns))
    run_seconds = time.perf_counter() - t0
    final = np.nanmean(returns[:, -1], axis=-1)
    r_expert, r_random = demos.info["expert_return"], demos.info["random_return"]
    score = 100.0 * (final - r_random) / (r_expert - r_random)
    offline = getattr(module, "OFFLINE", False)
    return {"algorithm": algo, "env": env, "episodes": episodes, "demonstration_steps": demos.size,
            "num_seeds": seeds, "expert_return": r_expert, "random_return": r_random,
            "normalized_score": report.summarize(score), "final_return_per_seed": final.tolist(),
            "env_steps_per_seed": 0 if offline else int(config.num_updates * config.env_steps_per_update),
            "gradient_steps_per_seed": int(config.num_gradient_steps) if offline else None,
            "compile_seconds": compile_seconds, "run_seconds": run_seconds}


def plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = list(dict.fromkeys(r["env"] for r in rows))
    fig, axes = plt.subplots(1, len(envs), figsize=(5 * len(envs), 3.6), squeeze=False)
    for ax, env in zip(axes[0], envs):
        for algo in dict.fromkeys(r["algorithm"] for r in rows if r["env"] == env):
            rs = sorted((r for r in rows if r["env"] == env and r["algorithm"] == algo), key=lambda r: r["episodes"])
            x = [r["episodes"] for r in rs]
            iqm = [r["normalized_score"]["iqm"] for r in rs]
            low = [r["normalized_score"]["iqm_ci95"][0] for r in rs]
            high = [r["normalized_score"]["iqm_ci95"][1] for r in rs]
            ax.plot(x, iqm, marker="o", label=algo)
            ax.fill_between(x, low, high, alpha=0.2)
        ax.axhline(100.0, color="k", lw=0.8, ls="--")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("expert episodes")
        ax.set_ylabel("normalized score (IQM, 95% CI)")
        ax.set_title(env)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algos", nargs="+", default=ALGOS)
    parser.add_argument("--envs", nargs="+", default=ENVS)
    parser.add_argument("--episodes", nargs="+", type=int, default=EPISODES)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--out", default="imitation")
    parser.add_argument("--readme", nargs="+", metavar="NAME", help="print the README table of saved "
                        "benchmarks/results/NAME.json files and exit")
    args = parser.parse_args()
    if args.readme:
        return readme(args.readme)
    from purerl import algos

    rows, failures = [], []
    for env in args.envs:
        for algo in args.algos:
            if algo not in algos.ALGORITHMS:
                print(f"skip {algo}: not registered", flush=True)
                continue
            for episodes in args.episodes:
                try:
                    row = run_row(algo, env, episodes, args.seeds)
                except Exception as error:  # noqa: BLE001 — record and go on with the other rows
                    traceback.print_exc()
                    failures.append({"algorithm": algo, "env": env, "episodes": episodes, "error": repr(error)})
                    continue
                rows.append(row)
                n = row["normalized_score"]
                print(f"{algo:<15}{env:<13}{episodes:>3} ep  {n['mean']:>6.1f} ± {n['std']:<5.1f} IQM {n['iqm']:>6.1f} "
                      f"[{n['iqm_ci95'][0]:.1f}, {n['iqm_ci95'][1]:.1f}]  compile {row['compile_seconds']:.0f} s  "
                      f"run {row['run_seconds']:.0f} s", flush=True)
                save(args.out, {"command": "python benchmarks/imitation.py " + " ".join(sys.argv[1:]), "rows": rows,
                                "failures": failures, "complete": False})  # a partial file if interrupted
    save(args.out, {"command": "python benchmarks/imitation.py " + " ".join(sys.argv[1:]), "rows": rows,
                    "failures": failures, "complete": True})
    if rows:
        plot(rows, os.path.join(RESULTS_DIR, f"{args.out}.png"))


def readme(names: list[str]) -> None:
    """A markdown table per environment: normalized score per algorithm × number of episodes."""
    import json

    rows, hardware, commands = [], None, []
    for name in names:
        with open(os.path.join(RESULTS_DIR, f"{name}.json")) as f:
            saved = json.load(f)
        rows += saved["rows"]
        hardware = hardware or saved["hardware"]
        commands.append(saved["command"])
    for env in dict.fromkeys(r["env"] for r in rows):
        episodes = sorted({r["episodes"] for r in rows if r["env"] == env})
        first = next(r for r in rows if r["env"] == env)
        print(f"\n{env} (R_expert {first['expert_return']:.1f}, R_random {first['random_return']:.1f}), normalized "
              f"score, mean ± std over {first['num_seeds']} seeds [IQM 95% CI]:\n")
        print("| algorithm | " + " | ".join(f"{e} episode{'s' * (e > 1)}" for e in episodes) + " |")
        print("|---|" + "---|" * len(episodes))
        for algo in dict.fromkeys(r["algorithm"] for r in rows if r["env"] == env):
            cells = []
            for e in episodes:
                match = [r for r in rows if r["env"] == env and r["algorithm"] == algo and r["episodes"] == e]
                n = match[0]["normalized_score"] if match else None
                cells.append(f"{n['mean']:.1f} ± {n['std']:.1f} [{n['iqm_ci95'][0]:.1f}, {n['iqm_ci95'][1]:.1f}]"
                             if n else "—")
            print(f"| {algo} | " + " | ".join(cells) + " |")
    print(f"\nhardware: {hardware['cpu']}, {hardware['cpu_count']} cores, jax {hardware['jax']}; "
          f"commands: {'; '.join(commands)}")


if __name__ == "__main__":
    main()
