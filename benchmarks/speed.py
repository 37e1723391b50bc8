"""Speed on this machine: whole-process command-line runs, and training throughput against
a no-learning reference for PPO, SAC and DQN over 1–1024 seeds.

    python benchmarks/speed.py                  # every part; prints, saves benchmarks/results/speed.json
    python benchmarks/speed.py --parts cli      # one part (merged into speed.json with the others)
    python benchmarks/speed.py --quick          # few seeds and steps, nothing saved (a smoke run)

Parts:
* `cli` — what a user waits for, as `time purerl …` measures it (a fresh process each): `purerl list`,
  `purerl --help`, PPO CartPole-v1 500k steps with one seed from an empty compilation cache
  and again from the cache the first run filled, SAC Pendulum-v1 20k steps with one seed and
  with eight (each from an empty cache), the eight split over one CPU device per core as the CLI
  does (`purerl.run.use_cpu_cores`) and, as the control, on one device.
* `ppo`, `sac`, `dqn` — env steps/s of `jax.jit(jax.vmap(train))` for 1, 16, 256 and 1024
  seeds, and of the same program without learning: for SAC and DQN the same `train` with
  `learning_starts` beyond the run (the learning branch never runs; acting, the replay
  buffer and the evaluation do), for PPO its rollout (same environments, policy network and
  action sampling, no gradient step). The run length per seed shrinks as the seed count grows
  (a fixed budget of env steps over all seeds, never below a few updates); every row records
  the 1-minute load average when it started, since other work on the machine slows it.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.common import RESULTS_DIR, hardware, save  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = (1, 16, 256, 1024)


# ----------------------------------------------------------------------------- whole process
def _purerl(args: list[str], cache_dir: str, runs_dir: str, xla_flags: str | None = None) -> dict:
    """One `purerl …` process: wall seconds, and the run's results.json timing (and devices) when it
    trained. `xla_flags` replaces XLA_FLAGS for it."""
    env = {**os.environ, "PURERL_CACHE_DIR": cache_dir, "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")}
    if xla_flags is not None:
        env["XLA_FLAGS"] = xla_flags
    cmd = [sys.executable, "-m", "purerl.cli", *args]
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=runs_dir, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"{' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    out = {"command": "purerl " + " ".join(args), "wall_seconds": wall, "load_average_1min": load}
    if args[0] == "train":
        name = args[args.index("--run-name") + 1]
        results = json.load(open(os.path.join(runs_dir, "runs", name, "results.json")))
        t = results["timing"]
        out.update(compile_seconds=t["compile_seconds"], run_seconds=t["run_seconds"],
                   compile_cache_hits=t.get("compile_cache_hits"),
                   reported_cache_hit="compilation cache hit" in proc.stdout,
                   final_eval_return_mean=results["final_eval_return"].get("mean"),
                   devices=len(json.load(open(os.path.join(runs_dir, "runs", name, "config.json")))["devices"]))
    if xla_flags is not None:
        out["xla_flags"] = xla_flags
    return out


def measure_cli(quick: bool, save_part) -> dict:
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        def cache(name):
            return os.path.join(tmp, "cache-" + name)

        for label, args in (("list", ["list"]), ("help", ["--help"])):
            runs = [_purerl(args, cache("none"), tmp)["wall_seconds"] for _ in range(5)]
            results[label] = {"command": "purerl " + " ".join(args), "wall_seconds_median_of_5": statistics.median(runs)}
            print(f"purerl {' '.join(args)}: {statistics.median(runs):.2f} s (median of 5)")
        ppo_steps = "50000" if quick else "500000"
        ppo = ["train", "ppo", "--env", "CartPole-v1", "--num-seeds", "1", "--total-timesteps", ppo_steps,
               "--no-progress"]
        results["ppo_1_seed_cold"] = _purerl(ppo + ["--run-name", "ppo-cold"], cache("ppo"), tmp)
        results["ppo_1_seed_cached"] = _purerl(ppo + ["--run-name", "ppo-cached"], cache("ppo"), tmp)
        for key in ("ppo_1_seed_cold", "ppo_1_seed_cached"):
            r = results[key]
            print(f"{key}: {r['wall_seconds']:.1f} s whole process (compile {r['compile_seconds']:.1f} s, run "
                  f"{r['run_seconds']:.1f} s, cache hits {r['compile_cache_hits']}); return "
                  f"{r['final_eval_return_mean']:.1f}")
        save_part(results)
        sac_steps = "4000" if quick else "20000"
        # The 8-seed run is split over one CPU device per core (`run.use_cpu_cores`); the control
        # keeps one device, as a user's XLA_FLAGS can.
        one_device = " ".join(os.environ.get("XLA_FLAGS", "").split() + ["--xla_force_host_platform_device_count=1"])
        for key, n, flags in (("sac_1_seeds_cold", "1", None), ("sac_8_seeds_cold", "8", None),
                              ("sac_8_seeds_one_cpu_device_cold", "8", one_device)):
            sac = ["train", "sac", "--env", "Pendulum-v1", "--num-seeds", n, "--total-timesteps", sac_steps,
                   "--no-progress", "--run-name", key]
            results[key] = r = _purerl(sac, cache(key), tmp, xla_flags=flags)
            print(f"SAC Pendulum-v1 {sac_steps} steps, {n} seed(s) on {r['devices']} device(s): {r['wall_seconds']:.1f} "
                  f"s whole process (compile {r['compile_seconds']:.1f} s, run {r['run_seconds']:.1f} s); return "
                  f"{r['final_eval_return_mean']:.1f}")
        for key in ("sac_8_seeds_cold", "sac_8_seeds_one_cpu_device_cold"):
            ratio = results[key]["wall_seconds"] / results["sac_1_seeds_cold"]["wall_seconds"]
            results[key.replace("_seeds", "").replace("_cold", "") + "_over_1_wall"] = ratio
            print(f"SAC 8 seeds ({results[key]['devices']} device(s)) / 1 seed, whole process: {ratio:.2f}×")
        save_part(results)
    return results


# ----------------------------------------------------------------------------- throughput
def _measure(fn, config, num_seeds: int) -> dict:
    import jax

    keys = jax.random.split(jax.random.PRNGKey(0), num_seeds)
    f = jax.jit(jax.vmap(fn, in_axes=(None, 0)))
    t0 = time.perf_counter()
    compiled = f.lower(config, keys).compile()
    t1 = time.perf_counter()
    jax.block_until_ready(compiled(config, keys))
    t2 = time.perf_counter()
    steps = config.num_updates * config.env_steps_per_update * num_seeds
    return {"compile_seconds": t1 - t0, "run_seconds": t2 - t1, "env_steps": steps,
            "env_steps_per_second": steps / (t2 - t1)}


def ppo_rollout(config, key):
    """PPO's acting loop for `num_updates` rollouts: same environments, policy network and
    action sampling as `ppo.update`, no gradient step."""
    import jax

    from purerl.algos import ppo

    env = ppo.make_env(config.env, config.normalize_obs)
    network = ppo.make_network(config, env)
    state = ppo.init(config, key)

    def one_rollout(carry, _):
        def env_step(c, _):
            env_state, obs, rng = c
            rng, action_key, step_key = jax.random.split(rng, 3)
            dist, value = network.apply(state.params, obs)
            action = dist.sample(seed=action_key)
            env_state, ts = env.step(step_key, env_state, action)
            return (env_state, ts.obs, rng), (dist.log_prob(action), value, ts.reward)

        carry, out = jax.lax.scan(env_step, carry, None, length=config.num_steps)
        return carry, out[2].sum()

    _, rewards = jax.lax.scan(one_rollout, (state.env_state, state.obs, state.rng), None, length=config.num_updates)
    return rewards.sum()


def _configs(algo: str, steps_per_seed: int):
    """(config, no-learning function and config) for `steps_per_seed` env steps per seed."""
    from purerl.algos import dqn, ppo, sac

    def one_evaluation(config):  # at the end only, one episode
        return dataclasses.replace(config, eval_every=config.num_updates, eval_episodes=1)

    if algo == "ppo":
        config = one_evaluation(ppo.Config(total_timesteps=steps_per_seed))
        return config, ppo.train, ppo_rollout, config
    if algo == "sac":  # the Pendulum preset, learning from the first full batch
        config = one_evaluation(sac.Config.for_env("Pendulum-v1", total_timesteps=steps_per_seed, learning_starts=128,
                                                   buffer_size=steps_per_seed))
        return config, sac.train, sac.train, dataclasses.replace(config, learning_starts=steps_per_seed + 1)
    config = one_evaluation(dqn.Config(total_timesteps=steps_per_seed, learning_starts=256))
    return config, dqn.train, dqn.train, dataclasses.replace(config, learning_starts=steps_per_seed + 1)


# env steps over all seeds per measurement, and the fewest per seed (a few updates)
BUDGETS = {"ppo": (2_000_000, 2_048), "sac": (40_000, 400), "dqn": (400_000, 1_024)}


def measure_throughput(algo: str, quick: bool, save_part, seeds=SEEDS) -> dict:
    budget, least = BUDGETS[algo]
    if quick:
        seeds, budget = (1, 4), budget // 10
    rows = []
    print(f"{algo}: {'seeds':>6}{'steps/seed':>11}{'train steps/s':>15}{'no-learning steps/s':>21}{'ratio':>7}"
          f"{'compile s':>10}{'load':>6}")
    for n in seeds:
        load = os.getloadavg()[0]
        config, train, reference, reference_config = _configs(algo, max(budget // n, least))
        train_row = _measure(train, config, n)
        reference_row = _measure(reference, reference_config, n)
        ratio = train_row["env_steps_per_second"] / reference_row["env_steps_per_second"]
        rows.append({"num_seeds": n, "env_steps_per_seed": config.num_updates * config.env_steps_per_update,
                     "train": train_row, "no_learning": reference_row, "train_over_no_learning": ratio,
                     "load_average_1min": load})
        print(f"{algo}: {n:>6}{rows[-1]['env_steps_per_seed']:>11}{train_row['env_steps_per_second']:>15,.0f}"
              f"{reference_row['env_steps_per_second']:>21,.0f}{ratio:>7.2f}{train_row['compile_seconds']:>10.1f}"
              f"{load:>6.1f}")
        save_part({"rows": rows})
    return {"rows": rows}


# ----------------------------------------------------------------------------- main
def _save_part(command: str, name: str, value: dict) -> None:
    path = os.path.join(RESULTS_DIR, "speed.json")
    earlier = json.load(open(path)) if os.path.exists(path) else {}
    parts = {**earlier.get("parts", {}), name: {"command": command, "hardware": hardware(), **value}}
    save("speed", {"parts": parts})


def main():
    sys.stdout.reconfigure(line_buffering=True)  # show each figure as it is measured
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--parts", nargs="+", choices=("cli", "ppo", "sac", "dqn"), default=["cli", "ppo", "sac", "dqn"])
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    args = parser.parse_args()
    for part in args.parts:
        # Each part is saved as it grows, merged with the parts measured earlier (each part records its own
        # hardware and command), so an interrupted run keeps what it measured.
        command = f"python benchmarks/speed.py --parts {part}" + (
            "" if args.seeds == list(SEEDS) else " --seeds " + " ".join(map(str, args.seeds)))
        save_part = (lambda value: None) if args.quick else functools.partial(_save_part, command, part)
        if part == "cli":
            measure_cli(args.quick, save_part)
        else:
            measure_throughput(part, args.quick, save_part, tuple(args.seeds))
    if args.quick:
        print(hardware())


if __name__ == "__main__":
    main()
