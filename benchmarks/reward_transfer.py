"""Reward transfer (AIRL's point, Fu et al. 2018 §7.1): a reward learned from demonstrations
in one environment trains a fresh agent in an environment with other dynamics.

AIRL and GAIL learn on Pendulum-v1 from `--episodes` scripted-expert episodes (their Pendulum
presets, `--seeds` seeds). Each of the first `--rewards` seeds' learned rewards — AIRL's g(s)
(`airl.reward_function`) and GAIL's −log(1 − D(s, a)) — replaces the reward of a changed
Pendulum (mass `--mass`, the rest gymnax's), registered with `purerl.envs.variant`; a fresh PPO
(Pendulum preset, `--ppo-steps` steps, `--ppo-seeds` seeds) trains on it and is evaluated on the
changed Pendulum's *true* reward. References on the same changed Pendulum: PPO trained on the
true reward, the scripted expert (its swing-up + LQR constants are the unchanged Pendulum's)
and uniformly random actions.

    python benchmarks/reward_transfer.py          # → benchmarks/results/reward_transfer.json
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.common import save  # noqa: E402


def gail_reward_function(config, state):
    """GAIL's policy reward softplus(d(s, a)) of one seed as `reward_fn(obs, action, next_obs)`,
    the action in the environment's units (rescaled to the agent's [−1, 1] as the demonstrations')."""
    import jax.numpy as jnp

    from purerl import envs
    from purerl.algos import gail

    env = gail.make_env(config.env)
    space = envs.make(config.env, rescale_actions=False).action_space
    low, high = jnp.asarray(space.low), jnp.asarray(space.high)
    network = gail.make_discriminator(config)

    def reward_fn(obs, action, next_obs):
        agent_action = 2.0 * (jnp.asarray(action, jnp.float32) - low) / (high - low) - 1.0
        x = gail.pair_features(env, obs[None], agent_action[None], state.obs_mean, state.obs_std)
        return gail.policy_reward(network.apply(state.disc_params, x)[0, 0], config.reward)

    return reward_fn


def ppo_on(env_name: str, true_env: str, steps: int, seeds: int) -> np.ndarray:
    """PPO's Pendulum preset on `env_name` for `steps` steps; returns each seed's mean true
    return on `true_env` (20 deterministic episodes with the run's frozen observation statistics)."""
    import jax

    from purerl import envs
    from purerl.algos import ppo
    from purerl.evaluation import evaluate

    config = ppo.Config(**{**ppo.PRESETS["Pendulum-v1"], "env": env_name, "total_timesteps": steps,
                           "eval_every": 10_000})
    keys = jax.random.split(jax.random.PRNGKey(100), seeds)
    state, _, _ = jax.jit(jax.vmap(functools.partial(ppo.train, config)))(keys)
    truth = envs.make(true_env, normalize_obs=config.normalize_obs)

    def score(s, key):
        return evaluate(truth, functools.partial(ppo.act, config, s.params), key, 20, s.env_state.obs_stats).mean()

    return np.asarray(jax.jit(jax.vmap(score))(state, jax.random.split(jax.random.PRNGKey(7), seeds)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=4, help="AIRL / GAIL seeds")
    parser.add_argument("--rewards", type=int, default=2, help="learned rewards transferred (first seeds)")
    parser.add_argument("--mass", type=float, default=1.3)
    parser.add_argument("--ppo-steps", type=int, default=409_600)
    parser.add_argument("--ppo-seeds", type=int, default=4)
    parser.add_argument("--imitation-steps", type=int, help="AIRL's and GAIL's total_timesteps (default: preset)")
    parser.add_argument("--out", default="reward_transfer")
    args = parser.parse_args()

    import jax

    from purerl import datasets, envs, experts
    from purerl.algos import airl, gail

    heavy = envs.variant(f"Pendulum-v1-m{args.mass}", "Pendulum-v1", m=args.mass)
    demos = experts.demonstrations("Pendulum-v1", "scripted", episodes=args.episodes, seed=0)
    env = envs.make(heavy)
    refs = {"expert_on_changed": datasets.mean_return(env, experts.pendulum_swingup, jax.random.PRNGKey(1), 100),
            "random_on_changed": datasets.mean_return(env, datasets.random_policy(env), jax.random.PRNGKey(2), 100),
            "expert_on_original": demos.info["expert_return"], "random_on_original": demos.info["random_return"]}
    print(refs, flush=True)
    t0 = time.perf_counter()
    true_reward = ppo_on(heavy, heavy, args.ppo_steps, args.ppo_seeds)
    rows = [{"reward": "true (changed Pendulum)", "learner_seed": None, "returns_per_ppo_seed": true_reward.tolist(),
             "seconds": time.perf_counter() - t0}]
    print(rows[-1], flush=True)
    for name, module, export in (("airl g(s)", airl, airl.reward_function), ("gail -log(1-D)", gail, gail_reward_function)):
        config = module.Config.for_env("Pendulum-v1", **({"total_timesteps": args.imitation_steps}
                                                         if args.imitation_steps else {}))
        keys = jax.random.split(jax.random.PRNGKey(0), args.seeds)
        t0 = time.perf_counter()
        state, _, returns = jax.jit(jax.vmap(module.train, in_axes=(None, 0, None)))(config, keys, demos.transitions)
        imitation = np.asarray(returns[:, -1]).mean(-1)
        print(f"{name}: imitation on the original Pendulum, final return per seed {imitation.round(1)} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
        for i in range(args.rewards):
            seed_state = jax.tree.map(lambda x: x[i], state)
            variant = envs.variant(f"Pendulum-v1-m{args.mass}-{module.__name__.split('.')[-1]}-{i}", "Pendulum-v1",
                                   reward_fn=export(config, seed_state), m=args.mass)
            t0 = time.perf_counter()
            r = ppo_on(variant, heavy, args.ppo_steps, args.ppo_seeds)
            rows.append({"reward": name, "learner_seed": i, "imitation_return_original": float(imitation[i]),
                         "returns_per_ppo_seed": r.tolist(), "seconds": time.perf_counter() - t0})
            print(rows[-1], flush=True)
    for row in rows:
        r = np.array(row["returns_per_ppo_seed"])
        row["mean"] = float(r.mean())
        row["normalized"] = float(100 * (r.mean() - refs["random_on_changed"])
                                  / (refs["expert_on_changed"] - refs["random_on_changed"]))
    save(args.out, {"command": "python benchmarks/reward_transfer.py " + " ".join(sys.argv[1:]), "mass": args.mass,
                    "episodes": args.episodes, "ppo_steps": args.ppo_steps, "references": refs, "rows": rows})


if __name__ == "__main__":
    main()
