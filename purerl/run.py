"""The runner: everything host-side about a multi-seed training run.

    result = purerl.run.train("ppo", ppo.Config(), RunOptions(num_seeds=16))

* compiles once: `init` and one block of `update`s + evaluation, both `vmap`ped over seeds;
* shards the seed axis over all devices (`jax.sharding`, a 1-D mesh "seed"); the seed
  count is padded up to a multiple of the device count and the padding dropped; on a
  CPU-only host `use_cpu_cores` (called by the CLI before JAX starts) makes one device per
  core, as many as divide the seeds;
  with `distributed=True`, `jax.distributed.initialize()` before any other JAX call
  (multi-host): results are all-gathered and process 0 alone writes files and prints;
* sizes the run from the compiled programs' `memory_analysis()`: seeds that do not fit
  run in sequential chunks, and the chunk plan is saved so a resume keeps it;
* shows a progress bar (env steps/s, current mean evaluation return);
* writes `runs/<run-name>/`: `config.json` (config, options, package versions, git
  revision, devices), `checkpoints/` (orbax, atomic, the last two kept),
  `curves.npz`/`curves.csv`, `curve.png`, `results.json`; prints the final table;
* `resume(run_dir)` continues an interrupted run from its last checkpoint and ends
  with the same parameters as an uninterrupted run;
* a diverged seed (non-finite final evaluation return) is named in the table,
  `results.json` and `curves.csv`, never averaged in or replaced by an earlier value;
* `train(…, grid=Grid(...))` trains a grid of float hyperparameters × seeds as one
  program (`purerl.sweep`): every row of the seed axis is one (grid point, seed) pair.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime
import functools
import importlib.metadata
import importlib.util
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
from purerl.evaluation import accepts_update_index, num_blocks, run_block


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """Host-side options of a run (not part of the compiled program)."""

    num_seeds: int = 16  # independent training runs, vmapped (and sharded over devices)
    seed: int = 0  # master seed; run i uses the i-th split of PRNGKey(seed)
    run_name: str | None = None  # directory name under runs_dir (default: <algo>-<env>-<time>)
    runs_dir: str = "runs"  # where run directories are created
    checkpoint_every: int = 10  # evaluation blocks between checkpoints (0: only at the end)
    stop_after: int | None = None  # stop after this many blocks in this invocation (resume later)
    resume: str | None = None  # a run directory to continue, with its saved config, options and chunk plan
    progress: bool = True  # show a progress bar
    plot: bool = True  # write curve.png
    distributed: bool = False  # call jax.distributed.initialize() (multi-host runs)
    memory_limit_gb: float | None = None  # memory budget per device (default: what the device has free)
    on_memory: str = "chunk"  # when the seeds do not fit: "chunk" (sequential chunks) or "error"
    compile_cache: bool = True  # keep compiled programs in a persistent cache (run.default_cache_dir())
    tensorboard: bool = False  # write scalars to <run_dir>/tensorboard (TensorBoard event files, tensorboardX)
    wandb: str | None = None  # log the same scalars to this Weights & Biases project (needs the wandb package)

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


@dataclasses.dataclass(frozen=True)
class Grid:
    """A grid of float (pytree) Config fields trained in the same compiled program as the seeds.

    Row `p · seeds + s` of the run's seed axis is grid point `p` with seed `s`; seed `s` of every
    point starts from the same key (common random numbers: points differ by their values only)."""

    fields: tuple  # Config field names
    points: tuple  # one tuple of values (in `fields` order) per grid point
    seeds: int  # seeds per grid point (RunOptions.num_seeds)

    @property
    def rows(self) -> int:
        return len(self.points) * self.seeds

    def row_values(self) -> dict:
        """{field: float32 [rows]}: each row's value of each field."""
        return {f: np.repeat(np.array([p[i] for p in self.points], np.float32), self.seeds)
                for i, f in enumerate(self.fields)}

    def point_rows(self, p: int) -> np.ndarray:
        return np.arange(p * self.seeds, (p + 1) * self.seeds)

    def to_json(self) -> dict:
        return {"fields": list(self.fields), "points": [list(p) for p in self.points], "seeds": self.seeds}

    @classmethod
    def from_json(cls, d: dict) -> "Grid":
        return cls(tuple(d["fields"]), tuple(tuple(float(v) for v in p) for p in d["points"]), int(d["seeds"]))


@dataclasses.dataclass
class RunResult:
    run_dir: str
    states: object  # final TrainState, leading axis num_seeds (host arrays; grid rows for a sweep)
    env_steps: np.ndarray  # [num_evals] environment steps per seed at each evaluation
    eval_returns: np.ndarray  # [num_seeds, num_evals, eval_episodes]; NaN/inf where a seed diverged
    evals_done: np.ndarray  # [num_seeds] evaluations each seed has reached (NaN beyond them means "not yet")
    summary: dict  # statistics of the final evaluation across seeds (non-finite seeds named, not averaged)
    timing: dict
    finished: bool  # False when stopped early by `stop_after`
    grid: Grid | None = None  # a sweep's grid: rows of the seed axis are (point, seed) pairs
    points: list | None = None  # a sweep's per-point summaries (values, summary)


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
def train(algo: str, config, options: RunOptions = RunOptions(), grid: Grid | None = None) -> RunResult:
    """Train `options.num_seeds` seeds of algorithm `algo` with `config` (with `grid`: that many
    seeds of every grid point, all in one program)."""
    module = algos.get(algo)
    if not isinstance(config, module.Config):
        raise ValueError(f"config must be a {module.__name__}.Config, got {type(config).__name__}")
    if grid is not None:
        if grid.seeds != options.num_seeds:
            raise ValueError(f"grid.seeds={grid.seeds} must equal RunOptions.num_seeds={options.num_seeds}")
        from purerl.config import sweep_axes

        sweep_axes(config, *grid.fields)  # names the fields that cannot be swept
        for point in grid.points:  # every value validated by the Config before anything compiles
            dataclasses.replace(config, **dict(zip(grid.fields, point)))
    if options.resume:
        _check_resume_request(options.resume, algo, config, options)
        return resume(options.resume, stop_after=options.stop_after, progress=options.progress,
                      compile_cache=options.compile_cache)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = options.run_name or f"{algo}-{getattr(config, 'env', 'env').replace('/', '_')}-{stamp}"
    run_dir = os.path.join(options.runs_dir, name)
    if os.path.exists(os.path.join(run_dir, "config.json")):
        raise ValueError(f"run directory {run_dir!r} already holds a run: pass --resume {run_dir} to continue it, "
                         "or choose another --run-name")
    dataset = offline_dataset(module, config)
    from purerl.loggers import check_wandb

    check_wandb(options.wandb)
    devices = start_devices(options.distributed)
    use_compilation_cache(options.compile_cache)
    meta = {
        "algorithm": algo,
        "config": to_dict(config),
        **({"dataset": dataset_summary(dataset)} if dataset is not None else {}),
        "options": dataclasses.asdict(options),
        "versions": package_versions(),
        "git_revision": git_revision(),
        "devices": [str(d) for d in devices],
        "created": stamp,
        **({"sweep": grid.to_json()} if grid is not None else {}),
    }
    return _run(module, algo, config, options, run_dir, devices, new_meta=meta, dataset=dataset, grid=grid)


def offline_dataset(module, config):
    """An offline algorithm's dataset, or an imitation algorithm's demonstrations (`config.dataset`;
    `DEMONSTRATIONS = True`), loaded and checked against the config's environment and batch size
    before anything compiles; None for an online algorithm."""
    if not (getattr(module, "OFFLINE", False) or getattr(module, "DEMONSTRATIONS", False)):
        return None
    from purerl import datasets, envs

    if not config.dataset:
        what = "an offline algorithm" if getattr(module, "OFFLINE", False) else "an imitation algorithm (it learns " \
            "from demonstrations)"
        raise ValueError(f"Config.dataset is empty: {module.__name__.rsplit('.', 1)[-1]} is {what}; "
                         "pass --dataset PATH (a Minari dataset directory, e.g. from `purerl collect`)")
    dataset = datasets.load(config.dataset, env=None if datasets.read_info(config.dataset) else config.env)
    datasets.check_dataset(dataset, envs.make(config.env), getattr(config, "batch_size", None),
                           where=f"Config.dataset={config.dataset!r}")
    return datasets.Dataset(dataset.transitions, {**dataset.info, "path": os.path.abspath(config.dataset)})


def dataset_summary(dataset) -> dict:
    """What config.json and results.json record of an offline run's dataset."""
    info = dataset.info
    return {"path": info.get("path"), "env": info.get("env"), "kind": info.get("kind"), "transitions": dataset.size,
            "content_hash": info.get("content_hash"), "random_return": info.get("random_return"),
            "expert_return": info.get("expert_return")}


def _read_meta(run_dir: str) -> dict:
    path = os.path.join(run_dir, "config.json")
    if not os.path.exists(path):
        raise ValueError(f"--resume {run_dir!r}: no config.json there; not a purerl run directory")
    with open(path) as f:
        return json.load(f)


# Options a resumed run takes from the caller; every other one comes from the run's config.json.
RESUME_OPTIONS = ("resume", "stop_after", "progress", "compile_cache")


def _check_resume_request(run_dir: str, algo: str, config, options: RunOptions) -> None:
    """Refuse `train(algo, config, RunOptions(resume=run_dir, …))` when `algo`, `config` or
    an option set (not left at its default) differs from what the run in `run_dir` was
    started with: a resumed run cannot honour it."""
    meta = _read_meta(run_dir)
    if algo != meta["algorithm"]:
        raise ValueError(f"--resume {run_dir!r}: that run trains {meta['algorithm']!r}, not {algo!r}")
    changed = [k for k, v in to_dict(config).items() if json.loads(json.dumps(v)) != meta["config"].get(k)]
    saved = meta["options"]
    defaults = dataclasses.asdict(RunOptions())
    changed += [k for k, v in dataclasses.asdict(options).items()
                if k not in RESUME_OPTIONS and v != defaults[k] and v != saved.get(k)]
    if changed:
        raise ValueError(f"--resume {run_dir!r} continues the run with its saved config and options; it cannot "
                         f"change {', '.join(changed)}")


def resume(run_dir: str, stop_after: int | None = None, progress: bool = True,
           compile_cache: bool | None = None) -> RunResult:
    """Continue the run in `run_dir` from its latest checkpoint, with its saved config,
    options and seed-chunk plan (`compile_cache`: None keeps the saved setting)."""
    meta = _read_meta(run_dir)
    if "chunk_plan" not in meta:
        raise ValueError(f"--resume {run_dir!r}: config.json has no chunk_plan (written by an older purerl), so "
                         "the seeds' layout in its checkpoints is unknown; start the run again")
    module = algos.get(meta["algorithm"])
    config = from_dict(module.Config, meta["config"])
    fields = {f.name for f in dataclasses.fields(RunOptions)}
    saved = {k: v for k, v in meta["options"].items() if k in fields}
    options = RunOptions(**{**saved, "resume": None, "stop_after": stop_after, "progress": progress})
    if compile_cache is not None:
        options = dataclasses.replace(options, compile_cache=compile_cache)
    dataset = offline_dataset(module, config)
    saved_hash = meta.get("dataset", {}).get("content_hash")
    if dataset is not None and saved_hash and dataset.info.get("content_hash") != saved_hash:
        raise ValueError(f"cannot resume {run_dir!r}: its dataset {config.dataset!r} is not the one the run started "
                         "with (content hash differs)")
    from purerl.loggers import check_wandb

    check_wandb(options.wandb)
    devices = start_devices(options.distributed)
    use_compilation_cache(options.compile_cache)
    grid = Grid.from_json(meta["sweep"]) if "sweep" in meta else None
    return _run(module, meta["algorithm"], config, options, run_dir, devices,
                saved_chunk=int(meta["chunk_plan"]["chunk_size"]), dataset=dataset, grid=grid)


def start_devices(distributed: bool) -> list:
    """Every device of the run. With `distributed`, `jax.distributed.initialize()` comes
    first (unless already done): any earlier JAX call would fix the backend to this process."""
    if distributed and not jax.distributed.is_initialized():
        jax.distributed.initialize()
    return jax.devices()


_HOST_DEVICES_FLAG = "xla_force_host_platform_device_count"


def use_cpu_cores(rows: int) -> int | None:
    """Split a CPU-only host into as many XLA devices as there are cores and divide `rows`
    (seeds, or grid points × seeds), so the seed axis runs on every core: XLA:CPU spreads
    little of one device's program of small operations over the cores (on 2 cores the same
    seeds split over two devices ran 1.5–1.7× faster, README "Every core of a CPU").

    It must run before JAX's first operation (the `purerl` CLI calls it after parsing its
    flags; in Python call it right after `import purerl`). It does nothing, and returns None,
    when JAX has already started, `XLA_FLAGS` names `--xla_force_host_platform_device_count`
    or `jax_num_cpu_devices` is set (yours win: `=1` turns this off), `JAX_PLATFORMS` names
    another platform or an accelerator plugin is installed. Returns the device count set.
    The count divides `rows`, so no seed is padded: on a CPU, padding would cost cores."""
    platforms = os.environ.get("JAX_PLATFORMS", "")
    if _HOST_DEVICES_FLAG in os.environ.get("XLA_FLAGS", "") or jax.config.jax_num_cpu_devices != -1:
        return None
    if platforms and platforms != "cpu":
        return None
    if not platforms and any(importlib.util.find_spec(m) for m in ("jax_plugins", "libtpu")):
        return None  # a GPU/TPU plugin: the seeds go to the accelerator
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    count = cpu_device_count(rows, cores)
    if count > 1:
        try:
            jax.config.update("jax_num_cpu_devices", count)
        except RuntimeError:  # JAX already started: its devices stay as they are
            return None
    return count


def cpu_device_count(rows: int, cores: int) -> int:
    """The most CPU devices, at most `cores`, that split `rows` evenly."""
    return max(k for k in range(1, max(1, min(cores, rows)) + 1) if rows % k == 0)


def seed_mesh(devices) -> jax.sharding.Mesh:
    """The 1-D mesh, axis "seed", that the seeds are sharded over."""
    return jax.sharding.Mesh(np.array(devices), ("seed",))


# ----------------------------------------------------------------------------- memory
def available_memory_bytes(device) -> int:
    """Free memory of `device`: the accelerator's allocator limit minus what is in use,
    or, for a CPU device, the host's available physical memory shared by its CPU devices."""
    stats = None
    try:
        stats = device.memory_stats()
    except Exception:  # noqa: BLE001 - CPU devices may not report
        stats = None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    shared_by = jax.local_device_count("cpu") if getattr(device, "platform", "cpu") == "cpu" else 1
    return _host_available_bytes() // max(1, shared_by)


def _host_available_bytes() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def program_bytes(compiled) -> int:
    """Device memory a compiled program needs, per device: arguments + outputs +
    temporaries (rollouts, minibatch copies, evaluation environments), less the outputs
    that reuse donated arguments (XLA's `memory_analysis()`)."""
    m = compiled.memory_analysis()
    return int(m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes + m.temp_size_in_bytes)


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:,.1f} {unit}"
        n /= 1024


def plan_chunks(num_seeds: int, per_seed_bytes: int, available_bytes: int, num_devices: int,
                on_memory: str = "chunk") -> int:
    """Seeds per sequential chunk (a multiple of `num_devices`, or all seeds), given the
    device memory one seed's compiled program needs.

    Raises ValueError naming the numbers when not even one seed per device fits, or
    when the run does not fit and `on_memory == "error"`."""
    per_device = -(-num_seeds // num_devices)
    if per_seed_bytes * per_device <= available_bytes:
        return num_seeds
    fit = available_bytes // per_seed_bytes if per_seed_bytes else per_device
    msg = (f"{num_seeds} seeds need about {_size(per_seed_bytes)} per seed "
           f"({_size(per_seed_bytes * per_device)} per device over {num_devices} device(s)), but "
           f"{_size(available_bytes)} is free per device")
    if fit < 1:
        raise ValueError(f"out of memory before running: {msg}; not even one seed fits. Reduce the replay "
                         "buffer (buffer_size), num_envs or the network")
    if on_memory == "error":
        raise ValueError(f"out of memory before running: {msg}. Use fewer seeds (≤ {fit * num_devices}) or "
                         "--on-memory chunk to run them in sequential chunks")
    chunk = int(fit) * num_devices
    print(f"memory: {msg}; running the seeds in {-(-num_seeds // chunk)} sequential chunks of {chunk}",
          file=sys.stderr)
    return chunk


# ----------------------------------------------------------------------------- compile
def default_cache_dir() -> str:
    """Where compiled programs are kept between runs: `$PURERL_CACHE_DIR`, else
    `$XDG_CACHE_HOME/purerl/jax/<cpu>` (`~/.cache/purerl/jax/<cpu>`). `<cpu>` names this
    machine's processor (`cpu_fingerprint`): XLA:CPU programs are compiled for the CPU's
    instruction set, and JAX's cache key does not include it, so a home directory shared by
    machines with different CPUs would otherwise load programs built for another
    (XLA warns "Machine type used for XLA:CPU compilation doesn't match"; it can crash)."""
    if os.environ.get("PURERL_CACHE_DIR"):
        return os.environ["PURERL_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "purerl", "jax", cpu_fingerprint())


def cpu_fingerprint() -> str:
    """A short name for this machine's processor: 12 hex digits of a hash of its model name
    and feature flags (from /proc/cpuinfo; the platform's processor string elsewhere)."""
    import hashlib
    import platform

    text = platform.machine() + platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            lines = [line for line in f if line.split(":")[0].strip() in ("model name", "flags", "Features")]
        text += "".join(sorted(set(lines)))
    except OSError:
        pass
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def use_compilation_cache(enabled: bool) -> str | None:
    """Turn JAX's persistent compilation cache on or off; returns its directory when on.

    This is JAX's process-wide setting (the first run of a process fixes it for the
    process's later compilations too). A directory the user set (`JAX_COMPILATION_CACHE_DIR`)
    is kept, otherwise `default_cache_dir()` (delete it at any time; it is not size-limited).
    Programs that took ≥ 0.1 s to compile are stored, so a second run of the
    same configuration loads `init` and the block instead of compiling them (it still
    traces them: the cache key is the lowered program, with the JAX version and devices)."""
    from jax.experimental.compilation_cache import compilation_cache

    jax.config.update("jax_enable_compilation_cache", bool(enabled))
    if enabled:
        if not jax.config.jax_compilation_cache_dir:
            jax.config.update("jax_compilation_cache_dir", default_cache_dir())
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)
    compilation_cache.reset_cache()  # JAX decides once per process whether to use it: decide again now
    return jax.config.jax_compilation_cache_dir if enabled else None


class _CacheEvents:
    """Counts persistent-compilation-cache hits while in the `with` block."""

    def __enter__(self):
        import jax.monitoring

        self.hits = 0
        jax.monitoring.register_event_listener(self._on_event)
        return self

    def _on_event(self, event: str, **kwargs) -> None:
        if event == "/jax/compilation_cache/cache_hits":
            self.hits += 1

    def __exit__(self, *exc):
        import jax.monitoring

        jax.monitoring.unregister_event_listener(self._on_event)
        return False


@dataclasses.dataclass
class Program:
    """`init` and one evaluation block, compiled for `seeds` seeds sharded over a mesh."""

    init: object  # keys [seeds, 2] -> states
    block: object  # (states, block index) -> (states, metrics [seeds, eval_every], returns [seeds, episodes])
    state_info: object  # shapes and dtypes of the states
    metrics_info: dict
    seeds: int
    num_devices: int
    bytes_per_device: int  # the larger of the two programs' memory_analysis
    compile_seconds: float  # tracing, lowering and compiling (or loading from the compilation cache)
    cache_hits: int = 0  # of the two programs, those loaded from the persistent compilation cache
    compiled: tuple = ()  # the compiled init and block themselves (`init`/`block` bind a dataset)


def _one_seed(fn, in_axes=0):
    """`fn` over a seed axis of length one: unbatched inside, the axis taken off the batched
    arguments and put back on every output. (XLA:CPU runs a `vmap` over a batch of exactly one
    far slower than the unbatched program: DQN's acting loop did 11k env steps/s against 148k
    unbatched and 213k for a vmap over two seeds, the replay buffer apparently copied on every
    step.)"""
    def wrapped(*args):
        axes = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(args)
        args = [a if axis is None else jax.tree.map(lambda x: x[0], a) for a, axis in zip(args, axes)]
        return jax.tree.map(lambda x: jnp.expand_dims(x, 0), fn(*args))

    return wrapped


def _with_values(config, hp: dict):
    """`config` with this row's values of the swept fields (tracers: validation skips them)."""
    return dataclasses.replace(config, **hp) if hp else config


def block_fn(module, config):
    """One seed's block, `(state, block index, swept values, *data) -> (state, metrics, returns)`:
    `eval_every` updates, then the evaluation. The block index stays unbatched under the
    runner's `vmap` and each update gets its number from it (`update_index`, where the
    algorithm's `update` takes one): its learning gates stay real branches instead of
    `select`s that compute both sides on the batched state counters."""
    takes_index = accepts_update_index(module.update)

    def block(state, index, hp, *data):
        c = _with_values(config, hp)

        def update(s, update_index=None):
            return module.update(c, s, *data, **({"update_index": update_index} if takes_index else {}))

        return run_block(update, functools.partial(module.evaluate, c), state, index, c.eval_every, c.num_updates)

    return block


def compile_program(module, config, mesh, seeds: int, dataset=None, sweep_fields: tuple = ()) -> Program:
    """Trace and compile `init` and one block for `seeds` seeds (a multiple of the mesh size),
    each traced once: the memory estimate comes from these compiled programs. An offline
    algorithm's `dataset` is an argument of both, replicated on every device and broadcast
    over seeds (never copied per seed). The float Config fields in `sweep_fields` are an
    argument too, one value per seed row ({field: [seeds]}, sharded like the seeds)."""
    t0 = time.perf_counter()
    by_seed = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("seed"))
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    data = () if dataset is None else (_to_devices(dataset.transitions, replicated),)
    data_info = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated), data)
    hp_info = {f: jax.ShapeDtypeStruct((seeds,), jnp.float32, sharding=by_seed) for f in sweep_fields}

    def init_fn(key, hp, *data):
        return module.init(_with_values(config, hp), key, *data)

    block = block_fn(module, config)
    over_seeds = _one_seed if seeds == 1 else functools.partial(jax.vmap, axis_name="seed")
    init = jax.jit(over_seeds(init_fn, in_axes=(0, 0) + (None,) * len(data)),
                   in_shardings=(by_seed, by_seed) + (replicated,) * len(data), out_shardings=by_seed)
    init_lowered = init.lower(jax.ShapeDtypeStruct((seeds, 2), jnp.uint32, sharding=by_seed), hp_info, *data_info)
    state_info = init_lowered.out_info
    block_jit = jax.jit(over_seeds(block, in_axes=(0, None, 0) + (None,) * len(data)),
                        in_shardings=(by_seed, replicated, by_seed) + (replicated,) * len(data),
                        out_shardings=by_seed, donate_argnums=0)
    block_lowered = block_jit.lower(state_info, jax.ShapeDtypeStruct((), jnp.int32), hp_info, *data_info)
    with _CacheEvents() as cache:
        # XLA compiles with the GIL released: `init` compiles on a second thread meanwhile.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            init_future = pool.submit(init_lowered.compile)
            block_compiled = block_lowered.compile()
            init_compiled = init_future.result()
    return Program(init=lambda keys, hp={}: init_compiled(keys, hp, *data),
                   block=lambda states, index, hp={}: block_compiled(states, index, hp, *data),
                   state_info=state_info,
                   metrics_info=block_lowered.out_info[1], seeds=seeds, num_devices=mesh.size,
                   bytes_per_device=max(program_bytes(init_compiled), program_bytes(block_compiled)),
                   compiled=(init_compiled, block_compiled),
                   compile_seconds=time.perf_counter() - t0, cache_hits=cache.hits)


_compile_program = compile_program


def bytes_per_seed(program: Program) -> int:
    """The compiled program's device memory per seed: what the chunk plan assumes."""
    return -(-program.bytes_per_device // (program.seeds // program.num_devices))


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _plan_and_compile(module, config, options: RunOptions, mesh, saved_chunk: int | None,
                      dataset=None, grid: Grid | None = None) -> tuple[int, Program]:
    """The seeds per sequential chunk and the program compiled for it.

    A new run compiles for all seeds; when that program does not fit the free memory it
    plans chunks from the program's bytes per seed and compiles for the chunk (smaller
    again while it still does not fit). A resumed run compiles for its saved chunk size
    and refuses when that does not fit."""
    n_dev, rows = mesh.size, (grid.rows if grid is not None else options.num_seeds)
    fields = grid.fields if grid is not None else ()
    compile_program = functools.partial(_compile_program, sweep_fields=fields)
    available = (int(options.memory_limit_gb * 2**30) if options.memory_limit_gb is not None
                 else available_memory_bytes(mesh.devices.flat[0]))
    if saved_chunk is not None:
        program = compile_program(module, config, mesh, _round_up(saved_chunk, n_dev), dataset)
        if program.bytes_per_device > available:
            raise ValueError(
                f"cannot resume: this run's seed-chunk plan (chunks of {saved_chunk} seeds, saved in config.json) "
                f"needs {_size(program.bytes_per_device)} per device over {n_dev} device(s), but "
                f"{_size(available)} is free per device now. Free memory or use more devices")
        return saved_chunk, program
    program = compile_program(module, config, mesh, _round_up(rows, n_dev), dataset)
    chunk, seconds = rows, program.compile_seconds
    if program.bytes_per_device > available:
        chunk = plan_chunks(rows, bytes_per_seed(program), available, n_dev, options.on_memory)
        program = compile_program(module, config, mesh, _round_up(chunk, n_dev), dataset)
        seconds += program.compile_seconds
    while program.bytes_per_device > available:  # the per-seed estimate was low: one seed per device less
        if chunk <= n_dev:
            raise ValueError(f"out of memory before running: one seed per device needs "
                             f"{_size(program.bytes_per_device)}, but {_size(available)} is free per device")
        chunk = _round_up(chunk, n_dev) - n_dev
        print(f"memory: {_size(program.bytes_per_device)} per device is more than {_size(available)} free; "
              f"chunks of {chunk} seeds instead", file=sys.stderr)
        program = compile_program(module, config, mesh, chunk, dataset)
        seconds += program.compile_seconds
    return chunk, dataclasses.replace(program, compile_seconds=seconds)


# ----------------------------------------------------------------------------- host side
@dataclasses.dataclass
class _Run:
    """What the steps of one run share. `host_states` and `history` are the host copies
    saved in every checkpoint: the full state of every seed (written back at checkpoints
    and chunk ends) and the evaluation/metric history."""

    module: object
    algo: str
    config: object
    options: RunOptions
    run_dir: str
    mesh: jax.sharding.Mesh
    program: Program
    chunks: list  # seed indices of each sequential chunk
    host_states: object
    history: dict
    dataset_info: dict | None = None  # an offline run's dataset metadata (normalized score references)
    grid: Grid | None = None  # a sweep: the seed axis holds (grid point, seed) rows

    @property
    def num_rows(self) -> int:
        """Length of the run's seed axis: seeds, or grid points × seeds."""
        return self.grid.rows if self.grid is not None else self.options.num_seeds

    @property
    def n_blocks(self) -> int:
        return num_blocks(self.config.num_updates, self.config.eval_every)

    @property
    def env_steps(self) -> np.ndarray:
        """Environment steps per seed at each evaluation."""
        c = self.config
        return np.minimum(np.arange(1, self.n_blocks + 1) * c.eval_every, c.num_updates) * c.env_steps_per_update

    @property
    def by_seed(self):
        return jax.sharding.NamedSharding(self.mesh, jax.sharding.PartitionSpec("seed"))


def _is_main() -> bool:
    """Process 0 writes the run's files and prints; the others only compute."""
    return jax.process_index() == 0


def _to_host(tree):
    """Arrays → host NumPy; an array spanning processes is all-gathered first."""
    from jax.experimental import multihost_utils

    def get(x):
        if getattr(x, "is_fully_addressable", True):
            return np.asarray(x)
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))

    return jax.tree.map(get, tree)


def _to_devices(host_tree, sharding):
    """Host arrays (identical on every process) → global arrays sharded by seed."""
    return jax.tree.map(lambda x: jax.make_array_from_callback(x.shape, sharding, lambda index: x[index]), host_tree)


def _empty_history(num_seeds: int, n_blocks: int, eval_episodes: int, metrics_info: dict) -> dict:
    return {
        "eval_returns": np.full((num_seeds, n_blocks, eval_episodes), np.nan, np.float32),
        "metrics": {k: np.full((num_seeds, n_blocks), np.nan, np.float32) for k in metrics_info},
        "run_seconds": np.zeros((), np.float64),
        "position": np.zeros(2, np.int64),  # (chunk, blocks done in that chunk)
    }


def evals_done(chunks: list, position, n_blocks: int, num_seeds: int) -> np.ndarray:
    """Evaluations each seed has reached, from the run's position (chunk, block): every
    block of earlier chunks, `block` blocks of the current one, none of later ones."""
    chunk, block = (int(v) for v in position)
    done = np.zeros(num_seeds, np.int64)
    for c, seeds in enumerate(chunks):
        done[seeds] = n_blocks if c < chunk else (block if c == chunk else 0)
    return done


def _run(module, algo, config, options: RunOptions, run_dir: str, devices, new_meta: dict | None = None,
         saved_chunk: int | None = None, dataset=None, grid: Grid | None = None) -> RunResult:
    """Plan chunks and compile, write config.json (new run) or restore (resume), run the
    blocks with checkpoints, then write the results."""
    mesh = seed_mesh(devices)
    chunk, program = _plan_and_compile(module, config, options, mesh, saved_chunk, dataset, grid)
    num_seeds = grid.rows if grid is not None else options.num_seeds
    chunks = [list(range(i, min(i + chunk, num_seeds))) for i in range(0, num_seeds, chunk)]
    host_states = jax.tree.map(lambda x: np.zeros((num_seeds,) + x.shape[1:], x.dtype), program.state_info)
    history = _empty_history(num_seeds, num_blocks(config.num_updates, config.eval_every), config.eval_episodes,
                             program.metrics_info)
    r = _Run(module, algo, config, options, run_dir, mesh, program, chunks, host_states, history,
             None if dataset is None else dataset.info, grid)
    manager = _checkpoint_manager(run_dir)
    if new_meta is not None:  # written only now, so a run refused for memory leaves no run directory behind
        plan = {"chunk_size": chunk, "num_chunks": len(chunks), "bytes_per_device": program.bytes_per_device,
                "devices": mesh.size}
        if _is_main():
            os.makedirs(run_dir, exist_ok=True)
            report.atomic_json(os.path.join(run_dir, "config.json"), {**new_meta, "chunk_plan": plan})
    else:
        _restore(r, manager)
    done_blocks = _train_blocks(r, manager)
    return _finish(r, done_blocks)


def _checkpoint_manager(run_dir: str):
    import orbax.checkpoint as ocp

    return ocp.CheckpointManager(os.path.abspath(os.path.join(run_dir, "checkpoints")),
                                 options=ocp.CheckpointManagerOptions(max_to_keep=2, create=True))


def checkpoint_tree(tree):
    """`tree` as orbax can save it: orbax refuses arrays of zero size, which carry no data but
    occur in states (a Brax MJX state's `pipeline_state.act` where the model has no actuator
    activations, say). Each is saved as a 0-d placeholder of its dtype; `from_checkpoint_tree`
    rebuilds it from the target's shapes."""
    return jax.tree.map(lambda x: np.zeros((), x.dtype) if x.size == 0 else x, tree)


def from_checkpoint_tree(restored, target):
    """The restored `checkpoint_tree(target)` with `target`'s zero-size arrays put back."""
    return jax.tree.map(lambda x, t: np.zeros(t.shape, t.dtype) if t.size == 0 else x, restored, target)


def _restore(r: _Run, manager) -> None:
    """Load the latest checkpoint's host copies into `r` (none yet: start from the beginning)."""
    import orbax.checkpoint as ocp

    if manager.latest_step() is None:
        return
    restored = manager.restore(manager.latest_step(), args=ocp.args.StandardRestore(
        {"state": checkpoint_tree(r.host_states), "history": r.history}))
    states, r.history = jax.tree.map(np.array, (restored["state"], restored["history"]))
    r.host_states = from_checkpoint_tree(states, r.host_states)
    chunk, block = (int(v) for v in r.history["position"])
    if not (chunk < len(r.chunks) and block < r.n_blocks or (chunk, block) == (len(r.chunks), 0)):
        raise ValueError(f"cannot resume {r.run_dir!r}: its checkpoint is at chunk {chunk}, block {block}, "
                         f"outside the saved plan of {len(r.chunks)} chunks × {r.n_blocks} blocks")


def _train_blocks(r: _Run, manager) -> int:
    """Run the remaining blocks, chunk after chunk, checkpointing every `checkpoint_every`
    blocks, at each chunk's end and where `stop_after` stops. Returns the blocks done."""
    start_chunk, start_block = (int(v) for v in r.history["position"])
    total_blocks = len(r.chunks) * r.n_blocks
    done = start_chunk * r.n_blocks + start_block
    stop_at = total_blocks if r.options.stop_after is None else min(total_blocks, done + r.options.stop_after)
    bar = _progress_bar(r)
    loggers = _loggers(r)
    t_run, run_seconds_before = time.perf_counter(), float(r.history["run_seconds"])
    for c in range(start_chunk, len(r.chunks)):
        if done >= stop_at:
            break
        seeds = r.chunks[c]
        first = start_block if c == start_chunk else 0
        states, values = _chunk_states(r, seeds, first)
        for i in range(first, r.n_blocks):
            t_block = time.perf_counter()
            states, metrics, returns = r.program.block(states, np.int32(i), values)
            returns = _record(r, seeds, i, metrics, returns)
            if loggers is not None:
                block_steps = int(r.env_steps[i] - (r.env_steps[i - 1] if i else 0)) * len(seeds)
                loggers.log_block(int(r.env_steps[i]), seeds, returns,
                                  {k: v[seeds, i] for k, v in r.history["metrics"].items()},
                                  block_steps / max(time.perf_counter() - t_block, 1e-9))
            r.history["run_seconds"] = np.asarray(run_seconds_before + time.perf_counter() - t_run)
            done += 1
            if bar is not None:
                bar.update(int(r.env_steps[i] - (r.env_steps[i - 1] if i else 0)) * len(seeds))
                bar.set_postfix(eval_return=f"{np.nanmean(returns):.1f}", non_finite=int((~np.isfinite(returns)).sum()))
            chunk_end, stopping = i == r.n_blocks - 1, done >= stop_at
            if chunk_end or stopping or (r.options.checkpoint_every and (i + 1) % r.options.checkpoint_every == 0):
                _checkpoint(r, manager, states, seeds, [c + 1, 0] if chunk_end else [c, i + 1], done)
            if stopping:
                break
    if bar is not None:
        bar.close()
    if loggers is not None:
        loggers.close()
    return done


def _loggers(r: _Run):
    """TensorBoard / W&B loggers of the run (process 0), or None when neither is asked for."""
    if not ((r.options.tensorboard or r.options.wandb) and _is_main()):
        return None
    from purerl.loggers import Loggers

    if r.grid is None:
        names = [f"seed_{i}" for i in range(r.num_rows)]
    else:
        names = [f"{report.point_label(dict(zip(r.grid.fields, r.grid.points[i // r.grid.seeds])))},"
                 f"seed_{i % r.grid.seeds}".replace(" ", "") for i in range(r.num_rows)]
    meta = {"algorithm": r.algo, **to_dict(r.config), **({"sweep": r.grid.to_json()} if r.grid else {})}
    return Loggers(r.run_dir, r.options.tensorboard, r.options.wandb, meta, names)


def _progress_bar(r: _Run):
    if not (r.options.progress and _is_main()):
        return None
    from tqdm.auto import tqdm

    per_seed = r.env_steps[-1]
    done = evals_done(r.chunks, r.history["position"], r.n_blocks, r.num_rows)
    what = f"{len(r.grid.points)} points × {r.grid.seeds}" if r.grid is not None else str(r.num_rows)
    bar = tqdm(total=int(per_seed) * r.num_rows, unit="step", unit_scale=True, dynamic_ncols=True,
               desc=f"{r.algo} {getattr(r.config, 'env', '')} ×{what}")
    bar.update(int(sum(r.env_steps[d - 1] for d in done if d)))
    return bar


def _chunk_states(r: _Run, seeds: list, first_block: int):
    """The chunk's states on the devices, padded (repeating seeds) to the compiled size:
    fresh from `init` at block 0, else from the host copy; and its rows' swept values."""
    rows = np.asarray(seeds + [seeds[i % len(seeds)] for i in range(r.program.seeds - len(seeds))])
    values = {} if r.grid is None else _to_devices({k: v[rows] for k, v in r.grid.row_values().items()}, r.by_seed)
    if first_block == 0:
        keys = np.asarray(jax.random.split(jax.random.PRNGKey(r.options.seed), r.options.num_seeds))
        return r.program.init(_to_devices(keys[rows % r.options.num_seeds], r.by_seed), values), values
    return _to_devices(jax.tree.map(lambda x: x[rows], r.host_states), r.by_seed), values


def _record(r: _Run, seeds: list, block: int, metrics, returns) -> np.ndarray:
    """Store one block's evaluation returns and mean metrics of `seeds`; returns theirs."""
    metrics, returns = _to_host((metrics, returns))
    returns = returns[: len(seeds)]
    r.history["eval_returns"][seeds, block] = returns
    with warnings.catch_warnings():  # all-NaN metrics (e.g. no episode ended) stay NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        for k, v in metrics.items():
            r.history["metrics"][k][seeds, block] = np.nanmean(np.asarray(v, np.float32)[: len(seeds)], axis=1)
    return returns


def _checkpoint(r: _Run, manager, states, seeds: list, position: list, step: int) -> None:
    """Copy the chunk's states to the host copy and save it with the history (orbax: atomic)."""
    import orbax.checkpoint as ocp

    for host_leaf, leaf in zip(jax.tree.leaves(r.host_states), jax.tree.leaves(_to_host(states))):
        host_leaf[seeds] = leaf[: len(seeds)]
    r.history["position"] = np.array(position, np.int64)
    manager.save(step, args=ocp.args.StandardSave({"state": checkpoint_tree(r.host_states), "history": r.history}),
                 force=True)
    manager.wait_until_finished()


def final_returns(eval_returns: np.ndarray, evals: np.ndarray) -> np.ndarray:
    """Each seed's last reached evaluation, averaged over its episodes: NaN or ±inf where
    the seed diverged (never replaced by an earlier value); NaN where it reached none."""
    return np.array([eval_returns[s, e - 1].mean() if e else np.nan for s, e in enumerate(evals)], np.float64)


def _finish(r: _Run, done_blocks: int) -> RunResult:
    """Summaries, result files (process 0) and the final table."""
    devices = r.mesh.devices.flat
    evals = evals_done(r.chunks, r.history["position"], r.n_blocks, r.num_rows)
    done_evals, finished = int(evals.max()), done_blocks == len(r.chunks) * r.n_blocks
    final = final_returns(r.history["eval_returns"], evals)
    reached = np.nonzero(evals)[0]
    summary = report.summarize(final[reached], seeds=reached) if reached.size else {}
    points = None
    if r.grid is not None:  # statistics per grid point, over its seeds
        points = []
        for p, values in enumerate(r.grid.points):
            rows = r.grid.point_rows(p)
            rows = rows[evals[rows] > 0]
            points.append({"values": dict(zip(r.grid.fields, values)),
                           "summary": report.summarize(final[rows], seeds=rows % r.grid.seeds) if rows.size else {}})
    run_seconds = float(r.history["run_seconds"])
    steps_done = int(sum(r.env_steps[e - 1] for e in evals if e))
    timing = {
        "compile_seconds": r.program.compile_seconds,
        "compile_cache_dir": jax.config.jax_compilation_cache_dir if r.options.compile_cache else None,
        "compile_cache_hits": r.program.cache_hits,  # of the 2 programs, init and the block
        "run_seconds": run_seconds,
        "env_steps_per_second": steps_done / max(run_seconds, 1e-9),
        "devices": r.mesh.size,
        "processes": jax.process_count(),
        "device_kind": devices[0].device_kind,
        "platform": devices[0].platform,
        "program_bytes_per_device": r.program.bytes_per_device,
        "seed_chunks": len(r.chunks),
    }
    if r.dataset_info is not None and getattr(r.module, "OFFLINE", False):  # the step axis counts gradient steps
        timing["gradient_steps_per_second"] = timing["env_steps_per_second"]
    env_steps, eval_returns = r.env_steps[:done_evals], r.history["eval_returns"][:, :done_evals]
    if _is_main():
        _write_results(r, final, evals, summary, timing, finished, points)
    return RunResult(run_dir=r.run_dir, states=r.host_states, env_steps=env_steps, eval_returns=eval_returns,
                     evals_done=evals, summary=summary, timing=timing, finished=finished, grid=r.grid, points=points)


def _write_results(r: _Run, final, evals, summary: dict, timing: dict, finished: bool, points=None) -> None:
    done_evals, env = int(evals.max()), getattr(r.config, "env", None)
    steps_per_seed = int(r.env_steps[done_evals - 1]) if done_evals else 0
    report.save_curves(r.run_dir, r.env_steps[:done_evals], r.history["eval_returns"][:, :done_evals],
                       {k: v[:, :done_evals] for k, v in r.history["metrics"].items()}, evals)
    offline = r.dataset_info is not None and getattr(r.module, "OFFLINE", False)  # steps are gradient steps
    normalized = {}
    if r.dataset_info is not None and r.dataset_info.get("random_return") is not None and r.dataset_info.get("expert_return") is not None:
        from purerl.datasets import normalized_score

        reached = np.nonzero(evals)[0]
        scores = normalized_score(final, r.dataset_info["random_return"], r.dataset_info["expert_return"])
        normalized = report.summarize(scores[reached], seeds=reached) if reached.size else {}
    report.atomic_json(os.path.join(r.run_dir, "results.json"), {
        "algorithm": r.algo, "env": env, "finished": finished,
        ("gradient_steps_per_seed" if offline else "env_steps_per_seed"): steps_per_seed,
        "final_eval_return": summary,
        "final_eval_return_per_seed": [float(x) if np.isfinite(x) else None for x in final],
        "evals_done_per_seed": evals.tolist(), "timing": timing,
        **({"dataset": {k: v for k, v in r.dataset_info.items() if k in ("path", "env", "kind", "content_hash",
                                                                         "random_return", "expert_return")},
            "normalized_score": normalized} if r.dataset_info is not None else {}),
        **({"sweep": {**r.grid.to_json(), "per_point": points,
                      "note": "rows of the *_per_seed lists are grid point p, seed s at p·seeds + s"}}
           if r.grid is not None else {}),
    })
    if r.options.plot and done_evals and r.grid is None:
        report.plot_curves(os.path.join(r.run_dir, "curve.png"), r.env_steps[:done_evals],
                           r.history["eval_returns"][:, :done_evals], f"{r.algo} · {env or ''}", evals)
    if r.grid is not None:
        _finish_sweep(r, points, timing, steps_per_seed, done_evals, evals, finished)
        return
    title = (f"purerl · {r.algo} on {env or '?'} · {r.options.num_seeds} seeds · {steps_per_seed:,} "
             f"{'gradient' if offline else 'env'} steps per seed"
             + ("" if finished else " (stopped early; resume to continue)"))
    if r.dataset_info is not None:
        title += f" · dataset {r.dataset_info.get('kind', '?')} ({r.dataset_info.get('path')})"
    if summary:
        print(report.format_table(title, summary, timing, "gradient steps" if offline else "env steps"))
    if normalized.get("num_finite"):
        low, high = normalized["iqm_ci95"]
        print(f"normalized score 100·(R − R_random)/(R_expert − R_random): mean {normalized['mean']:.1f} ± "
              f"{normalized['std']:.1f}, IQM {normalized['iqm']:.1f} (95% CI {low:.1f} … {high:.1f})")
    print(f"results: {r.run_dir}")


def _finish_sweep(r: _Run, points: list, timing: dict, steps_per_seed: int, done_evals: int, evals, finished):
    """A sweep's table (one line per grid point) and plots: `sweep.png` (the final return over the
    grid: a curve for one field, a heatmap for two, bars otherwise) and `curve.png` (per point)."""
    g = r.grid
    if r.options.plot and done_evals:
        report.plot_sweep(os.path.join(r.run_dir, "sweep.png"), g.fields, points, f"{r.algo} · {r.config.env}")
        returns = r.history["eval_returns"][:, :done_evals]
        report.plot_point_curves(os.path.join(r.run_dir, "curve.png"), r.env_steps[:done_evals],
                                 [returns[g.point_rows(p)] for p in range(len(g.points))],
                                 [report.point_label(pt["values"]) for pt in points], f"{r.algo} · {r.config.env}")
    title = (f"purerl sweep · {r.algo} on {r.config.env} · {len(g.points)} grid points × {g.seeds} seeds in one "
             f"program · {steps_per_seed:,} env steps per seed" + ("" if finished else " (stopped early; resume to continue)"))
    print(report.format_sweep_table(title, points, timing))
    print(f"results: {r.run_dir}")
