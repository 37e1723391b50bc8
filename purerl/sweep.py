"""Hyperparameter sweeps: a grid of Config values × seeds.

    purerl sweep ppo --env CartPole-v1 --learning-rate 1e-4,3e-4,1e-3 --gamma 0.98,0.99 --num-seeds 16
    purerl sweep ppo --resume runs/<sweep>

    results = purerl.sweep.sweep("ppo", ppo.Config(), {"learning_rate": [1e-4, 3e-4, 1e-3]},
                                 RunOptions(num_seeds=16))

* Float Config fields (pytree leaves: learning rate, discount, coefficients…) with several
  values form a grid that trains with the seeds as *one* compiled program: the runner's seed
  axis holds every (grid point, seed) row (`purerl.run.Grid`), so 6 points × 16 seeds are 96
  rows of one `vmap`, sharded over the devices and chunked to memory like seeds.
* Static fields that fix shapes or program structure (`--num-envs 4,8`) cannot share a
  program: each of their combinations is a separate program (and run directory,
  `<sweep>/num_envs=4/`), trained one after another, each with the float grid inside.
* Every value is validated by the algorithm's Config before anything compiles: an unknown
  field, a string/bool/tuple field with several values, a value the Config refuses.
* Each program's directory is an ordinary run directory (checkpoints, `--resume`, curves)
  with the grid in `config.json`, per-point statistics (mean, IQM with its stratified-bootstrap
  CI) in `results.json` under "sweep", `sweep.png` (final IQM over the grid: a curve for one
  field, a heatmap for two) and `curve.png` (a learning curve per point). Seed `s` of every
  point starts from the same key (common random numbers).
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import json
import os

from purerl import report
from purerl.run import Grid, RunOptions, RunResult


def field_kinds(module) -> dict:
    """{field: "float" (sweepable in one program) | "static" (numeric; one program per value) |
    "fixed" (takes one value)} for the algorithm's Config."""
    default = module.Config()
    out = {}
    for f in dataclasses.fields(module.Config):
        value = getattr(default, f.name)
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if f.metadata.get("pytree_node", True) and isinstance(value, float):
            out[f.name] = "float"
        elif not f.metadata.get("pytree_node", True) and numeric:
            out[f.name] = "static"
        else:
            out[f.name] = "fixed"
    return out


def _parse(field: str, text: str, kind: str):
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"--{field.replace('_', '-')} {text!r}: not a number") from None
    if kind == "static" and isinstance(number, float) and number.is_integer():
        return int(number)
    return number


def split_flags(module, flags: list[str]) -> tuple[list[str], dict, dict]:
    """Take the comma-separated (several-valued) flags out of `flags`.

    Returns (the other flags, {float field: [values]}, {static field: [values]}). Raises a
    ValueError naming the flag for an unknown field, a RunOptions flag or a non-numeric
    field with several values, and for a value that is not a number."""
    kinds = field_kinds(module)
    options = {f.name for f in dataclasses.fields(RunOptions)}
    rest, floats, statics, i = [], {}, {}, 0
    while i < len(flags):
        flag = flags[i]
        name, eq, value = flag.partition("=")
        if not eq and i + 1 < len(flags) and not flags[i + 1].startswith("--"):
            value = flags[i + 1]
        several = name.startswith("--") and "," in value
        if not several:
            rest.append(flag)
            i += 1
            continue
        field = name[2:].replace("-", "_")
        floats_ok = sorted(k for k, v in kinds.items() if v == "float")
        statics_ok = sorted(k for k, v in kinds.items() if v == "static")
        allowed = (f"sweepable in one program: {', '.join(floats_ok) or 'none'}; one program per value: "
                   f"{', '.join(statics_ok) or 'none'}")
        if field in options:
            raise ValueError(f"{name} {value!r}: a run option takes one value ({allowed})")
        if field not in kinds:
            raise ValueError(f"{name}: {module.__name__.rsplit('.', 1)[-1]}.Config has no field {field!r} "
                             f"({allowed})")
        if kinds[field] == "fixed":
            raise ValueError(f"{name} {value!r}: {field} is not a number, it takes one value ({allowed})")
        values = [_parse(field, v.strip(), kinds[field]) for v in value.split(",") if v.strip()]
        if len(set(values)) != len(values):
            raise ValueError(f"{name} {value!r}: a value is repeated")
        (floats if kinds[field] == "float" else statics)[field] = values
        i += 1 if eq else 2
    return rest, floats, statics


def grid_points(floats: dict) -> tuple:
    """Every combination of the float fields' values (the first field varies slowest)."""
    return tuple(itertools.product(*floats.values()))


def plan(algo: str, config, floats: dict, statics: dict, options: RunOptions) -> list:
    """[(run directory, config, Grid or None)], one per combination of the static values,
    every config and grid point validated and every directory checked free before any compiles."""
    if not floats and not statics:
        raise ValueError("nothing to sweep: give at least one Config field several comma-separated values, "
                         "e.g. --learning-rate 1e-4,3e-4,1e-3")
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = options.run_name or f"{algo}-{getattr(config, 'env', 'env').replace('/', '_')}-sweep-{stamp}"
    root = os.path.join(options.runs_dir, name)
    out = []
    for combo in itertools.product(*statics.values()):
        values = dict(zip(statics, combo))
        c = dataclasses.replace(config, **values) if values else config
        grid = Grid(tuple(floats), grid_points(floats), options.num_seeds) if floats else None
        if grid is not None:
            for point in grid.points:
                dataclasses.replace(c, **dict(zip(grid.fields, point)))
        run_dir = os.path.join(root, ",".join(f"{k}={v}" for k, v in values.items())) if values else root
        if os.path.exists(os.path.join(run_dir, "config.json")):
            raise ValueError(f"run directory {run_dir!r} already holds a run: pass --resume {root} to continue "
                             "the sweep, or choose another --run-name")
        out.append((run_dir, c, grid))
    return out


def sweep(algo: str, config, floats: dict, options: RunOptions = RunOptions(), statics: dict | None = None
          ) -> list[RunResult]:
    """Train the grid `floats` ({float field: values}) × `options.num_seeds` seeds as one program,
    once per combination of `statics` ({static field: values}); returns one RunResult each."""
    statics = statics or {}
    runs = plan(algo, config, floats, statics, options)
    if statics:
        names = ", ".join(os.path.basename(d) for d, _, _ in runs)
        print(f"sweep: {', '.join(statics)} {'is' if len(statics) == 1 else 'are'} static (part of the compiled "
              f"program): {len(runs)} separate programs, one after another: {names}")
    from purerl import run

    results = []
    for run_dir, c, grid in runs:
        head, tail = os.path.split(run_dir)
        o = dataclasses.replace(options, runs_dir=head, run_name=tail)
        results.append(run.train(algo, c, o, grid=grid))
    if statics:
        _write_index(os.path.dirname(runs[0][0]), results)
    return results


def _write_index(root: str, results: list) -> None:
    """`<sweep>/sweep.json`: every program's directory and per-point statistics."""
    entries = []
    for r in results:
        with open(os.path.join(r.run_dir, "config.json")) as f:
            config = json.load(f)["config"]
        entries.append({"run_dir": os.path.basename(r.run_dir), "config": config, "per_point": r.points,
                        "summary": r.summary if r.points is None else None})
    report.atomic_json(os.path.join(root, "sweep.json"), {"programs": entries})


def resume(root: str, stop_after: int | None = None, progress: bool = True) -> list[RunResult]:
    """Continue a sweep: `root` is a sweep's run directory, or a directory of them (static values)."""
    from purerl import run

    if os.path.exists(os.path.join(root, "config.json")):
        return [run.resume(root, stop_after=stop_after, progress=progress)]
    subdirs = sorted(d for d in os.listdir(root) if os.path.exists(os.path.join(root, d, "config.json"))) \
        if os.path.isdir(root) else []
    if not subdirs:
        raise ValueError(f"--resume {root!r}: no config.json there or in its subdirectories; not a purerl sweep")
    results = [run.resume(os.path.join(root, d), stop_after=stop_after, progress=progress) for d in subdirs]
    _write_index(root, results)
    return results
