"""Skills and multi-task: DIAYN on the point mass (discriminator accuracy while it learns, the
skills' trajectories as a picture, downstream returns of a high-level policy (PPO or DQN) over
the skills against SAC from scratch), PCGrad against summed gradients (the preset, and a small
shared network serving reward scales 1 and 100), and ASE (the encoder recovering z,
the style discriminator, a high-level policy in z-space on a goal; and on Pendulum-v1 with the
swing-up expert as the reference style, the low level's Pendulum return without its reward).

    python benchmarks/skills.py                  # every part (CPU times per part: README)
    python benchmarks/skills.py --parts ase      # one part; the others are kept from the JSON
    python benchmarks/skills.py --parts diayn-ant --ant-steps 2000000   # DIAYN's brax/ant preset only
                                                                        # (an accelerator; --ant adds it)

Writes benchmarks/results/skills.json and the pictures skills_point_open.png,
skills_point_walls.png, skills_accuracy.png and skills_pcgrad.png beside it. Every number is over
`--seeds` seeds (vmapped); returns are summarized by mean, IQM and its 95% stratified-bootstrap CI.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.common import RESULTS_DIR, save  # noqa: E402

PARTS = ("diayn", "pcgrad", "ase", "ase-pendulum")
ACCELERATOR_PARTS = ("diayn-ant",)  # not in the default run: DIAYN's brax/ant preset (10M steps by default)


def _summary(values) -> dict:
    from purerl.report import summarize

    return summarize(np.asarray(values, np.float64))


def diayn_part(env_name: str, steps: int, seeds: int, picture: str) -> tuple[dict, object, object]:
    """Pretrain DIAYN on `env_name`; return (row, the config, the seeds' states)."""
    import jax

    from purerl.algos import diayn
    from purerl.envs.pointmass import render_trajectories

    config = diayn.Config.for_env(env_name, total_timesteps=steps, learning_starts=500,
                                  eval_every=max(steps // (8 * 16), 1))
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)

    def run(key):
        state, metrics, returns = diayn.train(config, key)
        accuracy = diayn.discriminator_accuracy(config, state, jax.random.fold_in(key, 1))
        rollout = diayn.rollout_skills(config, state, jax.random.fold_in(key, 2), config.num_skills)
        return state, metrics["discriminator_accuracy"], returns, accuracy, rollout["positions"]

    start = time.time()
    states, train_accuracy, returns, accuracy, positions = jax.block_until_ready(jax.jit(jax.vmap(run))(keys))
    seconds = time.time() - start
    positions = np.asarray(positions)  # [seeds, T + 1, K, 2]
    final = positions[:, -1]
    distances = np.linalg.norm(final[:, :, None] - final[:, None], axis=-1)
    distances[:, np.arange(config.num_skills), np.arange(config.num_skills)] = np.inf
    from purerl.envs import make

    backend = make(env_name).backend
    render_trajectories(positions[0].transpose(1, 0, 2), os.path.join(RESULTS_DIR, picture), walls=backend.walls,
                        labels=[f"z={k}" for k in range(config.num_skills)],
                        title=f"DIAYN, {env_name}, {config.num_skills} skills, {steps:,} steps (seed 0)")
    curve = np.nanmean(np.asarray(train_accuracy), axis=0)  # per update, over seeds
    row = {"env": env_name, "num_skills": config.num_skills, "env_steps_per_seed": steps, "num_seeds": seeds,
           "heldout_discriminator_accuracy": _summary(accuracy), "chance": 1 / config.num_skills,
           "min_distance_between_final_positions": _summary(distances.min(axis=(1, 2))),
           "final_skill_return": _summary(np.asarray(returns)[:, -1].mean(-1)),
           "max_skill_return": float(make(env_name).max_episode_steps * np.log(config.num_skills)),
           "train_accuracy_curve": {"env_steps": ((np.arange(curve.size) + 1) * config.env_steps_per_update).tolist(),
                                    "accuracy": [None if np.isnan(a) else float(a) for a in curve]},
           "picture": picture, "seconds_with_compile": seconds}
    return row, config, states


def downstream_part(config, states, budget: int, radius: float, skill_steps: tuple[int, ...], seeds: int) -> dict:
    """High-level PPO and DQN (`diayn.HIGH_LEVEL_DQN`) over each pretrained seed's skills,
    choosing a skill every k steps for each k in `skill_steps`, vs SAC from scratch on the sparse
    goal task, `budget` task steps each."""
    import jax

    from purerl import envs
    from purerl.algos import diayn, dqn, ppo, sac

    task = envs.variant(f"point/goal-r{radius}-{budget}", "point/goal", goal_radius=radius)
    keys = jax.random.split(jax.random.PRNGKey(1), seeds)
    hierarchical, single_skill = {(learner, k): [] for learner in ("ppo", "dqn") for k in skill_steps}, []
    for s in range(jax.tree.leaves(states)[0].shape[0]):
        state = jax.tree.map(lambda x: x[s], states)
        single_skill.append(float(np.max(np.asarray(diayn.best_skill(config, state, task, jax.random.PRNGKey(3))[1]))))
        for k in skill_steps:
            name = diayn.register_skills(f"{task}-skills{s}-k{k}", config, state, task, k)
            high = ppo.Config(env=name, total_timesteps=budget // k, num_envs=8, num_steps=16,
                              num_minibatches=2, learning_rate=3e-3, eval_every=10_000, eval_episodes=16)
            _, _, returns = jax.jit(jax.vmap(lambda key: ppo.train(high, key)))(keys)
            hierarchical["ppo", k].extend(np.asarray(returns[:, -1]).mean(-1).tolist())
            high = dqn.Config(env=name, total_timesteps=budget // k, eval_every=100_000, eval_episodes=16,
                              **diayn.HIGH_LEVEL_DQN)
            _, _, returns = jax.jit(jax.vmap(lambda key: dqn.train(high, key)))(keys)
            hierarchical["dqn", k].extend(np.asarray(returns[:, -1]).mean(-1).tolist())
    sac_returns = {}
    for gradient_steps in (4, 16):  # per 16 environment steps (4 envs × 4 steps): 1 is SAC's usual ratio
        scratch = sac.Config(env=task, total_timesteps=budget, num_envs=4, steps_per_update=4,
                             gradient_steps=gradient_steps, learning_starts=500, batch_size=128, hidden_sizes=(64, 64),
                             learning_rate=1e-3, eval_every=10_000, eval_episodes=16)
        sac_returns[gradient_steps] = []
        for s in range(jax.tree.leaves(states)[0].shape[0]):  # as many runs as the hierarchical agent's
            keys_s = jax.random.split(jax.random.PRNGKey(10 + s), seeds)
            _, _, returns = jax.jit(jax.vmap(lambda k: sac.train(scratch, k)))(keys_s)
            sac_returns[gradient_steps].extend(np.asarray(returns[:, -1]).mean(-1).tolist())
    return {"task": f"point/goal, goal (0.7, 0.7), radius {radius}, sparse", "env_steps": budget,
            **{f"hierarchical_{learner}_by_skill_steps": {
                str(k): {"skill_steps": k, "high_level_steps": budget // k, "return": _summary(v), "runs": v}
                for (name, k), v in hierarchical.items() if name == learner} for learner in ("ppo", "dqn")},
            "high_level_dqn": {k: list(v) if isinstance(v, tuple) else v for k, v in diayn.HIGH_LEVEL_DQN.items()},
            "best_single_skill_per_pretrained_seed": single_skill, "sac_from_scratch": _summary(sac_returns[4]),
            "sac_runs": sac_returns[4], "sac_from_scratch_16_gradient_steps": _summary(sac_returns[16]),
            "sac_runs_16_gradient_steps": sac_returns[16]}


# PCGrad's second setting: the opposite goals with rewards scaled (1, 100) and a shared network of
# one 8-unit hidden layer (tests/algos/test_pcgrad.py's SMALL_SHARED), where PCGrad beats the sum.
PCGRAD_SMALL_SHARED = dict(hidden_sizes=(8,), reward_scales=(1.0, 100.0))


def pcgrad_part(seeds: int, key_sets: int) -> dict:
    """PCGrad against summed gradients on point/goal: the preset (`seeds` × `key_sets` runs), and
    `PCGRAD_SMALL_SHARED` (16 seeds or more per key set, evaluated every 10 updates for the curve;
    the evaluation draws no training randomness: a finer evaluation leaves the training as it is)."""
    import jax

    from purerl.algos import pcgrad

    def rows(overrides: dict, num_seeds: int) -> dict:
        out = {}
        for surgery in pcgrad.SURGERIES:
            config = pcgrad.Config.for_env("point/goal", surgery=surgery, **overrides)
            curves = []
            for k in range(key_sets):
                _, _, returns = jax.jit(jax.vmap(pcgrad.train, in_axes=(None, 0)))(
                    config, jax.random.split(jax.random.PRNGKey(100 + k), num_seeds))
                curves.append(np.asarray(pcgrad.task_returns(config, returns)).mean(-1))  # [seeds, evals, tasks]
            curves = np.concatenate(curves)
            finals = curves[:, -1]
            out[surgery] = {"per_task_mean": finals.mean(0).tolist(), "sum_over_tasks": _summary(finals.sum(-1)),
                            "per_task_mean_curve": curves.mean(0).T.tolist()}
        gap = out["pcgrad"]["sum_over_tasks"]["mean"] - out["sum"]["sum_over_tasks"]["mean"]
        return {"overrides": {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()},
                "num_runs": num_seeds * key_sets, "eval_every_updates": config.eval_every,
                "env_steps_per_update": config.env_steps_per_update, "pcgrad_minus_sum": float(gap), **out}

    config = pcgrad.Config.for_env("point/goal")
    small = rows({**PCGRAD_SMALL_SHARED, "eval_every": 10}, max(seeds, 16))
    return {"goals": [list(g) for g in config.goals], "env_steps_per_seed": config.num_updates * config.env_steps_per_update,
            **rows({}, seeds), "small_shared_network": small}


def ase_part(seeds: int, task_steps: int, latent_steps=(5, 2), diversity_weights=(0.0, 0.01, 0.1, 1.0)) -> dict:
    """ASE on point/open (the default Config: 100,000 steps, z on the circle): the encoder's
    cosine μ_q(s, s′)ᵀz on fresh episodes, the style discriminator's accuracy on held-out
    reference against uniformly random transitions, then PPO in z-space on the dense goal task
    over each pretrained seed's low level, `task_steps` environment steps, choosing a latent every
    k steps for each k in `latent_steps` (the low level moves at full speed: with k = 5 the high
    level cannot stop near the goal, with k = 2 it can). The pretraining runs once per diversity
    weight w_div of eq. (5) in one vmapped program (the diversity ratio b of the last 10 updates,
    the cosine and the accuracy for each); the high level uses the default's (w_div = 0)."""
    import jax
    import jax.numpy as jnp

    from purerl import envs
    from purerl.algos import ase, ppo
    from purerl.config import sweep_axes

    config = ase.Config()
    assert config.diversity_weight == diversity_weights[0]
    swept = config.replace(diversity_weight=jnp.asarray(diversity_weights))

    def run(config, key):
        state, metrics, _ = ase.train(config, key)
        cosine = ase.latent_rollout(config, state, jax.random.fold_in(key, 1), 32)["cosine"].mean()
        disc = ase.make_discriminator(config)
        reference = ase.reference_transitions(config, jax.random.fold_in(key, 2))  # held-out episodes
        s_key, a_key = jax.random.split(jax.random.fold_in(key, 3))
        s = jax.random.uniform(s_key, (4096, 2), minval=-0.9, maxval=0.9)  # random positions and moves
        random = (s, s + 0.1 * jax.random.uniform(a_key, (4096, 2), minval=-1.0, maxval=1.0))
        logits = [disc.apply(state.disc_params, ase.transition_features(*t, state.feature_mean, state.feature_std))[:, 0]
                  for t in (reference, random)]
        accuracy = (jnp.mean(logits[0] > 0) + jnp.mean(logits[1] < 0)) / 2
        return state, cosine, accuracy, metrics["diversity/ratio"][-10:].mean()

    start = time.time()
    by_weight = jax.jit(jax.vmap(jax.vmap(run, (None, 0)), (sweep_axes(swept, "diversity_weight"), None)))
    states, cosine, accuracy, ratio = jax.block_until_ready(by_weight(swept, jax.random.split(jax.random.PRNGKey(0), seeds)))
    pretrain_seconds = time.time() - start
    diversity = [{"diversity_weight": w, "diversity_target": config.diversity_target,
                  "diversity_ratio_last_10_updates": _summary(ratio[i]), "encoder_cosine": _summary(cosine[i]),
                  "style_accuracy_reference_vs_random": _summary(accuracy[i])} for i, w in enumerate(diversity_weights)]
    states, cosine, accuracy = jax.tree.map(lambda x: x[0], (states, cosine, accuracy))  # the default, w_div = 0
    task = envs.variant("point/goal-dense-ase-bench", "point/goal", reward="dense")
    high_level = {}
    for k in latent_steps:
        finals = []
        start = time.time()
        for i in range(seeds):
            state = jax.tree.map(lambda x: x[i], states)
            name = ase.register_latents(f"point/goal-ase-high-bench{i}-k{k}", config, state, task, latent_steps=k)
            high = ppo.Config(env=name, total_timesteps=task_steps // k, num_envs=8, num_steps=16, num_minibatches=2,
                              learning_rate=3e-3, ent_coef=0.0, eval_every=10_000, eval_episodes=16)
            _, _, returns = jax.jit(jax.vmap(lambda key: ppo.train(high, key)))(
                jax.random.split(jax.random.PRNGKey(1), seeds))
            finals.extend(np.asarray(returns[:, -1]).mean(-1).tolist())
        high_level[str(k)] = {"task": "point/goal, dense reward −‖p − (0.7, 0.7)‖, 50 steps", "latent_steps": k,
                              "high_level_steps": task_steps // k, "task_env_steps": task_steps, "runs": finals,
                              "return": _summary(finals), "standing_still": -49.5,
                              "seconds_with_compile": time.time() - start}
    return {"env": config.env, "env_steps_per_seed": config.num_updates * config.env_steps_per_update,
            "latent_dim": config.latent_dim, "num_seeds": seeds,
            "diversity_weight": config.diversity_weight, "encoder_cosine": _summary(cosine),
            "style_accuracy_reference_vs_random": _summary(accuracy), "by_diversity_weight": diversity,
            "pretrain_seconds_with_compile": pretrain_seconds,
            "high_level_by_latent_steps": high_level}


def ase_pendulum_part(seeds: int) -> dict:
    """ASE on Pendulum-v1 (`Config.for_env`: 409,600 steps, the scripted swing-up + LQR expert as
    the reference style): the low level's Pendulum return over 16 deterministic episodes with
    latents drawn as in training (it never sees Pendulum's reward), its fraction of the way from
    uniformly random actions to the expert (100 episodes each), and the encoder's cosine on
    fresh episodes."""
    import jax

    from purerl import datasets, envs, experts
    from purerl.algos import ase, ppo
    from purerl.evaluation import evaluate as run_episodes

    config = ase.Config.for_env("Pendulum-v1")
    env = ppo.make_env(ase.latent_env(config), False)

    def run(key):
        state, _, _ = ase.train(config, key)
        returns = run_episodes(env, lambda obs, k: ase.act(config, state.policy.params, obs, k),
                               jax.random.fold_in(key, 7), 16)
        return returns.mean(), ase.latent_rollout(config, state, jax.random.fold_in(key, 1), 16)["cosine"].mean()

    start = time.time()
    returns, cosine = map(np.asarray, jax.jit(jax.vmap(run))(jax.random.split(jax.random.PRNGKey(0), seeds)))
    seconds = time.time() - start
    pendulum = envs.make("Pendulum-v1")
    expert = datasets.mean_return(pendulum, experts.get("scripted", "Pendulum-v1"), jax.random.PRNGKey(2), 100)
    random = datasets.mean_return(pendulum, datasets.random_policy(pendulum), jax.random.PRNGKey(3), 100)
    return {"env": config.env, "reference": "scripted swing-up + LQR expert", "num_seeds": seeds,
            "env_steps_per_seed": config.num_updates * config.env_steps_per_update,
            "encoder_weight": config.encoder_weight, "style_weight": config.style_weight,
            "pendulum_return": _summary(returns), "runs": returns.tolist(),
            "fraction_of_expert": _summary((returns - random) / (expert - random)),
            "expert_return": expert, "random_return": random, "encoder_cosine": _summary(cosine),
            "seconds_with_compile": seconds}


def accuracy_plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    for row in rows:
        curve = row["train_accuracy_curve"]
        ax.plot(curve["env_steps"], [np.nan if a is None else a for a in curve["accuracy"]], label=row["env"])
    ax.axhline(rows[0]["chance"], color="0.5", ls="--", lw=1, label="chance (1/K)")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("discriminator accuracy (training batches)")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def pcgrad_plot(part: dict, path: str) -> None:
    """The small-shared-network setting: each task's mean deterministic return while training,
    PCGrad against summed gradients (one panel per task)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scales = part["overrides"]["reward_scales"]
    fig, axes = plt.subplots(1, len(scales), figsize=(4.2 * len(scales), 3.2), sharey=True)
    for task, ax in enumerate(axes):
        for surgery, colour in (("pcgrad", "C0"), ("sum", "C3")):
            curve = part[surgery]["per_task_mean_curve"][task]
            steps = [(i + 1) * part["eval_every_updates"] * part["env_steps_per_update"] for i in range(len(curve))]
            ax.plot(steps, curve, color=colour, label="PCGrad" if surgery == "pcgrad" else "summed gradients")
        ax.set_title(f"goal {task + 1}, reward scale {scales[task]:g}", fontsize=9)
        ax.set_xlabel("environment steps (both tasks)")
    axes[0].set_ylabel(f"mean return ({part['num_runs']} runs, unscaled)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=8_000, help="DIAYN pretraining steps on point/open")
    parser.add_argument("--walls-steps", type=int, default=16_000)
    parser.add_argument("--budget", type=int, default=10_000, help="downstream environment steps (the radius-0.2 goal runs also at a quarter of it)")
    parser.add_argument("--pcgrad-key-sets", type=int, default=2)
    parser.add_argument("--ant", action="store_true", help="also run DIAYN's brax/ant preset (the part diayn-ant)")
    parser.add_argument("--ant-steps", type=int, default=None,
                        help="diayn-ant: environment steps per seed (default the preset's 10,000,000)")
    parser.add_argument("--ase-task-steps", type=int, default=20_480,
                        help="environment steps of ASE's high-level training on the goal (each latent_steps)")
    parser.add_argument("--parts", nargs="+", choices=PARTS + ACCELERATOR_PARTS, default=list(PARTS),
                        help="parts to run; the others are kept from the existing JSON")
    parser.add_argument("--out", default="skills")
    args = parser.parse_args(argv)
    if args.ant and "diayn-ant" not in args.parts:
        args.parts.append("diayn-ant")
    ant_config = None
    if args.ant_steps is not None and "diayn-ant" not in args.parts:
        raise SystemExit("--ant-steps is for the part diayn-ant: add it to --parts (or --ant)")
    if "diayn-ant" in args.parts:  # checked here, before anything else runs or compiles
        from purerl.algos import diayn

        try:
            ant_config = diayn.Config.for_env("brax/ant", **({} if args.ant_steps is None
                                                            else {"total_timesteps": args.ant_steps}))
        except ValueError as error:
            raise SystemExit(f"--ant-steps {args.ant_steps}: {error}") from None
    os.makedirs(RESULTS_DIR, exist_ok=True)

    command = "python benchmarks/skills.py " + " ".join(argv if argv is not None else sys.argv[1:])
    path = os.path.join(RESULTS_DIR, f"{args.out}.json")
    payload = {}
    if set(args.parts) != set(PARTS) and os.path.exists(path):  # keep the parts not rerun
        import json

        with open(path) as f:
            payload = {k: v for k, v in json.load(f).items() if k != "hardware"}
    payload.setdefault("commands", {})
    if "diayn" in args.parts:
        open_row, config, states = diayn_part("point/open", args.steps, args.seeds, "skills_point_open.png")
        walls_row, _, _ = diayn_part("point/walls", args.walls_steps, args.seeds, "skills_point_walls.png")
        accuracy_plot([open_row, walls_row], os.path.join(RESULTS_DIR, "skills_accuracy.png"))
        payload["diayn"] = [open_row, walls_row]
        payload["downstream"] = [downstream_part(config, states, budget, radius, (5, 2), args.seeds)
                                 for radius, budget in ((0.3, args.budget), (0.2, args.budget), (0.2, args.budget // 4))]
    if "pcgrad" in args.parts:
        payload["pcgrad"] = pcgrad_part(args.seeds, args.pcgrad_key_sets)
        pcgrad_plot(payload["pcgrad"]["small_shared_network"], os.path.join(RESULTS_DIR, "skills_pcgrad.png"))
    if "ase" in args.parts:
        payload["ase"] = ase_part(args.seeds, args.ase_task_steps)
    if "ase-pendulum" in args.parts:
        payload["ase_pendulum"] = ase_pendulum_part(max(args.seeds, 8))
    from benchmarks.common import hardware

    payload.setdefault("hardware_by_part", {})  # the top-level "hardware" is this run's; each part keeps its own
    for part in args.parts:
        payload["commands"][part] = command
        payload["hardware_by_part"][part] = hardware()
    if set(args.parts) == set(PARTS):
        payload["command"] = command
    if ant_config is not None:
        from benchmarks.common import learning_run

        payload["diayn_brax_ant"] = learning_run("diayn", ant_config, args.seeds)

    for row in payload.get("diayn", []):
        a, d = row["heldout_discriminator_accuracy"], row["min_distance_between_final_positions"]
        print(f"DIAYN {row['env']:<12} K={row['num_skills']} {row['env_steps_per_seed']:>6} steps: held-out accuracy "
              f"{a['mean']:.3f} (min {a['min']:.3f}, chance {row['chance']:.3f}); closest final positions "
              f"{d['mean']:.2f} (min {d['min']:.2f}); skill return {row['final_skill_return']['mean']:.1f} "
              f"of {row['max_skill_return']:.1f}")
    for row in payload.get("downstream", []):
        s = row["sac_from_scratch"]
        print(f"{row['task']}, {row['env_steps']:,} steps: SAC from scratch {s['mean']:.2f} "
              f"(IQM {s['iqm']:.2f} [{s['iqm_ci95'][0]:.2f}, {s['iqm_ci95'][1]:.2f}])")
        if "sac_from_scratch_16_gradient_steps" in row:
            s = row["sac_from_scratch_16_gradient_steps"]
            print(f"  SAC from scratch, 16 gradient steps per 16 env steps: {s['mean']:.2f} "
                  f"(IQM {s['iqm']:.2f} [{s['iqm_ci95'][0]:.2f}, {s['iqm_ci95'][1]:.2f}])")
        for learner in ("ppo", "dqn"):
            for k, h in row.get(f"hierarchical_{learner}_by_skill_steps", {}).items():
                h = h["return"]
                print(f"  hierarchical {learner.upper()} over skills, a skill every {k} steps: {h['mean']:.2f} "
                      f"(IQM {h['iqm']:.2f} [{h['iqm_ci95'][0]:.2f}, {h['iqm_ci95'][1]:.2f}])")
    for name, part in ((("preset", payload["pcgrad"]), ("small shared network, reward scales (1, 100)",
                                                       payload["pcgrad"].get("small_shared_network")))
                       if "pcgrad" in payload else ()):
        for surgery in ("pcgrad", "sum") if part else ():
            r = part[surgery]
            t = r["sum_over_tasks"]
            print(f"PCGrad benchmark, {name}, surgery={surgery:<6}: per-task "
                  f"{np.round(r['per_task_mean'], 2).tolist()}, sum over tasks {t['mean']:.2f} "
                  f"(IQM {t['iqm']:.2f} [{t['iqm_ci95'][0]:.2f}, {t['iqm_ci95'][1]:.2f}])")
    if "ase" in payload:
        a = payload["ase"]
        c, acc = a["encoder_cosine"], a["style_accuracy_reference_vs_random"]
        print(f"ASE {a['env']} {a['env_steps_per_seed']} steps: encoder cosine {c['mean']:.3f} (min {c['min']:.3f}); "
              f"style accuracy {acc['mean']:.3f} (min {acc['min']:.3f})")
        for k, row in a["high_level_by_latent_steps"].items():
            h = row["return"]
            print(f"  high level on the dense goal, a latent every {k} steps, {row['task_env_steps']} env steps: "
                  f"{h['mean']:.2f} (IQM {h['iqm']:.2f} [{h['iqm_ci95'][0]:.2f}, {h['iqm_ci95'][1]:.2f}]; "
                  f"standing still −49.5)")
    if "ase_pendulum" in payload:
        a = payload["ase_pendulum"]
        r, f = a["pendulum_return"], a["fraction_of_expert"]
        print(f"ASE {a['env']} from the swing-up expert's style, {a['env_steps_per_seed']} steps: Pendulum return "
              f"{r['mean']:.1f} (IQM {r['iqm']:.1f} [{r['iqm_ci95'][0]:.1f}, {r['iqm_ci95'][1]:.1f}]); fraction of "
              f"the expert {f['mean']:.3f} (expert {a['expert_return']:.1f}, random {a['random_return']:.1f}); "
              f"encoder cosine {a['encoder_cosine']['mean']:.3f}")
    save(args.out, payload)


if __name__ == "__main__":
    main()
