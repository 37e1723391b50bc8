"""DDPG — Deep Deterministic Policy Gradient (Lillicrap et al. 2016, "Continuous control
with deep reinforcement learning", arXiv:1509.02971), in the form used as the "our DDPG"
baseline of Fujimoto et al. 2018 and by Stable-Baselines3.

A deterministic actor μ_φ(s) ∈ [−1, 1]^d (tanh output; the environment rescales actions
onto its bounds) and a critic Q_θ(s, a), both with Polyak-averaged target copies, learn
off-policy from a replay buffer (`purerl.buffers`). One `update` = every one of `num_envs`
environments takes `num_steps` steps with the exploration policy, the transitions go to
the buffer, then `gradient_steps` gradient steps on uniformly sampled minibatches.
Equations:

    (1) exploration:  a = clip(μ_φ(s) + ε, −1, 1),  ε ~ N(0, σ²)   (σ = `exploration_noise`;
        uniform random actions during the first `learning_starts` environment steps)
    (2) critic target: y = r + γ (1 − d) Q_θ′(s′, μ_φ′(s′))
        d = 1 only on a true terminal; a time-limit truncation bootstraps from the true
        final observation s′ (stored as `next_obs`)
    (3) critic loss:  L_Q = E[(Q_θ(s, a) − ⊥y)²]
    (4) actor loss:   L_μ = −E[Q_θ(s, μ_φ(s))]   (the deterministic policy gradient)
    (5) Polyak targets after every gradient step: θ′ ← τ θ + (1 − τ) θ′,  φ′ ← τ φ + (1 − τ) φ′

No gradient steps are taken until the buffer holds `learning_starts` transitions.
Departures from the 2016 paper (as in Fujimoto et al.'s and SB3's DDPG): Gaussian rather
than Ornstein–Uhlenbeck noise, no critic weight decay, the action enters the critic at
the input layer, the same learning rate (1e-3) for actor and critic by default. Defaults
follow Stable-Baselines3's DDPG (Adam 1e-3, batch 256, τ 0.005, γ 0.99, σ 0.1, one
gradient step per environment step), with the RL Baselines3 Zoo's 10 000 random steps
and (256, 256) networks (SB3: 100 random steps, (400, 300)); `PRESETS["Pendulum-v1"]`
follows the Zoo's Pendulum entry (γ 0.98, 20 000 steps in all) with smaller networks.

Usage:
    purerl train ddpg --env Pendulum-v1 --num-seeds 8
    state, metrics, eval_returns = jax.jit(jax.vmap(ddpg.train, in_axes=(None, 0)))(ddpg.Config.for_env("Pendulum-v1"), keys)
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from purerl import buffers, envs
from purerl.config import check_choice, check_int, check_range, check_sizes, static
from purerl.evaluation import evaluate as run_episodes
from purerl.evaluation import train_loop


# ----------------------------------------------------------------------------- config
@struct.dataclass
class Config:
    """DDPG hyperparameters. Static fields fix the compiled program; float fields can be
    swept with `jax.vmap` (see `purerl.config.sweep_axes`)."""

    # -- static: environment and program shape
    env: str = static("Pendulum-v1")  # environment name (continuous actions only)
    total_timesteps: int = static(100_000)  # environment steps per seed (all envs together)
    num_envs: int = static(1)  # parallel environments per seed
    num_steps: int = static(1)  # steps per environment per update
    gradient_steps: int = static(1)  # gradient steps per update (update-to-data ratio = this / env_steps_per_update)
    batch_size: int = static(256)  # transitions per minibatch
    buffer_size: int = static(1_000_000)  # replay capacity in transitions (capped at total_timesteps)
    learning_starts: int = static(10_000)  # env steps of uniform random actions, and no learning, first
    hidden_sizes: tuple[int, ...] = static((256, 256))  # MLP widths, actor and critic alike
    activation: str = static("relu")  # "relu" or "tanh"
    eval_every: int = static(1_000)  # updates between deterministic evaluations
    eval_episodes: int = static(8)  # episodes per evaluation
    # -- sweepable floats
    actor_lr: float = 1e-3  # Adam step size of the actor
    critic_lr: float = 1e-3  # Adam step size of the critic
    gamma: float = 0.99  # discount γ
    tau: float = 0.005  # Polyak rate τ of the target networks, eq. (5)
    exploration_noise: float = 0.1  # σ of the Gaussian exploration noise, eq. (1), in units of the [−1, 1] action

    def __post_init__(self):
        envs.check_name(self.env)
        if make_env(self.env).discrete:
            raise ValueError(f"Config.env={self.env!r} is invalid: DDPG needs a continuous (Box) action space; "
                             "use dqn or discrete SAC for discrete actions")
        for name in ("total_timesteps", "num_envs", "num_steps", "gradient_steps", "batch_size", "buffer_size",
                     "eval_every", "eval_episodes"):
            check_int(self, name)
        check_int(self, "learning_starts", low=0)
        check_sizes(self, "hidden_sizes")
        check_choice(self, "activation", ("relu", "tanh"))
        if self.buffer_size < self.num_envs:
            raise ValueError(f"Config.buffer_size={self.buffer_size} is invalid: must hold at least one step of "
                             f"every environment, num_envs={self.num_envs}")
        if self.total_timesteps < self.env_steps_per_update:
            raise ValueError(f"Config.total_timesteps={self.total_timesteps} is invalid: must be ≥ one update, "
                             f"num_envs*num_steps={self.env_steps_per_update}")
        check_range(self, "actor_lr", 0.0, low_inclusive=False)
        check_range(self, "critic_lr", 0.0, low_inclusive=False)
        check_range(self, "gamma", 0.0, 1.0)
        check_range(self, "tau", 0.0, 1.0, low_inclusive=False)
        check_range(self, "exploration_noise", 0.0)

    @property
    def env_steps_per_update(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def gradient_steps_per_update(self) -> int:
        return self.gradient_steps

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.env_steps_per_update

    @property
    def first_learning_update(self) -> int:
        """Index of the first update that learns: the first whose collection reaches `learning_starts`."""
        return max(-(-self.learning_starts // self.env_steps_per_update), 1) - 1

    @property
    def buffer_capacity(self) -> int:
        """Transitions the replay buffer holds per seed (never more than a run produces)."""
        return min(self.buffer_size, self.total_timesteps)

    @classmethod
    def for_env(cls, env: str, **overrides) -> "Config":
        """Defaults tuned for `env` (from `PRESETS`), then `overrides`."""
        return cls(**{"env": env, **PRESETS.get(env, {}), **overrides})


# Per-environment settings. Pendulum-v1: the RL Baselines3 Zoo's DDPG entry (γ 0.98,
# lr 1e-3, σ 0.1, buffer 200 000, 10 000 random steps, 20 000 steps, one gradient step per
# env step) with (64, 64) networks and minibatches of 128 instead of the Zoo's (400, 300)
# and 256, so that 8 seeds train in about two minutes on a 2-core CPU; the smaller
# minibatch gave the same final return in our runs.
PRESETS: dict[str, dict[str, Any]] = {
    "Pendulum-v1": dict(total_timesteps=20_000, learning_starts=10_000, gamma=0.98, buffer_size=200_000,
                        hidden_sizes=(64, 64), batch_size=128, eval_every=1_000),
}


# ----------------------------------------------------------------------------- networks
class MLP(nn.Module):
    """Hidden layers, then a linear head (flax default initialization)."""

    hidden_sizes: Sequence[int]
    activation: str
    out_dim: int

    @nn.compact
    def __call__(self, x):
        act = nn.relu if self.activation == "relu" else nn.tanh
        for size in self.hidden_sizes:
            x = act(nn.Dense(size)(x))
        return nn.Dense(self.out_dim)(x)


class Actor(nn.Module):
    """Deterministic policy μ(s) = tanh(MLP(s)) ∈ [−1, 1]^d."""

    obs_ndim: int
    action_dim: int
    hidden_sizes: Sequence[int]
    activation: str

    @nn.compact
    def __call__(self, obs):
        obs = obs.reshape(obs.shape[: obs.ndim - self.obs_ndim] + (-1,))
        return jnp.tanh(MLP(self.hidden_sizes, self.activation, self.action_dim)(obs))


class Critic(nn.Module):
    """Q(s, a) = MLP([s, a])."""

    obs_ndim: int
    hidden_sizes: Sequence[int]
    activation: str

    @nn.compact
    def __call__(self, obs, action):
        obs = obs.reshape(obs.shape[: obs.ndim - self.obs_ndim] + (-1,))
        return MLP(self.hidden_sizes, self.activation, 1)(jnp.concatenate([obs, action], -1))[..., 0]


@functools.lru_cache(maxsize=None)
def make_env(env_name: str) -> envs.Environment:
    return envs.make(env_name)


def make_networks(config: Config, env: envs.Environment) -> tuple[Actor, Critic]:
    obs_ndim = len(env.obs_shape)
    actor = Actor(obs_ndim, int(np.prod(env.action_space.shape)), tuple(config.hidden_sizes), config.activation)
    return actor, Critic(obs_ndim, tuple(config.hidden_sizes), config.activation)


# ----------------------------------------------------------------------------- state
@struct.dataclass
class TrainState:
    actor_params: Any
    critic_params: Any
    actor_target: Any  # φ′
    critic_target: Any  # θ′
    actor_opt_state: Any
    critic_opt_state: Any
    env_state: envs.EnvState
    obs: jax.Array  # [num_envs, *obs_shape] what the policy acts on next
    buffer: buffers.ReplayBuffer  # of buffers.Transition
    rng: jax.Array
    update_step: jax.Array  # int32, updates done
    gradient_step: jax.Array  # int32, gradient steps done


# ----------------------------------------------------------------------------- losses
def polyak(target, online, tau):
    """Eq. (5): τ·online + (1 − τ)·target, leaf by leaf."""
    return jax.tree.map(lambda t, o: tau * o + (1.0 - tau) * t, target, online)


def critic_target(actor: Actor, critic: Critic, actor_target, critic_target_params, batch: buffers.Transition,
                  gamma) -> jax.Array:
    """Eq. (2): y = r + γ (1 − terminated) Q_θ′(s′, μ_φ′(s′)); truncation bootstraps."""
    next_action = actor.apply(actor_target, batch.next_obs)
    next_q = critic.apply(critic_target_params, batch.next_obs, next_action)
    return batch.reward + gamma * (1.0 - batch.terminated.astype(jnp.float32)) * next_q


def critic_loss(critic_params, critic: Critic, batch: buffers.Transition, target: jax.Array):
    """Eq. (3): mean squared TD error against the (stopped) target."""
    q = critic.apply(critic_params, batch.obs, batch.action)
    return jnp.mean((q - jax.lax.stop_gradient(target)) ** 2), q


def actor_loss(actor_params, actor: Actor, critic: Critic, critic_params, obs: jax.Array):
    """Eq. (4): −E[Q_θ(s, μ_φ(s))]."""
    return -jnp.mean(critic.apply(critic_params, obs, actor.apply(actor_params, obs)))


def gradient_step(config: Config, state: TrainState, batch: buffers.Transition) -> tuple[TrainState, dict]:
    """One critic step (eq. 2–3), one actor step (eq. 4), one Polyak step (eq. 5) on `batch`."""
    actor, critic = make_networks(config, make_env(config.env))
    actor_opt, critic_opt = optax.adam(config.actor_lr), optax.adam(config.critic_lr)

    target = critic_target(actor, critic, state.actor_target, state.critic_target, batch, config.gamma)
    (q_loss, q), grads = jax.value_and_grad(critic_loss, has_aux=True)(state.critic_params, critic, batch, target)
    updates, critic_opt_state = critic_opt.update(grads, state.critic_opt_state, state.critic_params)
    critic_params = optax.apply_updates(state.critic_params, updates)

    pi_loss, grads = jax.value_and_grad(actor_loss)(state.actor_params, actor, critic, critic_params, batch.obs)
    updates, actor_opt_state = actor_opt.update(grads, state.actor_opt_state, state.actor_params)
    actor_params = optax.apply_updates(state.actor_params, updates)

    state = state.replace(
        actor_params=actor_params, critic_params=critic_params, actor_opt_state=actor_opt_state,
        critic_opt_state=critic_opt_state, actor_target=polyak(state.actor_target, actor_params, config.tau),
        critic_target=polyak(state.critic_target, critic_params, config.tau), gradient_step=state.gradient_step + 1)
    return state, {"loss/critic": q_loss, "loss/actor": pi_loss, "q": jnp.mean(q)}


# ----------------------------------------------------------------------------- init / update / train
def init(config: Config, key: jax.Array) -> TrainState:
    env = make_env(config.env)
    actor, critic = make_networks(config, env)
    key, actor_key, critic_key, reset_key = jax.random.split(key, 4)
    env_state, obs = env.reset(reset_key, config.num_envs)
    action = jnp.zeros((config.num_envs,) + env.action_space.shape, jnp.float32)
    actor_params = actor.init(actor_key, obs)
    critic_params = critic.init(critic_key, obs, action)
    example = buffers.Transition(obs=obs[0], action=action[0], reward=jnp.zeros(()),
                                 terminated=jnp.zeros((), bool), truncated=jnp.zeros((), bool), next_obs=obs[0])
    return TrainState(
        actor_params=actor_params, critic_params=critic_params, actor_target=actor_params,
        critic_target=critic_params, actor_opt_state=optax.adam(config.actor_lr).init(actor_params),
        critic_opt_state=optax.adam(config.critic_lr).init(critic_params), env_state=env_state, obs=obs,
        buffer=buffers.create(example, config.num_envs, config.buffer_capacity), rng=key,
        update_step=jnp.zeros((), jnp.int32), gradient_step=jnp.zeros((), jnp.int32))


def update(config: Config, state: TrainState, update_index=None) -> tuple[TrainState, dict]:
    """Collect `num_steps` steps of every environment into the buffer, then take
    `gradient_steps` gradient steps (none before `learning_starts` env steps).

    `update_index` is `state.update_step` (the default) given unbatched: `evaluation.run_block`
    passes it so that under `vmap` over seeds the learning gate is a real branch."""
    env = make_env(config.env)
    actor, _ = make_networks(config, env)
    index = state.update_step if update_index is None else update_index
    env_steps = index * config.env_steps_per_update  # before this update
    random_phase = env_steps < config.learning_starts

    # 1. Collect with eq. (1), uniform random actions during the learning-starts phase.
    def env_step(carry, _):
        env_state, obs, buffer, rng = carry
        rng, noise_key, random_key, step_key = jax.random.split(rng, 4)
        mu = actor.apply(state.actor_params, obs)
        noisy = jnp.clip(mu + config.exploration_noise * jax.random.normal(noise_key, mu.shape), -1.0, 1.0)
        action = jnp.where(random_phase, jax.random.uniform(random_key, mu.shape, minval=-1.0, maxval=1.0), noisy)
        env_state, ts = env.step(step_key, env_state, action)
        buffer = buffers.add(buffer, buffers.Transition(obs, action, ts.reward, ts.terminated, ts.truncated,
                                                        ts.final_obs))
        return (env_state, ts.obs, buffer, rng), (ts.episode_return, ts.done)

    (env_state, obs, buffer, rng), (episode_return, done) = jax.lax.scan(
        env_step, (state.env_state, state.obs, state.buffer, state.rng), None, length=config.num_steps)

    # 2. Learn once the buffer holds `learning_starts` transitions. The gate derives from
    #    `index`, unbatched when `run_block` passes it: a real branch under `vmap`. The buffer
    #    is only read (closed over), never a branch's operand to select.
    def learn(learner, keys):
        def step(learner, key):
            return gradient_step(config, learner, buffers.sample(buffer, key, config.batch_size))

        return jax.lax.scan(step, learner, keys)

    def skip(learner, keys):
        nan = jnp.full((config.gradient_steps,), jnp.nan)
        return learner, {"loss/critic": nan, "loss/actor": nan, "q": nan}

    rng, learn_key = jax.random.split(rng)
    learner = state.replace(env_state=None, obs=None, buffer=None)  # parameters, optimizers, counters
    learner, aux = jax.lax.cond(index >= config.first_learning_update, learn, skip, learner,
                                jax.random.split(learn_key, config.gradient_steps))
    state = learner.replace(env_state=env_state, obs=obs, buffer=buffer)

    done = done.astype(jnp.float32)
    episodes = done.sum()
    metrics = jax.tree.map(jnp.mean, aux)
    metrics["train/episode_return"] = jnp.where(episodes > 0, (episode_return * done).sum() / episodes, jnp.nan)
    metrics["train/episodes"] = episodes
    return state.replace(rng=rng, update_step=state.update_step + 1), metrics


def act(config: Config, params, obs: jax.Array, key: jax.Array, deterministic: bool = True) -> jax.Array:
    """μ(s) when deterministic, else the exploration action of eq. (1). `params` are the actor's."""
    actor, _ = make_networks(config, make_env(config.env))
    mu = actor.apply(params, obs)
    if deterministic:
        return mu
    return jnp.clip(mu + config.exploration_noise * jax.random.normal(key, mu.shape), -1.0, 1.0)


def evaluate(config: Config, state: TrainState) -> jax.Array:
    """Returns of `eval_episodes` deterministic-policy episodes, [eval_episodes]."""
    env = make_env(config.env)
    key = jax.random.fold_in(state.rng, 0x5EED)  # independent of the training stream
    return run_episodes(env, functools.partial(act, config, state.actor_params), key, config.eval_episodes,
                        state.env_state.obs_stats)


def train(config: Config, key: jax.Array):
    """`init` + `lax.scan` of `update`, evaluating every `eval_every` updates and at the end.

    Returns (final state, per-update metrics [num_updates], eval returns [num_evals, eval_episodes]).
    """
    state = init(config, key)
    return train_loop(functools.partial(update, config), functools.partial(evaluate, config), state,
                      config.num_updates, config.eval_every)
