"""A/B of XLA:CPU's concurrency-optimized scheduler: does a vmapped PPO program hang?

jaxlib 0.10.0–0.10.2 deadlocked on CPU (a batched LAPACK QR under `vmap`; excluded in
pyproject.toml), and an earlier session worked around hangs there by turning this scheduler
off. This script checks, on the installed jaxlib, whether the flag is still needed: for each
arm (flag on = `--xla_cpu_enable_concurrency_optimized_scheduler=false`, flag off = XLA's
default) and each seed count, it starts `--processes` fresh Python processes that each train
PPO on CartPole-v1 (`--updates` updates per seed, vmapped over seeds, evaluation included)
and counts the ones that hung: no CPU time used for `--stall` seconds before finishing (the
hang's symptom is every XLA worker waiting at 0% CPU; a slow process on a loaded machine is
not counted as hung).

    python benchmarks/xla_flag_ab.py                       # 10 processes × {1, 16, 256} seeds × 2 arms
    python benchmarks/xla_flag_ab.py --processes 2 --seeds 1 16   # a smoke run

Saves benchmarks/results/xla_flag_ab.json (per arm and seed count: processes, hung, and the
median wall seconds of the finished ones).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.common import save  # noqa: E402

FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler=false"
CHILD = """
import sys, jax, numpy as np
from purerl.algos import ppo
seeds, updates = int(sys.argv[1]), int(sys.argv[2])
config = ppo.Config(env="CartPole-v1", total_timesteps=512 * updates, eval_every=updates, eval_episodes=2)
keys = jax.random.split(jax.random.PRNGKey(seeds), seeds)
_, _, returns = jax.jit(jax.vmap(ppo.train, in_axes=(None, 0)))(config, keys)
assert np.all(np.isfinite(np.asarray(returns)))
print("ok")
"""


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads (from /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_process(seeds: int, updates: int, flag_on: bool, stall: float, limit: float) -> float | None:
    """Wall seconds of one fresh process, or None if it hung: no CPU time used for `stall`
    seconds while not finished (the symptom: every XLA worker waiting, 0% CPU). A process that
    keeps computing is waited for up to `limit` seconds (a loaded machine is slow, not hung)."""
    env = {**os.environ, "XLA_FLAGS": FLAG if flag_on else "",
           "JAX_PLATFORMS": "cpu"}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(seeds), str(updates)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    last_cpu, last_change = 0.0, t0
    while proc.poll() is None:
        time.sleep(2.0)
        try:
            cpu = _cpu_seconds(proc.pid)
        except OSError:  # finished between poll and read
            continue
        now = time.perf_counter()
        if cpu > last_cpu + 0.05:
            last_cpu, last_change = cpu, now
        if now - last_change > stall or now - t0 > limit:
            proc.kill()
            proc.communicate()
            if now - t0 > limit and now - last_change <= stall:
                raise RuntimeError(f"{seeds} seeds: still computing after {limit} s; raise --limit")
            return None
    out, err = proc.communicate()
    if proc.returncode != 0 or "ok" not in out:
        raise RuntimeError(err[-2000:])
    return time.perf_counter() - t0


def main():
    sys.stdout.reconfigure(line_buffering=True)
    parser = argparse.ArgumentParser()
    parser.add_argument("--processes", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 16, 256])
    parser.add_argument("--updates", type=int, default=10)
    parser.add_argument("--stall", type=float, default=60.0, help="seconds at 0%% CPU that count as hung")
    parser.add_argument("--limit", type=float, default=1800.0, help="seconds a computing process may take")
    args = parser.parse_args()
    rows = []
    for seeds in args.seeds:
        for flag_on in (True, False):
            times = []
            for _ in range(args.processes):
                times.append(one_process(seeds, args.updates, flag_on, args.stall, args.limit))
            done = [t for t in times if t is not None]
            row = {"num_seeds": seeds, "scheduler_flag": "off (flag set)" if flag_on else "on (XLA default)",
                   "processes": args.processes, "hung": len(times) - len(done),
                   "median_wall_seconds": float(np.median(done)) if done else None}
            rows.append(row)
            print(row)
            save_rows(args, rows)  # after each row: an interrupted run keeps what it measured


def save_rows(args, rows):
    save("xla_flag_ab", {"command": "python benchmarks/xla_flag_ab.py " + " ".join(sys.argv[1:]),
                         "updates_per_seed": args.updates, "stall_seconds": args.stall, "rows": rows})


if __name__ == "__main__":
    main()
