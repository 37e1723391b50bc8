"""One figure per environment from the learning benchmarks' JSON: every algorithm's IQM learning
curve over seeds with its 95% stratified-bootstrap CI band (rliable, via `purerl.compare`), env
steps per seed on a log axis (the presets' budgets differ by 100×).

    python benchmarks/learning_curves.py   # → benchmarks/results/learning_curves_<env>.png

Rows measured before the benchmark saved curves (no "curve" entry) are left out and named.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.common import RESULTS_DIR  # noqa: E402
from benchmarks.readme_table import ORDER  # noqa: E402
from purerl import compare  # noqa: E402
from purerl.report import atomic_write  # noqa: E402


def _changed(row: dict) -> dict:
    """The overrides of a row that is not the preset as it stands (a shortened MinAtar run on a
    CPU), the run length aside: the x axis shows it."""
    return {k: v for k, v in row.get("overrides", {}).items() if k not in ("total_timesteps", "eval_every")}


def _label(row: dict) -> str:
    """'ppo (16 seeds)', plus the row's changes to its preset (`_changed`)."""
    changed = _changed(row)
    extra = "".join(f", {k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in changed.items())
    return f"{row['algorithm']} ({row['num_seeds']} seeds{extra})"


def entries_by_env() -> tuple[dict[str, list[compare.Entry]], list[str], dict[str, float], set[str]]:
    """Curves per environment, the rows without one, gymnax's reference returns, and the
    environments where some row changed its preset."""
    by_env, missing, references, changed = {}, [], {}, set()
    for family in ("onpolicy", "offpolicy", "minatar"):
        path = os.path.join(RESULTS_DIR, f"learning_{family}.json")
        rows = json.load(open(path))["rows"] if os.path.exists(path) else []
        for r in rows:
            if "curve" not in r:
                missing.append(f"{r['algorithm']} · {r['env']}")
                continue
            curves = np.asarray(r["curve"]["per_seed_return"], np.float64)
            label = _label(r)
            if _changed(r):
                changed.add(r["env"])
            if "reference_return" in r:
                references[r["env"]] = r["reference_return"]
            by_env.setdefault(r["env"], []).append(compare.Entry(
                label, "", r["algorithm"], r["env"], np.asarray(r["curve"]["env_steps"]), curves, curves[:, -1],
                "env steps", None))
    for entries in by_env.values():
        entries.sort(key=lambda e: ORDER.index(e.algorithm) if e.algorithm in ORDER else 99)
    return by_env, missing, references, changed


def plot(env: str, entries: list[compare.Entry], reference: float | None = None, changed: bool = False) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for e in entries:
        steps, point, ci, used = compare.curve_iqm(e)
        if used:
            line, = ax.plot(steps, point, label=e.label)
            ax.fill_between(steps, ci[0], ci[1], alpha=0.2, color=line.get_color())
    if reference is not None:  # gymnax's trained PPO agents (MinAtar), at 10M steps
        ax.axhline(reference, color="black", linestyle="--", linewidth=1, label=f"gymnax reference ({reference:g})")
    ax.set_xscale("log")
    ax.set_xlabel("env steps per seed (log scale)")
    ax.set_ylabel("IQM evaluation return (95% CI)")
    title = "presets with the changes in the legend" if changed else "every algorithm's preset"
    ax.set_title(f"{title} · {env}", fontsize="medium")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    return compare.figure_bytes(fig)


def main():
    by_env, missing, references, changed = entries_by_env()
    for env, entries in sorted(by_env.items()):
        path = os.path.join(RESULTS_DIR, f"learning_curves_{env}.png")
        atomic_write(path, plot(env, entries, references.get(env), env in changed))
        print(f"saved {path} ({', '.join(e.algorithm for e in entries)})")
    if missing:
        print(f"no curve saved (measured before curves were recorded): {', '.join(missing)}")


if __name__ == "__main__":
    main()
