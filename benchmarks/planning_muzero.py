"""MuZero's part of benchmarks/planning.py: the CartPole-v1 learning curve (deterministic-search
evaluation return against environment steps, several seeds vmapped), summarized per point by
mean, IQM and its 95% stratified-bootstrap CI, and a PNG of the curve.

    python benchmarks/planning_muzero.py            # 8 seeds × 40,960 env steps (CPU: a few minutes)
    python benchmarks/planning_muzero.py --quick    # 2 seeds × 10,240 env steps

`run(out_dir, quick)` writes `planning_muzero_cartpole.png` into `out_dir` and returns the
JSON-able dict (the lead merges it into planning.py's output).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(out_dir: str, quick: bool = False) -> dict:
    import jax

    from benchmarks.common import hardware
    from purerl.algos import muzero
    from purerl.config import to_dict
    from purerl.report import summarize

    seeds = 2 if quick else 8
    steps = 10_240 if quick else 40_960
    config = muzero.Config.for_env("CartPole-v1", total_timesteps=steps, eval_every=10)
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    train = jax.jit(jax.vmap(muzero.train, in_axes=(None, 0)))
    start = time.time()
    compiled = train.lower(config, keys).compile()
    compile_seconds = time.time() - start
    start = time.time()
    _, metrics, eval_returns = jax.block_until_ready(compiled(config, keys))
    run_seconds = time.time() - start

    per_seed = np.asarray(eval_returns).mean(axis=-1)  # [seeds, evals]
    num_evals = per_seed.shape[1]
    env_steps = [min((i + 1) * config.eval_every, config.num_updates) * config.env_steps_per_update
                 for i in range(num_evals)]
    curve = [{"env_steps": int(s), **summarize(per_seed[:, i].astype(np.float64))} for i, s in enumerate(env_steps)]
    train_return = np.nanmean(np.asarray(metrics["train/episode_return"]), axis=0)

    picture = None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        os.makedirs(out_dir, exist_ok=True)
        fig, ax = plt.subplots(figsize=(6, 4))
        for row in per_seed:
            ax.plot(env_steps, row, color="tab:blue", alpha=0.25, lw=1)
        ax.plot(env_steps, per_seed.mean(axis=0), color="tab:blue", lw=2, label=f"mean of {seeds} seeds")
        ax.set_xlabel("environment steps per seed")
        ax.set_ylabel("evaluation return (deterministic search)")
        ax.set_title(f"MuZero, CartPole-v1, {config.num_simulations} simulations")
        ax.set_ylim(0, 510)
        ax.legend()
        fig.tight_layout()
        picture = os.path.join(out_dir, "planning_muzero_cartpole.png")
        fig.savefig(picture, dpi=100)
        plt.close(fig)
    except ImportError:
        pass

    return {
        "algorithm": "muzero",
        "env": config.env,
        "num_seeds": seeds,
        "env_steps_per_seed": config.num_updates * config.env_steps_per_update,
        "curve": curve,
        "final_return": curve[-1],
        "final_return_per_seed": [round(float(x), 1) for x in per_seed[:, -1]],
        "train_episode_return_per_update": np.round(train_return, 2).tolist(),
        "compile_seconds": round(compile_seconds, 1),
        "run_seconds": round(run_seconds, 1),
        "config": to_dict(config),
        "picture": os.path.basename(picture) if picture else None,  # beside the JSON
        "hardware": hardware(),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    parser.add_argument("--json", default=None, help="also write the dict here")
    args = parser.parse_args()
    result = run(args.out_dir, args.quick)
    text = json.dumps(result, indent=1)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text)
    print(json.dumps({k: result[k] for k in ("final_return", "final_return_per_seed", "compile_seconds",
                                             "run_seconds")}, indent=1))
