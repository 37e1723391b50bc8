"""TD3 — Twin Delayed Deep Deterministic policy gradient (Fujimoto, van Hoof & Meger 2018,
"Addressing Function Approximation Error in Actor-Critic Methods", arXiv:1802.09477).

DDPG (a deterministic actor μ_φ(s) ∈ [−1, 1]^d with a tanh output, Polyak-averaged target
networks, a replay buffer from `purerl.buffers`) plus the paper's three changes: clipped
double Q-learning, target-policy smoothing and delayed actor and target updates. One
`update` = every one of `num_envs` environments takes `num_steps` steps with the
exploration policy, the transitions go to the buffer, then `gradient_steps` gradient steps
on uniformly sampled minibatches. Equations (the paper's Algorithm 1):

    (1) exploration:  a = clip(μ_φ(s) + ε, −1, 1),  ε ~ N(0, σ²)   (σ = `exploration_noise`;
        uniform random actions during the first `learning_starts` environment steps)
    (2) target-policy smoothing: ã = clip(μ_φ′(s′) + clip(ε̃, −c, c), −1, 1),  ε̃ ~ N(0, σ̃²)
        (σ̃ = `policy_noise`, c = `noise_clip`)
    (3) clipped double-Q target: y = r + γ (1 − d) min_{i=1,2} Q_θ′_i(s′, ã)
        d = 1 only on a true terminal; a time-limit truncation bootstraps from the true
        final observation s′ (stored as `next_obs`)
    (4) critic loss:  L_Q = Σ_{i=1,2} E[(Q_θ_i(s, a) − ⊥y)²]
    (5) delayed actor loss, every `policy_delay`-th gradient step: L_μ = −E[Q_θ_1(s, μ_φ(s))]
    (6) Polyak targets, on the same delayed steps: θ′_i ← τ θ_i + (1 − τ) θ′_i,  φ′ ← τ φ + (1 − τ) φ′

Gradient steps are counted from 1; the actor and the targets move on the steps whose count
is a multiple of `policy_delay` (steps 2, 4, … for the default 2, as in the authors' code).
No gradient steps are taken until the buffer holds `learning_starts` transitions.
Defaults follow the paper and Stable-Baselines3's TD3 (Adam 1e-3, batch 256, τ 0.005,
γ 0.99, σ 0.1, σ̃ 0.2, c 0.5, delay 2, one gradient step per environment step), with the
RL Baselines3 Zoo's 10 000 random steps and the authors' current (256, 256) networks
(the paper: (400, 300)); `PRESETS["Pendulum-v1"]` follows the Zoo's Pendulum entry
(γ 0.98, 20 000 steps in all) with smaller networks.

Usage:
    purerl train td3 --env Pendulum-v1 --num-seeds 8
    state, metrics, eval_returns = jax.jit(jax.vmap(td3.train, in_axes=(None, 0)))(td3.Config.for_env("Pendulum-v1"), keys)
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
    """TD3 hyperparameters. Static fields fix the compiled program; float fields can be
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
    policy_delay: int = static(2)  # gradient steps per actor and target update, eq. (5)–(6)
    hidden_sizes: tuple[int, ...] = static((256, 256))  # MLP widths, actor and critic alike
    activation: str = static("relu")  # "relu" or "tanh"
    eval_every: int = static(1_000)  # updates between deterministic evaluations
    eval_episodes: int = static(8)  # episodes per evaluation
    # -- sweepable floats
    actor_lr: float = 1e-3  # Adam step size of the actor
    critic_lr: float = 1e-3  # Adam step size of the critic
    gamma: float = 0.99  # discount γ
    tau: float = 0.005  # Polyak rate τ of the target networks, eq. (6)
    exploration_noise: float = 0.1  # σ of the Gaussian exploration noise, eq. (1), in units of the [−1, 1] action
    policy_noise: float = 0.2  # σ̃ of the target-policy smoothing noise, eq. (2)
    noise_clip: float = 0.5  # c, the smoothing noise is clipped to [−c, c], eq. (2)

    def __post_init__(self):
        envs.check_name(self.env)
        if make_env(self.env).discrete:
            raise ValueError(f"Config.env={self.env!r} is invalid: TD3 needs a continuous (Box) action space; "
                             "use dqn or discrete SAC for discrete actions")
        for name in ("total_timesteps", "num_envs", "num_steps", "gradient_steps", "batch_size", "buffer_size",
                     "eval_every", "eval_episodes"):
            check_int(self, name)
        check_int(self, "learning_starts", low=0)
        check_int(self, "policy_delay")
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
        check_range(self, "policy_noise", 0.0)
        check_range(self, "noise_clip", 0.0)

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


# Per-environment settings. Pendulum-v1: the RL Baselines3 Zoo's TD3 entry (γ 0.98,
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
    """Q(s, a) = MLP([s, a]). TD3 keeps two, their parameters stacked on a leading axis
    (see `twin_q`)."""

    obs_ndim: int
    hidden_sizes: Sequence[int]
    activation: str

    @nn.compact
    def __call__(self, obs, action):
        obs = obs.reshape(obs.shape[: obs.ndim - self.obs_ndim] + (-1,))
        return MLP(self.hidden_sizes, self.activation, 1)(jnp.concatenate([obs, action], -1))[..., 0]


def twin_q(critic: Critic, params, obs, action) -> jax.Array:
    """(Q_1(s, a), Q_2(s, a)) stacked, [2, ...]; `params` hold both critics on axis 0."""
    return jax.vmap(critic.apply, in_axes=(0, None, None))(params, obs, action)


def first_q(critic: Critic, params, obs, action) -> jax.Array:
    """Q_1(s, a) alone (what the actor maximizes)."""
    return critic.apply(jax.tree.map(lambda p: p[0], params), obs, action)


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
    critic_params: Any  # both critics, stacked on axis 0
    actor_target: Any  # φ′
    critic_target: Any  # θ′_1, θ′_2
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
    """Eq. (6): τ·online + (1 − τ)·target, leaf by leaf."""
    return jax.tree.map(lambda t, o: tau * o + (1.0 - tau) * t, target, online)


def smoothed_target_action(actor: Actor, actor_target, next_obs: jax.Array, noise: jax.Array, noise_clip):
    """Eq. (2): ã = clip(μ_φ′(s′) + clip(ε̃, −c, c), −1, 1), with ε̃ = `noise` given."""
    return jnp.clip(actor.apply(actor_target, next_obs) + jnp.clip(noise, -noise_clip, noise_clip), -1.0, 1.0)


def critic_target(actor: Actor, critic: Critic, actor_target, critic_target_params, batch: buffers.Transition,
                  noise: jax.Array, gamma, noise_clip) -> jax.Array:
    """Eq. (3): y = r + γ (1 − terminated) min_i Q_θ′_i(s′, ã); truncation bootstraps."""
    next_action = smoothed_target_action(actor, actor_target, batch.next_obs, noise, noise_clip)
    next_q = jnp.min(twin_q(critic, critic_target_params, batch.next_obs, next_action), axis=0)
    return batch.reward + gamma * (1.0 - batch.terminated.astype(jnp.float32)) * next_q


def critic_loss(critic_params, critic: Critic, batch: buffers.Transition, target: jax.Array):
    """Eq. (4): the two critics' mean squared TD errors against the shared (stopped) target, summed."""
    q = twin_q(critic, critic_params, batch.obs, batch.action)
    return jnp.sum(jnp.mean((q - jax.lax.stop_gradient(target)) ** 2, axis=-1)), q


def actor_loss(actor_params, actor: Actor, critic: Critic, critic_params, obs: jax.Array):
    """Eq. (5): −E[Q_θ_1(s, μ_φ(s))]."""
    return -jnp.mean(first_q(critic, critic_params, obs, actor.apply(actor_params, obs)))


def gradient_step(config: Config, state: TrainState, batch: buffers.Transition, noise_key: jax.Array,
                  count=None) -> tuple[TrainState, dict]:
    """One critic step (eq. 2–4) on `batch`; on every `policy_delay`-th step also one actor
    step (eq. 5) and one Polyak step of all targets (eq. 6). `count` is this step's number
    (from 1; default `state.gradient_step + 1`); `update` passes it unbatched, so that under
    `vmap` the delayed step is a real branch."""
    actor, critic = make_networks(config, make_env(config.env))
    actor_opt, critic_opt = optax.adam(config.actor_lr), optax.adam(config.critic_lr)

    noise = config.policy_noise * jax.random.normal(noise_key, batch.action.shape)
    target = critic_target(actor, critic, state.actor_target, state.critic_target, batch, noise, config.gamma,
                           config.noise_clip)
    (q_loss, q), grads = jax.value_and_grad(critic_loss, has_aux=True)(state.critic_params, critic, batch, target)
    updates, critic_opt_state = critic_opt.update(grads, state.critic_opt_state, state.critic_params)
    critic_params = optax.apply_updates(state.critic_params, updates)
    if count is None:
        count = state.gradient_step + 1

    def delayed(state: TrainState):
        pi_loss, grads = jax.value_and_grad(actor_loss)(state.actor_params, actor, critic, critic_params, batch.obs)
        updates, actor_opt_state = actor_opt.update(grads, state.actor_opt_state, state.actor_params)
        actor_params = optax.apply_updates(state.actor_params, updates)
        return (actor_params, actor_opt_state, polyak(state.actor_target, actor_params, config.tau),
                polyak(state.critic_target, critic_params, config.tau), pi_loss)

    def wait(state: TrainState):
        return state.actor_params, state.actor_opt_state, state.actor_target, state.critic_target, jnp.nan

    actor_params, actor_opt_state, actor_target, critic_target_params, pi_loss = jax.lax.cond(
        count % config.policy_delay == 0, delayed, wait, state)
    state = state.replace(
        actor_params=actor_params, critic_params=critic_params, actor_target=actor_target,
        critic_target=critic_target_params, actor_opt_state=actor_opt_state, critic_opt_state=critic_opt_state,
        gradient_step=state.gradient_step + 1)
    return state, {"loss/critic": q_loss, "loss/actor": pi_loss, "q": jnp.mean(q)}


# ----------------------------------------------------------------------------- init / update / train
def init(config: Config, key: jax.Array) -> TrainState:
    env = make_env(config.env)
    actor, critic = make_networks(config, env)
    key, actor_key, critic_key, reset_key = jax.random.split(key, 4)
    env_state, obs = env.reset(reset_key, config.num_envs)
    action = jnp.zeros((config.num_envs,) + env.action_space.shape, jnp.float32)
    actor_params = actor.init(actor_key, obs)
    critic_params = jax.vmap(critic.init, in_axes=(0, None, None))(jax.random.split(critic_key, 2), obs, action)
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
    passes it so that under `vmap` over seeds the learning gate and the delayed actor step
    are real branches."""
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

    # 2. Learn once the buffer holds `learning_starts` transitions. The gate and the step
    #    numbers derive from `index`, unbatched when `run_block` passes it: real branches under
    #    `vmap`. The buffer is only read (closed over), never a branch's operand to select.
    first_count = (index - config.first_learning_update) * config.gradient_steps + 1

    def learn(learner, keys):
        def step(learner, j_key):
            j, key = j_key
            sample_key, noise_key = jax.random.split(key)
            return gradient_step(config, learner, buffers.sample(buffer, sample_key, config.batch_size), noise_key,
                                 count=first_count + j)

        return jax.lax.scan(step, learner, (jnp.arange(config.gradient_steps), keys))

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
    metrics = jax.tree.map(jnp.nanmean, aux)  # the actor loss is NaN on steps without an actor update
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
