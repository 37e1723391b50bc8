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


def default_mode(path: str) -> None:
    """Give a file or folder made by `tempfile` (mode 0600/0700, owner only) the mode an
    ordinary `open`/`os.makedirs` would have given it under the process umask."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if os.path.isdir(path) else 0o666) & ~umask)


def atomic_write(path: str, data: bytes | str) -> None:
    """Write `data` to `path` so that a crash leaves either the old file or the new one."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    default_mode(tmp)
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
    """Interquartile mean: the mean of the middle 50% of `scores` (trimmed mean, 25% each
    side: the lowest and highest ⌊n/4⌋ dropped, as `scipy.stats.trim_mean(scores, 0.25)`)."""
    s = np.sort(np.asarray(scores, np.float64).ravel())
    cut = int(0.25 * s.size)
    return float(s[cut: s.size - cut].mean())


def bootstrap_ci(scores: np.ndarray, statistic: str = "iqm", reps: int = 2000, seed: int = 0):
    """95% stratified-bootstrap confidence interval of `statistic` ("iqm" or "mean")
    across seeds, via rliable. `scores`: [num_seeds]. Where rliable cannot be imported (the
    GPU machine has no wheel of its `arch` dependency), the same percentile bootstrap over
    seeds in NumPy (one task: stratified is plain resampling), so that a run still finishes;
    its interval differs from rliable's by the resampling noise only."""
    scores = np.asarray(scores, np.float64).reshape(-1, 1)
    if scores.shape[0] < 2 or np.allclose(scores, scores[0]):
        value = float(scores.mean())
        return value, value
    try:
        from rliable import library as rly  # imported only here: it brings SciPy and pandas (about 1 s)
        from rliable import metrics
    except ImportError:
        return _numpy_bootstrap_ci(scores[:, 0], statistic, reps, seed)
    func = metrics.aggregate_iqm if statistic == "iqm" else metrics.aggregate_mean
    np.random.seed(seed)  # rliable draws from NumPy's global generator
    _, cis = rly.get_interval_estimates({"x": scores}, lambda s: np.array([func(s)]), reps=reps)
    low, high = cis["x"][:, 0]
    return float(low), float(high)


def _numpy_bootstrap_ci(scores: np.ndarray, statistic: str, reps: int, seed: int) -> tuple[float, float]:
    """Percentile bootstrap: `reps` resamples of the seeds with replacement, the statistic of
    each, its 2.5th and 97.5th percentiles."""
    rng = np.random.default_rng(seed)
    samples = scores[rng.integers(0, scores.size, (reps, scores.size))]
    values = np.array([iqm(s) for s in samples]) if statistic == "iqm" else samples.mean(axis=1)
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def summarize(final_returns: np.ndarray, seeds=None) -> dict:
    """Statistics across seeds of each seed's final evaluation return, [num_seeds].

    A non-finite return (a diverged seed: NaN or ±inf) is not averaged in; it is counted
    and named in `nonfinite_seeds` (indices from `seeds`, default 0…n−1). The statistics
    (mean, std, iqm, iqm_ci95, min, max) are over the `num_finite` finite seeds, and absent
    when there are none."""
    r = np.asarray(final_returns, np.float64).ravel()
    seeds = np.arange(r.size) if seeds is None else np.asarray(seeds).ravel()
    finite = np.isfinite(r)
    out = {"num_seeds": int(r.size), "num_finite": int(finite.sum()),
           "nonfinite_seeds": [int(s) for s in seeds[~finite]]}
    if finite.any():
        f = r[finite]
        low, high = bootstrap_ci(f, "iqm")
        out.update({"mean": float(f.mean()), "std": float(f.std()), "iqm": iqm(f), "iqm_ci95": [low, high],
                    "min": float(f.min()), "max": float(f.max())})
    return out


def format_table(title: str, summary: dict, timing: dict, steps: str = "env steps") -> str:
    """The final table: statistics over finite seeds, and the non-finite ones named. `steps`
    names what the rate counts ("gradient steps" for an offline algorithm)."""
    lines = [title, "final evaluation return across seeds (deterministic policy):",
             f"  {'mean':>9} {'IQM':>9} {'IQM 95% CI':>21} {'min':>9} {'max':>9} {'seeds':>6} {'non-finite':>10}"]
    nonfinite = summary.get("nonfinite_seeds", [])
    if "mean" in summary:
        ci = summary["iqm_ci95"]
        lines.append(f"  {summary['mean']:9.2f} {summary['iqm']:9.2f} {f'[{ci[0]:.2f}, {ci[1]:.2f}]':>21} "
                     f"{summary['min']:9.2f} {summary['max']:9.2f} {summary['num_finite']:6d} {len(nonfinite):10d}")
    else:
        lines.append(f"  {'—':>9} {'—':>9} {'—':>21} {'—':>9} {'—':>9} {0:6d} {len(nonfinite):10d}")
    if nonfinite:
        shown = ", ".join(map(str, nonfinite[:20])) + (", …" if len(nonfinite) > 20 else "")
        lines.append(f"  non-finite final return (diverged), not in the statistics: {len(nonfinite)} of "
                     f"{summary['num_seeds']} seeds: {shown}")
    cache = ""
    if timing.get("compile_cache_dir"):
        hits = timing.get("compile_cache_hits", 0)
        cache = (f" (compilation cache hit: {hits} of 2 programs loaded)" if hits
                 else " (compilation cache: miss, stored for the next run)")
    lines.append(f"{steps}/s (all seeds): {timing['env_steps_per_second']:,.0f}   compile: "
                 f"{timing['compile_seconds']:.1f} s{cache}   run: {timing['run_seconds']:.1f} s")
    return "\n".join(lines)


def save_curves(run_dir: str, env_steps: np.ndarray, eval_returns: np.ndarray, metrics: dict,
                evals_done: np.ndarray | None = None) -> None:
    """`eval_returns`: [num_seeds, num_evals, episodes] → curves.npz and curves.csv (one row
    per seed and evaluation it reached, the mean over its episodes; `nan`/`inf` written as
    such where the seed diverged). `evals_done` [num_seeds]: evaluations each seed reached
    (default: all)."""
    num_seeds, num_evals = eval_returns.shape[:2]
    evals_done = np.full(num_seeds, num_evals) if evals_done is None else np.asarray(evals_done)
    buf = _npz_bytes(env_steps=env_steps, eval_returns=eval_returns, evals_done=evals_done,
                     **{f"metric/{k}": v for k, v in metrics.items()})
    atomic_write(os.path.join(run_dir, "curves.npz"), buf)
    rows = [["seed", "env_steps", "eval_return"]]
    per_eval = np.mean(eval_returns, axis=-1)
    for seed in range(num_seeds):
        for j in range(min(int(evals_done[seed]), num_evals)):
            rows.append([seed, int(env_steps[j]), float(per_eval[seed, j])])
    import io

    out = io.StringIO()
    csv.writer(out).writerows(rows)
    atomic_write(os.path.join(run_dir, "curves.csv"), out.getvalue())


def _npz_bytes(**arrays) -> bytes:
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def plot_curves(path: str, env_steps: np.ndarray, eval_returns: np.ndarray, title: str,
                evals_done: np.ndarray | None = None) -> None:
    """Mean evaluation return over seeds with a 95% bootstrap band (of the mean), at each
    evaluation every seed has reached (`evals_done`, default all), over the seeds whose
    return there is finite; the legend counts the diverged seeds left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per_seed = np.mean(eval_returns, axis=-1)  # [seeds, evals]
    shown = per_seed.shape[1] if evals_done is None else int(np.min(evals_done))
    columns = [per_seed[np.isfinite(per_seed[:, j]), j] for j in range(shown)]
    steps = np.asarray([s for s, c in zip(env_steps, columns) if c.size])
    columns = [c for c in columns if c.size]
    mean = np.array([c.mean() for c in columns])
    bands = np.array([bootstrap_ci(c, "mean", reps=500) for c in columns])
    diverged = int((~np.isfinite(per_seed[:, :shown])).any(axis=1).sum())
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(steps, mean, label=f"mean of {per_seed.shape[0]} seeds"
            + (f", {diverged} diverged (left out where non-finite)" if diverged else ""))
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


# ----------------------------------------------------------------------------- sweeps
def point_label(values: dict) -> str:
    """`learning_rate=0.0003, gamma=0.99`: a grid point's values."""
    return ", ".join(f"{k}={v:.4g}" for k, v in values.items())


def format_sweep_table(title: str, points: list, timing: dict) -> str:
    """One line per grid point: its values and the final evaluation return over its seeds
    (mean ± std, IQM with its 95% stratified-bootstrap CI, finite seeds); the best IQM marked."""
    fields = list(points[0]["values"]) if points else []
    width = [max(len(f), 9) for f in fields]
    iqms = [p["summary"].get("iqm", -np.inf) for p in points]
    best = int(np.argmax(iqms)) if points else -1
    header = "  " + " ".join(f"{f:>{w}}" for f, w in zip(fields, width))
    lines = [title, "final evaluation return per grid point, across its seeds (deterministic policy):",
             header + f" {'mean':>9} {'std':>8} {'IQM':>9} {'IQM 95% CI':>21} {'seeds':>7}"]
    for i, p in enumerate(points):
        s = p["summary"]
        row = "  " + " ".join(f"{p['values'][f]:>{w}.4g}" for f, w in zip(fields, width))
        if "mean" in s:
            ci = s["iqm_ci95"]
            row += (f" {s['mean']:9.2f} {s['std']:8.2f} {s['iqm']:9.2f} {f'[{ci[0]:.2f}, {ci[1]:.2f}]':>21} "
                    f"{s['num_finite']:>3d}/{s['num_seeds']:<3d}")
        else:
            row += f" {'—':>9} {'—':>8} {'—':>9} {'—':>21} {0:>3d}/{s.get('num_seeds', 0):<3d}"
        if s.get("nonfinite_seeds"):
            row += f"  diverged seeds: {', '.join(map(str, s['nonfinite_seeds'][:10]))}"
        lines.append(row + ("  ← best IQM" if i == best and np.isfinite(iqms[i]) else ""))
    lines.append(f"env steps/s (all rows): {timing['env_steps_per_second']:,.0f}   compile: "
                 f"{timing['compile_seconds']:.1f} s   run: {timing['run_seconds']:.1f} s")
    return "\n".join(lines)


def _save_figure(fig, path: str) -> None:
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    atomic_write(path, buf.getvalue())


def plot_sweep(path: str, fields: list, points: list, title: str) -> None:
    """The final IQM over the grid: against the value (log axis when all are positive and span
    > 10×) with its 95% CI for one field, a heatmap for two, one bar per point otherwise."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    iqm_of = [p["summary"].get("iqm", np.nan) for p in points]
    ci_of = [p["summary"].get("iqm_ci95", [np.nan, np.nan]) for p in points]
    fig, ax = plt.subplots(figsize=(6, 4))
    if len(fields) == 1:
        x = np.array([p["values"][fields[0]] for p in points])
        order = np.argsort(x)
        ci = np.array(ci_of)[order]
        ax.plot(x[order], np.array(iqm_of)[order], "o-", label="IQM over seeds")
        ax.fill_between(x[order], ci[:, 0], ci[:, 1], alpha=0.3, label="95% bootstrap CI")
        if np.all(x > 0) and x.max() > 10 * x.min():
            ax.set_xscale("log")
        ax.set_xlabel(fields[0])
        ax.set_ylabel("final evaluation return")
        ax.legend(loc="best")
        ax.grid(alpha=0.3)
    elif len(fields) == 2:
        xs = sorted({p["values"][fields[0]] for p in points})
        ys = sorted({p["values"][fields[1]] for p in points})
        grid = np.full((len(ys), len(xs)), np.nan)
        for p, v in zip(points, iqm_of):
            grid[ys.index(p["values"][fields[1]]), xs.index(p["values"][fields[0]])] = v
        image = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
        for (i, j), v in np.ndenumerate(grid):
            ax.text(j, i, f"{v:.1f}", ha="center", va="center", color="white" if v < np.nanmean(grid) else "black")
        ax.set_xticks(range(len(xs)), [f"{v:.3g}" for v in xs])
        ax.set_yticks(range(len(ys)), [f"{v:.3g}" for v in ys])
        ax.set_xlabel(fields[0])
        ax.set_ylabel(fields[1])
        fig.colorbar(image, ax=ax, label="final evaluation return (IQM over seeds)")
    else:
        ci = np.array(ci_of)
        ax.bar(range(len(points)), iqm_of, yerr=np.abs(ci.T - np.array(iqm_of)), capsize=3)
        ax.set_xticks(range(len(points)), [point_label(p["values"]) for p in points], rotation=60, ha="right",
                      fontsize=7)
        ax.set_ylabel("final evaluation return (IQM, 95% CI)")
    ax.set_title(title)
    fig.tight_layout()
    _save_figure(fig, path)


def plot_point_curves(path: str, env_steps: np.ndarray, returns: list, labels: list, title: str) -> None:
    """Mean evaluation return over each grid point's seeds (finite ones) against env steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for r, label in zip(returns, labels):
        per_seed = np.mean(r, axis=-1)  # [seeds, evals]
        with np.errstate(all="ignore"):
            mean = np.array([np.mean(c[np.isfinite(c)]) if np.isfinite(c).any() else np.nan for c in per_seed.T])
        ax.plot(env_steps, mean, label=label)
    ax.set_xlabel("environment steps (per seed)")
    ax.set_ylabel("evaluation return (mean over seeds)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=7)
    fig.tight_layout()
    _save_figure(fig, path)
