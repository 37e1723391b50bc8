"""Host-side summaries of a multi-seed run: statistics across seeds, the final table,
learning-curve files and the plot. Aggregates follow Agarwal et al. 2021 (rliable):
interquartile mean (IQM) and stratified-bootstrap 95% confidence intervals over seeds.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile

import numpy as np


def atomic_write(path: str, data: bytes | str) -> None:
    """Write `data` to `path` so that a crash leaves either the old file or the new one."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    with os.fdopen(fd, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_json(path: str, obj) -> None:
    atomic_write(path, json.dumps(obj, indent=2, sort_keys=True, default=_jsonable))


def _jsonable(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50% of `scores` (trimmed mean, 25% each side)."""
    from scipy.stats import trim_mean

    return float(trim_mean(np.asarray(scores, np.float64), 0.25))


def bootstrap_ci(scores: np.ndarray, statistic: str = "iqm", reps: int = 2000, seed: int = 0):
    """95% stratified-bootstrap confidence interval of `statistic` ("iqm" or "mean")
    across seeds, via rliable. `scores`: [num_seeds]."""
    from rliable import library as rly
    from rliable import metrics

    scores = np.asarray(scores, np.float64).reshape(-1, 1)
    if scores.shape[0] < 2 or np.allclose(scores, scores[0]):
        value = float(scores.mean())
        return value, value
    func = metrics.aggregate_iqm if statistic == "iqm" else metrics.aggregate_mean
    np.random.seed(seed)  # rliable draws from NumPy's global generator
    _, cis = rly.get_interval_estimates({"x": scores}, lambda s: np.array([func(s)]), reps=reps)
    low, high = cis["x"][:, 0]
    return float(low), float(high)


def summarize(final_returns: np.ndarray) -> dict:
    """Statistics across seeds of each seed's final evaluation return, [num_seeds]."""
    r = np.asarray(final_returns, np.float64)
    low, high = bootstrap_ci(r, "iqm")
    return {"mean": float(r.mean()), "std": float(r.std()), "iqm": iqm(r), "iqm_ci95": [low, high],
            "min": float(r.min()), "max": float(r.max()), "num_seeds": int(r.size)}


def format_table(title: str, summary: dict, timing: dict) -> str:
    ci = summary["iqm_ci95"]
    lines = [
        title,
        "final evaluation return across seeds (deterministic policy):",
        f"  {'mean':>9} {'IQM':>9} {'IQM 95% CI':>21} {'min':>9} {'max':>9} {'seeds':>6}",
        f"  {summary['mean']:9.2f} {summary['iqm']:9.2f} {f'[{ci[0]:.2f}, {ci[1]:.2f}]':>21} "
        f"{summary['min']:9.2f} {summary['max']:9.2f} {summary['num_seeds']:6d}",
        f"env steps/s (all seeds): {timing['env_steps_per_second']:,.0f}   compile: {timing['compile_seconds']:.1f} s"
        f"   run: {timing['run_seconds']:.1f} s",
    ]
    return "\n".join(lines)


def save_curves(run_dir: str, env_steps: np.ndarray, eval_returns: np.ndarray, metrics: dict) -> None:
    """`eval_returns`: [num_seeds, num_evals, episodes] → curves.npz and curves.csv
    (one row per seed and evaluation, the mean over its episodes)."""
    buf = _npz_bytes(env_steps=env_steps, eval_returns=eval_returns,
                     **{f"metric/{k}": v for k, v in metrics.items()})
    atomic_write(os.path.join(run_dir, "curves.npz"), buf)
    rows = [["seed", "env_steps", "eval_return"]]
    per_eval = np.nanmean(eval_returns, axis=-1)
    for seed in range(per_eval.shape[0]):
        for j, step in enumerate(env_steps):
            if np.isfinite(per_eval[seed, j]):
                rows.append([seed, int(step), float(per_eval[seed, j])])
    import io

    out = io.StringIO()
    csv.writer(out).writerows(rows)
    atomic_write(os.path.join(run_dir, "curves.csv"), out.getvalue())


def _npz_bytes(**arrays) -> bytes:
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def plot_curves(path: str, env_steps: np.ndarray, eval_returns: np.ndarray, title: str) -> None:
    """Mean evaluation return over seeds with a 95% bootstrap band (of the mean) at each point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per_seed = np.nanmean(eval_returns, axis=-1)  # [seeds, evals]
    valid = np.all(np.isfinite(per_seed), axis=0)
    steps, per_seed = env_steps[valid], per_seed[:, valid]
    mean = per_seed.mean(axis=0)
    bands = np.array([bootstrap_ci(per_seed[:, j], "mean", reps=500) for j in range(per_seed.shape[1])])
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(steps, mean, label=f"mean of {per_seed.shape[0]} seeds")
    if len(bands):
        ax.fill_between(steps, bands[:, 0], bands[:, 1], alpha=0.3, label="95% bootstrap CI")
    ax.set_xlabel("environment steps (per seed)")
    ax.set_ylabel("evaluation return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    atomic_write(path, buf.getvalue())
