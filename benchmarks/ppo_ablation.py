"""PPO on Pendulum-v1: the clipped value loss, and the choices of the Brax PPO settings.

    python benchmarks/ppo_ablation.py     # → benchmarks/results/ppo_ablation.json

PPO's clipped value loss (PureJaxRL's and CleanRL's default) keeps the new value within
±clip_eps of the old one, in the units of the return. Pendulum's returns are in the
hundreds, as are Brax's locomotion returns, where Brax's own PPO clips no value loss and keeps
its learning rate constant. Each row is the Pendulum-v1 preset (`Config.for_env`) with some
of these switched, 16 seeds, 409,600 steps: final return = each seed's last deterministic
evaluation; mean / IQM [95% CI] / min / max over seeds, and the mean curve.
"""

from __future__ import annotations

import json
import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.common import RESULTS_DIR, save  # noqa: E402
from purerl.algos import ppo  # noqa: E402
from purerl.report import summarize  # noqa: E402

SEEDS = 16
STEPS = 409_600  # 200 updates of the preset's 16 envs × 128 steps
VARIANTS = {
    "preset (unclipped value loss, annealed lr, clip 0.2, grad norm 0.5)": {},
    "preset + clipped value loss": dict(clip_value_loss=True),
    "the H200 ant run's choices (clipped value loss, annealed lr, clip 0.3, grad norm 1)":
        dict(clip_value_loss=True, clip_eps=0.3, max_grad_norm=1.0),
    "the GPU suite's ant choices now (unclipped value loss, annealed lr, clip 0.3, grad norm 1)":
        dict(clip_eps=0.3, max_grad_norm=1.0),
    "with Brax's constant lr (unclipped, constant lr, clip 0.3, grad norm 1)":
        dict(clip_eps=0.3, anneal_lr=False, max_grad_norm=1.0),
    "Brax's (unclipped, constant lr, clip 0.3, no gradient clipping)":
        dict(clip_eps=0.3, anneal_lr=False, max_grad_norm=1e9),
}


def main(argv=None):
    """`python benchmarks/ppo_ablation.py [I ...]` runs the variants numbered I (from 0; all by
    default); rows measured before for the other variants stay in the JSON."""
    sys.stdout.reconfigure(line_buffering=True)
    names = list(VARIANTS)
    picks = sys.argv[1:] if argv is None else argv
    bad = [i for i in picks if not (i.isdigit() and int(i) < len(names))]
    if bad:
        raise SystemExit(f"variant {' '.join(bad)}: expected numbers from 0 to {len(names) - 1}:\n"
                         + "\n".join(f"  {k}: {n}" for k, n in enumerate(names)))
    chosen = [names[int(i)] for i in picks] or names
    path = os.path.join(RESULTS_DIR, "ppo_ablation.json")
    old = {r["variant"]: r for r in json.load(open(path))["rows"]} if os.path.exists(path) else {}
    rows = {name: old[name] for name in names if name in old}
    keys = jax.random.split(jax.random.PRNGKey(0), SEEDS)
    for name in chosen:
        overrides = VARIANTS[name]
        config = ppo.Config.for_env("Pendulum-v1", total_timesteps=STEPS, **overrides)
        t0 = time.perf_counter()
        _, _, returns = jax.block_until_ready(jax.jit(jax.vmap(ppo.train, in_axes=(None, 0)))(config, keys))
        seconds = time.perf_counter() - t0
        per_eval = np.asarray(returns).mean(axis=-1)  # [seeds, evals]
        row = {"variant": name, "overrides": overrides, "total_timesteps": config.total_timesteps,
               "final_return": summarize(per_eval[:, -1]), "final_return_per_seed": per_eval[:, -1].tolist(),
               "mean_curve": per_eval.mean(axis=0).tolist(), "compile_plus_run_seconds": seconds}
        rows[name] = row
        s = row["final_return"]
        print(f"{name}: mean {s['mean']:.1f}  IQM {s['iqm']:.1f} [{s['iqm_ci95'][0]:.1f}, {s['iqm_ci95'][1]:.1f}]  "
              f"min {s['min']:.1f}  ({seconds:.0f} s)")
        save("ppo_ablation", {"command": "python benchmarks/ppo_ablation.py", "seeds": SEEDS,
                              "rows": [rows[n] for n in names if n in rows]})


if __name__ == "__main__":
    main()
