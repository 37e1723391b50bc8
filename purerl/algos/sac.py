"""SAC — soft actor-critic with twin critics and a learned temperature (Haarnoja et al.
2018, "Soft Actor-Critic Algorithms and Applications", arXiv:1812.05905), and its
discrete-action variant (Christodoulou 2019, arXiv:1910.07207), chosen automatically
from the environment's action space.

One `update` = each of `num_envs` parallel environments takes `steps_per_update` steps
with the stochastic policy (uniformly random actions before `learning_starts`
environment steps), every transition goes into the replay buffer (`purerl.buffers`),
then `gradient_steps` gradient steps (none before `learning_starts`), each on a fresh
minibatch: critics, then actor, then temperature, then the Polyak target update.
Equations (continuous actions; ã ~ π_φ(·|s) by reparameterization, a′ ~ π_φ(·|s′)):

    (1) y = r + γ (1 − d) (min_i Q_θ̄i(s′, a′) − α log π_φ(a′|s′))
        d = 1 only on a true terminal: a time-limit truncation bootstraps from the true s′.
    (2) J_Q(θ_i) = ½ E[(Q_θi(s, a) − ⊥y)²], summed over the two critics
    (3) J_π(φ) = E[α log π_φ(ã|s) − min_i Q_θi(s, ã)]
    (4) J(α) = E[α · ⊥(−log π_φ(ã|s) − H_target)],  H_target = −|A| by default
        (α = exp(log α) is what is learned; with `autotune_alpha=False`, α = `alpha` fixed)
    (5) θ̄_i ← τ θ_i + (1 − τ) θ̄_i after every gradient step
    (6) π_φ(·|s) = tanh(N(μ_φ(s), σ_φ(s)²)), so
        log π(a|s) = log N(u; μ, σ²) − Σ_j log(1 − tanh(u_j)²),  a = tanh(u)
        (distrax `Transformed(MultivariateNormalDiag, Block(Tanh, 1))`); actions live in
        [−1, 1]^|A| and the environment rescales them to its bounds.

Discrete actions (categorical π over |A| actions; critics output Q(s, ·) for every action
and the expectations over π are exact sums):

    (1d) y = r + γ (1 − d) Σ_a′ π(a′|s′) (min_i Q_θ̄i(s′, a′) − α log π(a′|s′))
    (3d) J_π(φ) = E_s[Σ_a π(a|s) (α log π(a|s) − min_i Q_θi(s, a))]
    (4d) J(α) = E_s[α · ⊥(H(π(·|s)) − H_target)],  H_target = `target_entropy_ratio` · log|A|
         (Christodoulou uses a ratio of 0.98; purerl's default is 0.5, the CartPole preset 0.1)

Defaults are Stable-Baselines3's SAC defaults (lr 3e-4, batch 256, τ 0.005, γ 0.99,
learning_starts 100, one gradient step per environment step, initial α = 1, nets
[256, 256]); `PRESETS` holds purerl's tuned settings (Pendulum-v1 follows the RL
Baselines3 Zoo entry, lr 1e-3, on smaller networks). Evaluation is deterministic:
tanh(μ_φ(s)) or the most probable action.

The buffer stores raw observations; with `normalize_obs` a sampled minibatch is normalized
with the current statistics (as Stable-Baselines3 does), not those of when it was stored.

Pieces an algorithm built on SAC can reuse: `make_networks`, `init_agent`, `agent_step` (one
gradient step of eqs. 1–5 on a batch of `buffers.Transition`), the loss functions.

Usage:
    purerl train sac --env Pendulum-v1 --num-seeds 8
    state, metrics, eval_returns = jax.jit(jax.vmap(sac.train, in_axes=(None, 0)))(sac.Config(), keys)
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple, Sequence

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from purerl import buffers, envs
from purerl.config import check_bool, check_int, check_range, check_sizes, static
from purerl.evaluation import evaluate as run_episodes
from purerl.evaluation import train_loop

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0  # bounds of the Gaussian's log σ (as in the authors' code)


# ----------------------------------------------------------------------------- config
@struct.dataclass
class Config:
    """SAC hyperparameters. Static fields fix the compiled program; float fields can be
    swept with `jax.vmap` (see `purerl.config.sweep_axes`)."""

    # -- static: environment and program shape
    env: str = static("Pendulum-v1")  # environment name (continuous or discrete actions)
    total_timesteps: int = static(20_000)  # environment steps per seed (all envs together)
    num_envs: int = static(1)  # parallel environments feeding the buffer
    steps_per_update: int = static(1)  # steps each environment takes per update
    gradient_steps: int = static(1)  # gradient steps per update (after learning_starts)
    batch_size: int = static(256)  # transitions per gradient step
    buffer_size: int = static(1_000_000)  # replay capacity in transitions (all envs together)
    learning_starts: int = static(100)  # environment steps of random actions before learning
    hidden_sizes: tuple[int, ...] = static((256, 256))  # MLP widths (ReLU), actor and critics alike
    autotune_alpha: bool = static(True)  # learn α by eq. (4); False: α = `alpha` throughout
    normalize_obs: bool = static(False)  # running observation normalization (environment option)
    eval_every: int = static(1_000)  # updates between evaluations
    eval_episodes: int = static(8)  # deterministic episodes per evaluation
    # -- sweepable floats
    learning_rate: float = 3e-4  # Adam step size (actor, critics and temperature)
    gamma: float = 0.99  # discount γ
    tau: float = 0.005  # Polyak rate τ of the target critics, eq. (5)
    alpha: float = 1.0  # temperature α: its initial value when autotuned, else fixed
    target_entropy_scale: float = 1.0  # continuous actions: H_target = −scale·|A|, eq. (4)
    target_entropy_ratio: float = 0.5  # discrete actions: H_target = ratio·log|A|, eq. (4d)

    def __post_init__(self):
        envs.check_name(self.env)
        for name in ("total_timesteps", "num_envs", "steps_per_update", "batch_size", "buffer_size",
                     "eval_every", "eval_episodes"):
            check_int(self, name)
        check_int(self, "gradient_steps", low=0)
        check_int(self, "learning_starts", low=0)
        check_sizes(self, "hidden_sizes")
        for name in ("autotune_alpha", "normalize_obs"):
            check_bool(self, name)
        if self.buffer_size < self.num_envs:
            raise ValueError(f"Config.buffer_size={self.buffer_size} is invalid: must hold at least one step of "
                             f"every environment, num_envs={self.num_envs}")
        if self.total_timesteps < self.env_steps_per_update:
            raise ValueError(f"Config.total_timesteps={self.total_timesteps} is invalid: must be ≥ one update, "
                             f"num_envs*steps_per_update={self.env_steps_per_update}")
        check_range(self, "learning_rate", 0.0, low_inclusive=False)
        check_range(self, "gamma", 0.0, 1.0)
        check_range(self, "tau", 0.0, 1.0, low_inclusive=False)
        check_range(self, "alpha", 0.0, low_inclusive=False)
        check_range(self, "target_entropy_scale", -10.0, 10.0)
        check_range(self, "target_entropy_ratio", 0.0, 1.0, high_inclusive=False)

    @property
    def env_steps_per_update(self) -> int:
        return self.num_envs * self.steps_per_update

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.env_steps_per_update

    @property
    def gradient_steps_per_update(self) -> int:
        """Gradient steps in one `update` once learning has started."""
        return self.gradient_steps

    @property
    def first_learning_update(self) -> int:
        """Index of the first update that learns: the first whose collection reaches `learning_starts`."""
        return max(-(-self.learning_starts // self.env_steps_per_update), 1) - 1

    @classmethod
    def for_env(cls, env: str, **overrides) -> "Config":
        """Defaults tuned for `env` (from `PRESETS`), then `overrides`."""
        return cls(**{"env": env, **PRESETS.get(env, {}), **overrides})


# Per-environment settings (see tests/algos/test_sac.py for what they reach).
#
# CartPole-v1 (discrete SAC): 1,562 updates of 8 envs × 8 steps (99,968 env steps), 8 gradient
# steps of 64 transitions each (12,376 in all). The earlier preset (40k steps, τ = 0.005, γ = 0.99,
# lr 1e-3, raw observations) plateaued near 266 and got worse when trained longer: with
# τ(1 − γ) = 5e-5 per gradient step the target critics need ~20k gradient steps to propagate
# returns over the episode (a 100k-step run at τ = 0.005 ended with mean Q ≈ 29, not ~100), so the
# critic stayed myopic: every failure of the greedy policy was the cart drifting past |x| = 2.4
# about 300 steps in.
# A fast target (τ = 0.2), a long horizon (γ = 0.999), normalized observations and more, smaller
# gradient steps fix that. Measured with the test's call (8 seeds in one vmap, jax 0.9.2, 2-core
# AMD EPYC), mean final greedy return per key set jax.random.split(PRNGKey(k), 8), k = 0, 1, 2, 3:
# 500.0, 494.3, 471.7, 500.0 (IQM 500.0 on each; 1 seed of 32 below 450, at 273.5).
PRESETS: dict[str, dict[str, Any]] = {
    "Pendulum-v1": dict(total_timesteps=20_000, buffer_size=20_000, learning_rate=1e-3, hidden_sizes=(64, 64),
                        batch_size=128, eval_every=1_000),
    "CartPole-v1": dict(total_timesteps=100_000, num_envs=8, steps_per_update=8, gradient_steps=8,
                        buffer_size=100_000, learning_starts=1_000, batch_size=64, hidden_sizes=(64, 64),
                        normalize_obs=True, learning_rate=8e-4, gamma=0.999, tau=0.2, target_entropy_ratio=0.1,
                        eval_every=200),
}


# ----------------------------------------------------------------------------- networks
class MLP(nn.Module):
    hidden_sizes: Sequence[int]
    out_dim: int

    @nn.compact
    def __call__(self, x):
        for size in self.hidden_sizes:
            x = nn.relu(nn.Dense(size)(x))
        return nn.Dense(self.out_dim)(x)


class Actor(nn.Module):
    """π_φ(·|s): a tanh-Gaussian, eq. (6), or a categorical over the actions."""

    obs_ndim: int
    action_dim: int  # number of actions (discrete) or action dimension (continuous)
    discrete: bool
    hidden_sizes: Sequence[int]

    @nn.compact
    def __call__(self, obs) -> distrax.Distribution:
        x = obs.reshape(obs.shape[: obs.ndim - self.obs_ndim] + (-1,))
        if self.discrete:
            return distrax.Categorical(logits=MLP(self.hidden_sizes, self.action_dim)(x))
        out = MLP(self.hidden_sizes, 2 * self.action_dim)(x)
        mean, log_std = jnp.split(out, 2, axis=-1)
        std = jnp.exp(jnp.clip(log_std, LOG_STD_MIN, LOG_STD_MAX))
        return tanh_gaussian(mean, std)


def tanh_gaussian(mean, std) -> distrax.Distribution:
    """Eq. (6): a diagonal Gaussian squashed by tanh, log-density by change of variables."""
    return distrax.Transformed(distrax.MultivariateNormalDiag(mean, std), distrax.Block(distrax.Tanh(), 1))


class TwinCritic(nn.Module):
    """Two independent critics (an `nn.vmap` ensemble): Q_i(s, a) → [2, ...] (continuous),
    or Q_i(s, ·) → [2, ..., |A|] (discrete, `action=None`)."""

    obs_ndim: int
    out_dim: int  # 1 (continuous: the action is an input) or |A| (discrete)
    hidden_sizes: Sequence[int]

    @nn.compact
    def __call__(self, obs, action=None):
        x = obs.reshape(obs.shape[: obs.ndim - self.obs_ndim] + (-1,))
        if action is not None:
            x = jnp.concatenate([x, action], axis=-1)
        ensemble = nn.vmap(MLP, variable_axes={"params": 0}, split_rngs={"params": True}, in_axes=None,
                           out_axes=0, axis_size=2)
        q = ensemble(self.hidden_sizes, self.out_dim)(x)
        return q[..., 0] if action is not None else q


class Networks(NamedTuple):
    actor: Actor
    critic: TwinCritic
    discrete: bool
    action_dim: int
    target_entropy: float  # H_target without the config's scale (−|A| or log|A|)


def make_networks(config: Config, obs_shape: tuple[int, ...], action_space) -> Networks:
    """Actor and twin critic for observations of `obs_shape` and `action_space`
    (`envs.Discrete` → discrete SAC, `envs.Box` → tanh-Gaussian SAC)."""
    discrete = isinstance(action_space, envs.Discrete)
    action_dim = action_space.n if discrete else int(np.prod(action_space.shape))
    sizes = tuple(config.hidden_sizes)
    return Networks(
        actor=Actor(len(obs_shape), action_dim, discrete, sizes),
        critic=TwinCritic(len(obs_shape), action_dim if discrete else 1, sizes),
        discrete=discrete,
        action_dim=action_dim,
        target_entropy=float(np.log(action_dim)) if discrete else -float(action_dim),
    )


@functools.lru_cache(maxsize=None)
def make_env(env_name: str, normalize_obs: bool) -> envs.Environment:
    return envs.make(env_name, normalize_obs=normalize_obs)


def target_entropy(config: Config, networks: Networks):
    """H_target of eqs. (4)/(4d): −scale·|A| (continuous) or ratio·log|A| (discrete)."""
    if networks.discrete:
        return config.target_entropy_ratio * networks.target_entropy
    return config.target_entropy_scale * networks.target_entropy


# ----------------------------------------------------------------------------- state
@struct.dataclass
class Agent:
    """Everything SAC learns: parameters, target critics, temperature, optimizer states."""

    actor_params: Any
    critic_params: Any
    target_critic_params: Any
    log_alpha: jax.Array  # log α (constant when not autotuned)
    actor_opt_state: Any
    critic_opt_state: Any
    alpha_opt_state: Any


@struct.dataclass
class TrainState:
    agent: Agent
    env_state: envs.EnvState
    obs: jax.Array  # [num_envs, *obs_shape] what the policy acts on next
    buffer: buffers.ReplayBuffer
    rng: jax.Array
    update_step: jax.Array  # int32, updates done


# ----------------------------------------------------------------------------- math
def soft_state_value(q_min, log_prob, alpha, probs=None) -> jax.Array:
    """V(s) = min_i Q_i(s, a) − α log π(a|s) at a sampled a (continuous), or its exact
    expectation Σ_a π(a|s)(min_i Q_i(s, a) − α log π(a|s)) when `probs` is given (discrete)."""
    value = q_min - alpha * log_prob
    return value if probs is None else jnp.sum(probs * value, axis=-1)


def soft_td_target(reward, terminated, gamma, next_value) -> jax.Array:
    """Eqs. (1)/(1d): y = r + γ (1 − d) V(s′)."""
    return reward + gamma * (1.0 - terminated.astype(jnp.float32)) * next_value


def critic_loss_from_q(q, target) -> jax.Array:
    """Eq. (2): Σ_i ½ E[(Q_i − ⊥y)²]; `q` is [2, B]."""
    return 0.5 * jnp.sum(jnp.mean((q - jax.lax.stop_gradient(target)) ** 2, axis=-1))


def actor_loss_from_q(q_min, log_prob, alpha, probs=None) -> jax.Array:
    """Eq. (3): E[α log π(ã|s) − min_i Q_i(s, ã)]; eq. (3d) with `probs` (exact expectation)."""
    per_sample = alpha * log_prob - q_min
    if probs is not None:
        per_sample = jnp.sum(probs * per_sample, axis=-1)
    return jnp.mean(per_sample)


def temperature_loss(log_alpha, entropy, target_entropy) -> jax.Array:
    """Eqs. (4)/(4d): E[α · ⊥(entropy − H_target)], α = exp(log α); `entropy` is −log π(ã|s)
    of a sampled action (continuous) or the exact H(π(·|s)) (discrete)."""
    return jnp.mean(jnp.exp(log_alpha) * jax.lax.stop_gradient(entropy - target_entropy))


def _policy_terms(networks: Networks, actor_params, obs, key):
    """(action or None, log π, probs or None) for the losses: a reparameterized sample
    and its log-probability (continuous), or every action's log-probability and probability."""
    dist = networks.actor.apply(actor_params, obs)
    if networks.discrete:
        log_probs = jax.nn.log_softmax(dist.logits, axis=-1)
        return None, log_probs, jnp.exp(log_probs)
    action, log_prob = dist.sample_and_log_prob(seed=key)
    return action, log_prob, None


def critic_loss(critic_params, networks: Networks, batch: buffers.Transition, target) -> tuple[jax.Array, jax.Array]:
    """Eq. (2) for parameters `critic_params`. Returns (loss, Q(s, a) [2, B])."""
    if networks.discrete:
        q_all = networks.critic.apply(critic_params, batch.obs)  # [2, B, A]
        index = jnp.broadcast_to(batch.action.astype(jnp.int32)[None, :, None], q_all.shape[:2] + (1,))
        q = jnp.take_along_axis(q_all, index, axis=-1)[..., 0]
    else:
        q = networks.critic.apply(critic_params, batch.obs, batch.action)
    return critic_loss_from_q(q, target), q


def actor_loss(actor_params, networks: Networks, critic_params, obs, alpha, key) -> tuple[jax.Array, jax.Array]:
    """Eq. (3)/(3d) for parameters `actor_params`. Returns (loss, entropy estimate per state)."""
    action, log_prob, probs = _policy_terms(networks, actor_params, obs, key)
    if networks.discrete:
        q_min = networks.critic.apply(critic_params, obs).min(axis=0)
        entropy = -jnp.sum(probs * log_prob, axis=-1)
    else:
        q_min = networks.critic.apply(critic_params, obs, action).min(axis=0)
        entropy = -log_prob
    return actor_loss_from_q(q_min, log_prob, alpha, probs), entropy


def compute_target(networks: Networks, agent: Agent, batch: buffers.Transition, alpha, gamma, key) -> jax.Array:
    """Eq. (1)/(1d) with the target critics and a fresh a′ ~ π(·|s′)."""
    next_action, next_log_prob, next_probs = _policy_terms(networks, agent.actor_params, batch.next_obs, key)
    if networks.discrete:
        next_q = networks.critic.apply(agent.target_critic_params, batch.next_obs)
    else:
        next_q = networks.critic.apply(agent.target_critic_params, batch.next_obs, next_action)
    next_value = soft_state_value(next_q.min(axis=0), next_log_prob, alpha, next_probs)
    return soft_td_target(batch.reward, batch.terminated, gamma, next_value)


# ----------------------------------------------------------------------------- learning
def make_optimizer(config: Config) -> optax.GradientTransformation:
    return optax.adam(config.learning_rate)


def init_agent(config: Config, networks: Networks, example_obs: jax.Array, key: jax.Array) -> Agent:
    """Fresh parameters for a batch of observations shaped like `example_obs`."""
    actor_key, critic_key = jax.random.split(key)
    actor_params = networks.actor.init(actor_key, example_obs)
    if networks.discrete:
        critic_params = networks.critic.init(critic_key, example_obs)
    else:
        critic_params = networks.critic.init(critic_key, example_obs,
                                             jnp.zeros(example_obs.shape[:1] + (networks.action_dim,)))
    log_alpha = jnp.log(jnp.asarray(config.alpha, jnp.float32))
    optimizer = make_optimizer(config)
    return Agent(actor_params=actor_params, critic_params=critic_params, target_critic_params=critic_params,
                 log_alpha=log_alpha, actor_opt_state=optimizer.init(actor_params),
                 critic_opt_state=optimizer.init(critic_params), alpha_opt_state=optimizer.init(log_alpha))


def agent_step(config: Config, networks: Networks, agent: Agent, batch: buffers.Transition,
               key: jax.Array) -> tuple[Agent, dict]:
    """One SAC gradient step on `batch`: critics (1, 2), actor (3), temperature (4), targets (5)."""
    optimizer = make_optimizer(config)
    target_key, actor_key = jax.random.split(key)
    alpha = jnp.exp(agent.log_alpha)

    target = compute_target(networks, agent, batch, alpha, config.gamma, target_key)
    (q_loss, q), grads = jax.value_and_grad(critic_loss, has_aux=True)(agent.critic_params, networks, batch, target)
    updates, critic_opt_state = optimizer.update(grads, agent.critic_opt_state, agent.critic_params)
    critic_params = optax.apply_updates(agent.critic_params, updates)

    (pi_loss, entropy), grads = jax.value_and_grad(actor_loss, has_aux=True)(
        agent.actor_params, networks, critic_params, batch.obs, alpha, actor_key)
    updates, actor_opt_state = optimizer.update(grads, agent.actor_opt_state, agent.actor_params)
    actor_params = optax.apply_updates(agent.actor_params, updates)

    h_target = target_entropy(config, networks)
    alpha_loss, grad = jax.value_and_grad(temperature_loss)(agent.log_alpha, entropy, h_target)
    if config.autotune_alpha:
        update, alpha_opt_state = optimizer.update(grad, agent.alpha_opt_state, agent.log_alpha)
        log_alpha = optax.apply_updates(agent.log_alpha, update)
    else:
        log_alpha, alpha_opt_state = agent.log_alpha, agent.alpha_opt_state

    target_critic_params = jax.tree.map(lambda p, t: config.tau * p + (1.0 - config.tau) * t,
                                        critic_params, agent.target_critic_params)
    new_agent = Agent(actor_params=actor_params, critic_params=critic_params,
                      target_critic_params=target_critic_params, log_alpha=log_alpha,
                      actor_opt_state=actor_opt_state, critic_opt_state=critic_opt_state,
                      alpha_opt_state=alpha_opt_state)
    metrics = {"loss/critic": q_loss, "loss/actor": pi_loss, "loss/alpha": alpha_loss, "alpha": alpha,
               "entropy": entropy.mean(), "q_mean": q.mean()}
    return new_agent, metrics


def sample_action(networks: Networks, actor_params, obs, key, deterministic: bool) -> jax.Array:
    """An action of π_φ: sampled, or deterministic (tanh(μ) / the most probable action)."""
    dist = networks.actor.apply(actor_params, obs)
    if deterministic:
        if networks.discrete:
            return jnp.argmax(dist.logits, axis=-1)
        return jnp.tanh(dist.distribution.loc)
    return dist.sample(seed=key)


def random_action(networks: Networks, key, num: int) -> jax.Array:
    """Uniformly random actions (the learning-starts phase)."""
    if networks.discrete:
        return jax.random.randint(key, (num,), 0, networks.action_dim)
    return jax.random.uniform(key, (num, networks.action_dim), minval=-1.0, maxval=1.0)


# ----------------------------------------------------------------------------- init / update / train
def _networks(config: Config) -> tuple[envs.Environment, Networks]:
    env = make_env(config.env, config.normalize_obs)
    return env, make_networks(config, env.obs_shape, env.action_space)


def init(config: Config, key: jax.Array) -> TrainState:
    env, networks = _networks(config)
    key, agent_key, reset_key = jax.random.split(key, 3)
    env_state, obs = env.reset(reset_key, config.num_envs)
    example = buffers.Transition(
        obs=obs[0], reward=jnp.zeros(()), terminated=jnp.zeros((), bool), truncated=jnp.zeros((), bool),
        next_obs=obs[0],
        action=jnp.zeros((), jnp.int32) if networks.discrete else jnp.zeros((networks.action_dim,), jnp.float32))
    return TrainState(agent=init_agent(config, networks, obs, agent_key), env_state=env_state, obs=obs,
                      buffer=buffers.create(example, config.num_envs, config.buffer_size), rng=key,
                      update_step=jnp.zeros((), jnp.int32))


def update(config: Config, state: TrainState, update_index=None) -> tuple[TrainState, dict]:
    """One SAC iteration: policy steps into the buffer → `gradient_steps` × `agent_step`.

    `update_index` is `state.update_step` (the default) given unbatched: `evaluation.run_block`
    passes it so that under `vmap` over seeds the learning gate is a real branch."""
    env, networks = _networks(config)
    index = state.update_step if update_index is None else update_index
    steps_before = index * config.env_steps_per_update

    # 1. Act with the stochastic policy (uniformly at random before learning_starts); store
    #    raw observations.
    def env_step(carry, t):
        env_state, obs, buffer, rng = carry
        rng, policy_key, random_key, step_key = jax.random.split(rng, 4)
        policy = sample_action(networks, state.agent.actor_params, obs, policy_key, deterministic=False)
        warmup = steps_before + t * config.num_envs < config.learning_starts
        action = jnp.where(warmup, random_action(networks, random_key, config.num_envs), policy)
        raw_obs = env_state.raw_obs
        env_state, ts = env.step(step_key, env_state, action)
        buffer = buffers.add(buffer, buffers.Transition(raw_obs, action, ts.reward, ts.terminated, ts.truncated,
                                                        ts.raw_final_obs))
        done = ts.done.astype(jnp.float32)
        return (env_state, ts.obs, buffer, rng), (ts.episode_return * done, done)

    (env_state, obs, buffer, rng), (returns, dones) = jax.lax.scan(
        env_step, (state.env_state, state.obs, state.buffer, state.rng), jnp.arange(config.steps_per_update))

    # 2. Gradient steps, once learning has started, on minibatches normalized with the
    #    current statistics. The buffer is read, never a branch's output.
    normalize = functools.partial(env.normalize, env_state.obs_stats)

    def gradient_step(agent, key):
        sample_key, step_key = jax.random.split(key)
        batch = buffers.sample(buffer, sample_key, config.batch_size, normalize)
        return agent_step(config, networks, agent, batch, step_key)

    _, metrics_shape = jax.eval_shape(gradient_step, state.agent, rng)

    def learn(operand):
        agent, key = operand
        agent, aux = jax.lax.scan(gradient_step, agent, jax.random.split(key, config.gradient_steps))
        return agent, jax.tree.map(jnp.mean, aux)

    def skip(operand):
        return operand[0], jax.tree.map(lambda m: jnp.full(m.shape, jnp.nan, m.dtype), metrics_shape)

    rng, learn_key = jax.random.split(rng)
    if config.gradient_steps > 0:
        agent, metrics = jax.lax.cond(index >= config.first_learning_update, learn, skip,
                                      (state.agent, learn_key))
    else:
        agent, metrics = skip((state.agent, learn_key))

    episodes = dones.sum()
    metrics["train/episode_return"] = jnp.where(episodes > 0, returns.sum() / episodes, jnp.nan)
    metrics["train/episodes"] = episodes
    new_state = TrainState(agent=agent, env_state=env_state, obs=obs, buffer=buffer, rng=rng,
                           update_step=state.update_step + 1)
    return new_state, metrics


def act(config: Config, params, obs: jax.Array, key: jax.Array, deterministic: bool = True) -> jax.Array:
    """The policy's action for a batch of observations; `params` are the actor's."""
    _, networks = _networks(config)
    return sample_action(networks, params, obs, key, deterministic)


def evaluate(config: Config, state: TrainState) -> jax.Array:
    """Returns of `eval_episodes` deterministic-policy episodes, [eval_episodes]."""
    env = make_env(config.env, config.normalize_obs)
    key = jax.random.fold_in(state.rng, 0x5EED)  # independent of the training stream
    return run_episodes(env, functools.partial(act, config, state.agent.actor_params), key, config.eval_episodes,
                        state.env_state.obs_stats)


def train(config: Config, key: jax.Array):
    """`init` + `lax.scan` of `update`, evaluating every `eval_every` updates and at the end.

    Returns (final state, per-update metrics [num_updates], eval returns [num_evals, eval_episodes]).
    """
    state = init(config, key)
    return train_loop(functools.partial(update, config), functools.partial(evaluate, config), state,
                      config.num_updates, config.eval_every)
