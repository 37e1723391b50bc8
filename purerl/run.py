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
    memory_limit_gb: float | None = None  # memory budget per device (default: what the device has free)
    on_memory: str = "chunk"  # when the seeds do not fit: "chunk" (sequential chunks) or "error"

    def __post_init__(self):
        if not isinstance(self.num_seeds, int) or self.num_seeds < 1:
            raise ValueError(f"RunOptions.num_seeds={self.num_seeds!r} is invalid: must be an integer ≥ 1")
        if not isinstance(self.checkpoint_every, int) or self.checkpoint_every < 0:
            raise ValueError(f"RunOptions.checkpoint_every={self.checkpoint_every!r} is invalid: must be an integer ≥ 0")
        if self.on_memory not in ("chunk", "error"):
            raise ValueError(f"RunOptions.on_memory={self.on_memory!r} is invalid: must be one of ['chunk', 'error']")
        if self.memory_limit_gb is not None and not self.memory_limit_gb > 0:
            raise ValueError(f"RunOptions.memory_limit_gb={self.memory_limit_gb!r} is invalid: must be None or > 0")
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


def available_memory_bytes(device) -> int:
    """Free memory of `device`: the accelerator's allocator limit minus what is in use,
    or the host's available physical memory for a CPU device."""
    stats = None
    try:
        stats = device.memory_stats()
    except Exception:  # noqa: BLE001 - CPU devices may not report
        stats = None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def state_bytes_per_seed(module, config) -> int:
    """Bytes of one seed's TrainState (parameters, optimizer, environments, replay buffer),
    from shapes alone: nothing is compiled or allocated."""
    shapes = jax.eval_shape(functools.partial(module.init, config), jax.random.PRNGKey(0))
    return int(sum(np.prod(x.shape) * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(shapes)))


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:,.1f} {unit}"
        n /= 1024


# The compiled block holds the state, its updated copy until donation completes, and
# temporaries (rollouts, minibatches, activations): budget three states per seed.
MEMORY_FACTOR = 3


def plan_chunks(num_seeds: int, per_seed_bytes: int, available_bytes: int, num_devices: int,
                on_memory: str = "chunk") -> int:
    """Seeds per sequential chunk (a multiple of `num_devices`, or all seeds).

    Raises ValueError naming the numbers when not even one seed per device fits, or
    when the run does not fit and `on_memory == "error"`."""
    need = MEMORY_FACTOR * per_seed_bytes
    per_device = -(-num_seeds // num_devices)
    if need * per_device <= available_bytes:
        return num_seeds
    fit = available_bytes // need if need else per_device
    msg = (f"{num_seeds} seeds need about {MEMORY_FACTOR} × {_size(per_seed_bytes)} per seed "
           f"({_size(need * per_device)} per device over {num_devices} device(s)), but "
           f"{_size(available_bytes)} is free per device")
    if fit < 1:
        raise ValueError(f"out of memory before compiling: {msg}; not even one seed fits. Reduce the replay "
                         "buffer (buffer_size), num_envs or the network")
    if on_memory == "error":
        raise ValueError(f"out of memory before compiling: {msg}. Use fewer seeds (≤ {fit * num_devices}) or "
                         "--on-memory chunk to run them in sequential chunks")
    chunk = int(fit) * num_devices
    print(f"memory: {msg}; running the seeds in {-(-num_seeds // chunk)} sequential chunks of {chunk}",
          file=sys.stderr)
    return chunk


def _run(module, algo, config, options: RunOptions, run_dir: str, resuming: bool = False) -> RunResult:
    import orbax.checkpoint as ocp

    if options.distributed and jax.process_count() == 1:
        jax.distributed.initialize()
    num_seeds = options.num_seeds
    devices = jax.devices()
    mesh = jax.sharding.Mesh(np.array(devices), ("seed",))
    by_seed = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("seed"))
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())

    # Memory, before anything compiles: split the seeds into sequential chunks if needed.
    per_seed = state_bytes_per_seed(module, config)
    available = (int(options.memory_limit_gb * 2**30) if options.memory_limit_gb is not None
                 else available_memory_bytes(devices[0]))
    chunk = plan_chunks(num_seeds, per_seed, available, len(devices), options.on_memory)
    chunk_padded = -(-chunk // len(devices)) * len(devices)
    chunks = [list(range(i, min(i + chunk, num_seeds))) for i in range(0, num_seeds, chunk)]

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

    all_keys = np.asarray(jax.random.split(jax.random.PRNGKey(options.seed), num_seeds))

    def padded(host_tree, seeds):
        """Rows `seeds` of a host pytree, padded (repeating) to the compiled chunk size."""
        rows = seeds + [seeds[i % len(seeds)] for i in range(chunk_padded - len(seeds))]
        return jax.tree.map(lambda x: x[np.asarray(rows)], host_tree)

    t0 = time.perf_counter()
    init_compiled = init_fn.lower(jax.device_put(padded(all_keys, chunks[0]), by_seed)).compile()
    abstract = jax.eval_shape(init_fn, jax.ShapeDtypeStruct((chunk_padded, 2), jnp.uint32))
    block_compiled = block_fn.lower(abstract, jnp.int32(0)).compile()
    compile_seconds = time.perf_counter() - t0

    # Host copies: the full state of every seed (written back at checkpoints and chunk ends)
    # and the history, both saved in each checkpoint so a resumed run loses nothing.
    host_states = jax.tree.map(lambda x: np.zeros((num_seeds,) + x.shape[1:], x.dtype), abstract)
    metrics_shape = jax.eval_shape(lambda s: block(s, 0)[1], jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype), abstract))
    history = {
        "eval_returns": np.full((num_seeds, n_blocks, config.eval_episodes), np.nan, np.float32),
        "metrics": {k: np.full((num_seeds, n_blocks), np.nan, np.float32) for k in metrics_shape},
        "run_seconds": np.zeros((), np.float64),
        "position": np.zeros(2, np.int64),  # (chunk, blocks done in that chunk)
    }
    manager = ocp.CheckpointManager(os.path.abspath(os.path.join(run_dir, "checkpoints")),
                                    options=ocp.CheckpointManagerOptions(max_to_keep=2, create=True))
    if resuming and manager.latest_step() is not None:
        restored = manager.restore(manager.latest_step(),
                                   args=ocp.args.StandardRestore({"state": host_states, "history": history}))
        host_states, history = jax.tree.map(np.array, (restored["state"], restored["history"]))
    start_chunk, start_block = (int(v) for v in history["position"])

    def save(step):
        manager.save(step, args=ocp.args.StandardSave({"state": host_states, "history": history}), force=True)
        manager.wait_until_finished()

    total_blocks = len(chunks) * n_blocks
    done_blocks = start_chunk * n_blocks + start_block
    stop_at = total_blocks if options.stop_after is None else min(total_blocks, done_blocks + options.stop_after)
    bar = None
    if options.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=int(env_steps[-1]) * num_seeds, unit="step", unit_scale=True, dynamic_ncols=True,
                   desc=f"{algo} {getattr(config, 'env', '')} ×{num_seeds}")
        bar.update(sum(int(env_steps[-1]) * len(c) for c in chunks[:start_chunk])
                   + (int(env_steps[start_block - 1]) * len(chunks[start_chunk]) if start_block else 0))
    t_run = time.perf_counter()
    run_seconds_before = float(history["run_seconds"])
    for c in range(start_chunk, len(chunks)):
        if done_blocks >= stop_at:
            break
        seeds = chunks[c]
        first = start_block if c == start_chunk else 0
        if first == 0:
            states = init_compiled(jax.device_put(padded(all_keys, seeds), by_seed))
        else:
            states = jax.device_put(padded(host_states, seeds), by_seed)
        for i in range(first, n_blocks):
            states, metrics, returns = block_compiled(states, jnp.int32(i))
            returns = np.asarray(returns)[: len(seeds)]
            history["eval_returns"][seeds, i] = returns
            with warnings.catch_warnings():  # all-NaN metrics (e.g. no episode ended) stay NaN
                warnings.simplefilter("ignore", RuntimeWarning)
                for k, v in metrics.items():
                    history["metrics"][k][seeds, i] = np.nanmean(np.asarray(v, np.float32)[: len(seeds)], axis=1)
            history["run_seconds"] = np.asarray(run_seconds_before + time.perf_counter() - t_run)
            done_blocks += 1
            if bar is not None:
                bar.update(int(env_steps[i] - (env_steps[i - 1] if i else 0)) * len(seeds))
                bar.set_postfix(eval_return=f"{returns.mean():.1f}")
            chunk_end = i == n_blocks - 1
            stopping = done_blocks >= stop_at
            periodic = options.checkpoint_every and (i + 1) % options.checkpoint_every == 0
            if chunk_end or stopping or periodic:
                state_host = jax.device_get(states)
                for host_leaf, leaf in zip(jax.tree.leaves(host_states), jax.tree.leaves(state_host)):
                    host_leaf[seeds] = np.asarray(leaf)[: len(seeds)]
                history["position"] = np.array([c + 1, 0] if chunk_end else [c, i + 1], np.int64)
                save(done_blocks)
            if stopping:
                break
    if bar is not None:
        bar.close()
    run_seconds = float(history["run_seconds"])
    finished = done_blocks == total_blocks

    # Per seed, the last evaluation it reached.
    reached = np.isfinite(history["eval_returns"][:, :, 0])
    last = np.where(reached.any(1), reached.shape[1] - 1 - np.argmax(reached[:, ::-1], axis=1), -1)
    done_evals = int(reached.any(0).sum())
    final = np.array([np.nanmean(history["eval_returns"][s, j]) if j >= 0 else np.nan for s, j in enumerate(last)])
    steps_done = int(sum(env_steps[j] for j in last if j >= 0))
    summary = report.summarize(final[np.isfinite(final)]) if np.isfinite(final).any() else {}
    timing = {
        "compile_seconds": compile_seconds,
        "run_seconds": run_seconds,
        "env_steps_per_second": steps_done / max(run_seconds, 1e-9),
        "devices": len(devices),
        "device_kind": devices[0].device_kind,
        "platform": devices[0].platform,
        "state_bytes_per_seed": per_seed,
        "seed_chunks": len(chunks),
    }
    steps_per_seed = int(env_steps[done_evals - 1]) if done_evals else 0
    report.save_curves(run_dir, env_steps[:done_evals], history["eval_returns"][:, :done_evals],
                       {k: v[:, :done_evals] for k, v in history["metrics"].items()})
    title = (f"purerl · {algo} on {getattr(config, 'env', '?')} · {num_seeds} seeds · "
             f"{steps_per_seed:,} env steps per seed" + ("" if finished else " (stopped early; resume to continue)"))
    report.atomic_json(os.path.join(run_dir, "results.json"), {
        "algorithm": algo, "env": getattr(config, "env", None), "finished": finished,
        "env_steps_per_seed": steps_per_seed, "final_eval_return": summary,
        "final_eval_return_per_seed": final.tolist(), "timing": timing,
    })
    if options.plot and done_evals:
        report.plot_curves(os.path.join(run_dir, "curve.png"), env_steps[:done_evals],
                           history["eval_returns"][:, :done_evals], f"{algo} · {getattr(config, 'env', '')}")
    if summary:
        print(report.format_table(title, summary, timing))
    print(f"results: {run_dir}")
    return RunResult(run_dir=run_dir, states=host_states, env_steps=env_steps[:done_evals],
                     eval_returns=history["eval_returns"][:, :done_evals], summary=summary, timing=timing,
                     finished=finished)
