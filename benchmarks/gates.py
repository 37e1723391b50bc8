"""Learning gates under the runner: training throughput of 8 seeds, structured as `purerl
train` runs them (`vmap(init)`, then `vmap` of the runner's own block, `purerl.run.block_fn`,
over the seed axis with the block index unbatched), so the learning-starts gates and TD3's
delayed actor see a batched state. (Before 12-08 this script built its block from `run_block`
itself, which passed the update index, while the runner's block hid it: the runner's gates
were selects and this script did not see it.)

    python benchmarks/gates.py --label after    # merges {label: {rows: …}} into benchmarks/results/gates.json
    python benchmarks/gates.py --label after --cases td3/Pendulum-v1   # re-measure one row

Rows: DQN on CartPole-v1 (its preset, shortened to 50k steps) and TD3 on Pendulum-v1 (its
preset, 20k steps, half of them random steps before learning). Env steps/s count every
seed's steps and exclude compilation. Run it on the code before and after a change (e.g.
from a `git worktree` of the older commit) with the same labels file.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import time

import jax
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import purerl  # noqa: E402
from purerl.algos import dqn, td3  # noqa: E402
from purerl import run  # noqa: E402
from purerl.evaluation import num_blocks  # noqa: E402

from benchmarks.common import RESULTS_DIR, atomic_json, hardware  # noqa: E402

NUM_SEEDS = 8
CASES = {
    "dqn/CartPole-v1": (dqn, lambda: dqn.Config.for_env("CartPole-v1", total_timesteps=50_000)),
    "td3/Pendulum-v1": (td3, lambda: td3.Config.for_env("Pendulum-v1")),
}


def measure(module, config) -> dict:
    """Compile, then time `init` and every block of a run of NUM_SEEDS seeds."""
    n_updates, block_size = config.num_updates, config.eval_every

    runner_block = run.block_fn(module, config)  # the block `purerl train` compiles

    def block(state, index):
        return runner_block(state, index, {})

    keys = jax.random.split(jax.random.PRNGKey(0), NUM_SEEDS)
    init_fn = jax.jit(jax.vmap(functools.partial(module.init, config)))
    t0 = time.perf_counter()
    init_compiled = init_fn.lower(keys).compile()
    block_compiled = jax.jit(jax.vmap(block, in_axes=(0, None)), donate_argnums=0).lower(
        jax.eval_shape(init_fn, keys), jax.numpy.int32(0)).compile()
    compile_seconds = time.perf_counter() - t0

    t0 = time.perf_counter()
    state = init_compiled(keys)
    for index in range(num_blocks(n_updates, block_size)):
        state, _, returns = block_compiled(state, jax.numpy.int32(index))
    returns = np.asarray(jax.block_until_ready(returns))
    run_seconds = time.perf_counter() - t0
    steps = NUM_SEEDS * n_updates * config.env_steps_per_update
    return {"num_seeds": NUM_SEEDS, "env_steps_per_seed": n_updates * config.env_steps_per_update,
            "compile_seconds": round(compile_seconds, 1), "run_seconds": round(run_seconds, 1),
            "env_steps_per_second": round(steps / run_seconds, 1),
            "final_return_mean": float(returns.mean()),
            # other work on the machine slows every timing: compare rows measured at similar loads
            "load_average_1_5_15min": [round(x, 2) for x in os.getloadavg()]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", required=True, help="key of this measurement in the JSON, e.g. before/after")
    parser.add_argument("--out", default=os.path.join(RESULTS_DIR, "gates.json"))
    parser.add_argument("--cases", nargs="*", default=list(CASES))
    args = parser.parse_args()

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    for name in args.cases:
        module, make_config = CASES[name]
        row = {"commit": commit, **measure(module, make_config())}
        print(name, row, flush=True)
        payload = json.load(open(args.out)) if os.path.exists(args.out) else {}
        entry = payload.setdefault(args.label, {"rows": {}})
        entry.update(purerl=os.path.dirname(purerl.__file__), hardware=hardware())
        entry["rows"][name] = row  # other rows of this label are kept
        atomic_json(args.out, payload)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
