"""Offline RL benchmark: algorithm × dataset, normalized score across seeds, through the runner.

Datasets are made first with the D4RL recipe (`purerl.datasets.from_training`): SAC on
Pendulum-v1 (20k steps; medium = its state after 2.5k steps, about a third of the expert's
normalized return; medium-replay = its buffer then) and PPO on CartPole-v1 (200 updates of
512 steps; medium after 14 updates). Then every algorithm trains on every dataset it supports
with its preset (`Config.for_env`), `--seeds` seeds at once. Per row: normalized score
100·(R − R_random)/(R_expert − R_random) mean ± std and IQM with its 95% stratified-bootstrap
CI, compile seconds, gradient updates per second (all seeds together). `--throughput` adds
gradient updates/s at 1 and 16 seeds; `--iql-1m` times IQL's 1M gradient updates (one seed).

    python benchmarks/offline.py                      # → benchmarks/results/offline.json
    python benchmarks/offline.py --algos iql bc --envs Pendulum-v1 --kinds medium-replay --seeds 10
    python benchmarks/offline.py --no-table --throughput --iql-1m --out offline_speed
    python benchmarks/offline.py --readme offline offline_speed   # the README's tables from saved JSON
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.common import save  # noqa: E402
from purerl import algos, datasets  # noqa: E402

OFFLINE = ["bc", "td3_bc", "cql", "iql", "awr", "edac"]
ENVS = ["Pendulum-v1", "CartPole-v1"]
KINDS = ["random", "medium", "medium-replay", "expert", "medium-expert"]
DATASET_STEPS = 50_000


def make_datasets(env: str, root: str) -> dict[str, str]:
    """{kind: path} for `env`, made (and saved) unless already under `root`."""
    import jax

    from purerl.algos import ppo, sac

    out = os.path.join(root, env)
    if not os.path.exists(os.path.join(out, "done")):
        if env == "Pendulum-v1":
            config = sac.Config.for_env(env, total_timesteps=20_000)
            made = datasets.from_training(sac, config, 2_500 // config.env_steps_per_update, DATASET_STEPS,
                                          jax.random.PRNGKey(0), reference_episodes=100)
        elif env == "CartPole-v1":
            config = ppo.Config(env=env, total_timesteps=200 * 512)
            made = datasets.from_training(ppo, config, 14, DATASET_STEPS, jax.random.PRNGKey(0),
                                          reference_episodes=100)
        else:
            raise ValueError(f"no dataset recipe for {env!r}; known: {', '.join(ENVS)}")
        os.makedirs(out, exist_ok=True)
        for kind, dataset in made.items():
            if not os.path.exists(os.path.join(out, kind)):
                datasets.save(dataset, os.path.join(out, kind))
        open(os.path.join(out, "done"), "w").close()
    return {k: os.path.join(out, k) for k in KINDS if os.path.isdir(os.path.join(out, k))}


def supports(module, env: str) -> bool:
    try:
        module.Config.for_env(env)
        return True
    except ValueError:  # e.g. TD3+BC or EDAC on a discrete environment
        return False


def offline_run(algo: str, config, num_seeds: int, seed: int = 0) -> dict:
    import json

    from purerl.run import RunOptions, train

    with tempfile.TemporaryDirectory() as runs_dir:
        result = train(algo, config, RunOptions(num_seeds=num_seeds, seed=seed, runs_dir=runs_dir, run_name="bench",
                                                progress=False, plot=False, checkpoint_every=0))
        with open(os.path.join(runs_dir, "bench", "results.json")) as f:
            results = json.load(f)
    steps = config.num_gradient_steps
    return {"algorithm": algo, "env": config.env, "num_seeds": num_seeds, "gradient_steps_per_seed": steps,
            "normalized_score": results["normalized_score"], "final_return": result.summary,
            "compile_seconds": result.timing["compile_seconds"], "run_seconds": result.timing["run_seconds"],
            "gradient_updates_per_second": steps * num_seeds / max(result.timing["run_seconds"], 1e-9)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algos", nargs="+", default=OFFLINE)
    parser.add_argument("--envs", nargs="+", default=ENVS)
    parser.add_argument("--kinds", nargs="+", default=KINDS)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--data-dir", default=os.path.join("runs", "offline-data"))
    parser.add_argument("--throughput", action="store_true", help="gradient updates/s at 1 and 16 seeds")
    parser.add_argument("--iql-1m", action="store_true", help="time 1M IQL gradient updates (one seed)")
    parser.add_argument("--no-table", action="store_true", help="skip the algorithm × dataset rows")
    parser.add_argument("--out", default="offline")
    parser.add_argument("--readme", nargs="+", metavar="NAME", help="print the README tables of saved "
                        "benchmarks/results/NAME.json files and exit")
    args = parser.parse_args()
    if args.readme:
        return readme(args.readme)

    rows, failures, throughput, iql_1m = [], [], [], None
    for env in args.envs:
        paths = make_datasets(env, args.data_dir)
        refs = datasets.read_info(next(iter(paths.values())))
        print(f"{env}: R_random {refs['random_return']:.1f}, R_expert {refs['expert_return']:.1f}, "
              f"R_medium {refs.get('medium_return', float('nan')):.1f}", flush=True)
        for algo in args.algos:
            module = algos.get(algo)
            if not supports(module, env):
                continue
            for kind in ([] if args.no_table else args.kinds):
                if kind not in paths:
                    continue
                try:
                    config = module.Config.for_env(env, dataset=paths[kind])
                    row = {**offline_run(algo, config, args.seeds), "dataset": kind}
                except Exception as error:  # noqa: BLE001 — record and go on with the other rows
                    traceback.print_exc()
                    failures.append({"algorithm": algo, "env": env, "dataset": kind, "error": repr(error)})
                    continue
                rows.append(row)
                n = row["normalized_score"]
                print(f"{algo:<8}{env:<13}{kind:<15}{n['mean']:>7.1f} ± {n['std']:<6.1f} IQM {n['iqm']:>6.1f} "
                      f"[{n['iqm_ci95'][0]:.1f}, {n['iqm_ci95'][1]:.1f}]  compile {row['compile_seconds']:.1f} s  "
                      f"{row['gradient_updates_per_second']:,.0f} updates/s", flush=True)
            if args.throughput and "medium" in paths:
                for seeds in (1, 16):
                    config = module.Config.for_env(env, dataset=paths["medium"])
                    r = offline_run(algo, config, seeds)
                    throughput.append({"algorithm": algo, "env": env, "num_seeds": seeds,
                                       "batch_size": config.batch_size, "hidden_sizes": list(config.hidden_sizes),
                                       "gradient_updates_per_second": r["gradient_updates_per_second"],
                                       "compile_seconds": r["compile_seconds"]})
                    print(f"throughput {algo} {env} {seeds} seeds: {r['gradient_updates_per_second']:,.0f} updates/s",
                          flush=True)
    if args.iql_1m:
        iql = algos.get("iql")
        paths = make_datasets("Pendulum-v1", args.data_dir)
        config = iql.Config.for_env("Pendulum-v1", dataset=paths["medium-replay"], num_gradient_steps=1_000_000,
                                    steps_per_update=10_000, eval_every=100)
        t0 = time.perf_counter()
        r = offline_run("iql", config, 1)
        iql_1m = {"wall_seconds": time.perf_counter() - t0, "run_seconds": r["run_seconds"],
                  "compile_seconds": r["compile_seconds"], "batch_size": config.batch_size,
                  "hidden_sizes": list(config.hidden_sizes), "normalized_score": r["normalized_score"]}
        print(f"IQL 1M gradient updates: {iql_1m['wall_seconds']:.0f} s wall", flush=True)
    save(args.out, {"command": "python benchmarks/offline.py " + " ".join(sys.argv[1:]), "rows": rows,
                    "throughput": throughput, "iql_1m_updates": iql_1m, "failures": failures})


def readme(names: list[str]) -> None:
    """Markdown tables (normalized score per algorithm × dataset; throughput) from saved results."""
    import json

    from benchmarks.common import RESULTS_DIR, down  # down: a measured number rounded down at its precision

    rows, speed, iql_1m, hardware = [], [], None, None
    for name in names:
        with open(os.path.join(RESULTS_DIR, f"{name}.json")) as f:
            saved = json.load(f)
        rows += saved["rows"]
        speed += saved["throughput"]
        iql_1m = saved.get("iql_1m_updates") or iql_1m
        hardware = hardware or saved["hardware"]
    for env in dict.fromkeys(r["env"] for r in rows):
        kinds = [k for k in KINDS if any(r["env"] == env and r["dataset"] == k for r in rows)]
        print(f"\n{env}, normalized score, mean ± std over seeds [IQM 95% CI]:\n")
        print("| algorithm | " + " | ".join(kinds) + " |")
        print("|---|" + "---|" * len(kinds))
        for algo in dict.fromkeys(r["algorithm"] for r in rows if r["env"] == env):
            cells = []
            for kind in kinds:
                match = [r for r in rows if r["env"] == env and r["algorithm"] == algo and r["dataset"] == kind]
                n = match[0]["normalized_score"] if match else None
                cells.append(f"{down(n['mean'])} ± {down(n['std'])} "
                             f"[{down(n['iqm_ci95'][0])}, {down(n['iqm_ci95'][1])}]" if n else "—")
            print(f"| {algo} | " + " | ".join(cells) + " |")
    if speed:
        print("\n| algorithm | env | batch | network | updates/s, 1 seed | updates/s, 16 seeds (all seeds) |")
        print("|---|---|---|---|---|---|")
        for algo, env in dict.fromkeys((r["algorithm"], r["env"]) for r in speed):
            by = {r["num_seeds"]: r for r in speed if r["algorithm"] == algo and r["env"] == env}
            first = next(iter(by.values()))
            print(f"| {algo} | {env} | {first['batch_size']} | {tuple(first['hidden_sizes'])} | "
                  f"{down(by[1]['gradient_updates_per_second'], 0, thousands=True)} | "
                  f"{down(by[16]['gradient_updates_per_second'], 0, thousands=True)} |")
    if iql_1m:
        print(f"\nIQL, 1M gradient updates, one seed: {down(iql_1m['wall_seconds'], 0)} s wall "
              f"({down(iql_1m['run_seconds'], 0)} s running, {down(iql_1m['compile_seconds'], 0)} s compiling)")
    print(f"\nhardware: {hardware['cpu']}, {hardware['cpu_count']} cores, jax {hardware['jax']}")


if __name__ == "__main__":
    main()
