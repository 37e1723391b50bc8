"""The runner: everything host-side about a multi-seed training run.

    result = purerl.run.train("ppo", ppo.Config(), RunOptions(num_seeds=16))

* compiles once: `init` and one block of `update`s + evaluation, both `vmap`ped over seeds;
* shards the seed axis over all devices (`jax.sharding`, a 1-D mesh "seed"); the seed
  count is padded up to a multiple of the device count and the padding dropped;
  with `distributed=True`, `jax.distributed.initialize()` first (multi-host);
* shows a progress bar (env steps/s, current mean evaluation return);
* writes `runs/<run-name>/`: `config.json` (config, options, package versions, git
  revision, devices), `checkpoints/` (orbax, atomic, the last two kept),
  `curves.npz`/`curves.csv`, `curve.png`, `results.json`; prints the final table;
* `resume(run_dir)` continues an interrupted run from its last checkpoint and ends
  with the same parameters as an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import importlib.metadata
import json
import os
import subprocess
import sys
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from purerl import algos, report
from purerl.config import from_dict, to_dict
from purerl.evaluation import num_blocks, run_block


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """Host-side options of a run (not part of the compiled program)."""

    num_seeds: int = 16  # independent training runs, vmapped (and sharded over devices)
    seed: int = 0  # master seed; run i uses the i-th split of PRNGKey(seed)
    run_name: str | None = None  # directory name under runs_dir (default: <algo>-<env>-<time>)
    runs_dir: str = "runs"  # where run directories are created
    checkpoint_every: int = 10  # evaluation blocks between checkpoints (0: only at the end)
    stop_after: int | None = None  # stop after this many blocks in this invocation (resume later)
    resume: str | None = None  # a run directory to continue (its config is used; other flags ignored)
    progress: bool = True  # show a progress bar
    plot: bool = True  # write curve.png
    distributed: bool = False  # call jax.distributed.initialize() (multi-host runs)

    def __post_init__(self):
        if not isinstance(self.num_seeds, int) or self.num_seeds < 1:
            raise ValueError(f"RunOptions.num_seeds={self.num_seeds!r} is invalid: must be an integer ≥ 1")
        if not isinstance(self.checkpoint_every, int) or self.checkpoint_every < 0:
            raise ValueError(f"RunOptions.checkpoint_every={self.checkpoint_every!r} is invalid: must be an integer ≥ 0")
        if self.stop_after is not None and (not isinstance(self.stop_after, int) or self.stop_after < 1):
            raise ValueError(f"RunOptions.stop_after={self.stop_after!r} is invalid: must be None or an integer ≥ 1")


@dataclasses.dataclass
class RunResult:
    run_dir: str
    states: object  # final TrainState, leading axis num_seeds (host arrays)
    env_steps: np.ndarray  # [num_evals] environment steps per seed at each evaluation
    eval_returns: np.ndarray  # [num_seeds, num_evals, eval_episodes]
    summary: dict  # statistics of the final evaluation across seeds
    timing: dict
    finished: bool  # False when stopped early by `stop_after`


# ----------------------------------------------------------------------------- metadata
_PACKAGES = ("purerl", "jax", "jaxlib", "flax", "optax", "chex", "distrax", "gymnax", "brax", "mujoco",
             "mujoco-mjx", "orbax-checkpoint", "numpy")


def package_versions() -> dict:
    out = {"python": sys.version.split()[0]}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_revision() -> str | None:
    try:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5)
        if rev.returncode:
            return None
        return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


# ----------------------------------------------------------------------------- the run
def train(algo: str, config, options: RunOptions = RunOptions()) -> RunResult:
    """Train `options.num_seeds` seeds of algorithm `algo` with `config`."""
    module = algos.get(algo)
    if not isinstance(config, module.Config):
        raise ValueError(f"config must be a {module.__name__}.Config, got {type(config).__name__}")
    if options.resume:
        return resume(options.resume, stop_after=options.stop_after, progress=options.progress)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = options.run_name or f"{algo}-{getattr(config, 'env', 'env').replace('/', '_')}-{stamp}"
    run_dir = os.path.join(options.runs_dir, name)
    if os.path.exists(os.path.join(run_dir, "config.json")):
        raise ValueError(f"run directory {run_dir!r} already holds a run: pass --resume {run_dir} to continue it, "
                         "or choose another --run-name")
    os.makedirs(run_dir, exist_ok=True)
    meta = {
        "algorithm": algo,
        "config": to_dict(config),
        "options": dataclasses.asdict(options),
        "versions": package_versions(),
        "git_revision": git_revision(),
        "devices": [str(d) for d in jax.devices()],
        "created": stamp,
    }
    report.atomic_json(os.path.join(run_dir, "config.json"), meta)
    return _run(module, algo, config, options, run_dir)


def resume(run_dir: str, stop_after: int | None = None, progress: bool = True) -> RunResult:
    """Continue the run in `run_dir` from its latest checkpoint."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.exists(path):
        raise ValueError(f"--resume {run_dir!r}: no config.json there; not a purerl run directory")
    with open(path) as f:
        meta = json.load(f)
    module = algos.get(meta["algorithm"])
    config = from_dict(module.Config, meta["config"])
    fields = {f.name for f in dataclasses.fields(RunOptions)}
    saved = {k: v for k, v in meta["options"].items() if k in fields}
    options = RunOptions(**{**saved, "resume": None, "stop_after": stop_after, "progress": progress})
    return _run(module, meta["algorithm"], config, options, run_dir, resuming=True)


def _run(module, algo, config, options: RunOptions, run_dir: str, resuming: bool = False) -> RunResult:
    import orbax.checkpoint as ocp

    if options.distributed and jax.process_count() == 1:
        jax.distributed.initialize()
    num_seeds = options.num_seeds
    devices = jax.devices()
    mesh = jax.sharding.Mesh(np.array(devices), ("seed",))
    by_seed = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("seed"))
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    padded = -(-num_seeds // len(devices)) * len(devices)

    n_updates, eval_every = config.num_updates, config.eval_every
    n_blocks = num_blocks(n_updates, eval_every)
    steps_per_update = config.env_steps_per_update
    env_steps = np.minimum(np.arange(1, n_blocks + 1) * eval_every, n_updates) * steps_per_update

    def block(state, index):
        return run_block(functools.partial(module.update, config), functools.partial(module.evaluate, config),
                         state, index, eval_every, n_updates)

    init_fn = jax.jit(jax.vmap(functools.partial(module.init, config)), out_shardings=by_seed)
    block_fn = jax.jit(jax.vmap(block, in_axes=(0, None)), in_shardings=(by_seed, replicated),
                       out_shardings=by_seed, donate_argnums=0)

    keys = jax.random.split(jax.random.PRNGKey(options.seed), num_seeds)
    keys = jnp.concatenate([keys, keys[: padded - num_seeds]]) if padded > num_seeds else keys
    keys = jax.device_put(keys, by_seed)

    t0 = time.perf_counter()
    init_compiled = init_fn.lower(keys).compile()
    states = init_compiled(keys)
    block_compiled = block_fn.lower(states, jnp.int32(0)).compile()
    compile_seconds = time.perf_counter() - t0

    # History lives in the checkpoint, so a resumed run keeps its earlier curves.
    metrics_shape = jax.eval_shape(lambda s: block(s, 0)[1], jax.tree.map(lambda x: x[0], states))
    history = {
        "eval_returns": np.full((num_seeds, n_blocks, config.eval_episodes), np.nan, np.float32),
        "metrics": {k: np.full((num_seeds, n_blocks), np.nan, np.float32) for k in metrics_shape},
        "run_seconds": np.zeros((), np.float64),
    }
    manager = ocp.CheckpointManager(os.path.abspath(os.path.join(run_dir, "checkpoints")),
                                    options=ocp.CheckpointManagerOptions(max_to_keep=2, create=True))
    start = 0
    if resuming:
        latest = manager.latest_step()
        if latest is not None:
            target = {"state": jax.tree.map(lambda x: np.zeros((num_seeds,) + x.shape[1:], x.dtype), states),
                      "history": history}
            restored = manager.restore(latest, args=ocp.args.StandardRestore(target))
            history = restored["history"]
            state_host = restored["state"]
            if padded > num_seeds:
                state_host = jax.tree.map(lambda x: np.concatenate([x, x[: padded - num_seeds]]), state_host)
            states = jax.device_put(state_host, by_seed)
            start = int(latest)

    def save(step):
        state_host = jax.tree.map(lambda x: np.asarray(x)[:num_seeds], jax.device_get(states))
        manager.save(step, args=ocp.args.StandardSave({"state": state_host, "history": history}), force=True)
        manager.wait_until_finished()

    stop = n_blocks if options.stop_after is None else min(n_blocks, start + options.stop_after)
    bar = None
    if options.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=int(env_steps[-1]) * num_seeds, initial=int(env_steps[start - 1]) * num_seeds if start else 0,
                   unit="step", unit_scale=True, desc=f"{algo} {getattr(config, 'env', '')} ×{num_seeds}",
                   dynamic_ncols=True)
    t_run = time.perf_counter()
    run_seconds_before = float(history["run_seconds"])
    for i in range(start, stop):
        states, metrics, returns = block_compiled(states, jnp.int32(i))
        returns = np.asarray(returns)[:num_seeds]
        history["eval_returns"][:, i] = returns
        with warnings.catch_warnings():  # all-NaN metrics (e.g. no episode ended) stay NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            for k, v in metrics.items():
                history["metrics"][k][:, i] = np.nanmean(np.asarray(v, np.float32)[:num_seeds], axis=1)
        history["run_seconds"] = np.asarray(run_seconds_before + time.perf_counter() - t_run)
        if bar is not None:
            done_steps = int(env_steps[i]) * num_seeds
            bar.update(done_steps - bar.n)
            bar.set_postfix(eval_return=f"{returns.mean():.1f}")
        last = i == stop - 1
        if last or (options.checkpoint_every and (i + 1) % options.checkpoint_every == 0):
            save(i + 1)
    if bar is not None:
        bar.close()
    run_seconds = float(history["run_seconds"])

    finished = stop == n_blocks
    done_evals = stop
    steps_done = int(env_steps[done_evals - 1]) if done_evals else 0
    final = np.nanmean(history["eval_returns"][:, max(done_evals - 1, 0)], axis=-1)
    timing = {
        "compile_seconds": compile_seconds,
        "run_seconds": run_seconds,
        "env_steps_per_second": steps_done * num_seeds / max(run_seconds, 1e-9),
        "devices": len(devices),
        "device_kind": devices[0].device_kind,
        "platform": devices[0].platform,
    }
    summary = report.summarize(final)
    states_host = jax.tree.map(lambda x: np.asarray(x)[:num_seeds], jax.device_get(states))
    report.save_curves(run_dir, env_steps[:done_evals], history["eval_returns"][:, :done_evals],
                       {k: v[:, :done_evals] for k, v in history["metrics"].items()})
    title = (f"purerl · {algo} on {getattr(config, 'env', '?')} · {num_seeds} seeds · "
             f"{steps_done:,} env steps per seed" + ("" if finished else " (stopped early; resume to continue)"))
    report.atomic_json(os.path.join(run_dir, "results.json"), {
        "algorithm": algo, "env": getattr(config, "env", None), "finished": finished,
        "env_steps_per_seed": steps_done, "final_eval_return": summary,
        "final_eval_return_per_seed": final.tolist(), "timing": timing,
    })
    if options.plot and done_evals:
        report.plot_curves(os.path.join(run_dir, "curve.png"), env_steps[:done_evals],
                           history["eval_returns"][:, :done_evals], f"{algo} · {getattr(config, 'env', '')}")
    print(report.format_table(title, summary, timing))
    print(f"results: {run_dir}")
    return RunResult(run_dir=run_dir, states=states_host, env_steps=env_steps[:done_evals],
                     eval_returns=history["eval_returns"][:, :done_evals], summary=summary, timing=timing,
                     finished=finished)
