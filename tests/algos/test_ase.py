"""ASE: the latent prior, the encoder's loss, the mixed reward and the diversity objective against
hand values, the latent environment and the scripted reference style step by step, config
validation, a vmapped sweep (one program), and learning on the point mass: the encoder recovers
z, the style discriminator tells reference from random transitions, the diversity objective
follows its target, a high-level policy in z-space reaches a goal and stays near it."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl import envs
from purerl.algos import ase, ppo
from purerl.config import sweep_axes
from purerl.evaluation import evaluate as run_episodes

TINY = dict(total_timesteps=64, num_envs=2, num_steps=8, num_minibatches=2, update_epochs=1, hidden_sizes=(8,),
            disc_hidden_sizes=(8,), disc_batch_size=8, reference_episodes=2, eval_every=2, eval_episodes=2)


# ----------------------------------------------------------------------------- math
def test_latents_are_uniform_on_the_sphere():
    z = ase.sample_latent(jax.random.PRNGKey(0), 3, (20_000,))
    np.testing.assert_allclose(jnp.linalg.norm(z, axis=-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(z.mean(0), 0.0, atol=0.02)
    np.testing.assert_allclose((z**2).mean(0), 1 / 3, atol=0.01)  # isotropic


def test_encoder_loss_and_reward_by_hand():
    mu = ase.encoder_mean(jnp.array([[3.0, 4.0], [0.0, -2.0]]))
    np.testing.assert_allclose(mu, [[0.6, 0.8], [0.0, -1.0]], rtol=1e-6)
    z = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    assert float(ase.encoder_loss(mu, z)) == pytest.approx(-(0.6 - 1.0) / 2, rel=1e-6)
    config = ase.Config(**TINY, style_weight=0.25, encoder_weight=2.0, kappa=0.5)
    logits = jnp.array([0.0, 1.5])
    expected = [0.25 * math.log(2.0) + 2.0 * 0.5 * 0.6, 0.25 * math.log1p(math.exp(1.5)) + 2.0 * 0.5 * -1.0]
    np.testing.assert_allclose(ase.ase_reward(logits, mu, z, config), expected, rtol=1e-6)


def test_diversity_loss_by_hand():
    """Eq. (5): opposite latents with opposite (clipped) full-speed actions give b = 2/(1 + 10⁻⁵);
    orthogonal latents whose actions differ by 0.4 on one axis give b = 0.08/(0.5 + 10⁻⁵)."""
    mu = jnp.array([[1.5, 0.0], [0.2, 0.4]])  # 1.5 is clipped to 1
    mu_other = jnp.array([[-1.0, 0.0], [0.2, 0.0]])
    z, z_other = jnp.array([[1.0, 0.0], [1.0, 0.0]]), jnp.array([[-1.0, 0.0], [0.0, 1.0]])
    ratios = np.array([2.0 / (1.0 + 1e-5), 0.08 / (0.5 + 1e-5)])
    loss, ratio = ase.diversity_loss(mu, mu_other, z, z_other, 1.0)
    assert float(ratio) == pytest.approx(ratios.mean(), rel=1e-5)
    assert float(loss) == pytest.approx(np.mean((1.0 - ratios) ** 2), rel=1e-5)
    loss, _ = ase.diversity_loss(mu, mu_other, z, z_other, 0.5)
    assert float(loss) == pytest.approx(np.mean((0.5 - ratios) ** 2), rel=1e-5)


def test_transition_features_by_hand():
    x = ase.transition_features(jnp.array([[0.5, -0.5]]), jnp.array([[0.6, -0.4]]), jnp.array([0.5, 0.0, 0.1, 0.0]),
                                jnp.array([1.0, 1.0, 0.1, 0.1]))
    np.testing.assert_allclose(x, [[0.0, -0.5, 0.0, 1.0]], atol=1e-6)


# ----------------------------------------------------------------------------- environments
def test_latent_environment_redraws_z_and_keeps_the_acting_one_in_final_obs():
    config = ase.Config(**TINY, latent_steps=3)
    env = envs.make(ase.latent_env(config))
    assert env.obs_shape == (4,)
    state, obs = env.reset(jax.random.PRNGKey(0), 1)
    zs, finals = [obs[0, 2:]], []
    for t in range(7):
        state, ts = env.step(jax.random.PRNGKey(t), state, jnp.zeros((1, 2)))
        zs.append(ts.obs[0, 2:])
        finals.append(ts.final_obs[0, 2:])
    np.testing.assert_allclose(jnp.linalg.norm(jnp.stack(zs), axis=-1), 1.0, rtol=1e-5)
    changed = [not np.allclose(zs[t], zs[t + 1]) for t in range(7)]
    assert changed == [False, False, True, False, False, True, False]  # every 3 steps
    for t in range(7):
        np.testing.assert_allclose(finals[t], zs[t])  # s′ carries the z that acted at s


def test_reference_style_is_straight_full_speed_motion():
    config = ase.Config(**{**TINY, "reference_episodes": 4})
    s, s_next = ase.reference_transitions(config, jax.random.PRNGKey(1))
    assert s.shape == s_next.shape == (4 * 50, 2)
    step = np.asarray(s_next - s).reshape(50, 4, 2)  # time-major: [T, episodes, 2]
    moving = np.abs(s_next).reshape(50, 4, 2).max(-1) < 0.999  # not yet at the square's edge
    speed = np.abs(step).max(-1)
    np.testing.assert_allclose(speed[:5], 0.1, atol=1e-5)  # full speed along the larger axis
    direction = step[:5] / np.linalg.norm(step[:5], axis=-1, keepdims=True)
    np.testing.assert_allclose(direction[1:], np.broadcast_to(direction[0], direction[1:].shape), atol=1e-4)
    assert moving[:5].all()


def test_expert_reference_is_the_swing_up_experts_episodes():
    """reference="scripted" on Pendulum-v1: the energy-shaping swing-up + LQR expert's episodes,
    time-major, each s′ the next step's s, and every episode ends upright and nearly still."""
    config = ase.Config.for_env("Pendulum-v1", reference_episodes=3)
    s, s_next = ase.reference_transitions(config, jax.random.PRNGKey(1))
    assert s.shape == s_next.shape == (200 * 3, 3) and s.dtype == jnp.float32
    s, s_next = np.asarray(s).reshape(200, 3, 3), np.asarray(s_next).reshape(200, 3, 3)
    np.testing.assert_allclose(s_next[:-1], s[1:], atol=1e-6)  # one episode per environment: chained
    cos_theta, speed = s_next[-1, :, 0], np.abs(s_next[-1, :, 2])
    assert np.all(cos_theta > 0.99) and np.all(speed < 0.5), (cos_theta, speed)
    hanging = s[0, :, 0] < 0.0  # some episodes start below the horizontal: the expert swings them up
    assert ase.Config.for_env("Pendulum-v1").reference == "scripted" and hanging.any()


def test_high_level_environment_follows_a_latent_for_latent_steps():
    config = ase.Config(**TINY, latent_steps=5)
    state = ase.init(config, jax.random.PRNGKey(2))
    name = ase.register_latents("point/goal-ase-test", config, state, "point/goal")
    high = envs.make(name)
    assert high.action_space.shape == (2,) and high.max_episode_steps == 10  # ⌈50 / 5⌉
    hstate, obs = high.reset(jax.random.PRNGKey(3), 1)
    z = jnp.array([[0.6, 0.8]])
    position = obs[0]
    for t in range(5):  # by hand: the low-level policy on [s, z], deterministic
        a = ase.act(config, state.policy.params, jnp.concatenate([position, z[0]])[None], jax.random.PRNGKey(0))
        position = jnp.clip(position + 0.1 * jnp.clip(a[0], -1, 1), -1.0, 1.0)
    hstate, ts = high.step(jax.random.PRNGKey(4), hstate, 0.5 * z)  # an action is normalized to the sphere
    np.testing.assert_allclose(ts.obs[0], position, atol=1e-5)


# ----------------------------------------------------------------------------- config and program
@pytest.mark.parametrize("field, value, match", [
    ("latent_dim", 1, "latent_dim=1"), ("latent_steps", 0, "latent_steps"), ("env", "Pendulum-v1", "point mass"),
    ("reference", "dance", "reference"), ("style_weight", -1.0, "style_weight"), ("kappa", -0.1, "kappa"),
    ("disc_learning_rate", 0.0, "disc_learning_rate"), ("diversity_weight", -0.01, "diversity_weight"),
    ("gamma", 1.5, "gamma"), ("num_minibatches", 3, "num_minibatches"),
])
def test_bad_config_names_the_field(field, value, match):
    with pytest.raises(ValueError, match=match):
        ase.Config(**{**TINY, field: value})


@pytest.mark.parametrize("env, reference, match", [
    ("CartPole-v1", "scripted", "continuous action"),  # a scripted expert, but discrete actions
    ("MountainCarContinuous-v0", "scripted", "scripted experts exist for"),
    ("Pendulum-v1", "nobody", "Config.reference='nobody'.*'straight', 'scripted'"),
])
def test_expert_reference_is_checked_against_the_environment(env, reference, match):
    with pytest.raises(ValueError, match=match):
        ase.Config(**TINY, env=env, reference=reference)


def test_vmapped_sweep_of_reward_weights():
    """One program: two (style, encoder) weightings, each with its own seed, 3 updates; the
    rewards follow the weights."""
    config = ase.Config(**TINY).replace(style_weight=jnp.array([0.0, 1.0]), encoder_weight=jnp.array([1.0, 0.0]))

    def run(c, key):
        return jax.lax.scan(lambda s, _: ase.update(c, s), ase.init(c, key), None, length=3)

    axes = sweep_axes(config, "style_weight", "encoder_weight")
    _, metrics = jax.jit(jax.vmap(run, in_axes=(axes, 0)))(config, jax.random.split(jax.random.PRNGKey(0), 2))
    reward = np.asarray(metrics["reward/mean"])  # [2, 3]
    # encoder only: a cosine in [−1, 1], near 0 at the start; style only: softplus(d) ≈ log 2 > 0.5
    assert np.all(np.abs(reward[0]) < 0.5) and np.all(reward[1] > 0.5), reward


# ----------------------------------------------------------------------------- learning
PRETRAIN = ase.Config()  # point/open, 100,000 steps, z on the circle, redrawn every 10 steps


def _random_transitions(key, n=4096):
    """Uniformly random positions and actions of the point mass: s′ = s + 0.1·a."""
    s_key, a_key = jax.random.split(key)
    s = jax.random.uniform(s_key, (n, 2), minval=-0.9, maxval=0.9)
    return s, s + 0.1 * jax.random.uniform(a_key, (n, 2), minval=-1.0, maxval=1.0)


@pytest.fixture(scope="module")
def pretrained():
    def run(key):
        state, _, _ = ase.train(PRETRAIN, key)
        cosine = ase.latent_rollout(PRETRAIN, state, jax.random.fold_in(key, 1), 32)["cosine"].mean()
        disc = ase.make_discriminator(PRETRAIN)
        fresh = ase.reference_transitions(PRETRAIN, jax.random.fold_in(key, 2))  # held-out reference episodes
        logits = [disc.apply(state.disc_params, ase.transition_features(*t, state.feature_mean,
                                                                        state.feature_std))[:, 0]
                  for t in (fresh, _random_transitions(jax.random.fold_in(key, 3)))]
        accuracy = (jnp.mean(logits[0] > 0) + jnp.mean(logits[1] < 0)) / 2
        return state, cosine, accuracy

    return jax.jit(jax.vmap(run))(jax.random.split(jax.random.PRNGKey(0), 3))


@pytest.mark.learning
def test_encoder_recovers_z_and_discriminator_knows_the_style(pretrained):
    """3 seeds, 100,000 steps. Measured over nine seeds (keys split(PRNGKey(b), 3), b = 0, 1, 2):
    the encoder's mean cosine μ_q(s, s′)ᵀz on fresh episodes 0.939–0.963; the discriminator's
    accuracy on held-out reference vs uniformly random transitions 0.798–0.825."""
    _, cosine, accuracy = pretrained
    assert np.all(np.asarray(cosine) > 0.8), cosine  # a z-blind policy: 0
    assert np.all(np.asarray(accuracy) > 0.65), accuracy  # chance: 0.5


@pytest.mark.learning
def test_diversity_objective_sets_how_far_actions_move_apart_per_latent_distance():
    """Eq. (5) with w_div = 1 and two targets b* (one vmapped program), 2 seeds, 32,768 steps: the
    ratio b (action distance over latent distance, the last 10 updates' training batches) follows
    its target. Measured over keys split(PRNGKey(k), 2), k = 0, 1, 2: b* = 0.5 gives 0.549–0.557,
    b* = 2.5 gives 2.251–2.411; without the objective (w_div = 0) b was 1.499–2.07."""
    config = ase.Config(total_timesteps=32_768).replace(diversity_weight=jnp.array([1.0, 1.0]),
                                                        diversity_target=jnp.array([0.5, 2.5]))

    def run(c, key):
        _, metrics, _ = ase.train(c, key)
        return metrics["diversity/ratio"][-10:].mean()

    axes = sweep_axes(config, "diversity_weight", "diversity_target")
    ratio = np.asarray(jax.jit(jax.vmap(jax.vmap(run, (None, 0)), (axes, None)))(
        config, jax.random.split(jax.random.PRNGKey(0), 2)))  # [target, seed]
    assert np.all(np.abs(ratio[0] - 0.5) < 0.15), ratio
    assert np.all((ratio[1] > 2.0) & (ratio[1] < 2.8)), ratio


@pytest.mark.learning
def test_low_level_learns_the_swing_up_experts_style_on_pendulum():
    """ASE on Pendulum-v1 with the scripted swing-up + LQR expert as the reference style
    (`Config.for_env`), 204,800 steps, 4 seeds. The low level never sees Pendulum's reward; its
    deterministic episodes with random latents still score like the expert (−149.0; uniformly
    random actions −1237.9), and the encoder recovers z from its transitions. Measured with this
    program over keys split(PRNGKey(k), 4), k = 0 … 4: mean returns −176.88 to −196.56, single
    seeds −132.5 to −236.8; the encoder's mean cosine on fresh episodes 0.506–0.576 (single seeds
    0.374–0.638). About 45 s."""
    config = ase.Config.for_env("Pendulum-v1", total_timesteps=204_800)
    env = ppo.make_env(ase.latent_env(config), False)

    def run(key):
        state, _, _ = ase.train(config, key)
        returns = run_episodes(env, lambda obs, k: ase.act(config, state.policy.params, obs, k),
                               jax.random.fold_in(key, 7), 16)
        return returns.mean(), ase.latent_rollout(config, state, jax.random.fold_in(key, 1), 16)["cosine"].mean()

    returns, cosine = map(np.asarray, jax.jit(jax.vmap(run))(jax.random.split(jax.random.PRNGKey(0), 4)))
    assert returns.mean() > -300.0 and np.all(returns > -450.0), returns
    assert cosine.mean() > 0.3, cosine  # a z-blind policy: 0


@pytest.mark.learning
def test_high_level_policy_in_z_space_reaches_the_goal_and_stays_near_it(pretrained):
    """PPO choosing a latent every 2 steps for seed 0's low-level policy on the dense goal task
    (−‖p − (0.7, 0.7)‖ per step, 50 steps from the centre; standing still scores −49.5, going
    straight there and stopping about −4), 8,192 high-level steps (16,384 env steps), 4 seeds.
    The low level always moves at full speed (its reference style), so the high level holds the
    point near the goal by turning it round every 2 steps. Measured on the three pretrained seeds
    of this fixture × PPO keys split(PRNGKey(k), 4), k = 1, 2, 3, and the three pretrained seeds of
    split(PRNGKey(1), 3) × k = 1: means −7.12 to −11.42, medians −6.79 to −9.27, single seeds
    −6.66 to −19.0. With a latent every 5 steps (4,096 high-level steps) the same high level
    reached only −20.2 to −21.6: it overshoots (benchmarks/skills.py measures both)."""
    state = jax.tree.map(lambda x: x[0], pretrained[0])
    task = envs.variant("point/goal-dense-ase-test", "point/goal", reward="dense")
    name = ase.register_latents("point/goal-ase-high-test", PRETRAIN, state, task, latent_steps=2)
    high = ppo.Config(env=name, total_timesteps=8_192, num_envs=8, num_steps=16, num_minibatches=2,
                      learning_rate=3e-3, ent_coef=0.0, eval_every=10_000)
    _, _, returns = jax.jit(jax.vmap(lambda k: ppo.train(high, k)))(jax.random.split(jax.random.PRNGKey(1), 4))
    per_seed = np.asarray(returns[:, -1].mean(-1))
    assert per_seed.mean() > -15.0 and np.median(per_seed) > -12.0, per_seed
