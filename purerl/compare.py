"""Compare finished runs on one environment, as Agarwal et al. 2021 ("Deep RL at the edge of the
statistical precipice", rliable) report them.

    purerl compare runs/ppo-cartpole runs/dqn-cartpole [--out DIR] [--labels PPO,DQN]
    compare(["runs/ppo-cartpole", "runs/dqn-cartpole"], out="runs/compare")   # the same from Python

Each run directory is one entry (a sweep's run directory: one entry per grid point). For each
entry, the seeds' final evaluation returns (results.json) and learning curves (curves.npz) give:

- aggregates with 95% stratified-bootstrap CIs (one task, so the bootstrap resamples seeds):
  mean, IQM, the optimality gap mean(max(1 − x̂, 0)) of the normalized score
  x̂ = (R − R_low)/(R_high − R_low), and the probability of improvement P(X > Y) of each entry
  over the first;
- `profiles.png`: performance profiles, the fraction of seeds whose final return exceeds τ;
- `sample_efficiency.png`: IQM of the evaluation return against steps per seed, with CIs;
- `aggregates.png`: the interval estimates of the aggregates;
- `compare.md` (the markdown table, also printed) and `compare.json` (every number).

The normalization's R_low is the return of a uniformly random policy (100 episodes, measured
here), R_high the task's maximum where it is known (`MAX_RETURN`) or else the best final return
of any seed compared; an offline run's dataset references are used when every entry has them,
and `--reference LOW,HIGH` sets both. The table says which was used.
A seed whose return is not finite (diverged) is left out of every statistic and counted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np

from purerl.report import default_mode

MAX_RETURN = {"CartPole-v1": 500.0}  # the time limit: the highest return the task can give
CURVE_REPS, REPS = 500, 2000  # bootstrap resamples for each curve point, and for the aggregates


class Entry:
    """One compared policy family: `final` [seeds] and `curves` [seeds, evals] at `steps` [evals]."""

    def __init__(self, label: str, run_dir: str, algorithm: str, env: str, steps: np.ndarray, curves: np.ndarray,
                 final: np.ndarray, step_kind: str, dataset: dict | None):
        self.label, self.run_dir, self.algorithm, self.env = label, run_dir, algorithm, env
        self.steps, self.curves, self.final, self.step_kind, self.dataset = steps, curves, final, step_kind, dataset

    @property
    def finite(self) -> np.ndarray:
        return self.final[np.isfinite(self.final)]


# ----------------------------------------------------------------------------- loading
def load_entries(run_dirs: list[str], labels: list[str] | None = None) -> list[Entry]:
    """Entries of `run_dirs`, checked: each finished-or-stopped run directory with results.json and
    curves.npz, all on one environment, at least two entries, labels unique."""
    if not run_dirs:
        raise ValueError("compare needs run directories: purerl compare RUN_DIR RUN_DIR …")
    entries = []
    for run_dir in run_dirs:
        entries.extend(_load(run_dir))
    envs = sorted({e.env for e in entries})
    if len(envs) > 1:
        raise ValueError("runs on different environments cannot be compared: "
                         + "; ".join(f"{e.run_dir} is on {e.env}" for e in entries))
    if len(entries) < 2:
        raise ValueError(f"compare needs at least two runs (or a sweep with two grid points); got {len(entries)}")
    if labels is not None:
        if len(labels) != len(entries):
            raise ValueError(f"--labels has {len(labels)} names for {len(entries)} entries "
                             f"({', '.join(e.label for e in entries)})")
        for e, name in zip(entries, labels):
            e.label = name
    else:
        names = [e.label for e in entries]
        for e in entries:  # the same algorithm twice: name entries by their directories
            if names.count(e.label) > 1:
                e.label = os.path.basename(os.path.normpath(e.run_dir)) + e.label[len(e.algorithm):]
    names = [e.label for e in entries]
    if len(set(names)) != len(names):
        raise ValueError(f"labels must be unique; got {', '.join(names)}")
    return entries


def _load(run_dir: str) -> list[Entry]:
    results_path, curves_path = os.path.join(run_dir, "results.json"), os.path.join(run_dir, "curves.npz")
    if not os.path.isdir(run_dir):
        raise ValueError(f"run directory {run_dir!r} does not exist")
    if os.path.isfile(os.path.join(run_dir, "sweep.json")) and not os.path.isfile(results_path):
        raise ValueError(f"{run_dir!r} is the index of a sweep over static fields; pass its run directories "
                         "(listed in its sweep.json) instead")
    if not os.path.isfile(results_path) or not os.path.isfile(curves_path):
        raise ValueError(f"run directory {run_dir!r} has no results.json and curves.npz: it has not reached an "
                         "evaluation (train or resume it first)")
    with open(results_path) as f:
        results = json.load(f)
    with np.load(curves_path, allow_pickle=False) as data:
        steps, returns, done = data["env_steps"], data["eval_returns"], data["evals_done"]
    per_eval = np.mean(returns, axis=-1)  # [rows, evals]
    final = np.array([np.nan if r is None else r for r in results["final_eval_return_per_seed"]], np.float64)
    kind = "gradient steps" if "gradient_steps_per_seed" in results else "env steps"
    algorithm, env, dataset = results["algorithm"], results["env"], results.get("dataset")
    shown = int(np.min(done)) if done.size else 0  # evaluations every seed has reached
    steps, per_eval = steps[:shown], per_eval[:, :shown]
    sweep = results.get("sweep")
    if sweep is None:
        return [Entry(algorithm, run_dir, algorithm, env, steps, per_eval, final, kind, dataset)]
    from purerl.report import point_label

    seeds, out = int(sweep["seeds"]), []
    for p, values in enumerate(sweep["points"]):
        rows = slice(p * seeds, (p + 1) * seeds)
        label = f"{algorithm} {point_label(dict(zip(sweep['fields'], values)))}"
        out.append(Entry(label, run_dir, algorithm, env, steps, per_eval[rows], final[rows], kind, dataset))
    return out


# ----------------------------------------------------------------------------- statistics
def references(entries: list[Entry], reference: tuple[float, float] | None = None) -> dict:
    """{"low", "high", "source"}: the normalization's R_low and R_high (see the module docstring)."""
    if reference is not None:
        low, high = map(float, reference)
        source = "given (--reference)"
    elif all(e.dataset and e.dataset.get("random_return") is not None and e.dataset.get("expert_return") is not None
             for e in entries) and len({(e.dataset["random_return"], e.dataset["expert_return"]) for e in entries}) == 1:
        low, high = float(entries[0].dataset["random_return"]), float(entries[0].dataset["expert_return"])
        source = "the datasets' random and expert returns"
    else:
        low = random_return(entries[0].env)
        env = entries[0].env
        if env in MAX_RETURN:
            high, what = MAX_RETURN[env], f"{env}'s maximum return"
        else:
            finite = np.concatenate([e.finite for e in entries])
            if not finite.size:
                raise ValueError("every seed of every run diverged: nothing to compare")
            high, what = float(finite.max()), "the best final return of any seed compared"
        source = f"random policy (100 episodes) and {what}"
    if not high > low:
        raise ValueError(f"the normalization needs R_high > R_low; got R_low={low:.4g}, R_high={high:.4g}")
    return {"low": low, "high": high, "source": source}


def random_return(env_name: str, episodes: int = 100, seed: int = 0) -> float:
    """Mean return of a uniformly random policy on `env_name` (one compiled program)."""
    import jax

    from purerl import datasets, envs

    env = envs.make(env_name)
    return float(datasets.mean_return(env, datasets.random_policy(env), jax.random.PRNGKey(seed), episodes))


def aggregates(entries: list[Entry], ref: dict, reps: int = REPS, seed: int = 0) -> list[dict]:
    """Per entry: point estimates and 95% CIs of mean, IQM (returns), optimality gap
    (normalized) and P(entry > first entry), over its finite seeds."""
    from rliable import metrics

    def norm(x):
        return (x - ref["low"]) / (ref["high"] - ref["low"])

    funcs = {"mean": metrics.aggregate_mean, "iqm": metrics.aggregate_iqm,
             "optimality_gap": lambda s: metrics.aggregate_optimality_gap(norm(s))}
    out = []
    first = entries[0].finite
    for e in entries:
        x = e.finite
        row = {"label": e.label, "run_dir": e.run_dir, "algorithm": e.algorithm, "num_seeds": int(e.final.size),
               "num_finite": int(x.size), "steps_per_seed": int(e.steps[-1]) if e.steps.size else 0}
        if x.size:
            for name, func in funcs.items():
                row[name] = float(func(x[:, None]))
                row[name + "_ci95"] = _ci(lambda s, f=func: np.array([f(s)]), x[:, None], reps, seed)
            if e is not entries[0] and first.size:
                row["p_improvement"] = float(metrics.probability_of_improvement(x[:, None], first[:, None]))
                row["p_improvement_ci95"] = _ci(lambda a, b: np.array([metrics.probability_of_improvement(a, b)]),
                                                (x[:, None], first[:, None]), reps, seed)
        out.append(row)
    return out


def _bootstrap(score_dict: dict, func, reps: int, seed: int) -> dict:
    """rliable's stratified-bootstrap interval estimates, seeded (arch's warning that a
    RandomState is deprecated, which rliable passes it, silenced)."""
    import warnings

    from rliable import library as rly

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        _, cis = rly.get_interval_estimates(score_dict, func, reps=reps, random_state=np.random.RandomState(seed))
    return cis


def _ci(func, scores, reps: int, seed: int) -> list[float]:
    """95% percentile CI of `func` by rliable's stratified bootstrap over seeds (degenerate data:
    the point estimate twice)."""
    arrays = scores if isinstance(scores, tuple) else (scores,)
    if all(a.shape[0] < 2 or np.allclose(a, a[0]) for a in arrays):
        value = float(np.asarray(func(*arrays)).ravel()[0])
        return [value, value]
    cis = _bootstrap({"x": scores}, func, reps, seed)
    return [float(cis["x"][0, 0]), float(cis["x"][1, 0])]


def curve_iqm(entry: Entry, reps: int = CURVE_REPS, seed: int = 0):
    """(steps, IQM [evals], CI [2, evals], seeds used): the IQM of the evaluation return at each
    evaluation over the seeds whose curve is finite throughout."""
    from rliable import metrics

    keep = np.isfinite(entry.curves).all(axis=1)
    curves = entry.curves[keep]
    if not curves.size:
        return entry.steps, np.full(entry.steps.shape, np.nan), np.full((2,) + entry.steps.shape, np.nan), 0
    func = lambda s: np.array([metrics.aggregate_iqm(s[:, [j]]) for j in range(s.shape[1])])  # noqa: E731
    point = func(curves)
    if curves.shape[0] < 2:
        return entry.steps, point, np.stack([point, point]), int(keep.sum())
    return entry.steps, point, _bootstrap({"x": curves}, func, reps, seed)["x"], int(keep.sum())


# ----------------------------------------------------------------------------- output
def format_table(entries: list[Entry], rows: list[dict], ref: dict) -> str:
    """The markdown table of `aggregates` rows, with its caption lines."""
    def cell(row, name, digits=1):
        if name not in row:
            return "—"
        low, high = row[name + "_ci95"]
        return f"{row[name]:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"

    env, kind = entries[0].env, entries[0].step_kind
    lines = [f"Final evaluation return on {env}: point estimate [95% stratified-bootstrap CI] over seeds "
             f"(Agarwal et al. 2021). Optimality gap on the normalized score (R − R_low)/(R_high − R_low), "
             f"R_low = {ref['low']:.4g}, R_high = {ref['high']:.4g} ({ref['source']}); P(> {rows[0]['label']}) "
             "is the probability that a seed of the row beats a seed of the first row.", "",
             f"| run | seeds | {kind} per seed | mean | IQM | optimality gap | P(> {rows[0]['label']}) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        seeds = f"{row['num_finite']}" + (f" of {row['num_seeds']}" if row["num_finite"] != row["num_seeds"] else "")
        lines.append(f"| {row['label']} | {seeds} | {row['steps_per_seed']:,} | {cell(row, 'mean')} | "
                     f"{cell(row, 'iqm')} | {cell(row, 'optimality_gap', 3)} | "
                     f"{cell(row, 'p_improvement', 2)} |")
    return "\n".join(lines)


def figure_bytes(fig) -> bytes:
    """A matplotlib figure as PNG bytes (laid out, 120 dpi), the figure closed; the benchmarks'
    figures use it too, so that every picture is written the same way (`report.atomic_write`)."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    return buf.getvalue()


def plot_profiles(entries: list[Entry], ref: dict, reps: int = REPS) -> bytes:
    """Performance profiles of the final returns (rliable), with bootstrap bands."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from rliable import library as rly
    from rliable import plot_utils

    finite = {e.label: e.finite[:, None] for e in entries if e.finite.size}
    lo = min(ref["low"], min(x.min() for x in finite.values()))
    hi = max(ref["high"], max(x.max() for x in finite.values()))
    taus = np.linspace(lo, hi, 101)
    np.random.seed(0)  # create_performance_profile draws from NumPy's global generator
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        profiles, cis = rly.create_performance_profile(finite, taus, reps=reps)
    fig, ax = plt.subplots(figsize=(6, 4))
    plot_utils.plot_performance_profiles(profiles, taus, performance_profile_cis=cis, ax=ax,
                                         xlabel=r"final evaluation return ($\tau$)",
                                         ylabel=r"fraction of seeds with return $> \tau$", labelsize="medium",
                                         ticklabelsize="small")
    ax.legend(ax.get_lines()[:len(finite)], list(finite), loc="lower left", fontsize="small")
    ax.set_title(f"performance profiles · {entries[0].env}", fontsize="medium")
    return figure_bytes(fig)


def plot_sample_efficiency(entries: list[Entry], curves: list) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for e, (steps, point, ci, used) in zip(entries, curves):
        if used:
            line, = ax.plot(steps, point, label=f"{e.label} ({used} seeds)")
            ax.fill_between(steps, ci[0], ci[1], alpha=0.2, color=line.get_color())
    ax.set_xlabel(f"{entries[0].step_kind} per seed")
    ax.set_ylabel("IQM evaluation return (95% CI)")
    ax.set_title(f"sample efficiency · {entries[0].env}", fontsize="medium")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    return figure_bytes(fig)


def plot_aggregates(rows: list[dict]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [("mean", "mean"), ("iqm", "IQM"), ("optimality_gap", "optimality gap")]
    fig, axes = plt.subplots(1, len(names), figsize=(3 * len(names), 0.5 * len(rows) + 1.5), sharey=True)
    labels = [r["label"] for r in rows]
    for ax, (key, title) in zip(axes, names):
        for i, r in enumerate(rows):
            if key in r:
                low, high = r[key + "_ci95"]
                ax.plot([low, high], [i, i], lw=6, alpha=0.5, solid_capstyle="butt")
                ax.plot([r[key]], [i], "k|", ms=12)
        ax.set_title(title, fontsize="medium")
        ax.set_yticks(range(len(rows)), labels)
        ax.grid(axis="x", alpha=0.3)
    axes[0].invert_yaxis()  # the first entry on top, as in the table
    return figure_bytes(fig)


def compare(run_dirs: list[str], out: str, labels: list[str] | None = None,
            reference: tuple[float, float] | None = None, reps: int = REPS, create_parent: bool = False) -> dict:
    """Compare the runs in `run_dirs` and write `out` (a new directory: compare.md, compare.json,
    profiles.png, sample_efficiency.png, aggregates.png). Returns compare.json's content. `out`
    appears whole or not at all (`create_parent`: make its parent directory once all is computed)."""
    if os.path.exists(out):
        raise ValueError(f"--out {out!r} exists already; choose a new directory")
    parent = os.path.dirname(os.path.abspath(out))
    if not create_parent and not os.path.isdir(parent):
        raise ValueError(f"--out {out!r}: its parent directory {parent!r} does not exist")
    entries = load_entries(run_dirs, labels)
    if not any(e.finite.size for e in entries):
        raise ValueError("every seed of every run diverged: nothing to compare")
    ref = references(entries, reference)
    rows = aggregates(entries, ref, reps)
    curves = [curve_iqm(e) for e in entries]
    table = format_table(entries, rows, ref)
    result = {"env": entries[0].env, "reference": ref, "reps": reps, "curve_reps": CURVE_REPS, "rows": rows,
              "curves": [{"label": e.label, "steps": s.tolist(), "iqm": p.tolist(), "ci95": c.tolist(), "seeds": u}
                         for e, (s, p, c, u) in zip(entries, curves)],
              "created": time.strftime("%Y-%m-%d %H:%M:%S")}
    files = {"compare.md": table + "\n", "compare.json": json.dumps(result, indent=2, allow_nan=True) + "\n",
             "profiles.png": plot_profiles(entries, ref, reps),
             "sample_efficiency.png": plot_sample_efficiency(entries, curves), "aggregates.png": plot_aggregates(rows)}
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=".tmp-compare-")
    try:
        default_mode(tmp)
        for name, data in files.items():
            with open(os.path.join(tmp, name), "wb") as f:
                f.write(data.encode() if isinstance(data, str) else data)
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(table)
    print(f"\nwritten: {out}/ (compare.md, compare.json, profiles.png, sample_efficiency.png, aggregates.png)")
    return result


# ----------------------------------------------------------------------------- CLI
class _Error(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise _Error(message)


def _pair(text: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not LOW,HIGH (two numbers)") from None
    return low, high


def main(argv: list[str]) -> int:
    """purerl compare RUN_DIR RUN_DIR … [--out DIR] [--labels A,B,…] [--reference LOW,HIGH]"""
    parser = _Parser(prog="purerl compare", description="Compare runs on one environment (rliable aggregates, "
                                                        "performance profiles, sample-efficiency curves).")
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    parser.add_argument("--out", help="new directory for the tables and plots (default runs/compare-<time>)")
    parser.add_argument("--labels", help="comma-separated names of the entries, in order")
    parser.add_argument("--reference", type=_pair, help="R_low,R_high of the normalized score")
    parser.add_argument("--reps", type=int, default=REPS, help=f"bootstrap resamples (default {REPS})")
    try:
        args = parser.parse_args(argv)
        if args.reps < 100:
            raise ValueError(f"--reps {args.reps} is invalid: must be ≥ 100")
        out = args.out
        if out is None:
            out = os.path.join("runs", time.strftime("compare-%Y%m%d-%H%M%S"))
        labels = args.labels.split(",") if args.labels else None
        compare(args.run_dirs, out, labels, args.reference, args.reps, create_parent=args.out is None)
    except (_Error, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except SystemExit as e:  # --help
        return int(e.code or 0)
    return 0
