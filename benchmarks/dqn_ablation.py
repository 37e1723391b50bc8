"""DQN on CartPole-v1: what the preset's LayerNorm and whole-run buffer buy.

    python benchmarks/dqn_ablation.py     # → benchmarks/results/dqn_ablation.json

The CartPole-v1 preset (200k steps, 8 seeds) with each combination of `layer_norm` on/off
and `buffer_size` 100k (the RL Zoo's) / 200k (the whole run, nothing evicted). Final
return = each seed's last greedy evaluation; mean / IQM [95% CI] / min / max over seeds,
and the mean over seeds of every evaluation (the curve), to show oscillation.
"""

from __future__ import annotations

import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.common import save  # noqa: E402
from purerl.algos import dqn  # noqa: E402
from purerl.report import summarize  # noqa: E402

SEEDS = 8


def main():
    sys.stdout.reconfigure(line_buffering=True)
    rows = []
    keys = jax.random.split(jax.random.PRNGKey(0), SEEDS)
    for layer_norm in (True, False):
        for buffer_size in (200_000, 100_000):
            config = dqn.Config.for_env("CartPole-v1", layer_norm=layer_norm, buffer_size=buffer_size)
            t0 = time.perf_counter()
            _, _, returns = jax.block_until_ready(jax.jit(jax.vmap(dqn.train, in_axes=(None, 0)))(config, keys))
            seconds = time.perf_counter() - t0
            per_eval = np.asarray(returns).mean(axis=-1)  # [seeds, evals]
            row = {"layer_norm": layer_norm, "buffer_size": buffer_size, "total_timesteps": config.total_timesteps,
                   "final_return": summarize(per_eval[:, -1]), "final_return_per_seed": per_eval[:, -1].tolist(),
                   "mean_curve": per_eval.mean(axis=0).tolist(), "compile_plus_run_seconds": seconds}
            rows.append(row)
            s = row["final_return"]
            print(f"layer_norm={layer_norm!s:5} buffer_size={buffer_size:>7,}: mean {s['mean']:.1f}  "
                  f"IQM {s['iqm']:.1f} [{s['iqm_ci95'][0]:.1f}, {s['iqm_ci95'][1]:.1f}]  min {s['min']:.1f}  "
                  f"({seconds:.0f} s)")
    save("dqn_ablation", {"command": "python benchmarks/dqn_ablation.py", "seeds": SEEDS, "rows": rows})


if __name__ == "__main__":
    main()
