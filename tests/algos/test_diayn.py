"""DIAYN: the pseudo-reward and the discriminator's loss against hand-computed values, config
validation, a vmapped sweep (one program), the hierarchical skill environment step by step,
fine-tuning's start, and learning on the point mass: distinguishable, distinct skills, a
high-level DQN over them that beats SAC from scratch on a sparse goal, and the best skill
fine-tuned on that goal, which beats SAC from scratch."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl import envs
from purerl.algos import diayn
from purerl.config import sweep_axes

TINY = dict(total_timesteps=64, num_envs=2, steps_per_update=4, learning_starts=16, batch_size=8,
            buffer_size=64, hidden_sizes=(8,), disc_hidden_sizes=(8,), num_skills=3, eval_every=4,
            eval_episodes=3)


# ----------------------------------------------------------------------------- math
def test_skill_reward_by_hand():
    logits = jnp.array([[0.0, 0.0, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0]])
    skill = jnp.array([1, 0, 3])
    z = math.exp(2.0) + 3.0
    expected = [math.log(1 / 4) + math.log(4), 2.0 - math.log(z) + math.log(4), -math.log(z) + math.log(4)]
    np.testing.assert_allclose(diayn.skill_reward(logits, skill, 4), expected, rtol=1e-6)
    assert float(diayn.skill_reward(logits, skill, 4)[0]) == pytest.approx(0.0, abs=1e-6)  # q = p(z): nothing gained


def test_discriminator_loss_and_accuracy_by_hand():
    logits = jnp.array([[1.0, 0.0], [0.0, 3.0], [0.5, 0.0]])
    skill = jnp.array([0, 1, 1])
    log_sm = np.log(np.exp(np.asarray(logits)) / np.exp(np.asarray(logits)).sum(-1, keepdims=True))
    expected = -(log_sm[0, 0] + log_sm[1, 1] + log_sm[2, 1]) / 3
    loss, accuracy = diayn.discriminator_loss(logits, skill)
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    assert float(accuracy) == pytest.approx(2 / 3)


def test_skill_is_appended_one_hot_and_recovered():
    config = diayn.Config(**TINY)
    obs = jnp.array([[0.5, -0.5], [0.1, 0.2]])
    x = diayn.with_skill(obs, jnp.array([2, 0]), 3)
    np.testing.assert_allclose(x, [[0.5, -0.5, 0, 0, 1], [0.1, 0.2, 1, 0, 0]])
    state, skill = diayn.split_skill(config, x)
    np.testing.assert_allclose(state, obs)
    np.testing.assert_array_equal(skill, [2, 0])


def test_fixed_skill_and_uniform_prior():
    config = diayn.Config(**TINY)
    skills = diayn.sample_skills(config, jax.random.PRNGKey(0), 3000)
    counts = np.bincount(np.asarray(skills), minlength=3)
    assert counts.min() > 900  # uniform over K = 3
    fixed = diayn.sample_skills(config.replace(fixed_skill=2), jax.random.PRNGKey(0), 5)
    np.testing.assert_array_equal(fixed, [2] * 5)


# ----------------------------------------------------------------------------- config
@pytest.mark.parametrize("field, value, match", [
    ("num_skills", 1, "num_skills=1"), ("fixed_skill", 3, "fixed_skill=3"), ("fixed_skill", -2, "fixed_skill=-2"),
    ("disc_learning_rate", 0.0, "disc_learning_rate"), ("alpha", -0.1, "alpha"), ("gamma", 1.5, "gamma"),
    ("env", "CartPole-v1", "continuous actions"), ("env", "point/nowhere", "not a known environment"),
    ("disc_hidden_sizes", (0,), "disc_hidden_sizes"),
])
def test_bad_config_names_the_field(field, value, match):
    with pytest.raises(ValueError, match=match):
        diayn.Config(**{**TINY, field: value})


def test_alpha_is_fixed_in_the_inner_sac():
    inner = diayn.sac_config(diayn.Config(**TINY, alpha=0.3))
    assert inner.autotune_alpha is False and inner.alpha == 0.3


# ----------------------------------------------------------------------------- program
def test_vmapped_sweep_of_alpha_and_disc_learning_rate():
    """One compiled program: 2 (α, discriminator lr) pairs × 2 seeds, 6 updates; α stays fixed."""
    config = diayn.Config(**TINY).replace(alpha=jnp.array([0.05, 0.2]), disc_learning_rate=jnp.array([1e-3, 1e-2]))
    keys = jax.random.split(jax.random.PRNGKey(0), 2)

    def run(c, key):
        state = diayn.init(c, key)
        return jax.lax.scan(lambda s, _: diayn.update(c, s), state, None, length=6)

    axes = sweep_axes(config, "alpha", "disc_learning_rate")
    state, metrics = jax.jit(jax.vmap(jax.vmap(run, in_axes=(None, 0)), in_axes=(axes, None)))(config, keys)
    np.testing.assert_allclose(jnp.exp(state.agent.log_alpha), [[0.05, 0.05], [0.2, 0.2]], rtol=1e-6)
    learned = np.asarray(metrics["discriminator_accuracy"][:, :, -1])
    assert np.all(np.isfinite(learned)) and np.all(np.isnan(np.asarray(metrics["loss/critic"][:, :, 0])))
    # the discriminator moved, each by its own learning rate (a leaf of the program, not a constant)
    init = diayn.init(diayn.Config(**TINY), keys[0])
    moved = [max(float(jnp.abs(a[i, 0] - b).max()) for a, b in zip(jax.tree.leaves(state.disc_params),
                                                                    jax.tree.leaves(init.disc_params)))
             for i in range(2)]
    assert 0 < moved[0] < moved[1], moved


def test_skill_environment_runs_the_frozen_skill_for_k_steps():
    config = diayn.Config(**TINY)
    state = diayn.init(config, jax.random.PRNGKey(1))
    name = diayn.register_skills("point/open-skills-test", config, state, "point/goal", skill_steps=15)
    high = envs.make(name)
    assert high.action_space == envs.Discrete(3) and high.max_episode_steps == 4  # ⌈50 / 15⌉
    hstate, obs = high.reset(jax.random.PRNGKey(2), 1)
    # by hand: 15 deterministic steps of skill 1 in point/goal, rewards summed
    low = envs.make("point/goal")
    lstate, lobs = low.reset(jax.random.PRNGKey(2), 1)
    np.testing.assert_allclose(obs, lobs)
    total = 0.0
    for _ in range(15):
        a = diayn.act(config, state.agent.actor_params, lobs, jnp.array([1]), jax.random.PRNGKey(0))
        lstate, ts = low.step(jax.random.PRNGKey(0), lstate, a)
        lobs, total = ts.obs, total + ts.reward
    hstate, hts = high.step(jax.random.PRNGKey(3), hstate, jnp.array([1]))
    np.testing.assert_allclose(hts.obs, lobs, atol=1e-5)
    np.testing.assert_allclose(hts.reward, total, atol=1e-5)
    # 50 low steps = 3 whole skill steps + one of 5: truncated at the 4th, never terminal
    flags = []
    for _ in range(4):
        hstate, hts = high.step(jax.random.PRNGKey(4), hstate, jnp.array([0]))
        flags.append((bool(hts.truncated[0]), bool(hts.terminated[0])))
    assert flags == [(False, False), (False, False), (True, False), (False, False)]


def test_high_level_dqn_settings_make_a_valid_config_over_the_skills():
    from purerl.algos import dqn

    state = diayn.init(diayn.Config(**TINY), jax.random.PRNGKey(1))
    name = diayn.register_skills("point/goal-skills-dqn-test", diayn.Config(**TINY), state, "point/goal", 2)
    high = dqn.Config(env=name, total_timesteps=5_000, **diayn.HIGH_LEVEL_DQN)  # validates on construction
    assert high.num_updates * high.env_steps_per_update == 4_992  # 312 updates of 4 envs × 4 high-level steps
    assert high.learning_starts < high.exploration_fraction * high.total_timesteps  # ε decays after learning starts


def test_finetune_starts_from_the_pretrained_actor():
    config = diayn.Config(**TINY)
    pretrained = diayn.init(config, jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="skill_reward=False"):
        diayn.finetune(config, pretrained, jax.random.PRNGKey(1))
    task = config.replace(env="point/goal", skill_reward=False, fixed_skill=2)
    state = diayn.finetune(task, pretrained, jax.random.PRNGKey(1))
    for a, b in zip(jax.tree.leaves(state.agent.actor_params), jax.tree.leaves(pretrained.agent.actor_params)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(state.skill, [2, 2])
    state, _ = jax.jit(lambda s: diayn.update(task, s))(state)
    assert int(state.update_step) == 1


# ----------------------------------------------------------------------------- learning
# Measured (3 seeds, keys 0…2; 2-core AMD EPYC): see the numbers in each test.
PRETRAIN = diayn.Config(total_timesteps=8_000, learning_starts=500, eval_every=10_000)  # K = 8 skills
GOAL = envs.variant("point/goal-0.3-test", "point/goal", goal_radius=0.3)


@pytest.fixture(scope="module")
def pretrained():
    keys = jax.random.split(jax.random.PRNGKey(0), 3)

    def run(key):
        state, _, returns = diayn.train(PRETRAIN, key)
        accuracy = diayn.discriminator_accuracy(PRETRAIN, state, jax.random.fold_in(key, 1))
        final = diayn.rollout_skills(PRETRAIN, state, jax.random.fold_in(key, 2), PRETRAIN.num_skills)
        return state, returns[-1], accuracy, final["positions"][-1]

    return jax.jit(jax.vmap(run))(keys)


@pytest.mark.learning
def test_skills_are_distinguishable_and_distinct(pretrained):
    """8,000 steps, 8 skills. Measured over nine seeds (keys split(PRNGKey(b), 3), b = 0, 1, 2):
    held-out accuracy 0.87–0.985 (chance 1/8), smallest distance between two skills' final
    positions 0.31–0.65, evaluation skill return 85–97 of the 50·log 8 = 104 possible."""
    _, returns, accuracy, final = pretrained
    assert np.all(np.asarray(accuracy) > 0.7), accuracy
    for positions in np.asarray(final):
        distance = np.linalg.norm(positions[:, None] - positions[None], axis=-1)
        np.fill_diagonal(distance, np.inf)
        assert distance.min() > 0.2, positions
    assert np.all(np.asarray(returns).mean(-1) > 0.6 * 50 * math.log(8)), returns


# SAC from scratch on the sparse goal, as the skills benchmark's "SAC from scratch" column
SCRATCH_SAC = dict(num_envs=4, steps_per_update=4, gradient_steps=4, learning_starts=500, batch_size=128,
                   hidden_sizes=(64, 64), learning_rate=1e-3, eval_every=10_000, eval_episodes=16)


@pytest.mark.learning
def test_hierarchical_dqn_over_skills_beats_sac_from_scratch(pretrained):
    """DIAYN's downstream (a), the paper's §4.2.2: DQN (`diayn.HIGH_LEVEL_DQN`) picking one of the
    8 skills every 2 steps, 10,000 environment steps of the sparse goal (1 per step within 0.2 of
    (0.7, 0.7); the pretraining is not counted, as in the paper), 4 seeds on each of the 3
    pretrained seeds, against SAC from scratch for the same 10,000 steps, 12 seeds, both learners
    taking 4 gradient steps per update of 16 steps (the high level's steps are 2 environment steps
    each, so it takes half as many per environment step): the 95% bootstrap CIs of the means do
    not overlap, and the hierarchical mean is ≥ 20 (a policy that never reaches the goal scores 0,
    one that goes straight there about 44). SAC at 16 gradient steps per update catches up (see
    benchmarks/skills.py). Measured (pretraining keys split(PRNGKey(b), 3), DQN keys
    split(PRNGKey(d), 4), SAC keys split(PRNGKey(100 + d), 12)), hierarchical mean [95% CI]
    (lowest run) / SAC mean [95% CI] (highest run):
    b = 0, d = 1 (this test's): 35.02 [31.00, 38.47] (19.94) / 3.95 [2.58, 5.22] (6.69);
    b = 1, d = 2: 37.24 [34.53, 39.43] (25.06) / 3.56 [2.11, 4.97] (7.81);
    b = 2, d = 3: 31.60 [24.78, 36.42] (0.00, the one run of 36 that never reached the goal) /
    4.19 [2.57, 5.67] (7.38)."""
    from purerl.algos import dqn, sac
    from purerl.report import bootstrap_ci

    hierarchical = []
    for seed in range(3):
        state = jax.tree.map(lambda x, seed=seed: x[seed], pretrained[0])
        name = diayn.register_skills(f"point/goal-diayn-skills-test-{seed}", PRETRAIN, state, "point/goal",
                                     skill_steps=2)
        high_level = dqn.Config(env=name, total_timesteps=10_000 // 2, eval_every=100_000, eval_episodes=16,
                                **dict(diayn.HIGH_LEVEL_DQN, gradient_steps=SCRATCH_SAC["gradient_steps"]))
        _, _, returns = jax.jit(jax.vmap(lambda k, high_level=high_level: dqn.train(high_level, k)))(
            jax.random.split(jax.random.PRNGKey(1), 4))
        hierarchical.extend(np.asarray(returns[:, -1]).mean(-1))
    scratch = sac.Config(env="point/goal", total_timesteps=10_000, **SCRATCH_SAC)
    _, _, returns = jax.jit(jax.vmap(lambda k: sac.train(scratch, k)))(jax.random.split(jax.random.PRNGKey(101), 12))
    hierarchical, from_scratch = np.array(hierarchical), np.asarray(returns[:, -1]).mean(-1)
    (low, high), (sac_low, sac_high) = bootstrap_ci(hierarchical, "mean"), bootstrap_ci(from_scratch, "mean")
    print(f"hierarchical {hierarchical.mean():.2f} [{low:.2f}, {high:.2f}], SAC {from_scratch.mean():.2f} "
          f"[{sac_low:.2f}, {sac_high:.2f}]")
    assert low > sac_high, (hierarchical, from_scratch)
    assert hierarchical.mean() >= 20.0, hierarchical


@pytest.mark.learning
def test_finetuning_the_best_skill_beats_sac_from_scratch(pretrained):
    """DIAYN's downstream (b): the skill whose episodes earn the most sparse-goal reward, of the
    pretrained seed whose best skill earns the most, fine-tuned on the task reward for 4,000 steps
    (`finetune`: the pretrained actor, fresh critics), against the same SAC program from a fresh
    actor, 4 seeds each. Measured (two key sets of three pretrained seeds, fine-tuning keys
    split(PRNGKey(100 + seed), 4)): fine-tuned 42.0–44.5 on every seed of the five pretrained seeds
    with a skill that reaches the goal (their skills alone 2–12.5), from scratch 0–39.5 per seed,
    means 0–17.7; the sixth had no skill reaching the goal, and fine-tuning it scored 0."""
    states = pretrained[0]
    bests = [diayn.best_skill(PRETRAIN, jax.tree.map(lambda x: x[i], states), GOAL, jax.random.PRNGKey(7))
             for i in range(3)]
    seed = int(np.argmax([float(r.max()) for _, r in bests]))
    skill, skill_returns = bests[seed]
    assert float(skill_returns.max()) > 0, skill_returns  # some skill reaches the goal
    source = jax.tree.map(lambda x: x[seed], states)
    task = PRETRAIN.replace(env=GOAL, skill_reward=False, fixed_skill=int(skill), total_timesteps=4_000,
                            learning_starts=0)

    def run(key, from_pretrained):
        state = jax.lax.cond(from_pretrained, lambda: diayn.finetune(task, source, key), lambda: diayn.init(task, key))
        state, _ = jax.lax.scan(lambda s, _: diayn.update(task, s), state, None, length=task.num_updates)
        return diayn.rollout_skills(task, state, jax.random.fold_in(key, 9), 8, env_name=GOAL)["env_return"].mean()

    keys = jax.random.split(jax.random.PRNGKey(100 + seed), 4)
    finetuned, scratch = jax.jit(jax.vmap(jax.vmap(run, in_axes=(0, None)), in_axes=(None, 0)))(
        keys, jnp.array([True, False]))
    print(f"skill {int(skill)} alone {float(skill_returns.max()):.1f}; fine-tuned {np.asarray(finetuned)}, "
          f"from scratch {np.asarray(scratch)}")
    assert float(finetuned.mean()) >= 30.0, finetuned
    assert float(finetuned.mean()) >= float(scratch.mean()) + 15.0, (finetuned, scratch)



# ----------------------------------------------------------------------------- brax
@pytest.mark.brax
def test_brax_smoke_with_the_ant_preset():
    """The brax/ant preset (the paper's K = 50 skills; an accelerator's run) cut to two updates of
    2 environments × 2 steps, 2 seeds, small networks, on brax/inverted_pendulum (the same test on
    the MJX ant took 54 s against 40 s at the unit tests' opt level 0; tests/envs covers the ant):
    init and update compile and run, the buffer stores the Brax observation with the one-hot skill
    appended, the skill reward and the losses are finite."""
    import dataclasses
    import functools

    preset = diayn.Config.for_env("brax/ant", total_timesteps=8, num_envs=2, steps_per_update=2, gradient_steps=2,
                                  batch_size=8, buffer_size=64, learning_starts=0, hidden_sizes=(16,),
                                  disc_hidden_sizes=(16,), eval_every=100, eval_episodes=1)
    assert preset.num_skills == 50 and diayn.PRESETS["brax/ant"]["hidden_sizes"] == (300, 300)
    config = dataclasses.replace(preset, env="brax/inverted_pendulum")
    state = jax.jit(jax.vmap(functools.partial(diayn.init, config)))(jax.random.split(jax.random.PRNGKey(0), 2))
    update = jax.jit(jax.vmap(functools.partial(diayn.update, config)))
    for _ in range(2):
        state, metrics = update(state)
    obs_dim = int(np.prod(diayn.make_env(config.env).obs_shape))
    assert state.obs.shape == (2, 2, obs_dim) and state.skill.shape == (2, 2)
    assert np.all((np.asarray(state.skill) >= 0) & (np.asarray(state.skill) < 50))
    assert state.buffer.data.obs.shape[-1] == obs_dim + 50
    np.testing.assert_array_equal(state.buffer.rows_filled, 4)  # 2 updates × 2 steps, per seed
    for name in ("loss/discriminator", "reward/skill", "loss/critic", "loss/actor"):
        assert metrics[name].shape == (2,) and np.all(np.isfinite(metrics[name])), name
