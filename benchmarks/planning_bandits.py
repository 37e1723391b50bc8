"""Bandits part of benchmarks/planning.py: cumulative pseudo-regret curves R(t) of UCB1,
fixed-ε greedy and Thompson sampling on the two gymnax bandits, many problems vmapped.

    python -m benchmarks.planning_bandits OUT_DIR [--quick]

For every (environment, strategy): `seeds` vmapped seeds × `num_envs` independent bandit
problems each, horizon T pulls per problem; the curve is the mean over all problems, the band
a 95 % normal interval (1.96 s.e.m.) over the seeds' means.
Writes `bandits_regret.png` (log–log axes: linear regret has slope 1, logarithmic regret flattens) and
returns a JSON-able dict with R(t) at t = 10², 10³, 10⁴, the growth ratio
(R(T) − R(100)) / (R(T/10) − R(100)) (2 for logarithmic growth with T = 10⁴, see the test),
compile and run seconds, and the hardware.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time

import numpy as np

STRATEGIES = ("ucb1", "epsilon_greedy", "thompson")
ENVS = ("BernoulliBandit-misc", "GaussianBandit-misc")


def _curve(env: str, strategy: str, horizon: int, num_envs: int, seeds: int, pulls_per_update: int) -> dict:
    import jax

    from purerl.algos import bandits

    config = bandits.Config(env=env, strategy=strategy, num_envs=num_envs, pulls_per_update=pulls_per_update,
                            total_timesteps=num_envs * horizon, eval_every=horizon // pulls_per_update,
                            eval_episodes=16)
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    t0 = time.perf_counter()
    program = jax.jit(jax.vmap(bandits.train, in_axes=(None, 0))).lower(config, keys).compile()
    t1 = time.perf_counter()
    state, metrics, returns = jax.block_until_ready(program(config, keys))
    t2 = time.perf_counter()
    t, curves = bandits.regret_curve(metrics, config)  # curves: [seeds, num_updates], mean over problems
    curves = np.asarray(curves, np.float64)
    mean = curves.mean(0)
    half = 1.96 * curves.std(0, ddof=1) / np.sqrt(seeds) if seeds > 1 else np.zeros_like(mean)
    at = {int(h): float(mean[np.searchsorted(t, h)]) for h in (100, 1000, 10_000) if h <= horizon}
    out = {
        "config": {"strategy": strategy, "c": float(config.c), "epsilon": float(config.epsilon),
                   "posterior": config.model if strategy == "thompson" else None},
        "problems": seeds * num_envs, "horizon": horizon, "regret_at": at,
        "final_regret_ci95": [float(mean[-1] - half[-1]), float(mean[-1] + half[-1])],
        "final_eval_mean_reward": float(np.mean(np.asarray(returns)[:, -1])),
        "best_mean_reward": float(np.mean(np.asarray(state.arm_means).max(-1))),
        "compile_seconds": round(t1 - t0, 2), "run_seconds": round(t2 - t1, 2),
        "pulls_per_second": seeds * num_envs * horizon / (t2 - t1),
        "_t": t, "_mean": mean, "_half": half,
    }
    if horizon >= 10_000:
        out["log_growth_ratio"] = (at[10_000] - at[100]) / (at[1000] - at[100])
    return out


def _plot(path: str, results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4.2), squeeze=False)
    for ax, (env, by_strategy) in zip(axes[0], results.items()):
        for strategy, r in by_strategy.items():
            line, = ax.plot(r["_t"], r["_mean"], label=strategy)
            ax.fill_between(r["_t"], r["_mean"] - r["_half"], r["_mean"] + r["_half"], color=line.get_color(),
                            alpha=0.25)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("pulls t per problem")
        ax.set_ylabel("cumulative pseudo-regret R(t)")
        any_r = next(iter(by_strategy.values()))
        ax.set_title(f"{env} · {any_r['problems']} problems")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(out_dir: str, quick: bool = False) -> dict:
    import jax

    os.makedirs(out_dir, exist_ok=True)
    horizon, num_envs, seeds = (1000, 64, 2) if quick else (10_000, 128, 4)
    results, t0 = {}, time.perf_counter()
    for env in ENVS:
        results[env] = {}
        for strategy in STRATEGIES:
            r = _curve(env, strategy, horizon, num_envs, seeds, pulls_per_update=10)
            results[env][strategy] = r
            print(f"{env} {strategy}: R = {r['regret_at']}, compile {r['compile_seconds']} s, "
                  f"run {r['run_seconds']} s", file=sys.stderr, flush=True)
    png = os.path.join(out_dir, "bandits_regret.png")
    _plot(png, results)
    device = jax.devices()[0]
    clean = {env: {s: {k: v for k, v in r.items() if not k.startswith("_")} for s, r in by.items()}
             for env, by in results.items()}
    return {
        "bandits": clean,
        "png": os.path.basename(png) if png else None,  # beside the JSON
        "quick": quick,
        "hardware": {"platform": device.platform, "device_kind": device.device_kind, "cpu": platform.processor()
                     or platform.machine(), "cpu_count": os.cpu_count()},
        "wall_seconds": round(time.perf_counter() - t0, 1),
    }


if __name__ == "__main__":
    out = run(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results", quick="--quick" in sys.argv)
    print(json.dumps(out, indent=1))
