"""ASE — Adversarial Skill Embeddings (Peng et al. 2022, "ASE: Large-Scale Reusable Adversarial
Skill Embeddings for Physically Simulated Characters", arXiv:2205.01906; seed 001).

A low-level policy π(a|s, z) is conditioned on a latent z on the unit hypersphere S^{d−1}
(d = `latent_dim`), drawn uniformly at the start of every episode and again every
`latent_steps` steps. It is trained by PPO (`purerl.algos.ppo`) on a reward that mixes

    (1) style:    r_D = −log(1 − D(s, s′)),  D = σ(d_ψ(s, s′)) the probability that the transition
                  (s, s′) is a reference one (GAIL's reward, `gail.policy_reward`)
    (2) encoder:  r_E = κ · μ_q(s, s′)ᵀ z,   μ_q the unit mean of the encoder's von Mises–Fisher
                  q(z|s, s′) ∝ exp(κ μ_q(s, s′)ᵀ z)
    (3) r = w_style · r_D + w_encoder · r_E

and, with weight w_div (`diversity_weight`, the paper's 0.01; 0 = off, the default here), PPO's
loss gains the paper's diversity objective (as the paper's released code computes it): for
a second latent z′ drawn uniformly,

    (5) L_div = E_{s, z, z′}[(b* − ‖clip(μ(s, z)) − clip(μ(s, z′))‖² / d / (½(1 − zᵀz′) + 10⁻⁵))²]

μ the policy's mean action (clipped to [−1, 1], d its dimension), b* the target ratio
(`diversity_target`, 1): different latents must give actions that differ in proportion to the
latents' distance, so that no region of z-space collapses onto one behaviour.

The discriminator d_ψ learns reference transitions (label 1) against the policy's (label 0)
by binary cross-entropy with a gradient penalty on interpolates of reference and policy inputs (GAIL's
`discriminator_loss` + `gradient_penalty`, eq. 2–3 of `gail.py`); the encoder maximizes the
vMF log-likelihood of the z that produced each transition, i.e. minimizes

    (4) L_E = −E_{(s, s′, z) ~ π}[μ_q(s, s′)ᵀ z]

(κ is a constant, as in the paper). The policy sees [s, z]; the discriminator and the encoder
see (s, s′) only. The paper's motion-prior details are left out.

Reference transitions come from purerl itself (no downloads): `reference_transitions`
rolls out a scripted style — on the point mass, "straight" lines at full speed in a random
direction per episode — or, on any continuous-action environment, an expert of
`purerl.experts` (`reference="scripted"`: e.g. Pendulum-v1's energy-shaping swing-up and LQR
balance; or a trained purerl agent registered with `experts.register`). After training,
`register_latents` makes an environment whose continuous action a ∈ [−1, 1]^d is a latent
(z = a/‖a‖) that the frozen low-level policy follows for `latent_steps` steps: a high-level
policy (e.g. `ppo`) acts in z-space on a task.

One `update` = a PPO rollout in the latent-conditioned environment, `disc_steps` Adam steps of
the discriminator (reference vs this rollout's transitions) and of the encoder, the rewards
(3) from the updated networks, then `ppo.learn` with the diversity loss (5) added.

Usage:
    purerl train ase --env point/open --num-seeds 4
    purerl train ase --env Pendulum-v1 --num-seeds 4     # the swing-up expert's style
    state, metrics, eval_returns = jax.jit(jax.vmap(ase.train, in_axes=(None, 0)))(ase.Config(), keys)
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from purerl import envs, experts
from purerl.algos import gail, ppo
from purerl.config import check_choice, check_int, check_range, check_sizes, static
from purerl.evaluation import train_loop


# ----------------------------------------------------------------------------- config
@struct.dataclass
class Config:
    """ASE hyperparameters: the latent space, the discriminator and encoder, PPO's. Static
    fields fix the compiled program; float fields can be swept with `jax.vmap`."""

    # -- static: environment, latent space and program shape
    env: str = static("point/open")  # environment name (continuous actions)
    latent_dim: int = static(2)  # d: z lives on the unit sphere S^{d−1}
    latent_steps: int = static(10)  # z is redrawn every `latent_steps` steps (and at every episode start)
    total_timesteps: int = static(100_000)  # environment steps per seed
    num_envs: int = static(16)
    num_steps: int = static(64)
    update_epochs: int = static(4)
    num_minibatches: int = static(4)
    hidden_sizes: tuple[int, ...] = static((64, 64))  # the policy's and value's MLPs
    disc_hidden_sizes: tuple[int, ...] = static((64, 64))  # discriminator and encoder MLPs
    disc_steps: int = static(4)  # discriminator and encoder Adam steps per update
    disc_batch_size: int = static(256)
    reference_episodes: int = static(64)  # reference episodes (`reference_transitions`)
    # the reference style: "straight" lines at full speed (the point mass), or an expert's name in
    # `purerl.experts` ("scripted", or one registered with `experts.register`)
    reference: str = static("straight")
    eval_every: int = static(50)
    eval_episodes: int = static(8)
    # -- sweepable floats
    learning_rate: float = 3e-4  # PPO's Adam step size
    disc_learning_rate: float = 1e-3  # the discriminator's and the encoder's
    gamma: float = 0.95
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    ent_coef: float = 0.0
    grad_penalty: float = 0.1  # coefficient of the gradient penalty on the discriminator
    style_weight: float = 0.5  # w_style of eq. (3)
    encoder_weight: float = 0.5  # w_encoder of eq. (3)
    kappa: float = 1.0  # κ of eq. (2)
    init_log_std: float = -0.5
    diversity_weight: float = 0.0  # w_div of eq. (5) (the paper: 0.01); 0 turns the objective off
    diversity_target: float = 1.0  # b* of eq. (5)

    def __post_init__(self):
        for name in ("latent_dim", "latent_steps", "disc_steps", "disc_batch_size", "reference_episodes"):
            check_int(self, name)
        check_sizes(self, "disc_hidden_sizes")
        if self.latent_dim < 2:
            raise ValueError(f"Config.latent_dim={self.latent_dim} is invalid: must be ≥ 2 (a sphere S^(d−1))")
        envs.check_name(self.env)
        check_choice(self, "reference", ("straight", *experts.names()))
        if self.reference == "straight":
            if not self.env.startswith("point/"):
                raise ValueError(f"Config.env={self.env!r} is invalid: the reference style 'straight' is scripted for "
                                 "the point mass (point/open, point/walls, point/goal, point/goal-walls); "
                                 "elsewhere name an expert as Config.reference (e.g. 'scripted' on Pendulum-v1)")
        else:
            experts.check(self.reference, self.env, "Config.reference")
        if envs.make(self.env).discrete:
            raise ValueError(f"Config.env={self.env!r} is invalid: ASE's low level acts in a continuous action "
                             "space (its diversity objective compares mean actions)")
        for name in ("disc_learning_rate",):
            check_range(self, name, 0.0, low_inclusive=False)
        for name in ("grad_penalty", "style_weight", "encoder_weight", "kappa", "diversity_weight",
                     "diversity_target"):
            check_range(self, name, 0.0)
        ppo_config(self)  # PPO's own checks (sizes, learning rate, γ, λ, ε, …)

    @property
    def env_steps_per_update(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.env_steps_per_update

    @classmethod
    def for_env(cls, env: str, **overrides) -> "Config":
        return cls(**{"env": env, **PRESETS.get(env, {}), **overrides})


# Pendulum: the swing-up expert's style, with PPO's Pendulum settings as GAIL uses them (RL
# Baselines3 Zoo's γ 0.9, lr 1e-3, 10 epochs) and GAIL's gradient penalty there. The encoder's
# weight is a tenth of the style's: at the point mass's 0.5 the low level made z recoverable
# and lost the style (one vmapped sweep, 409,600 steps, 2 seeds: Pendulum returns −501 and −1073
# at 0.5, −209 and −195 at 0.05; the learning test in tests/algos/test_ase.py states the rest).
PRESETS: dict[str, dict[str, Any]] = {
    "point/open": dict(),
    "Pendulum-v1": dict(reference="scripted", encoder_weight=0.05, latent_steps=50, total_timesteps=409_600,
                        num_envs=16, num_steps=128, update_epochs=10, num_minibatches=16, gamma=0.9,
                        learning_rate=1e-3, grad_penalty=1.0, eval_every=25),
}


def latent_env(config: Config) -> str:
    """The name of `config.env` with z in its observations (registered on first use)."""
    name = f"{config.env}+z{config.latent_dim}every{config.latent_steps}"
    if name not in _LATENT_ENVS:
        base, dim, steps = config.env, config.latent_dim, config.latent_steps
        envs.register(name, lambda **_: LatentBackend(envs.make(base).backend, dim, steps, name))
        _LATENT_ENVS.add(name)
    return name


_LATENT_ENVS: set = set()


def ppo_config(config: Config) -> ppo.Config:
    """The inner PPO configuration, on the latent-conditioned environment."""
    return ppo.Config(env=latent_env(config), total_timesteps=config.num_updates * config.env_steps_per_update
                      if config.num_updates else config.env_steps_per_update,
                      num_envs=config.num_envs, num_steps=config.num_steps, update_epochs=config.update_epochs,
                      num_minibatches=config.num_minibatches, hidden_sizes=config.hidden_sizes,
                      eval_every=config.eval_every, eval_episodes=config.eval_episodes,
                      learning_rate=config.learning_rate, gamma=config.gamma, gae_lambda=config.gae_lambda,
                      clip_eps=config.clip_eps, ent_coef=config.ent_coef, init_log_std=config.init_log_std)


# ----------------------------------------------------------------------------- latent environment
def sample_latent(key: jax.Array, dim: int, shape=()) -> jax.Array:
    """z uniform on the unit sphere S^{dim−1}: a normalized standard Gaussian."""
    z = jax.random.normal(key, shape + (dim,))
    return z / jnp.linalg.norm(z, axis=-1, keepdims=True)


@struct.dataclass
class LatentState:
    inner: Any
    obs: jax.Array  # the inner observation (flattened)
    z: jax.Array  # [d]
    time: jax.Array  # int32, steps since z was drawn


class LatentBackend:
    """`inner` with a latent z appended to its observations: drawn at every reset and every
    `latent_steps` steps. The task's reward, terminations and truncations are kept."""

    def __init__(self, inner, latent_dim: int, latent_steps: int, name: str):
        self.inner, self.latent_dim, self.latent_steps, self.name = inner, latent_dim, latent_steps, name
        self.obs_dim = int(np.prod(inner.observation_space.shape))
        low = np.concatenate([inner.observation_space.low.ravel(), -np.ones(latent_dim)])
        high = np.concatenate([inner.observation_space.high.ravel(), np.ones(latent_dim)])
        self.observation_space = envs.Box.make(low, high, (self.obs_dim + latent_dim,))
        self.action_space = inner.action_space
        self.max_episode_steps = inner.max_episode_steps

    def reset(self, key):
        inner_key, z_key = jax.random.split(key)
        inner, obs = self.inner.reset(inner_key)
        obs = jnp.asarray(obs, jnp.float32).reshape(-1)
        z = sample_latent(z_key, self.latent_dim)
        return LatentState(inner, obs, z, jnp.zeros((), jnp.int32)), jnp.concatenate([obs, z])

    def step(self, key, state: LatentState, action):
        step_key, z_key = jax.random.split(key)
        inner, obs, reward, terminated, truncated, final_obs = self.inner.step(step_key, state.inner, action)
        obs, final_obs = jnp.asarray(obs, jnp.float32).reshape(-1), jnp.asarray(final_obs, jnp.float32).reshape(-1)
        time = state.time + 1
        redraw = terminated | truncated | (time >= self.latent_steps)
        z = jnp.where(redraw, sample_latent(z_key, self.latent_dim), state.z)
        time = jnp.where(redraw, 0, time)
        # s′ keeps the z that produced it: the encoder's target for this transition
        return (LatentState(inner, obs, z, time), jnp.concatenate([obs, z]), reward, terminated, truncated,
                jnp.concatenate([final_obs, state.z]))


# ----------------------------------------------------------------------------- reference style
def reference_transitions(config: Config, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Reference transitions (s, s′), each [N, obs_dim], from `reference_episodes` environments
    run for the time limit: with "straight", the point mass moving at full speed in one uniformly
    random direction per episode; otherwise the expert `config.reference` acting (its episodes
    follow one another through the auto-reset; s′ is the true final observation at an end)."""
    if config.reference != "straight":
        expert = experts.get(config.reference, config.env)
        data, _ = experts.episodes_rollout(envs.make(config.env), expert, key, config.reference_episodes)

        def flat(x):  # time-major [T · episodes, obs_dim], as the scripted style's
            return jnp.swapaxes(x, 0, 1).astype(jnp.float32).reshape((-1, int(np.prod(x.shape[2:]))))

        return flat(data.obs), flat(data.next_obs)
    env = envs.make(config.env)
    n = config.reference_episodes
    reset_key, direction_key, run_key = jax.random.split(key, 3)
    state, obs = env.reset(reset_key, n)
    direction = sample_latent(direction_key, 2, (n,))
    action = direction / jnp.max(jnp.abs(direction), axis=-1, keepdims=True)  # full speed on the box [−1, 1]²

    def step(carry, step_key):
        state, obs = carry
        state, ts = env.step(step_key, state, action)
        return (state, ts.obs), (obs, ts.final_obs)

    _, (s, s_next) = jax.lax.scan(step, (state, obs), jax.random.split(run_key, env.max_episode_steps))
    flat = lambda x: x.reshape((-1, x.shape[-1]))  # noqa: E731
    return flat(s), flat(s_next)


# ----------------------------------------------------------------------------- networks and losses
def make_discriminator(config: Config) -> ppo.MLP:
    """d_ψ(s, s′) → one logit."""
    return ppo.MLP(tuple(config.disc_hidden_sizes), "tanh", 1, head_scale=1.0)


def make_encoder(config: Config) -> ppo.MLP:
    """The encoder's unnormalized mean of q(z|s, s′), d outputs (normalized in `encoder_mean`)."""
    return ppo.MLP(tuple(config.disc_hidden_sizes), "tanh", config.latent_dim, head_scale=1.0)


def encoder_mean(raw: jax.Array) -> jax.Array:
    """μ_q on the unit sphere from the encoder's output."""
    return raw / jnp.sqrt(jnp.sum(raw**2, axis=-1, keepdims=True) + 1e-8)


def encoder_loss(mu: jax.Array, z: jax.Array) -> jax.Array:
    """Eq. (4): −E[μ_qᵀ z] (the vMF log-likelihood up to κ and its normalizer)."""
    return -jnp.mean(jnp.sum(mu * z, axis=-1))


def ase_reward(style_logits: jax.Array, mu: jax.Array, z: jax.Array, config: Config) -> jax.Array:
    """Eq. (3): w_style · softplus(d) + w_encoder · κ μ_qᵀ z."""
    style = gail.policy_reward(style_logits, "gail")
    return config.style_weight * style + config.encoder_weight * config.kappa * jnp.sum(mu * z, axis=-1)


def diversity_loss(mu: jax.Array, mu_other: jax.Array, z: jax.Array, z_other: jax.Array,
                   target) -> tuple[jax.Array, jax.Array]:
    """Eq. (5) for mean actions μ(s, z), μ(s, z′) [B, d] and latents z, z′ [B, latent_dim]:
    returns (L_div, the mean ratio b = ‖Δ clip(μ)‖²/d / (½(1 − zᵀz′) + 10⁻⁵))."""
    action_distance = jnp.mean((jnp.clip(mu, -1.0, 1.0) - jnp.clip(mu_other, -1.0, 1.0)) ** 2, axis=-1)
    latent_distance = 0.5 - 0.5 * jnp.sum(z * z_other, axis=-1)
    ratio = action_distance / (latent_distance + 1e-5)
    return jnp.mean((target - ratio) ** 2), jnp.mean(ratio)


def transition_features(s: jax.Array, s_next: jax.Array, mean=0.0, std=1.0) -> jax.Array:
    """(s, s′ − s), standardized by the reference transitions' `mean` and `std`: the
    discriminator's and the encoder's input."""
    return (jnp.concatenate([s, s_next - s], axis=-1) - mean) / std


# ----------------------------------------------------------------------------- state
@struct.dataclass
class TrainState:
    policy: ppo.TrainState
    disc_params: Any
    disc_opt_state: Any
    encoder_params: Any
    encoder_opt_state: Any
    reference: tuple  # (s, s′) reference transitions [N, obs_dim] each
    feature_mean: jax.Array  # the reference features' mean and standard deviation (+1e-3)
    feature_std: jax.Array

    @property
    def rng(self) -> jax.Array:
        return self.policy.rng

    @property
    def update_step(self) -> jax.Array:
        return self.policy.update_step


def init(config: Config, key: jax.Array) -> TrainState:
    key, policy_key, disc_key, enc_key, ref_key = jax.random.split(key, 5)
    policy = ppo.init(ppo_config(config), policy_key)
    reference = reference_transitions(config, ref_key)
    features = transition_features(*reference)
    feature_mean, feature_std = features.mean(0), features.std(0) + 1e-3
    example = features[:1]
    disc_params = make_discriminator(config).init(disc_key, example)
    encoder_params = make_encoder(config).init(enc_key, example)
    adam = optax.adam(config.disc_learning_rate)
    return TrainState(policy=policy, disc_params=disc_params, disc_opt_state=adam.init(disc_params),
                      encoder_params=encoder_params, encoder_opt_state=adam.init(encoder_params),
                      reference=reference, feature_mean=feature_mean, feature_std=feature_std)


def _split(config: Config, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    return x[..., : -config.latent_dim], x[..., -config.latent_dim:]


def diversity_term(config: Config, pc: ppo.Config):
    """Eq. (5) as `ppo.learn`'s `extra_loss(params, minibatch, key)`, weighted by w_div; None when
    w_div is exactly 0 and known at trace time (not swept), which leaves PPO's update as it is."""
    if isinstance(config.diversity_weight, (int, float)) and config.diversity_weight == 0:
        return None
    network = ppo.make_network(pc, ppo.make_env(pc.env, pc.normalize_obs))

    def diversity(params, batch, key):
        s, z = _split(config, batch.obs)
        z_other = sample_latent(key, config.latent_dim, z.shape[:-1])
        mean = lambda latent: network.apply(params, jnp.concatenate([s, latent], -1),  # noqa: E731
                                            method=ppo.ActorCritic.policy).mean()
        loss, ratio = diversity_loss(mean(z), mean(z_other), z, z_other, config.diversity_target)
        return config.diversity_weight * loss, {"loss/diversity": loss, "diversity/ratio": ratio}

    return diversity


def update(config: Config, state: TrainState) -> tuple[TrainState, dict]:
    """One ASE iteration: PPO rollout with z, discriminator and encoder steps, rewards (3), PPO."""
    pc = ppo_config(config)
    disc, encoder = make_discriminator(config), make_encoder(config)
    adam = optax.adam(config.disc_learning_rate)
    policy = state.policy
    (env_state, obs, rng), traj = ppo.rollout(pc, policy.params, policy.env_state, policy.obs, policy.rng)
    flat = lambda x: x.reshape((-1,) + x.shape[2:])  # noqa: E731
    s, z = _split(config, flat(traj.raw_obs))
    s_next, z_next = _split(config, flat(traj.raw_final_obs))  # z_next is the z that acted (see LatentBackend)
    policy_x = transition_features(s, s_next, state.feature_mean, state.feature_std)
    ref_x = transition_features(*state.reference, state.feature_mean, state.feature_std)

    def net_step(carry, key):
        disc_params, disc_opt, enc_params, enc_opt = carry
        policy_key, ref_key, penalty_key = jax.random.split(key, 3)
        index = jax.random.randint(policy_key, (config.disc_batch_size,), 0, policy_x.shape[0])
        ref_index = jax.random.randint(ref_key, (config.disc_batch_size,), 0, ref_x.shape[0])
        px, rx = policy_x[index], ref_x[ref_index]

        def disc_loss(params):
            bce = gail.discriminator_loss(disc.apply(params, rx)[:, 0], disc.apply(params, px)[:, 0])
            penalty = gail.gradient_penalty(lambda x: disc.apply(params, x[None])[0, 0], rx, px, penalty_key)
            return bce + config.grad_penalty * penalty, bce

        (_, bce), grads = jax.value_and_grad(disc_loss, has_aux=True)(disc_params)
        updates, disc_opt = adam.update(grads, disc_opt, disc_params)
        disc_params = optax.apply_updates(disc_params, updates)

        def enc_loss(params):
            return encoder_loss(encoder_mean(encoder.apply(params, px)), z_next[index])

        e_loss, grads = jax.value_and_grad(enc_loss)(enc_params)
        updates, enc_opt = adam.update(grads, enc_opt, enc_params)
        enc_params = optax.apply_updates(enc_params, updates)
        return (disc_params, disc_opt, enc_params, enc_opt), {"disc/loss": bce, "encoder/loss": e_loss}

    rng, net_key = jax.random.split(rng)
    carry = (state.disc_params, state.disc_opt_state, state.encoder_params, state.encoder_opt_state)
    carry, net_aux = jax.lax.scan(net_step, carry, jax.random.split(net_key, config.disc_steps))
    disc_params, disc_opt, enc_params, enc_opt = carry
    logits = disc.apply(disc_params, policy_x)[:, 0]
    mu = encoder_mean(encoder.apply(enc_params, policy_x))
    reward = ase_reward(logits, mu, z_next, config).reshape(traj.reward.shape)
    params, opt_state, rng, aux = ppo.learn(pc, policy.params, policy.opt_state, traj.replace(reward=reward), rng,
                                            extra_loss=diversity_term(config, pc))
    metrics = {**jax.tree.map(jnp.mean, aux), **jax.tree.map(lambda x: x[-1], net_aux),
               "reward/mean": reward.mean(), "encoder/cosine": jnp.mean(jnp.sum(mu * z_next, axis=-1)),
               "disc/policy_prob": jnp.mean(jax.nn.sigmoid(logits)),
               "disc/reference_prob": jnp.mean(jax.nn.sigmoid(disc.apply(disc_params, ref_x[:1024])[:, 0]))}
    policy = ppo.TrainState(params=params, opt_state=opt_state, env_state=env_state, obs=obs, rng=rng,
                            update_step=policy.update_step + 1)
    return state.replace(policy=policy, disc_params=disc_params, disc_opt_state=disc_opt,
                         encoder_params=enc_params, encoder_opt_state=enc_opt), metrics


def act(config: Config, params, obs: jax.Array, key: jax.Array, deterministic: bool = True) -> jax.Array:
    """The low-level policy's action for observations [s, z]; `params` is `state.policy.params`."""
    return ppo.act(ppo_config(config), params, obs, key, deterministic)


def latent_rollout(config: Config, state: TrainState, key: jax.Array, num_episodes: int | None = None,
                   deterministic: bool = True) -> dict:
    """Fresh episodes of the low-level policy in the latent environment: the encoder's cosine
    μ_q(s, s′)ᵀ z [T, N], the discriminator's logit d(s, s′) and D = σ(d) [T, N] on every transition."""
    env = ppo.make_env(latent_env(config), False)
    disc, encoder = make_discriminator(config), make_encoder(config)
    n = num_episodes or config.eval_episodes
    reset_key, run_key = jax.random.split(key)
    env_state, obs = env.reset(reset_key, n)

    def step(carry, step_key):
        env_state, obs = carry
        act_key, env_key = jax.random.split(step_key)
        action = act(config, state.policy.params, obs, act_key, deterministic)
        env_state, ts = env.step(env_key, env_state, action, update_stats=False)
        s, _ = _split(config, obs)
        s_next, z = _split(config, ts.final_obs)
        x = transition_features(s, s_next, state.feature_mean, state.feature_std)
        cosine = jnp.sum(encoder_mean(encoder.apply(state.encoder_params, x)) * z, axis=-1)
        return (env_state, ts.obs), (cosine, disc.apply(state.disc_params, x)[:, 0], s_next)

    _, (cosine, style_logit, positions) = jax.lax.scan(step, (env_state, obs),
                                                       jax.random.split(run_key, env.max_episode_steps))
    return {"cosine": cosine, "style_logit": style_logit, "style_prob": jax.nn.sigmoid(style_logit),
            "positions": positions}


def evaluate(config: Config, state: TrainState) -> jax.Array:
    """The sum over an episode of reward (3) with the current networks, per deterministic episode
    (`eval_episodes`): the low-level objective (the environment's own reward is not used)."""
    key = jax.random.fold_in(state.rng, 0x5EED)
    out = latent_rollout(config, state, key)
    reward = (config.style_weight * jax.nn.softplus(out["style_logit"])
              + config.encoder_weight * config.kappa * out["cosine"])
    return reward.sum(0)


def train(config: Config, key: jax.Array):
    """`init` + `lax.scan` of `update`, evaluating every `eval_every` updates and at the end."""
    state = init(config, key)
    return train_loop(functools.partial(update, config), functools.partial(evaluate, config), state,
                      config.num_updates, config.eval_every)


# ----------------------------------------------------------------------------- high level
def high_level_backend(config: Config, policy_params, task: str, name: str,
                       latent_steps: int | None = None) -> envs.MacroBackend:
    """A backend whose action a ∈ [−1, 1]^d is a latent z = a/‖a‖ that the frozen low-level policy
    follows (deterministically) in `task` for `latent_steps` steps (default the config's), or until
    the episode ends, the task's rewards summed (`envs.MacroBackend`)."""
    low = ppo.make_env(config.env, False)  # the low-level's action scale (rescaled to [−1, 1])
    policy_params = jax.tree.map(np.asarray, policy_params)

    def controller(obs, action, key):
        z = action / jnp.sqrt(jnp.sum(action**2) + 1e-8)
        a = act(config, policy_params, jnp.concatenate([obs.reshape(-1), z])[None], key)[0]
        return low._to_native(a)

    return envs.MacroBackend(envs.make(task).backend, envs.Box.make(-1.0, 1.0, (config.latent_dim,)), controller,
                             latent_steps or config.latent_steps, name)


def register_latents(name: str, config: Config, state: TrainState, task: str, latent_steps: int | None = None) -> str:
    """Register `name`: `task` acted in through the frozen low-level policy of `state` (one seed's,
    unbatched), a latent held for `latent_steps` steps (default the config's), for a high-level
    learner's `Config(env=name)`. Returns `name`."""
    params = jax.device_get(state.policy.params)
    envs.register(name, lambda **_: high_level_backend(config, params, task, name, latent_steps))
    return name
