"""Speed. PPO on CartPole-v1: compile time, training throughput over 1–1024 seeds, and the
no-learning ceiling (the same rollout — same environment batch, same policy network,
action sampling — without any gradient step).

    python benchmarks/speed.py                # prints a table, saves benchmarks/results/speed.json
    python benchmarks/speed.py --parts sac    # only the SAC part (merged into speed.json)
    python benchmarks/speed.py --quick        # fewer seeds and steps (a smoke run)

Throughput runs use `eval_every = num_updates` (one evaluation, at the end) so that
training and ceiling do the same environment work; the one-seed 500k-step run uses
the default Config, evaluations included, as `purerl train` runs it. Then SAC on
Pendulum-v1 (its preset, 20k steps) with one seed and with eight.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.common import RESULTS_DIR, hardware, save  # noqa: E402
from purerl.algos import ppo, sac  # noqa: E402


def rollout_ceiling(config: ppo.Config, key):
    """`num_updates` rollouts of PPO's acting loop with no learning."""
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

    carry, rewards = jax.lax.scan(one_rollout, (state.env_state, state.obs, state.rng), None,
                                  length=config.num_updates)
    return rewards.sum()


def measure(fn, config, num_seeds, seed=0):
    keys = jax.random.split(jax.random.PRNGKey(seed), num_seeds)
    f = jax.jit(jax.vmap(fn, in_axes=(None, 0)))
    t0 = time.perf_counter()
    compiled = f.lower(config, keys).compile()
    t1 = time.perf_counter()
    jax.block_until_ready(compiled(config, keys))
    t2 = time.perf_counter()
    steps = config.num_updates * config.env_steps_per_update * num_seeds
    return {"num_seeds": num_seeds, "compile_seconds": t1 - t0, "run_seconds": t2 - t1,
            "env_steps": steps, "env_steps_per_second": steps / (t2 - t1)}


def main():
    sys.stdout.reconfigure(line_buffering=True)  # show each figure as it is measured
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--parts", nargs="+", choices=("ppo", "sac"), default=["ppo", "sac"])
    args = parser.parse_args()
    command = "python benchmarks/speed.py --parts " + " ".join(args.parts)
    # Each part is saved as it grows, merged with the parts measured earlier (each part records
    # its own hardware and command), so an interrupted run keeps what it measured.
    save_part = (lambda name, value: None) if args.quick else functools.partial(_save_part, command)
    if "ppo" in args.parts:
        measure_ppo(args.quick, functools.partial(save_part, "ppo"))
    if "sac" in args.parts:
        save_part("sac_pendulum", measure_sac(args.quick))
    if args.quick:
        print(hardware())


def _save_part(command: str, name: str, value: dict) -> None:
    path = os.path.join(RESULTS_DIR, "speed.json")
    earlier = json.load(open(path)) if os.path.exists(path) else {}
    parts = {**earlier.get("parts", {}), name: {"command": command, "hardware": hardware(), **value}}
    save("speed", {"parts": parts})


def measure_ppo(quick: bool, save_part) -> dict:
    seed_counts = [1, 16] if quick else [1, 16, 64, 256, 1024]
    results = {"single_seed_default": None, "throughput": []}

    # 1. The target: one seed, 500k steps, default Config (evaluations included).
    config = ppo.Config(total_timesteps=50_000 if quick else 500_000)
    keys = jax.random.PRNGKey(0)
    t0 = time.perf_counter()
    compiled = jax.jit(ppo.train).lower(config, keys).compile()
    t1 = time.perf_counter()
    _, _, returns = jax.block_until_ready(compiled(config, keys))
    t2 = time.perf_counter()
    results["single_seed_default"] = {"total_timesteps": config.total_timesteps, "compile_seconds": t1 - t0,
                                      "run_seconds": t2 - t1, "compile_plus_run_seconds": t2 - t0,
                                      "final_eval_return": float(returns[-1].mean())}
    save_part(results)
    print(f"1 seed, {config.total_timesteps:,} steps, default config: compile {t1 - t0:.1f} s + run {t2 - t1:.1f} s "
          f"= {t2 - t0:.1f} s (final eval return {float(returns[-1].mean()):.1f})")

    # 2. Throughput against the no-learning ceiling, per number of seeds.
    print(f"{'seeds':>6}{'train steps/s':>16}{'ceiling steps/s':>18}{'ratio':>8}{'compile s':>11}")
    for n in seed_counts:
        steps = max(20_480, (1_000_000 if not quick else 200_000) // n // 512 * 512)
        config = ppo.Config(total_timesteps=steps, eval_every=steps // 512, eval_episodes=1)
        train = measure(ppo.train, config, n)
        ceiling = measure(rollout_ceiling, config, n)
        ratio = train["env_steps_per_second"] / ceiling["env_steps_per_second"]
        results["throughput"].append({"num_seeds": n, "total_timesteps_per_seed": steps, "train": train,
                                      "ceiling": ceiling, "train_over_ceiling": ratio})
        print(f"{n:>6}{train['env_steps_per_second']:>16,.0f}{ceiling['env_steps_per_second']:>18,.0f}"
              f"{ratio:>8.2f}{train['compile_seconds']:>11.1f}")
        save_part(results)
    return results


def measure_sac(quick: bool) -> dict:
    """Issue 4's target: SAC on Pendulum-v1 (preset, 20k steps): one seed, then 8 seeds."""
    sac_config = sac.Config.for_env("Pendulum-v1", total_timesteps=4_000 if quick else 20_000)
    results = []
    for n in (1, 8):
        keys = jax.random.split(jax.random.PRNGKey(0), n)
        t0 = time.perf_counter()
        compiled = jax.jit(jax.vmap(sac.train, in_axes=(None, 0))).lower(sac_config, keys).compile()
        t1 = time.perf_counter()
        _, _, sac_returns = jax.block_until_ready(compiled(sac_config, keys))
        t2 = time.perf_counter()
        grad_steps = sac_config.num_updates * sac_config.gradient_steps_per_update * n
        results.append({"num_seeds": n, "total_timesteps": sac_config.total_timesteps,
                        "compile_seconds": t1 - t0, "run_seconds": t2 - t1, "compile_plus_run_seconds": t2 - t0,
                        "gradient_updates_per_second": grad_steps / (t2 - t1),
                        "final_eval_return_mean": float(sac_returns[:, -1].mean())})
        print(f"SAC Pendulum-v1 {sac_config.total_timesteps:,} steps, {n} seed(s): compile {t1 - t0:.1f} s + run "
              f"{t2 - t1:.1f} s = {t2 - t0:.1f} s; final eval return {float(sac_returns[:, -1].mean()):.1f}")
    one, eight = results
    ratio = eight["compile_plus_run_seconds"] / one["compile_plus_run_seconds"]
    print(f"8 seeds / 1 seed wall time: {ratio:.2f}×")
    return {"runs": results, "eight_over_one_wall_time": ratio}


if __name__ == "__main__":
    main()
