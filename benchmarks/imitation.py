"""Imitation benchmark: the fraction of the expert's return against the number of demonstrations.

For each environment (CartPole-v1, Pendulum-v1) and each number of scripted-expert episodes
(`purerl.experts.demonstrations(env, "scripted", N, seed=0)`; default 1, 4, 16), every imitation
algorithm trains with its preset (`Config.for_env`), `--seeds` seeds in one vmapped program.
Per row: the normalized score 100·(R − R_random)/(R_expert − R_random) of each seed's final
evaluation (deterministic policy, true reward), mean ± std and IQM with its 95% stratified
bootstrap CI (rliable), environment steps and gradient steps per seed, compile and run seconds.
BC learns from the demonstrations alone (its preset: 5,000 gradient steps);
DAgger also queries the expert in the states it visits; GAIL, AIRL and apprenticeship learning
(when registered) interact with the environment and never see the expert's reward.

    python benchmarks/imitation.py                          # → benchmarks/results/imitation.json + .png
    python benchmarks/imitation.py --envs CartPole-v1 --algos bc dagger --episodes 1 4 --seeds 10
    python benchmarks/imitation.py --algos airl --envs CartPole-v1 --episodes 1 --set total_timesteps=400000 \
        --out imitation_airl_400k                           # Config overrides (recorded in each row)
    python benchmarks/imitation.py --readme imitation       # the README's table from saved JSON

The Brax setting (an accelerator; the seed-004 homework: BC on Walker2d from few expert
episodes against DAgger): a PPO expert per environment with Brax's published settings
(`BRAX_EXPERT_PPO`), or the best seed of a purerl run given by `--expert-run`, demonstrates
1, 4, 16 episodes; BC and DAgger learn with the same 10,000 gradient steps (`BRAX_IMITATION`).

    python benchmarks/imitation.py --brax brax/walker2d brax/hopper       # → results/imitation_brax.json
    python benchmarks/imitation.py --brax brax/walker2d --expert-steps 20000000 --expert-seeds 4
    python benchmarks/imitation.py --brax brax/hopper --dry-run --seeds 2  # every step, tiny (CPU: ~3.5 min)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.common import RESULTS_DIR, down, save  # noqa: E402

ALGOS = ["bc", "dagger", "gail", "airl", "apprenticeship"]
ENVS = ["CartPole-v1", "Pendulum-v1"]
EPISODES = [1, 4, 16]


def run_row(algo: str, env: str, episodes: int, seeds: int, seed: int = 0, demos=None, overrides=None) -> dict:
    """One cell: `algo` with its preset (and `overrides`) on `episodes` expert episodes (`demos`,
    default the scripted expert's), `seeds` seeds vmapped; the normalized final score per seed."""
    import jax

    from purerl import algos, experts, report

    if demos is None:
        demos = experts.demonstrations(env, "scripted", episodes=episodes, seed=0)
    module = algos.get(algo)
    config = module.Config.for_env(env, **(overrides or {}))
    keys = jax.random.split(jax.random.PRNGKey(seed), seeds)
    program = jax.jit(jax.vmap(module.train, in_axes=(None, 0, None)), static_argnums=0)
    t0 = time.perf_counter()
    compiled = program.lower(config, keys, demos.transitions).compile()
    compile_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, _, returns = compiled(keys, demos.transitions)
    returns = np.asarray(jax.block_until_ready(returns))
    run_seconds = time.perf_counter() - t0
    final = np.nanmean(returns[:, -1], axis=-1)
    r_expert, r_random = demos.info["expert_return"], demos.info["random_return"]
    score = 100.0 * (final - r_random) / (r_expert - r_random)
    offline = getattr(module, "OFFLINE", False)
    return {"algorithm": algo, "env": env, "episodes": episodes, "demonstration_steps": demos.size,
            "num_seeds": seeds, "expert_return": r_expert, "random_return": r_random,
            "normalized_score": report.summarize(score), "final_return_per_seed": final.tolist(),
            "env_steps_per_seed": 0 if offline else int(config.num_updates * config.env_steps_per_update),
            "gradient_steps_per_seed": int(config.num_gradient_steps) if offline else None,
            "compile_seconds": compile_seconds, "run_seconds": run_seconds}


# ----------------------------------------------------------------------------- Brax (an accelerator)
# The seed-004 homework setting (CS 285 hw1): BC on Walker2d/Hopper from few expert episodes
# against DAgger, the expert a trained agent. Here the expert is purerl's PPO with Brax's
# published settings for hopper and walker2d (Brax training colab: 50M steps, 4096 envs, unroll
# 20, 32 minibatches of 2048 unrolls, 4 epochs, γ 0.97, lr 3e-4, entropy 1e-3, observation
# normalization; Brax's reward scaling 10 has no PPO field here and is left out, and the networks
# are the GPU suite's ant ones, 4 × 64 tanh, not Brax's 4 × 32 / 5 × 256 swish). As for ant in
# the GPU suite, 4096 envs × 20 steps in 2 minibatches keep Brax's minibatch (40,960
# transitions) and its 128 gradient steps per 1,310,720 env steps. As Brax, an unclipped value
# loss; unlike Brax, an annealed learning rate and the gradient's global norm clipped at 1 (the
# GPU suite's ant choices, measured on Pendulum by benchmarks/ppo_ablation.py).
BRAX_ENVS = ["brax/walker2d", "brax/hopper"]
BRAX_EXPERT_PPO = dict(total_timesteps=50_000_000, num_envs=4096, num_steps=20, num_minibatches=2, update_epochs=4,
                       gamma=0.97, gae_lambda=0.95, learning_rate=3e-4, ent_coef=1e-3, clip_eps=0.3,
                       clip_value_loss=False, normalize_obs=True, hidden_sizes=(64, 64, 64, 64), activation="tanh",
                       max_grad_norm=1.0,
                       eval_every=10, eval_episodes=16)
# The homework's budget: DAgger 10 rounds, each labelling 1,000 visited states and taking 1,000
# gradient steps; BC the same 10,000 gradient steps on the demonstrations alone.
BRAX_IMITATION = {
    "bc": dict(num_gradient_steps=10_000, steps_per_update=1_000, batch_size=256, hidden_sizes=(256, 256),
               learning_rate=1e-3, policy="deterministic", eval_every=1, eval_episodes=10),
    "dagger": dict(num_rounds=10, num_envs=4, rollout_steps=250, steps_per_update=1_000, batch_size=256,
                   hidden_sizes=(256, 256), learning_rate=1e-3, policy="deterministic", eval_every=1,
                   eval_episodes=10),
}
# --dry-run: every step of the Brax pipeline, tiny, on any machine (episodes of DRY_EPISODE_LENGTH steps)
DRY_EPISODE_LENGTH = 10
DRY_EXPERT_PPO = dict(total_timesteps=2 * 4 * 5, num_envs=4, num_steps=5, num_minibatches=2, update_epochs=1,
                      eval_every=1, eval_episodes=1)
DRY_IMITATION = {"bc": dict(num_gradient_steps=20, steps_per_update=10, batch_size=16, hidden_sizes=(16,),
                            eval_every=1, eval_episodes=1),
                 "dagger": dict(num_rounds=2, num_envs=2, rollout_steps=5, steps_per_update=10, batch_size=16,
                                hidden_sizes=(16,), eval_every=1, eval_episodes=1)}


def train_expert(env: str, steps: int | None, seeds: int, runs_dir: str, dry: bool = False) -> str:
    """Train PPO with `BRAX_EXPERT_PPO` (`steps` env steps if given) on `env` through the runner,
    `seeds` seeds; return the run directory."""
    from purerl import run
    from purerl.algos import ppo

    settings = {**BRAX_EXPERT_PPO, **(DRY_EXPERT_PPO if dry else {})}
    if steps is not None:
        settings["total_timesteps"] = steps
    config = ppo.Config(env=env, **settings)
    name = f"expert-ppo-{env.replace('/', '_')}-{time.strftime('%Y%m%d-%H%M%S')}"
    result = run.train("ppo", config, run.RunOptions(num_seeds=seeds, runs_dir=runs_dir, run_name=name,
                                                     progress=False, plot=False, checkpoint_every=0))
    return result.run_dir


def expert_facts(run_dir: str) -> dict:
    """The run's seeds' final evaluation returns (its results.json) and the best seed, which demonstrates."""
    import json

    import numpy as np

    with open(os.path.join(run_dir, "results.json")) as f:
        results = json.load(f)
    final = np.array([np.nan if v is None else v for v in results["final_eval_return_per_seed"]], np.float64)
    return {"run_dir": run_dir, "best_seed": int(np.nanargmax(final)), "final_return_per_seed": final.tolist(),
            "env_steps_per_seed": results["env_steps_per_seed"], "timing": results["timing"]}


def run_brax(env: str, algo_names: list[str], episode_counts: list[int], seeds: int, expert_run: str | None,
             expert_steps: int | None, expert_seeds: int, runs_dir: str, dry: bool = False, overrides_of=None):
    """Yield the rows of `env` (a Brax environment; any continuous-action gymnax one works too, as
    in the dry-run test): `algo_names` from each of `episode_counts` episodes of a PPO expert,
    trained here or read from `expert_run` (its best seed); `overrides_of[algo]` (the `--set`
    fields) go over `BRAX_IMITATION`."""
    from purerl import envs, experts

    name = env
    if dry:  # short episodes, so that the pipeline runs on a CPU
        name = f"{env}-dry"
        length = {"episode_length" if env.startswith("brax/") else "max_steps_in_episode": DRY_EPISODE_LENGTH}
        try:
            envs.variant(name, env, **length)
        except ValueError:  # registered by an earlier call in this process
            pass
    if expert_run is None:
        expert_run = train_expert(name, expert_steps, expert_seeds, runs_dir, dry)
    expert_info = expert_facts(expert_run)
    act = experts.from_run(expert_run, expert_info["best_seed"])
    if act.env != name:
        raise ValueError(f"--expert-run {expert_run!r} trained on {act.env!r}, not on {name!r}")
    label = f"ppo-expert-{name}"
    experts.register(label, act)
    for episodes in episode_counts:
        demos = experts.demonstrations(name, act, episodes=episodes, seed=0, reference_episodes=2 if dry else 100)
        for algo in algo_names:
            overrides = {**BRAX_IMITATION.get(algo, {}), **(DRY_IMITATION.get(algo, {}) if dry else {}),
                         **(overrides_of or {}).get(algo, {})}
            if algo == "dagger":
                overrides["expert"] = label
            row = run_row(algo, name, episodes, seeds, demos=demos, overrides=overrides)
            yield {**row, "env": env, "expert": expert_info, "overrides": overrides, "dry_run": dry}


def plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = list(dict.fromkeys(r["env"] for r in rows))
    fig, axes = plt.subplots(1, len(envs), figsize=(5 * len(envs), 3.6), squeeze=False)
    for ax, env in zip(axes[0], envs):
        for algo in dict.fromkeys(r["algorithm"] for r in rows if r["env"] == env):
            rs = sorted((r for r in rows if r["env"] == env and r["algorithm"] == algo), key=lambda r: r["episodes"])
            x = [r["episodes"] for r in rs]
            iqm = [r["normalized_score"]["iqm"] for r in rs]
            low = [r["normalized_score"]["iqm_ci95"][0] for r in rs]
            high = [r["normalized_score"]["iqm_ci95"][1] for r in rs]
            ax.plot(x, iqm, marker="o", label=algo)
            ax.fill_between(x, low, high, alpha=0.2)
        ax.axhline(100.0, color="k", lw=0.8, ls="--")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("expert episodes")
        ax.set_ylabel("normalized score (IQM, 95% CI)")
        ax.set_title(env)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algos", nargs="+", default=ALGOS)
    parser.add_argument("--envs", nargs="+", default=ENVS)
    parser.add_argument("--episodes", nargs="+", type=int, default=EPISODES)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--out", default="imitation")
    parser.add_argument("--readme", nargs="+", metavar="NAME", help="print the README table of saved "
                        "benchmarks/results/NAME.json files and exit")
    parser.add_argument("--brax", nargs="+", metavar="ENV", choices=BRAX_ENVS,
                        help=f"the Brax setting instead (an accelerator): a PPO expert per ENV ({', '.join(BRAX_ENVS)}), "
                             "then --algos (default bc dagger) from --episodes of its demonstrations")
    parser.add_argument("--expert-run", default=None, help="Brax: the expert's purerl run directory (default: train one)")
    parser.add_argument("--expert-steps", type=int, default=None,
                        help=f"Brax: the PPO expert's env steps (default Brax's {BRAX_EXPERT_PPO['total_timesteps']:,})")
    parser.add_argument("--expert-seeds", type=int, default=1, help="Brax: PPO expert seeds; the best one demonstrates")
    parser.add_argument("--runs-dir", default="runs", help="Brax: where the expert's run directory goes")
    parser.add_argument("--dry-run", action="store_true", help="Brax: every step, tiny, 10-step episodes (any machine)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="override Config fields of every --algos (e.g. total_timesteps=400000; recorded per row)")
    args = parser.parse_args(argv)
    if args.readme:
        return readme(args.readme)
    from benchmarks.learning import parse_overrides
    from purerl import algos

    # every --set checked against every algorithm's Config before anything compiles
    overrides_of = {a: parse_overrides(algos.get(a).Config, args.set) for a in args.algos if a in algos.ALGORITHMS}
    if args.brax:
        if args.expert_run and len(args.brax) > 1:
            parser.error("--expert-run is one environment's expert: give one --brax environment with it")
        return main_brax(args, argv, overrides_of)
    rows, failures = [], []
    for env in args.envs:
        for algo in args.algos:
            if algo not in algos.ALGORITHMS:
                print(f"skip {algo}: not registered", flush=True)
                continue
            for episodes in args.episodes:
                try:
                    row = run_row(algo, env, episodes, args.seeds, overrides=overrides_of[algo])
                    if overrides_of[algo]:
                        row["overrides"] = overrides_of[algo]
                except Exception as error:  # noqa: BLE001 — record and go on with the other rows
                    traceback.print_exc()
                    failures.append({"algorithm": algo, "env": env, "episodes": episodes, "error": repr(error)})
                    continue
                rows.append(row)
                n = row["normalized_score"]
                print(f"{algo:<15}{env:<13}{episodes:>3} ep  {n['mean']:>6.1f} ± {n['std']:<5.1f} IQM {n['iqm']:>6.1f} "
                      f"[{n['iqm_ci95'][0]:.1f}, {n['iqm_ci95'][1]:.1f}]  compile {row['compile_seconds']:.0f} s  "
                      f"run {row['run_seconds']:.0f} s", flush=True)
                save(args.out, {"command": "python benchmarks/imitation.py " + " ".join(sys.argv[1:]), "rows": rows,
                                "failures": failures, "complete": False})  # a partial file if interrupted
    save(args.out, {"command": "python benchmarks/imitation.py " + " ".join(sys.argv[1:]), "rows": rows,
                    "failures": failures, "complete": True})
    if rows:
        plot(rows, os.path.join(RESULTS_DIR, f"{args.out}.png"))


def main_brax(args, argv=None, overrides_of=None) -> int:
    """The Brax rows, saved to benchmarks/results/<--out or imitation_brax>.json as they come."""
    algo_names = args.algos if args.algos != ALGOS else ["bc", "dagger"]
    out = args.out if args.out != "imitation" else None if args.dry_run else "imitation_brax"  # a dry run saves nothing
    command = "python benchmarks/imitation.py " + " ".join(sys.argv[1:] if argv is None else argv)
    rows, failures = [], []
    for env in args.brax:
        try:
            for row in run_brax(env, algo_names, args.episodes, args.seeds, args.expert_run, args.expert_steps,
                                args.expert_seeds, args.runs_dir, args.dry_run, overrides_of):
                rows.append(row)
                n = row["normalized_score"]
                print(f"{row['algorithm']:<10}{env:<15}{row['episodes']:>3} ep  {n['mean']:>6.1f} ± {n['std']:<5.1f} "
                      f"IQM {n['iqm']:>6.1f} (expert {row['expert_return']:.1f}, random {row['random_return']:.1f})",
                      flush=True)
                if out:
                    save(out, {"command": command, "rows": rows, "failures": failures, "complete": False})
        except Exception as error:  # noqa: BLE001 — recorded; the next environment still runs
            traceback.print_exc()
            failures.append({"env": env, "error": repr(error)})
    if out:
        save(out, {"command": command, "rows": rows, "failures": failures, "complete": True})
        if rows:
            plot(rows, os.path.join(RESULTS_DIR, f"{out}.png"))
    return 1 if failures else 0


def readme(names: list[str]) -> None:
    """A markdown table per environment: normalized score per algorithm × number of episodes."""
    import json

    rows, hardware, commands = [], None, []
    for name in names:
        with open(os.path.join(RESULTS_DIR, f"{name}.json")) as f:
            saved = json.load(f)
        rows += saved["rows"]
        hardware = hardware or saved["hardware"]
        commands.append(saved["command"])
    for env in dict.fromkeys(r["env"] for r in rows):
        episodes = sorted({r["episodes"] for r in rows if r["env"] == env})
        first = next(r for r in rows if r["env"] == env)
        print(f"\n{env} (R_expert {down(first['expert_return'])}, R_random {down(first['random_return'])}), normalized "
              f"score, mean ± std over {first['num_seeds']} seeds [IQM 95% CI]:\n")
        print("| algorithm | " + " | ".join(f"{e} episode{'s' * (e > 1)}" for e in episodes) + " |")
        print("|---|" + "---|" * len(episodes))
        for algo in dict.fromkeys(r["algorithm"] for r in rows if r["env"] == env):
            cells = []
            for e in episodes:
                match = [r for r in rows if r["env"] == env and r["algorithm"] == algo and r["episodes"] == e]
                n = match[0]["normalized_score"] if match else None
                cells.append(f"{down(n['mean'])} ± {down(n['std'])} "
                             f"[{down(n['iqm_ci95'][0])}, {down(n['iqm_ci95'][1])}]" if n else "—")
            print(f"| {algo} | " + " | ".join(cells) + " |")
    print(f"\nhardware: {hardware['cpu']}, {hardware['cpu_count']} cores, jax {hardware['jax']}; "
          f"commands: {'; '.join(commands)}")


if __name__ == "__main__":
    sys.exit(main())
