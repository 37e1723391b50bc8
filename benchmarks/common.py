"""Shared pieces of the benchmark scripts: learning runs measured through the runner,
hardware description, JSON output under benchmarks/results/."""

from __future__ import annotations

import datetime
import os
import platform
import tempfile

import numpy as np

from purerl.report import atomic_json

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def down(x: float, decimals: int = 1, thousands: bool = False) -> str:
    """`x` shown with `decimals` places, rounded down (toward −∞), never up: a measured
    number is never shown better than it was, nor a time shorter (7.659 s is 7.6, −176.336
    is −176.4). A float32's rounding is not a value: within half a float32 step (6e-8
    relative) below the next step up counts as that step (−629.9000244, float32's −629.9,
    is −629.9; 0.97499996 is 0.975); a whole float32 step below it does not."""
    import math

    if x is None or not math.isfinite(x):
        return str(x)
    scaled = x * 10**decimals
    value = math.floor(scaled + 6e-8 * abs(scaled)) / 10**decimals
    return f"{value:,.{decimals}f}" if thousands else f"{value:.{decimals}f}"


def hardware() -> dict:
    import jax

    devices = jax.devices()
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return {"platform": devices[0].platform, "device_kind": devices[0].device_kind, "num_devices": len(devices),
            "cpu": cpu, "cpu_count": os.cpu_count(), "jax": jax.__version__,
            # other work on the machine slows every timing: a load near the core count means idle-ish
            "load_average_1_5_15min": list(os.getloadavg()),
            # the same machine kind is slower on some days (shared hosts): date every measurement
            "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")}


def learning_run(algo: str, config, num_seeds: int, threshold: float | None = None, seed: int = 0) -> dict:
    """Train `num_seeds` seeds through `purerl.run.train` and report what the README's
    algorithm table shows: final return across seeds (mean, IQM, 95% CI), env steps for
    the mean over seeds to first reach `threshold`, compile seconds, env-steps/s, and the
    per-seed learning curve (`benchmarks/learning_curves.py` draws it)."""
    from purerl.run import RunOptions, train

    with tempfile.TemporaryDirectory() as runs_dir:
        result = train(algo, config, RunOptions(num_seeds=num_seeds, seed=seed, runs_dir=runs_dir, run_name="bench",
                                                progress=False, plot=False, checkpoint_every=0))
    curve = np.nanmean(result.eval_returns, axis=-1).mean(axis=0)  # mean over episodes, then seeds
    reached = np.nonzero(curve >= threshold)[0] if threshold is not None else np.array([])
    return {
        "algorithm": algo,
        "env": config.env,
        "num_seeds": num_seeds,
        "env_steps_per_seed": int(result.env_steps[-1]),
        "final_return": result.summary,
        "threshold": threshold,
        "steps_to_threshold": int(result.env_steps[reached[0]]) if reached.size else None,
        "compile_seconds": result.timing["compile_seconds"],
        "run_seconds": result.timing["run_seconds"],
        "env_steps_per_second": result.timing["env_steps_per_second"],
        # the learning curve: each seed's mean evaluation return at each evaluation (NaN: diverged)
        "curve": {"env_steps": [int(x) for x in result.env_steps],
                  "per_seed_return": np.round(np.nanmean(result.eval_returns, axis=-1), 3).tolist()},
    }


def save(name: str, payload: dict) -> str:
    os.makedirs(RESULTS_DIR, exist_ok=True)
    path = os.path.join(RESULTS_DIR, f"{name}.json")
    atomic_json(path, {"hardware": hardware(), **payload})  # a crash leaves the earlier file intact
    print(f"saved {path}")
    return path


def print_rows(rows: list[dict]) -> None:
    print(f"{'algorithm':<14}{'env':<16}{'steps':>9}{'mean':>9}{'IQM':>9}{'IQM 95% CI':>20}{'to thr.':>10}"
          f"{'compile s':>10}{'steps/s':>11}")
    for r in rows:
        f = r["final_return"]
        ci = f"[{f['iqm_ci95'][0]:.1f}, {f['iqm_ci95'][1]:.1f}]"
        thr = r["steps_to_threshold"]
        print(f"{r['algorithm']:<14}{r['env']:<16}{r['env_steps_per_seed']:>9}{f['mean']:>9.1f}{f['iqm']:>9.1f}"
              f"{ci:>20}{(str(thr) if thr is not None else '—'):>10}{r['compile_seconds']:>10.1f}"
              f"{r['env_steps_per_second']:>11,.0f}")
