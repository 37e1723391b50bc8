"""Planning benchmark, GPS part: iLQR iterations-to-converge on Pendulum-v1 from reset start
states, and the GPS policy's return against the number of guiding trajectories.

    python benchmarks/planning_gps.py [--quick] [--out DIR]

`run(out_dir, quick)` returns a JSON-able dict (and writes planning_gps.png when matplotlib is
there); the lead merges it into benchmarks/planning.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def ilqr_part(num_starts: int) -> dict:
    import jax
    import jax.numpy as jnp

    from purerl import ilqr
    from purerl.algos import gps

    config = gps.Config(num_guides=num_starts)
    env = gps.make_env(config.env)

    @jax.jit
    def run(key):
        _, obs = env.reset(key, num_starts)
        x0 = jnp.stack([jnp.arctan2(obs[:, 1], obs[:, 0]), obs[:, 2]], axis=-1)
        sols = jax.vmap(lambda x: gps.plan(config, x))(x0)
        warm = jax.vmap(lambda x: ilqr.trajectory_cost(gps.cost, gps.zero_final_cost,
                                                       ilqr.rollout(gps.dynamics, x, gps.pumping_controls(x, 200)),
                                                       gps.pumping_controls(x, 200)))(x0)
        true = jax.vmap(lambda xs, us: jnp.sum(jax.vmap(gps.cost)(xs[:-1], us)))(sols.xs, sols.us)
        return sols.num_iterations, sols.converged, warm, true

    t0 = time.perf_counter()
    iters, converged, warm, true = jax.block_until_ready(run(jax.random.PRNGKey(0)))
    seconds = time.perf_counter() - t0
    iters = np.asarray(iters)
    return {"start_states": num_starts, "max_iterations": config.ilqr_iterations,
            "iterations_to_converge": iters.tolist(), "median_iterations": float(np.median(iters)),
            "converged_fraction": float(np.mean(np.asarray(converged))),
            "warm_start_cost_mean": float(np.mean(warm)), "ilqr_cost_mean": float(np.mean(true)),
            "seconds_with_compile": seconds}


def gps_part(guide_counts, seeds: int, updates: int) -> list:
    import jax

    from purerl.algos import gps

    rows = []
    for n in guide_counts:
        config = gps.Config.for_env("Pendulum-v1", num_guides=n, policy_samples=max(16 // n, 1),
                                    total_timesteps=updates * max(16 // n, 1) * n * 200, bc_steps=2000,
                                    learning_rate=3e-3, gradient_steps=50, eval_episodes=16,
                                    eval_every=updates)
        t0 = time.perf_counter()
        keys = jax.random.split(jax.random.PRNGKey(100), seeds)
        _, metrics, returns = jax.block_until_ready(jax.jit(jax.vmap(gps.train, in_axes=(None, 0)))(config, keys))
        per_seed = np.asarray(returns[:, -1].mean(-1))
        rows.append({"num_guides": n, "seeds": seeds, "updates": updates,
                     "final_eval_return_per_seed": per_seed.round(1).tolist(),
                     "final_eval_return_mean": float(per_seed.mean()),
                     "guide_sample_return_mean": float(np.asarray(metrics["train/guide_return"])[:, -1].mean()),
                     "seconds_with_compile": time.perf_counter() - t0})
        print(rows[-1], flush=True)
    return rows


def run(out_dir: str, quick: bool = False) -> dict:
    import jax

    result = {"hardware": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
                          f"JAX backend {jax.default_backend()}",
              "ilqr": ilqr_part(8 if quick else 32),
              "gps": gps_part((4, 16) if quick else (2, 4, 8, 16), 2 if quick else 3, 1 if quick else 2)}
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(4.5, 3.2))
        xs = [r["num_guides"] for r in result["gps"]]
        ax.plot(xs, [r["final_eval_return_mean"] for r in result["gps"]], "o-")
        ax.set_xlabel("guiding trajectories (start states)")
        ax.set_ylabel("policy return, unseen starts")
        ax.set_title("GPS on Pendulum-v1")
        fig.tight_layout()
        os.makedirs(out_dir, exist_ok=True)
        fig.savefig(os.path.join(out_dir, "planning_gps.png"), dpi=120)
        result["png"] = "planning_gps.png"
    except ImportError:
        pass
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="/tmp/w")
    args = parser.parse_args()
    out = run(args.out, args.quick)
    print(json.dumps(out, indent=1))
