"""Saved policies: evaluate, render and export the policy of a trained purerl run.

    act = load_run_policy("runs/ppo", best=True)        # act(obs, key) -> action, raw observations
    evaluate_run("runs/ppo", episodes=10)               # {"returns": [...], "mean", "std", "min", "max", ...}
    render_episode("runs/ppo", "cartpole.gif")          # one episode: .gif/.mp4 (classic control,
                                                        # point mass) or .html (Brax viewer)
    export_policy("runs/ppo", "ppo-cartpole.npz")       # one self-contained file, no pickle
    act = load_policy("ppo-cartpole.npz")               # the same actions as the run's policy

An exported `.npz` holds every parameter leaf of the acting parameters under its key path
(`jax.tree_util.keystr`, e.g. "['params']['Dense_0']['kernel']") and one JSON string under
`META_KEY`: {"format": "purerl-policy", "version": 1, "algorithm", "config", "env",
"obs_stats" (mean/var/count, when the run normalized observations), "purerl_version"}.
`load_policy` rebuilds the parameter structure from the algorithm's `init` with
`jax.eval_shape` and checks every key path and shape against the file.

Offline and imitation runs are taken too: their train state's shapes come from the dataset size
in config.json (the dataset itself is not read), and a policy that normalizes with its dataset's
statistics (BC, CQL, IQL, TD3+BC, AWR, DAgger) carries them among its parameters
(`datasets.acting`). Algorithms whose `act` takes one more argument (DIAYN's skill, PCGrad's
task) and those without an `act` (bandits, AlphaZero's search) are refused with a ValueError
naming them and the supported ones (`supported_algorithms`).
`eval_main` and `export_main` are the `purerl eval` and `purerl export` commands.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import importlib.util
import inspect
import io
import json
import math
import os
import sys
import tempfile
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from purerl import envs
from purerl.report import default_mode

FORMAT, VERSION, META_KEY = "purerl-policy", 1, "__purerl__"
CLASSIC = ("CartPole-v1", "Pendulum-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0")


# ----------------------------------------------------------------------------- runs
def run_info(run_dir: str) -> dict:
    """config.json of the run in `run_dir`, checked to have a checkpoint (no JAX needed)."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(path):
        raise ValueError(f"run directory {run_dir!r} has no config.json: not a purerl run directory")
    with open(path) as f:
        meta = json.load(f)
    ckpt = os.path.join(run_dir, "checkpoints")
    if not os.path.isdir(ckpt) or not any(n.isdigit() for n in os.listdir(ckpt)):
        raise ValueError(f"run directory {run_dir!r} has no checkpoint in checkpoints/ yet")
    return meta


def pick_seed(run_dir: str, seed: int | None = None, best: bool = False) -> int:
    """The seed index to use: `seed` (default 0), or with `best` the seed with the highest final
    evaluation return in the run's results.json."""
    num_seeds = int(run_info(run_dir)["options"]["num_seeds"])
    if best and seed is not None:
        raise ValueError("pass either a seed or best, not both")
    if best:
        try:
            with open(os.path.join(run_dir, "results.json")) as f:
                finals = json.load(f)["final_eval_return_per_seed"]
        except (OSError, KeyError, ValueError):
            raise ValueError(f"--best needs {run_dir}/results.json with final_eval_return_per_seed (written when "
                             "the run finishes); pass --seed instead") from None
        scores = [-math.inf if r is None else float(r) for r in finals]
        if all(s == -math.inf for s in scores):
            raise ValueError(f"--best: every seed of {run_dir!r} diverged; pass --seed instead")
        return int(np.argmax(scores))
    seed = 0 if seed is None else seed
    if not isinstance(seed, (int, np.integer)) or not 0 <= seed < num_seeds:
        raise ValueError(f"seed {seed!r} is out of range: the run has seeds 0…{num_seeds - 1}")
    return int(seed)


def _check_act(module, name: str) -> None:
    """Refuse, naming the reason, an algorithm whose policy is not `act(config, params, obs, key)`."""
    act = getattr(module, "act", None)
    if act is None:
        raise ValueError(f"algorithm {name!r} is not supported: it has no act (its policy is a search or a "
                         f"bandit rule, not a network); supported: {', '.join(supported_algorithms())}")
    required = [p.name for p in inspect.signature(act).parameters.values()
                if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(required) != 4:
        extra = [n for n in required if n not in ("config", "params", "policy_params", "obs", "key")]
        raise ValueError(f"algorithm {name!r} is not supported: its act takes {', '.join(extra)} besides the "
                         "observation; only single-policy algorithms (act(config, params, obs, key)) are: "
                         f"{', '.join(supported_algorithms())}")


def supported_algorithms() -> list[str]:
    """The registered algorithms whose policies `eval` and `export` take."""
    from purerl import algos

    out = []
    for name in sorted(algos.ALGORITHMS):
        try:
            module = algos.get(name)
            if getattr(module, "act", None) is None:
                continue
            required = [p for p in inspect.signature(module.act).parameters.values() if p.default is p.empty]
            if len(required) == 4:
                out.append(name)
        except Exception:  # an algorithm whose optional dependency is missing
            continue
    return out


def _raw_act(module, config, params, stats, deterministic: bool):
    """act(raw obs, key) -> action of `params`, normalizing with the frozen `stats` unless they are
    None (no normalization, or `act` normalizes with its dataset's statistics itself)."""
    env = envs.make(config.env, normalize_obs=stats is not None)

    def act(obs, key):
        return module.act(config, params, env.normalize(stats, obs), key, deterministic=deterministic)

    return act


def load_run_policy(run_dir: str, seed: int | None = None, best: bool = False, deterministic: bool = True):
    """The policy of one seed of the run in `run_dir` (latest checkpoint) as `act(obs, key) -> action`
    on batched raw observations, with attributes `env`, `algorithm`, `config`, `seed`, `params`,
    `obs_stats` (None unless the run normalized observations) and `module`."""
    from purerl import algos, datasets

    index = pick_seed(run_dir, seed, best)
    meta = run_info(run_dir)
    name = meta["algorithm"]
    _check_act(algos.get(name), name)
    module, config, state = datasets.load_run(run_dir, index)
    params, stats = jax.tree.map(jnp.asarray, datasets.acting(module, config, state))
    act = _raw_act(module, config, params, stats, deterministic)
    act.env, act.algorithm, act.config, act.seed, act.module = config.env, name, config, index, module
    act.params, act.obs_stats, act.deterministic = params, stats, deterministic
    act.dataset_size = int(meta.get("dataset", {}).get("transitions") or 0) or None  # offline / imitation
    act.train_rng = state.rng if hasattr(state, "rng") else None
    return act


# ----------------------------------------------------------------------------- evaluation
def evaluate_policy(env_name: str, act, episodes: int = 10, key: jax.Array | None = None) -> np.ndarray:
    """Returns of `episodes` episodes of `act(raw obs, key)` in `env_name` (one compiled program)."""
    if not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes={episodes!r} is invalid: must be an integer ≥ 1")
    from purerl.evaluation import evaluate

    env = envs.make(env_name)  # act normalizes itself; the env gives raw observations
    key = jax.random.PRNGKey(0) if key is None else key
    return np.asarray(jax.jit(lambda k: evaluate(env, act, k, episodes))(key))


def evaluate_run(run_dir: str, seed: int | None = 0, best: bool = False, episodes: int = 10,
                 deterministic: bool = True, key_seed: int = 0, key: jax.Array | None = None) -> dict:
    """Returns of `episodes` fresh episodes of one seed's policy (the run's env, its frozen observation
    statistics): {"returns", "mean", "std", "min", "max", "seed", "env", "algorithm", ...}. `key`
    (default PRNGKey(key_seed)) is the evaluation's key: with the train state's
    `fold_in(rng, 0x5EED)` and `config.eval_episodes` it repeats the run's final evaluation."""
    from purerl.evaluation import evaluate

    if not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes={episodes!r} is invalid: must be an integer ≥ 1")
    policy = load_run_policy(run_dir, None if best else seed, best, deterministic)
    config, module = policy.config, policy.module
    stats = policy.obs_stats  # None unless the environment normalizes the policy's observations
    env = envs.make(config.env, normalize_obs=stats is not None)
    act = functools.partial(module.act, config, policy.params, deterministic=deterministic)
    key = jax.random.PRNGKey(key_seed) if key is None else key
    returns = np.asarray(jax.jit(lambda k: evaluate(env, act, k, episodes, stats))(key), np.float64)
    return {"run_dir": run_dir, "algorithm": policy.algorithm, "env": config.env, "seed": policy.seed,
            "deterministic": deterministic, "episodes": episodes, "returns": returns.tolist(),
            "mean": float(returns.mean()), "std": float(returns.std()), "min": float(returns.min()),
            "max": float(returns.max())}


# ----------------------------------------------------------------------------- rendering
def render_formats(env_name: str) -> tuple[str, ...]:
    """The file suffixes `env_name` can be rendered to (() when it cannot be)."""
    if env_name.startswith("brax/"):
        return (".html",)
    if env_name in CLASSIC or env_name.startswith("point/"):
        return (".gif", ".mp4")
    return ()


def check_render_file(env_name: str, out_file: str) -> str:
    """Raise a ValueError unless `out_file`'s format is one `env_name` renders to; returns the suffix."""
    allowed = render_formats(env_name)
    suffix = os.path.splitext(out_file)[1].lower()
    if not allowed:
        raise ValueError(f"environment {env_name!r} cannot be rendered; renderable: "
                         f"{', '.join(CLASSIC)}, point/*, brax/*")
    if suffix not in allowed:
        raise ValueError(f"render format {suffix or out_file!r} is not one {env_name} renders to; allowed: "
                         f"{', '.join(allowed)}")
    if suffix == ".mp4" and importlib.util.find_spec("imageio_ffmpeg") is None:
        raise ValueError("render format '.mp4' needs imageio's ffmpeg plugin (pip install imageio-ffmpeg); "
                         "allowed here: .gif")
    directory = os.path.dirname(os.path.abspath(out_file))
    if not os.path.isdir(directory):
        raise ValueError(f"render file {out_file!r}: directory {directory!r} does not exist")
    return suffix


def episode_states(env: envs.Environment, act, key: jax.Array):
    """One episode of `act(raw obs, key)`: (backend states [T, ...] before each action, length,
    return); T = the time limit, the states past `length` belong to the next episode."""
    reset_key, run_key = jax.random.split(key)
    state, _ = env.reset(reset_key, 1)

    def step(carry, step_key):
        state, alive, total = carry
        act_key, env_key = jax.random.split(step_key)
        new, ts = env.step(env_key, state, act(state.raw_obs, act_key), update_stats=False)
        return (new, alive & ~ts.done[0], total + ts.reward[0] * alive), (state.backend_state, alive)

    carry = (state, jnp.asarray(True), jnp.zeros(()))
    (_, _, total), (states, alive) = jax.lax.scan(step, carry, jax.random.split(run_key, env.max_episode_steps))
    return jax.tree.map(lambda x: x[:, 0], states), alive.sum(), total


def _scene(env: envs.Environment):
    """(figure, draw(state of one step as numpy, t)) for a classic-control or point-mass env."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2.4, 2.4), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_aspect("equal")
    ax.set_xticks([]), ax.set_yticks([])
    label = ax.text(0.03, 0.97, "", transform=ax.transAxes, va="top", fontsize=8)
    name, backend = env.name, env.backend
    params = getattr(backend, "params", None)
    if name == "CartPole-v1":
        ax.set_xlim(-2.6, 2.6), ax.set_ylim(-1.8, 3.4)
        ax.axhline(0, color="k", lw=1)
        cart = matplotlib.patches.Rectangle((0, -0.15), 0.5, 0.3, color="tab:blue")
        ax.add_patch(cart)
        pole, = ax.plot([], [], color="tab:brown", lw=4)
        length = 2 * float(params.length)

        def draw(s):
            x, th = float(s.x), float(s.theta)
            cart.set_x(x - 0.25)
            pole.set_data([x, x + length * math.sin(th)], [0, length * math.cos(th)])
    elif name == "Pendulum-v1":
        ax.set_xlim(-1.3, 1.3), ax.set_ylim(-1.3, 1.3)
        rod, = ax.plot([], [], color="tab:red", lw=6, solid_capstyle="round")
        ax.plot([0], [0], "ko", ms=4)

        def draw(s):  # θ = 0 upright
            th = float(s.theta)
            rod.set_data([0, math.sin(th)], [0, math.cos(th)])
    elif name == "Acrobot-v1":
        l1, l2 = float(params.link_length_1), float(params.link_length_2)
        ax.set_xlim(-2.2, 2.2), ax.set_ylim(-2.2, 2.2)
        ax.axhline(l1, color="k", ls="--", lw=0.8)  # the height to swing the tip above
        links, = ax.plot([], [], "o-", color="tab:blue", lw=4, ms=4)

        def draw(s):  # angles from hanging down
            a1, a2 = float(s.joint_angle1), float(s.joint_angle2)
            p1 = (l1 * math.sin(a1), -l1 * math.cos(a1))
            p2 = (p1[0] + l2 * math.sin(a1 + a2), p1[1] - l2 * math.cos(a1 + a2))
            links.set_data([0, p1[0], p2[0]], [0, p1[1], p2[1]])
    elif name.startswith("MountainCar"):
        lo, hi, goal = float(params.min_position), float(params.max_position), float(params.goal_position)
        xs = np.linspace(lo, hi, 100)
        height = lambda x: 0.45 * np.sin(3 * x) + 0.55  # noqa: E731
        ax.set_xlim(lo, hi), ax.set_ylim(0, 1.25)
        ax.set_aspect("auto")
        ax.plot(xs, height(xs), color="k", lw=1)
        ax.plot([goal, goal], [height(goal), height(goal) + 0.1], color="gold", lw=2)
        car, = ax.plot([], [], "s", color="tab:blue", ms=8)

        def draw(s):
            p = float(s.position)
            car.set_data([p], [height(p) + 0.03])
    elif name.startswith("point/"):
        ax.set_xlim(-1, 1), ax.set_ylim(-1, 1)
        for x0, y0, x1, y1 in backend.walls:
            ax.add_patch(matplotlib.patches.Rectangle((x0, y0), x1 - x0, y1 - y0, color="0.4"))
        if backend.task:
            ax.add_patch(matplotlib.patches.Circle(backend.goal, backend.goal_radius, color="gold", alpha=0.5))
        trail, = ax.plot([], [], color="tab:blue", lw=1, alpha=0.5)
        point, = ax.plot([], [], "o", color="tab:blue", ms=6)
        path = []

        def draw(s):
            path.append(np.asarray(s.position))
            if int(s.time) == 0:
                path[:] = path[-1:]
            trail.set_data(*np.asarray(path).T)
            point.set_data([path[-1][0]], [path[-1][1]])
    else:
        raise ValueError(f"environment {name!r} cannot be rendered")

    def frame(s, t):
        draw(s)
        label.set_text(f"t={t}")  # also keeps consecutive frames distinct (a GIF writer merges equal ones)
        fig.canvas.draw()
        return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    return frame


def _atomic(out_file: str, write) -> None:
    """`write(tmp_path)` to a temporary file next to `out_file`, then rename it into place."""
    directory = os.path.dirname(os.path.abspath(out_file))
    suffix = os.path.splitext(out_file)[1]
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=suffix)
    os.close(fd)
    try:
        default_mode(tmp)
        write(tmp)
        os.replace(tmp, out_file)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def render_policy(env_name: str, act, out_file: str, key: jax.Array | None = None, max_steps: int | None = None,
                  fps: int = 30) -> dict:
    """Render one episode of `act(raw obs, key)` in `env_name` to `out_file` (.gif/.mp4 frames, one per
    step, or a Brax .html viewer). Returns {"path", "frames", "length", "return"}."""
    suffix = check_render_file(env_name, out_file)
    if max_steps is not None and (not isinstance(max_steps, int) or max_steps < 1):
        raise ValueError(f"max_steps={max_steps!r} is invalid: must be None or an integer ≥ 1")
    env = envs.make(env_name)
    key = jax.random.PRNGKey(0) if key is None else key
    states, length, total = jax.jit(lambda k: episode_states(env, act, k))(key)
    length = int(length)
    frames = length if max_steps is None else min(length, max_steps)
    states = jax.tree.map(lambda x: np.asarray(x[:frames]), states)
    at = lambda t: jax.tree.map(lambda x: x[t], states)  # noqa: E731
    if suffix == ".html":
        from brax.io import html

        pipeline = [at(t).state.pipeline_state for t in range(frames)]
        page = html.render(env.backend.env.sys, pipeline)
        _atomic(out_file, lambda tmp: open(tmp, "w").write(page))
    else:
        import imageio.v3 as iio

        draw = _scene(env)
        images = np.stack([draw(at(t), t) for t in range(frames)])
        if suffix == ".gif":
            write = lambda tmp: iio.imwrite(tmp, images, extension=".gif", duration=1000 / fps, loop=0)  # noqa: E731
        else:
            def write(tmp):
                with quiet_fork_warning():
                    iio.imwrite(tmp, images, extension=".mp4", fps=fps)
        _atomic(out_file, write)
    return {"path": out_file, "frames": frames, "length": length, "return": float(total)}


@contextlib.contextmanager
def quiet_fork_warning():
    """Silence JAX's "os.fork() was called … will likely lead to a deadlock" RuntimeWarning while
    imageio starts ffmpeg: `subprocess` forks and execs ffmpeg in C, and the child runs no Python
    and no JAX thread, so the deadlock it warns of cannot happen there."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
        yield


def render_episode(run_dir: str, out_file: str, seed: int | None = 0, best: bool = False, deterministic: bool = True,
                   max_steps: int | None = None, key_seed: int = 0) -> dict:
    """Render one episode of one seed's policy of the run in `run_dir` (see `render_policy`)."""
    check_render_file(run_info(run_dir)["config"]["env"], out_file)  # before anything loads or compiles
    act = load_run_policy(run_dir, None if best else seed, best, deterministic)
    return render_policy(act.env, act, out_file, jax.random.PRNGKey(key_seed), max_steps)


# ----------------------------------------------------------------------------- export
def export_policy(run_dir: str, out_path: str, seed: int | None = 0, best: bool = False) -> dict:
    """Write one seed's acting parameters and what rebuilds its `act` to the `.npz` `out_path` (see the
    module docstring). Returns the metadata written."""
    import importlib.metadata

    from purerl.config import to_dict

    if not out_path.endswith(".npz"):
        raise ValueError(f"export file {out_path!r} is invalid: its name must end in .npz")
    policy = load_run_policy(run_dir, None if best else seed, best)
    meta = {"format": FORMAT, "version": VERSION, "algorithm": policy.algorithm, "config": to_dict(policy.config),
            "env": policy.env, "seed": policy.seed, "purerl_version": importlib.metadata.version("purerl")}
    if policy.dataset_size:
        meta["dataset_transitions"] = policy.dataset_size  # an offline or imitation run's (for `abstract_init`)
    if policy.obs_stats is not None:
        meta["obs_stats"] = {f.name: np.asarray(getattr(policy.obs_stats, f.name)).tolist()
                             for f in dataclasses.fields(policy.obs_stats)}
    arrays = {jax.tree_util.keystr(p): np.asarray(x) for p, x in jax.tree_util.tree_flatten_with_path(policy.params)[0]}
    arrays[META_KEY] = np.asarray(json.dumps(meta))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    from purerl.report import atomic_write

    atomic_write(out_path, buffer.getvalue())
    return meta


def load_policy(path: str, deterministic: bool = True):
    """`act(obs, key) -> action` (batched raw observations, jittable) from an `export_policy` file,
    with attributes `env`, `algorithm`, `config`, `params`, `obs_stats`."""
    from purerl import algos, datasets
    from purerl.config import from_dict

    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    if META_KEY not in arrays:
        raise ValueError(f"{path!r} is not a purerl policy file: no {META_KEY!r} entry")
    meta = json.loads(str(arrays.pop(META_KEY)))
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ValueError(f"{path!r}: format {meta.get('format')!r} version {meta.get('version')!r} is not "
                         f"{FORMAT!r} version {VERSION}")
    module = algos.get(meta["algorithm"])
    _check_act(module, meta["algorithm"])
    config = from_dict(module.Config, meta["config"])
    abstract_state = datasets.abstract_init(module, config, dataset_size=int(meta.get("dataset_transitions", 1)))
    abstract = datasets.acting(module, config, abstract_state)[0]
    paths, treedef = jax.tree_util.tree_flatten_with_path(abstract)
    names = [jax.tree_util.keystr(p) for p, _ in paths]
    if set(names) != set(arrays):
        raise ValueError(f"{path!r}: parameters {sorted(set(arrays) - set(names))} are not in {meta['algorithm']}'s "
                         f"policy, and {sorted(set(names) - set(arrays))} are missing")
    for name, (_, leaf) in zip(names, paths):
        if arrays[name].shape != leaf.shape:
            raise ValueError(f"{path!r}: parameter {name} has shape {arrays[name].shape}, the config builds "
                             f"{leaf.shape}")
    params = jax.tree_util.tree_unflatten(treedef, [jnp.asarray(arrays[n], leaf.dtype) for n, (_, leaf)
                                                    in zip(names, paths)])
    stats = None
    if "obs_stats" in meta:
        stats = envs.RunningMeanStd(**{k: jnp.asarray(v, jnp.float32) for k, v in meta["obs_stats"].items()})
    act = _raw_act(module, config, params, stats, deterministic)
    act.env, act.algorithm, act.config, act.params, act.obs_stats = meta["env"], meta["algorithm"], config, params, stats
    return act


# ----------------------------------------------------------------------------- CLI
class _Error(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise _Error(message)


def _seed_args(parser):
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--seed", type=int, default=None, help="seed index of the run (default 0)")
    group.add_argument("--best", action="store_true", help="the seed with the highest final evaluation return")


def _cli(main):
    @functools.wraps(main)
    def wrapped(argv: list[str]) -> int:
        try:
            return main(argv)
        except (_Error, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        except SystemExit as e:  # --help
            return int(e.code or 0)

    return wrapped


@_cli
def eval_main(argv: list[str]) -> int:
    """purerl eval RUN_DIR [--seed i | --best] [--episodes N] [--stochastic] [--render FILE]"""
    parser = _Parser(prog="purerl eval", description="Evaluate (and render) a trained run's policy.")
    parser.add_argument("run_dir")
    _seed_args(parser)
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes (default 10)")
    parser.add_argument("--stochastic", action="store_true", help="sample actions (default: the policy's mode)")
    parser.add_argument("--render", metavar="FILE", help="also render one episode: .gif/.mp4, or .html for Brax")
    parser.add_argument("--key-seed", type=int, default=0, help="PRNG seed of the episodes (default 0)")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        raise ValueError(f"--episodes {args.episodes} is invalid: must be ≥ 1")
    meta = run_info(args.run_dir)
    seed = pick_seed(args.run_dir, args.seed, args.best)
    if args.render:
        check_render_file(meta["config"]["env"], args.render)
    deterministic = not args.stochastic
    result = evaluate_run(args.run_dir, seed, episodes=args.episodes, deterministic=deterministic,
                          key_seed=args.key_seed)
    how = "best seed" if args.best else "seed"
    print(f"{result['algorithm']} on {result['env']}, {how} {seed} of {args.run_dir}, "
          f"{'deterministic' if deterministic else 'stochastic'} policy")
    for i, r in enumerate(result["returns"]):
        print(f"episode {i}: return {r:.2f}")
    print(f"mean {result['mean']:.2f} ± {result['std']:.2f} (std), min {result['min']:.2f}, "
          f"max {result['max']:.2f} over {args.episodes} episodes")
    if args.render:
        r = render_episode(args.run_dir, args.render, seed, deterministic=deterministic, key_seed=args.key_seed)
        print(f"rendered: {r['path']} ({r['frames']} frames, episode return {r['return']:.2f})")
    return 0


@_cli
def export_main(argv: list[str]) -> int:
    """purerl export RUN_DIR OUT [--seed i | --best]"""
    parser = _Parser(prog="purerl export", description="Export a trained run's policy to one .npz file.")
    parser.add_argument("run_dir")
    parser.add_argument("out", help="the .npz file to write (must not exist)")
    _seed_args(parser)
    args = parser.parse_args(argv)
    run_info(args.run_dir)
    seed = pick_seed(args.run_dir, args.seed, args.best)
    if os.path.exists(args.out):
        raise ValueError(f"OUT {args.out!r} exists already; choose a new file name")
    if not args.out.endswith(".npz"):
        raise ValueError(f"OUT {args.out!r} is invalid: its name must end in .npz")
    if not os.path.isdir(os.path.dirname(os.path.abspath(args.out))):
        raise ValueError(f"OUT {args.out!r}: its directory does not exist")
    meta = export_policy(args.run_dir, args.out, seed)
    with np.load(args.out, allow_pickle=False) as data:
        leaves = [k for k in data.files if k != META_KEY]
        size = sum(int(data[k].size) for k in leaves)
    print(f"exported {meta['algorithm']} on {meta['env']}, seed {seed} of {args.run_dir}: {args.out} "
          f"({len(leaves)} arrays, {size} parameters{', with observation statistics' if 'obs_stats' in meta else ''})")
    print(f"load it with purerl.load_policy({args.out!r}) -> act(obs, key)")
    return 0
