"""The GPU suite: the headline claim (thousands of seeds; Brax/MJX physics on the accelerator)
measured in one command.

    python benchmarks/gpu_suite.py                    # on a CUDA machine: benchmarks/results/gpu_<device>.json
    python benchmarks/gpu_suite.py --parts cartpole   # some parts only (merged into the same file)
    python benchmarks/gpu_suite.py --dry-run          # every configuration, a few updates, on any machine
    python benchmarks/gpu_suite.py --dry-run --trace  # every program traced, only the CartPole one run (the test)
    python benchmarks/gpu_suite.py --parts ant --set ant.anneal_lr=false --out gpu_ant_constant_lr.json

Parts:
* `cartpole` — PPO CartPole-v1, 500k steps × 2048 seeds (one evaluation at the end, as
  PureJaxRL's timing has none): compile and run seconds, mean final return. Reference:
  PureJaxRL reports about 98 s for 2048 agents on an A100; our goal is ≤ 50 s on an H100/H200.
* `ant` — PPO on `brax/ant` (MJX) with Brax's published PPO settings for ant (50M steps,
  4096 environments, unroll 5, 32 minibatches of 2048 unrolls, 4 epochs, γ 0.97, lr 3e-4,
  entropy 1e-2, observation normalization; see `ANT_PPO`): wall time from the start
  (compile included) to a mean evaluation return of `--target` (6000), and the return at the end.
* `halfcheetah` — SAC on `brax/halfcheetah` (MJX), settings in `HALFCHEETAH_SAC`: the same two figures.
* `throughput` — env steps/s of PPO CartPole for 1 … 4096 seeds, and of PPO on MJX ant with
  1 … 8192 environments (one seed), a few updates each.
* `algorithms` — every algorithm's default program for 1024 and 4096 seeds (a few updates):
  compile seconds, and whether it compiles, runs and fits in memory.
* `minatar` — PPO (10M steps) and DQN (5M) with their MinAtar presets on Breakout-MinAtar and
  SpaceInvaders-MinAtar, 16 seeds each: the learning curve, the final return and the wall
  time to gymnax's published return of its trained PPO agents (28 and 131; `MINATAR_REFERENCES`).

`--set PART.KEY=VALUE` changes a field of the `ant` or `halfcheetah` settings (an A/B run on
a leased machine; each such part records its `overrides`). Each part is saved as soon as it is
measured; a part that fails is recorded with its error and the suite goes on. `--dry-run`
shrinks every configuration to a few updates on a few seeds and saves nothing unless `--out` is
given; with `--trace` every program is traced (configurations, environments, shapes) and only
the CartPole one is compiled and run: `tests/test_gpu_suite.py` runs that, so that the suite
cannot rot while no GPU is at hand.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PARTS = ("cartpole", "ant", "halfcheetah", "throughput", "algorithms", "minatar")
# Brax's published PPO settings for ant (Brax training colab). Brax collects 16 rounds of
# 4096 × 5-step unrolls, then 4 epochs × 32 minibatches of 2048 unrolls: 128 gradient steps of
# 10,240 transitions per 327,680 env steps. PPO here with 4096 envs × 5 steps and 2 minibatches
# keeps both the minibatch size and the ratio of gradient steps to env steps. As Brax's PPO, an
# unclipped value loss: clipped at ±0.3 in return units (PPO's default, and the H200 run of
# 2026-12-04), it slowed learning on Pendulum's returns in the hundreds (benchmarks/ppo_ablation.py).
# Not Brax's: the learning rate annealed to 0 and the gradient's global norm clipped at 1 (both
# ended better there than Brax's constant rate and no clipping), 4 × 64 tanh networks, no reward
# scaling, a Gaussian policy.
ANT_PPO = dict(env="brax/ant", total_timesteps=50_000_000, num_envs=4096, num_steps=5, num_minibatches=2,
               update_epochs=4, gamma=0.97, gae_lambda=0.95, learning_rate=3e-4, ent_coef=1e-2,
               clip_eps=0.3, clip_value_loss=False, normalize_obs=True, hidden_sizes=(64, 64, 64, 64),
               activation="tanh", max_grad_norm=1.0)
# SAC on halfcheetah: many environments feeding one buffer, several gradient steps per update.
HALFCHEETAH_SAC = dict(env="brax/halfcheetah", total_timesteps=5_000_000, num_envs=128, steps_per_update=1,
                       gradient_steps=8, batch_size=512, buffer_size=1_048_576, learning_starts=8_192,
                       learning_rate=6e-4, gamma=0.99, tau=0.005, hidden_sizes=(256, 256), normalize_obs=True)
BRAX_PARTS = {"ant": ("ppo", ANT_PPO), "halfcheetah": ("sac", HALFCHEETAH_SAC)}  # part: (algorithm, settings)


def brax_overrides(items) -> dict:
    """`--set` strings `PART.KEY=VALUE` to {part: {field: value}}, each value read as its field's
    type; an unknown part or field, a bad value or settings that no longer validate exit with a
    message naming it (before anything compiles)."""
    if not items:
        return {}
    from benchmarks.learning import parse_overrides
    from purerl import algos

    texts: dict[str, list[str]] = {}
    for item in items:
        part, dot, rest = item.partition(".")
        if not dot or part not in BRAX_PARTS:
            raise SystemExit(f"--set {item!r}: expected PART.KEY=VALUE with PART one of {sorted(BRAX_PARTS)}")
        texts.setdefault(part, []).append(rest)
    out = {}
    for part, rests in texts.items():
        algo, settings = BRAX_PARTS[part]
        module = algos.get(algo)
        out[part] = parse_overrides(module.Config, rests)
        try:
            module.Config(**{**settings, **out[part]})
        except ValueError as error:
            raise SystemExit(f"--set {part}: {error}") from None
    return out

# Each algorithm's program in the `algorithms` part: (environment, overrides)
ALGORITHM_ENVS = {"ppo": "CartPole-v1", "reinforce": "CartPole-v1", "actor_critic": "CartPole-v1",
                  "dqn": "CartPole-v1", "sac": "Pendulum-v1", "a2c": "CartPole-v1", "trpo": "CartPole-v1",
                  "ddpg": "Pendulum-v1", "td3": "Pendulum-v1",
                  # offline algorithms learn from `offline_dataset(env)`: random Pendulum-v1 transitions
                  "bc": "Pendulum-v1", "td3_bc": "Pendulum-v1", "cql": "Pendulum-v1", "iql": "Pendulum-v1",
                  "awr": "Pendulum-v1", "edac": "Pendulum-v1",
                  # imitation algorithms learn from `demonstrations(env)`: the scripted expert's episodes
                  "dagger": "Pendulum-v1", "gail": "CartPole-v1", "airl": "Pendulum-v1",
                  "apprenticeship": "CartPole-v1",
                  # skills and multi-task: the 2-D point mass
                  "diayn": "point/open", "pcgrad": "point/goal", "ase": "point/open",
                  # planning and model-based
                  "bandits": "BernoulliBandit-misc", "alphazero": "CartPole-v1", "muzero": "CartPole-v1",
                  "gps": "Pendulum-v1"}
OFFLINE_DATASET_SIZE = 100_000  # transitions of the offline algorithms' dataset (shared by all seeds)
DEMONSTRATION_EPISODES = 4  # scripted-expert episodes of the imitation algorithms' demonstrations


def _log(*args):
    print(*args, flush=True)


def few_updates(module, config, updates: int, **extra):
    """`config` cut to `updates` updates (at least one), one evaluation of one episode at the end,
    learning from the first update where the algorithm has a `learning_starts`."""
    fields = {f.name for f in dataclasses.fields(config)}
    episodes = {"eval_episodes" if "eval_episodes" in fields else "eval_episodes_per_task": 1}  # PCGrad: per task
    changes = {k: v for k, v in extra.items() if k in fields}
    if "learning_starts" in fields and "learning_starts" not in extra:
        changes["learning_starts"] = 0
    config = dataclasses.replace(config, **changes)
    if getattr(module, "OFFLINE", False):  # counted in gradient steps
        config = dataclasses.replace(config, num_gradient_steps=updates * config.steps_per_update)
        return dataclasses.replace(config, eval_every=config.num_updates, **episodes)
    if "num_rounds" in fields:  # DAgger: an update is a round
        config = dataclasses.replace(config, num_rounds=updates, **changes)
        return dataclasses.replace(config, eval_every=config.num_updates, **episodes)
    total = updates * config.env_steps_per_update
    if "buffer_size" in fields:
        changes["buffer_size"] = max(min(config.buffer_size, total), config.env_steps_per_update)
    config = dataclasses.replace(config, total_timesteps=total, **changes)
    return dataclasses.replace(config, eval_every=config.num_updates, **episodes)


@functools.lru_cache(maxsize=None)
def offline_dataset(env_name: str, size: int = OFFLINE_DATASET_SIZE):
    """A dataset of uniformly random actions for the offline algorithms' programs (what they
    learn does not matter here: their compile time, memory and speed do)."""
    import jax
    import numpy as np

    from purerl import datasets, envs

    env = envs.make(env_name)
    data = jax.jit(lambda k: datasets.rollout(env, datasets.random_policy(env), k, 16, -(-size // 16)))(
        jax.random.PRNGKey(0))
    return datasets.Dataset(datasets.to_host(jax.tree.map(lambda x: np.asarray(x)[:size], data)),
                            {"env": env_name, "kind": "random"})


@functools.lru_cache(maxsize=None)
def demonstrations(env_name: str, episodes: int = DEMONSTRATION_EPISODES):
    """The scripted expert's episodes for the imitation algorithms' programs."""
    from purerl import experts

    return experts.demonstrations(env_name, "scripted", episodes, seed=0)


_deadline: float | None = None  # perf_counter() time after which the suite starts nothing new (`--budget`)


_checkpoint = None  # run_suite's saver of a part's rows so far (a killed run keeps what it measured)


def _save_partial(part: str, value: dict) -> None:
    if _checkpoint is not None:
        _checkpoint(part, value)


def seconds_left() -> float:
    """Seconds left of the suite's `--budget` (infinite without one)."""
    return float("inf") if _deadline is None else _deadline - time.perf_counter()


def _data_for(module, config):
    dataset = (offline_dataset(config.env) if getattr(module, "OFFLINE", False) else
               demonstrations(config.env) if getattr(module, "DEMONSTRATIONS", False) else None)
    return dataset, (() if dataset is None else (dataset.transitions,))


def compile_timed(algo: str, config, num_seeds: int):
    """(program, compile seconds): the runner's `compile_program` for `num_seeds` seeds on the
    first device. Thread-safe: the `algorithms` part compiles many programs at once."""
    import jax

    from purerl import algos, run

    module = algos.get(algo)
    dataset, _ = _data_for(module, config)
    t0 = time.perf_counter()
    program = run.compile_program(module, config, run.seed_mesh(jax.devices()[:1]), num_seeds, dataset)
    return program, time.perf_counter() - t0


def timed_run(algo: str, config, num_seeds: int, target: float | None = None, time_limit: float | None = None,
              trace_only: bool = False, compiled=None) -> dict:
    """Compile `init` and a block with the runner's `compile_program` (or take `compiled`, a
    `compile_timed` result), then run every block (one seed chunk, all seeds at once), evaluating
    after each. Wall time counts from the start of compilation; `seconds_to_target` is the wall
    time at the first evaluation whose mean over seeds reaches `target`. `time_limit` stops early
    (recorded)."""
    import jax
    import numpy as np

    from purerl import algos
    from purerl.config import to_dict
    from purerl.evaluation import num_blocks

    module = algos.get(algo)
    if trace_only:  # the dry run's Brax mode: trace `train` once, compile nothing
        _, data = _data_for(module, config)
        out = jax.eval_shape(jax.vmap(functools.partial(module.train, config), in_axes=(0,) + (None,) * len(data)),
                             jax.ShapeDtypeStruct((num_seeds, 2), jax.numpy.uint32), *data)
        return {"algorithm": algo, "env": config.env, "num_seeds": num_seeds, "traced_only": True,
                "eval_returns_shape": list(out[2].shape)}
    t0 = time.perf_counter()
    program, compile_seconds = compiled if compiled is not None else compile_timed(algo, config, num_seeds)
    t0 -= compile_seconds if compiled is not None else 0.0  # wall time counts the compilation either way
    keys = jax.random.split(jax.random.PRNGKey(0), num_seeds)
    t_run = time.perf_counter()
    state = program.init(keys)
    n_blocks = num_blocks(config.num_updates, config.eval_every)
    curve, reached, stopped = [], None, False
    for i in range(n_blocks):
        state, _, returns = program.block(state, np.int32(i))
        mean = float(np.mean(np.asarray(returns)))  # waits for the block
        wall = time.perf_counter() - t0
        steps = min((i + 1) * config.eval_every, config.num_updates) * config.env_steps_per_update
        curve.append({"env_steps": steps, "wall_seconds": wall, "mean_eval_return": mean})
        if target is not None and reached is None and mean >= target:
            reached = wall
        if time_limit is not None and wall > time_limit and i < n_blocks - 1:
            stopped = True
            break
    run_seconds = time.perf_counter() - t_run
    steps = curve[-1]["env_steps"] * num_seeds
    return {"algorithm": algo, "env": config.env, "num_seeds": num_seeds, "config": to_dict(config),
            "compile_seconds": compile_seconds, "run_seconds": run_seconds, "wall_seconds": compile_seconds + run_seconds,
            "env_steps_per_second": steps / max(run_seconds, 1e-9),
            "final_mean_eval_return": curve[-1]["mean_eval_return"], "target": target,
            "seconds_to_target": reached, "stopped_at_time_limit": stopped, "curve": curve,
            "bytes_per_device": int(program.bytes_per_device)}


def part_cartpole(dry: bool) -> dict:
    from purerl.algos import ppo

    config = ppo.Config(total_timesteps=500_000)
    seeds = 2048
    if dry:
        config, seeds = few_updates(ppo, config, 2), 2
    config = dataclasses.replace(config, eval_every=config.num_updates)
    r = timed_run("ppo", config, seeds)
    _log(f"PPO CartPole-v1 {config.total_timesteps:,} steps × {seeds} seeds: compile {r['compile_seconds']:.1f} s + "
         f"run {r['run_seconds']:.1f} s = {r['wall_seconds']:.1f} s; mean return {r['final_mean_eval_return']:.1f}")
    return {**r, "reference": "PureJaxRL: about 98 s for 2048 agents on an A100; goal ≤ 50 s on an H100/H200"}


def _brax_part(part: str, overrides: dict, dry: bool, trace: bool, target: float, time_limit: float) -> dict:
    from purerl import algos

    algo, settings = BRAX_PARTS[part]
    module = algos.get(algo)
    config = module.Config(**{**settings, **overrides})
    evals = 20
    config = dataclasses.replace(config, eval_every=max(config.num_updates // evals, 1), eval_episodes=16)
    if dry:
        config = few_updates(module, config, 2, num_envs=4, batch_size=8, buffer_size=64)
        if algo == "ppo":
            config = dataclasses.replace(config, num_minibatches=2)
    r = timed_run(algo, config, 1, target=target, time_limit=None if dry else time_limit,
                  trace_only=trace)
    if "wall_seconds" in r:
        reached = "—" if r["seconds_to_target"] is None else f"{r['seconds_to_target']:.0f} s"
        _log(f"{algo} {config.env}: target {target} reached at {reached}; final return "
             f"{r['final_mean_eval_return']:.1f} after {r['curve'][-1]['env_steps']:,} steps, "
             f"{r['wall_seconds']:.0f} s (compile {r['compile_seconds']:.0f} s)")
    else:
        _log(f"{algo} {config.env}: traced ({r['eval_returns_shape']})")
    return {**r, "overrides": overrides}


# gymnax's published returns of its trained PPO agents (gymnax README; gymnax-blines, 10M steps)
MINATAR_REFERENCES = {"Breakout-MinAtar": 28.0, "SpaceInvaders-MinAtar": 131.0}
MINATAR_ALGORITHMS = ("ppo", "dqn")
MINATAR_SEEDS = 16


def part_minatar(dry: bool, trace: bool, time_limit: float) -> dict:
    """PPO and DQN with their MinAtar presets (`Config.for_env`), 16 seeds each, against
    gymnax's reference returns; each run stops at `time_limit` seconds (recorded) and a run
    that would start after the `--budget` is skipped."""
    from purerl import algos

    rows = {"runs": [], "skipped_for_budget": []}
    for algo in MINATAR_ALGORITHMS:
        module = algos.get(algo)
        for env, reference in MINATAR_REFERENCES.items():
            if seconds_left() < 60:
                rows["skipped_for_budget"].append(f"{algo} {env}")
                continue
            config, seeds = module.Config.for_env(env), MINATAR_SEEDS
            if dry:
                config, seeds = few_updates(module, config, 2, num_envs=4, buffer_size=64), 2
            limit = None if dry else min(time_limit, max(seconds_left() - 30, 10))
            r = timed_run(algo, config, seeds, target=reference, time_limit=limit, trace_only=trace)
            r["reference_return"] = reference
            rows["runs"].append(r)
            _save_partial("minatar", rows)
            if "wall_seconds" in r:
                _log(f"{algo} {env} × {seeds} seeds: final mean {r['final_mean_eval_return']:.1f} after "
                     f"{r['curve'][-1]['env_steps']:,} steps (reference {reference:g}), {r['wall_seconds']:.0f} s")
    return rows


SEED_COUNTS = (1, 4, 16, 64, 256, 1024, 2048, 4096)  # the `throughput` part's PPO CartPole seeds
ENV_COUNTS = (1, 8, 64, 512, 1024, 2048, 4096, 8192)  # ... and its PPO MJX ant environments
ALGORITHM_SEEDS = (1024, 4096)  # the `algorithms` part's seed counts
ALGORITHM_UPDATES = {"gps": 2}  # updates of each program there (default 10); a GPS update is many iLQR solves


def part_throughput(dry: bool, trace: bool, seed_counts=SEED_COUNTS, env_counts=ENV_COUNTS) -> dict:
    """Env steps/s of PPO CartPole over seeds and of PPO MJX ant over environments; a count that
    would start past the `--budget` is skipped (listed)."""
    from purerl.algos import ppo

    rows = {"ppo_cartpole_seeds": [], "ppo_mjx_ant_envs": [], "skipped_for_budget": []}
    seed_counts = (2,) if dry else seed_counts
    for n in seed_counts:
        if seconds_left() < 30:
            rows["skipped_for_budget"].append(f"ppo_cartpole × {n} seeds")
            continue
        config = few_updates(ppo, ppo.Config(), 2 if dry else 50)
        r = timed_run("ppo", config, n, trace_only=trace)
        if trace:
            rows["ppo_cartpole_seeds"].append({"num_seeds": n, "traced_only": True})
            continue
        rows["ppo_cartpole_seeds"].append({k: r[k] for k in ("num_seeds", "compile_seconds", "run_seconds",
                                                                 "env_steps_per_second")})
        _log(f"PPO CartPole × {n} seeds: {r['env_steps_per_second']:,.0f} env steps/s")
        _save_partial("throughput", rows)
    env_counts = (4,) if dry else env_counts
    if trace:  # the `ant` part traces this program already (MJX traces take seconds on a CPU)
        env_counts = ()
    for n in env_counts:
        if seconds_left() < 60:
            rows["skipped_for_budget"].append(f"ppo_mjx_ant × {n} envs")
            continue
        settings = {**ANT_PPO, "num_envs": n, "num_minibatches": 1 if n < 2048 else 2}
        config = few_updates(ppo, ppo.Config(**settings), 2 if dry else 20)
        r = timed_run("ppo", config, 1, trace_only=trace)
        if "env_steps_per_second" in r:
            rows["ppo_mjx_ant_envs"].append({"num_envs": n, **{k: r[k] for k in (
                "compile_seconds", "run_seconds", "env_steps_per_second")}})
            _log(f"PPO MJX ant × {n} envs: {r['env_steps_per_second']:,.0f} env steps/s")
            _save_partial("throughput", rows)
        else:
            rows["ppo_mjx_ant_envs"].append({"num_envs": n, "traced_only": True})
    return rows


def part_algorithms(dry: bool, trace: bool, seed_counts=ALGORITHM_SEEDS, workers: int = 8, only=None) -> dict:
    """Every algorithm's default program (a few updates) for each of `seed_counts`: compile
    seconds, run seconds, device bytes, or the error (a compile failure, out of memory). The
    programs are traced and compiled `workers` at a time on threads (XLA compiles with the GIL
    released), then run one after another."""
    import concurrent.futures

    from purerl import algos

    jobs = []
    for algo in (only or algos.ALGORITHMS):
        env = ALGORITHM_ENVS.get(algo)
        for seeds in ((2,) if dry else seed_counts):
            row, config = {"algorithm": algo, "env": env, "num_seeds": seeds}, None
            try:
                if env is None:
                    raise KeyError(f"{algo!r} has no environment in gpu_suite.ALGORITHM_ENVS")
                module = algos.get(algo)
                updates = 2 if dry else ALGORITHM_UPDATES.get(algo, 10)
                config = few_updates(module, module.Config.for_env(env), updates)
                _data_for(module, config)  # datasets built (and cached) here, not on the threads
            except Exception as error:  # noqa: BLE001 - recorded, the suite goes on
                row.update(ok=False, error=f"{type(error).__name__}: {str(error)[:500]}")
            jobs.append((row, config))

    def compile_job(row, config):
        if config is None or trace or seconds_left() < 20:
            return None
        return compile_timed(row["algorithm"], config, row["num_seeds"])

    rows = []
    with concurrent.futures.ThreadPoolExecutor(max(workers, 1)) as pool:
        futures = [pool.submit(compile_job, row, config) for row, config in jobs]
        for (row, config), future in zip(jobs, futures):
            rows.append(row)
            compiled = None
            if "error" in row:
                _log(f"{row['algorithm']} × {row['num_seeds']} seeds: {row['error']}")
                continue
            try:
                compiled = future.result()
                if not trace and seconds_left() < 15:
                    compiled = None  # compiled in time, but no time left to run it
                if compiled is None and not trace:
                    row.update(ok=False, skipped_for_budget=True)
                    _log(f"{row['algorithm']} × {row['num_seeds']} seeds: skipped (budget)")
                    continue
                r = timed_run(row["algorithm"], config, row["num_seeds"], trace_only=trace, compiled=compiled)
                if trace:
                    row.update(ok=True, traced_only=True)
                else:
                    row.update(ok=True, compile_seconds=r["compile_seconds"], run_seconds=r["run_seconds"],
                               env_steps_per_second=r["env_steps_per_second"], bytes_per_device=r["bytes_per_device"])
            except Exception as error:  # noqa: BLE001 - out of memory, compile failure: recorded, suite goes on
                row.update(ok=False, error=f"{type(error).__name__}: {str(error)[:500]}")
            _log(f"{row['algorithm']} {row['env']} × {row['num_seeds']} seeds: " + (
                row["error"] if not row["ok"] else "traced" if trace else
                f"compile {row['compile_seconds']:.1f} s (in parallel), run {row['run_seconds']:.1f} s"))
            del compiled
            _save_partial("algorithms", {"rows": rows, "compile_workers": workers})
    return {"rows": rows, "compile_workers": workers}


def device_name() -> str:
    import jax

    kind = jax.devices()[0].device_kind
    return "".join(c if c.isalnum() else "_" for c in kind).strip("_").lower() or "unknown"


def run_suite(parts=PARTS, dry: bool = False, trace: bool = False, out: str | None = None,
              target: float = 6000.0, time_limit: float = 600.0, budget: float | None = None,
              seed_counts=SEED_COUNTS, env_counts=ENV_COUNTS, algorithm_seeds=ALGORITHM_SEEDS,
              compile_workers: int = 8, command: str | None = None, algorithms=None,
              overrides: dict | None = None) -> dict:
    """Run `parts`; return {part: result}, saving after each part to `out` (when given).
    `trace` (dry runs): trace every program instead of compiling it, except the CartPole part's.
    `budget` (seconds): nothing new starts after it (a Brax run's time limit shrinks to fit, a
    part that would start too late is recorded as skipped), so a leased machine's time is kept.
    `overrides`: {"ant" | "halfcheetah": {field: value}} over `ANT_PPO` / `HALFCHEETAH_SAC`."""
    global _deadline, _checkpoint
    if trace and not dry:
        raise ValueError("trace=True is for dry runs only")
    from benchmarks.common import hardware

    _deadline = None if budget is None else time.perf_counter() + budget

    results = json.load(open(out)) if out and os.path.exists(out) else {}
    results.setdefault("parts", {})

    def checkpoint(part, value):
        if out:
            from purerl.report import atomic_json

            results["parts"][part] = {"ok": False, "partial": "killed before the part finished", **value}
            atomic_json(out, results)

    _checkpoint = checkpoint
    for part in parts:
        t0 = time.perf_counter()
        try:
            if seconds_left() < 30:
                raise TimeoutError(f"skipped: {seconds_left():.0f} s of the --budget left")
            limit = min(time_limit, max(seconds_left() - 30, 10))  # a Brax run ends inside the budget
            if part == "cartpole":
                value = part_cartpole(dry)
            elif part in BRAX_PARTS:
                value = _brax_part(part, (overrides or {}).get(part, {}), dry, trace, target, limit)
            elif part == "throughput":
                value = part_throughput(dry, trace, seed_counts, env_counts)
            elif part == "minatar":
                value = part_minatar(dry, trace, time_limit)
            else:
                value = part_algorithms(dry, trace, algorithm_seeds, compile_workers, algorithms)
            value = {"ok": True, **value}
        except Exception as error:  # noqa: BLE001 - recorded; the other parts still run
            traceback.print_exc()
            value = {"ok": False, "error": f"{type(error).__name__}: {str(error)[:2000]}"}
        value["part_seconds"] = time.perf_counter() - t0
        value["command"] = command or "python benchmarks/gpu_suite.py --parts " + part + (" --dry-run" if dry else "")
        value["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        results["parts"][part] = value
        results["hardware"] = hardware()
        if out:
            from purerl.report import atomic_json

            atomic_json(out, results)
            _log(f"saved {out}")
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--dry-run", action="store_true", help="a few updates of every configuration")
    parser.add_argument("--trace", action="store_true",
                        help="dry run: trace every program instead of compiling it (the CartPole part still runs)")
    parser.add_argument("--out", default=None, help="JSON path (default: benchmarks/results/gpu_<device>.json; "
                                                     "none in a dry run)")
    parser.add_argument("--target", type=float, default=6000.0, help="return for the Brax time-to-target figures")
    parser.add_argument("--time-limit", type=float, default=600.0, help="seconds after which a Brax run stops")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds for the whole suite: nothing new starts after it (a leased machine)")
    ints = lambda text: tuple(int(v) for v in text.split(","))  # noqa: E731
    parser.add_argument("--seed-counts", type=ints, default=SEED_COUNTS, help="throughput: PPO CartPole seeds")
    parser.add_argument("--env-counts", type=ints, default=ENV_COUNTS, help="throughput: PPO MJX ant environments")
    parser.add_argument("--algorithm-seeds", type=ints, default=ALGORITHM_SEEDS, help="algorithms: seed counts")
    parser.add_argument("--compile-workers", type=int, default=8, help="algorithms: programs compiled at once")
    parser.add_argument("--algorithms", nargs="+", default=None, help="algorithms: these only (default: all)")
    parser.add_argument("--set", nargs="*", default=[], metavar="PART.KEY=VALUE",
                        help="ant / halfcheetah: change a field of ANT_PPO / HALFCHEETAH_SAC (e.g. ant.anneal_lr=false)")
    args = parser.parse_args(argv)
    overrides = brax_overrides(args.set)
    unused = sorted(set(overrides) - set(args.parts))
    if unused:
        raise SystemExit(f"--set {', '.join(unused)}.…: not in --parts {' '.join(args.parts)}; add it to --parts "
                         "or drop the --set (it would change nothing)")
    out = args.out
    if out is None and not args.dry_run:
        from benchmarks.common import RESULTS_DIR

        out = os.path.join(RESULTS_DIR, f"gpu_{device_name()}.json")
    if args.trace and not args.dry_run:
        parser.error("--trace is for dry runs (--dry-run)")
    import jax

    _log(f"jax {jax.__version__} on {jax.devices()}")
    results = run_suite(args.parts, args.dry_run, args.trace, out, args.target, args.time_limit, args.budget,
                        args.seed_counts, args.env_counts, args.algorithm_seeds, args.compile_workers,
                        algorithms=args.algorithms, overrides=overrides, command=" ".join(["python benchmarks/gpu_suite.py", *(sys.argv[1:] if argv is None else argv)]))
    failed = [p for p, v in results["parts"].items() if p in args.parts and not v.get("ok")]
    if failed:
        _log(f"failed parts: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
