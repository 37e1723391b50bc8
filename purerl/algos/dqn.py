"""DQN — deep Q-learning with experience replay and a target network (Mnih et al. 2015,
Nature 518:529), with Double DQN (van Hasselt et al. 2016, arXiv:1509.06461), dueling
heads (Wang et al. 2016, arXiv:1511.06581) and n-step returns as options.

One `update` = each of `num_envs` parallel environments takes `steps_per_update` ε-greedy
steps, every transition goes into the replay buffer (`purerl.buffers`), then
`gradient_steps` minibatch gradient steps on the TD loss — none before `learning_starts`
environment steps have been collected (actions are uniformly random until then).
The update-to-data ratio is `gradient_steps / (num_envs · steps_per_update)`. Equations:

    (1) y = r + γ^m (1 − d) Q_θ⁻(s′, argmax_a′ Q_θ⁻(s′, a′))             (DQN)
        y = r + γ^m (1 − d) Q_θ⁻(s′, argmax_a′ Q_θ(s′, a′))              (Double DQN)
        with m = 1, or the n-step return r = Σ_{k<m} γ^k r_{t+k}, m ≤ n (`buffers.sample_n_step`);
        d = 1 only on a true terminal: a time-limit truncation bootstraps from the true s′.
    (2) L(θ) = E[ℓ(Q_θ(s, a) − ⊥y)],  ℓ = Huber (δ = 1) or ½x² (MSE)
    (3) every `target_update_interval` environment steps θ⁻ ← τ θ + (1 − τ) θ⁻
        (τ = 1: the periodic hard copy of Mnih et al.; τ < 1: Polyak averaging)
    (4) ε-greedy exploration, ε decaying linearly from `start_epsilon` to `final_epsilon`
        over the first `exploration_fraction` of `total_timesteps`
    (5) dueling head: Q(s, a) = V(s) + A(s, a) − mean_a′ A(s, a′)
    (6) optional LayerNorm after every hidden Dense (before the ReLU), which keeps TD
        learning stable (Ba et al. 2016, arXiv:1607.06450; Gallici et al. 2024, arXiv:2407.04811)
    Adam on eq. (2) after global-norm gradient clipping; the learning rate optionally
    decays linearly with the run's progress and reaches 0 at its end (`anneal_lr`; as
    Stable-Baselines3's progress-based schedules, updates before learning starts count).

The buffer stores raw observations; with `normalize_obs` a sampled minibatch is normalized
with the current statistics (as Stable-Baselines3 does), not those of when it was stored.

Defaults are the RL Baselines3 Zoo's DQN settings for CartPole-v1 (lr 2.3e-3, batch 64,
buffer 100k, learning_starts 1000, γ 0.99, target update every 10 env steps, 256 env
steps then 128 gradient steps, ε → 0.04 over 16% of training, net [256, 256], gradient
norm clipped at 10 as in Stable-Baselines3); `PRESETS` holds purerl's tuned settings.
Evaluation is greedy (ε = 0).

Usage:
    purerl train dqn --env CartPole-v1 --num-seeds 8
    state, metrics, eval_returns = jax.jit(jax.vmap(dqn.train, in_axes=(None, 0)))(dqn.Config(), keys)
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
from purerl.config import check_bool, check_choice, check_int, check_range, check_sizes, static
from purerl.evaluation import evaluate as run_episodes
from purerl.evaluation import train_loop


# ----------------------------------------------------------------------------- config
@struct.dataclass
class Config:
    """DQN hyperparameters. Static fields fix the compiled program; float fields can be
    swept with `jax.vmap` (see `purerl.config.sweep_axes`)."""

    # -- static: environment and program shape
    env: str = static("CartPole-v1")  # environment name (discrete actions)
    total_timesteps: int = static(50_000)  # environment steps per seed (all envs together)
    num_envs: int = static(1)  # parallel environments feeding the buffer
    steps_per_update: int = static(256)  # steps each environment takes per update
    gradient_steps: int = static(128)  # gradient steps per update (after learning_starts)
    batch_size: int = static(64)  # transitions per gradient step
    buffer_size: int = static(100_000)  # replay capacity in transitions (all envs together)
    learning_starts: int = static(1_000)  # environment steps of random actions before learning
    target_update_interval: int = static(10)  # environment steps between target updates, eq. (3)
    hidden_sizes: tuple[int, ...] = static((256, 256))  # MLP widths (ReLU)
    loss: str = static("huber")  # "huber" or "mse", eq. (2)
    double_q: bool = static(False)  # Double DQN target, eq. (1)
    dueling: bool = static(False)  # dueling head, eq. (5)
    layer_norm: bool = static(False)  # LayerNorm in the hidden layers, eq. (6)
    n_step: int = static(1)  # n of the n-step return, eq. (1)
    anneal_lr: bool = static(False)  # decay the learning rate linearly towards 0 over training
    normalize_obs: bool = static(False)  # running observation normalization (environment option)
    eval_every: int = static(10)  # updates between evaluations
    eval_episodes: int = static(8)  # greedy episodes per evaluation
    # -- sweepable floats
    learning_rate: float = 2.3e-3  # Adam step size
    gamma: float = 0.99  # discount γ
    tau: float = 1.0  # target update rate τ, eq. (3) (1 = hard copy)
    start_epsilon: float = 1.0  # ε at the start of training
    final_epsilon: float = 0.04  # ε after the decay
    exploration_fraction: float = 0.16  # fraction of total_timesteps over which ε decays
    max_grad_norm: float = 10.0  # global-norm gradient clipping

    def __post_init__(self):
        envs.check_name(self.env)
        if self.env.startswith("brax/") or not make_env(self.env, False).discrete:
            raise ValueError(f"Config.env={self.env!r} is invalid: DQN needs an environment with discrete actions")
        for name in ("total_timesteps", "num_envs", "steps_per_update", "batch_size", "buffer_size",
                     "target_update_interval", "n_step", "eval_every", "eval_episodes"):
            check_int(self, name)
        check_int(self, "gradient_steps", low=0)
        check_int(self, "learning_starts", low=0)
        check_sizes(self, "hidden_sizes")
        check_choice(self, "loss", ("huber", "mse"))
        for name in ("double_q", "dueling", "layer_norm", "anneal_lr", "normalize_obs"):
            check_bool(self, name)
        if self.buffer_size < self.num_envs * max(self.n_step, 2):
            raise ValueError(f"Config.buffer_size={self.buffer_size} is invalid: must hold at least "
                             f"num_envs*max(n_step, 2)={self.num_envs * max(self.n_step, 2)} transitions")
        if self.total_timesteps < self.env_steps_per_update:
            raise ValueError(f"Config.total_timesteps={self.total_timesteps} is invalid: must be ≥ one update, "
                             f"num_envs*steps_per_update={self.env_steps_per_update}")
        check_range(self, "learning_rate", 0.0, low_inclusive=False)
        check_range(self, "gamma", 0.0, 1.0)
        check_range(self, "tau", 0.0, 1.0, low_inclusive=False)
        check_range(self, "start_epsilon", 0.0, 1.0)
        check_range(self, "final_epsilon", 0.0, 1.0)
        check_range(self, "exploration_fraction", 0.0, 1.0, low_inclusive=False)
        check_range(self, "max_grad_norm", 0.0, low_inclusive=False)

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
        """Index of the first update that learns: the first whose collection reaches
        `learning_starts` env steps and leaves `n_step` rows in the buffer."""
        return max(-(-self.learning_starts // self.env_steps_per_update), -(-self.n_step // self.steps_per_update),
                   1) - 1

    @classmethod
    def for_env(cls, env: str, **overrides) -> "Config":
        """Defaults tuned for `env` (from `PRESETS`), then `overrides`."""
        return cls(**{"env": env, **PRESETS.get(env, {}), **overrides})


# Per-environment settings (see tests/algos/test_dqn.py for what they reach). CartPole: the
# Zoo's settings on [64, 64] networks with LayerNorm, 4 environments × 64 steps per update,
# Double DQN, 3-step returns, learning-rate decay from 5e-4, and a buffer that holds the
# whole run (200k transitions). LayerNorm is what matters: `benchmarks/dqn_ablation.py`
# (8 seeds, 200k steps) measured a mean final greedy return of 500.0 with both, 494.0 with
# LayerNorm and a 100k buffer, 296.0 and 289.2 without LayerNorm (200k / 100k buffer).
# MinAtar: the MinAtar paper's DQN (Young & Tian 2019: 100k replay, batch 32, lr 2.5e-4,
# hard target update every 1000 steps, ε 1 → 0.1 over 100k steps, 5000 random steps, γ 0.99)
# with a 256-256 MLP on the flattened grid for its small CNN, Adam for RMSProp, and 8 envs ×
# 8 steps with 16 gradient steps per update (one per 4 env steps, as SB3 and CleanRL on Atari;
# the paper takes one per step). 5M steps, as the paper. Whole runs: the GPU suite's `minatar`
# part; shortened CPU runs (64-64, 500k steps; the buffer keeps the grids as bool, so 16 seeds of
# SpaceInvaders with the 100k buffer peak at 6.4 GiB): README.
MINATAR: dict[str, Any] = dict(total_timesteps=5_000_000, num_envs=8, steps_per_update=8, gradient_steps=16,
                               batch_size=32, buffer_size=100_000, learning_starts=5_000,
                               target_update_interval=1_000, hidden_sizes=(256, 256), learning_rate=2.5e-4,
                               gamma=0.99, final_epsilon=0.1, exploration_fraction=0.02, eval_every=3_906)
PRESETS: dict[str, dict[str, Any]] = {
    "CartPole-v1": dict(total_timesteps=200_000, num_envs=4, steps_per_update=64, gradient_steps=128,
                        buffer_size=200_000, hidden_sizes=(64, 64), layer_norm=True, double_q=True, n_step=3,
                        anneal_lr=True, learning_rate=5e-4, eval_every=25),
    **{env: MINATAR for env in ("Breakout-MinAtar", "SpaceInvaders-MinAtar")},
}


# ----------------------------------------------------------------------------- network
class QNetwork(nn.Module):
    """MLP (ReLU) → Q(s, ·) for every action; optionally a dueling head, eq. (5), and
    LayerNorm, eq. (6)."""

    obs_ndim: int  # trailing observation dimensions, flattened before the MLP
    num_actions: int
    hidden_sizes: Sequence[int]
    dueling: bool = False
    layer_norm: bool = False

    @nn.compact
    def __call__(self, obs):
        x = obs.reshape(obs.shape[: obs.ndim - self.obs_ndim] + (-1,))
        for size in self.hidden_sizes:
            x = nn.Dense(size)(x)
            x = nn.relu(nn.LayerNorm()(x) if self.layer_norm else x)
        if not self.dueling:
            return nn.Dense(self.num_actions)(x)
        value = nn.Dense(1)(x)
        advantage = nn.Dense(self.num_actions)(x)
        return value + advantage - advantage.mean(axis=-1, keepdims=True)


@functools.lru_cache(maxsize=None)
def make_env(env_name: str, normalize_obs: bool) -> envs.Environment:
    return envs.make(env_name, normalize_obs=normalize_obs)


def make_network(config: Config, env: envs.Environment) -> QNetwork:
    return QNetwork(obs_ndim=len(env.obs_shape), num_actions=env.action_space.n, hidden_sizes=tuple(config.hidden_sizes), dueling=config.dueling,
                    layer_norm=config.layer_norm)


def make_optimizer(config: Config) -> optax.GradientTransformation:
    """Adam after global-norm clipping; optionally a learning rate decaying linearly with the
    run's progress, lr·(1 − u/num_updates) at update u, 0 after the last gradient step. Adam's
    count only advances on gradient steps, which start at update `first_learning_update`."""
    total = max(config.num_updates * config.gradient_steps, 1)
    skipped = config.first_learning_update * config.gradient_steps  # the steps updates before learning would take

    def schedule(count):
        return config.learning_rate * (jnp.maximum(1.0 - (count + skipped) / total, 0.0) if config.anneal_lr else 1.0)

    return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(schedule))


# ----------------------------------------------------------------------------- state
@struct.dataclass
class TrainState:
    params: Any
    target_params: Any
    opt_state: Any
    env_state: envs.EnvState
    obs: jax.Array  # [num_envs, *obs_shape] what the agent acts on next
    buffer: buffers.ReplayBuffer
    rng: jax.Array
    update_step: jax.Array  # int32, updates done


# ----------------------------------------------------------------------------- math
def epsilon(config: Config, env_steps) -> jax.Array:
    """Eq. (4): ε after `env_steps` environment steps (1 during the learning-starts phase)."""
    decay_steps = config.exploration_fraction * config.total_timesteps
    progress = jnp.clip(env_steps / decay_steps, 0.0, 1.0)
    eps = config.start_epsilon + progress * (config.final_epsilon - config.start_epsilon)
    return jnp.where(env_steps < config.learning_starts, 1.0, eps)


def td_target(reward, terminated, bootstrap_discount, next_q_target, next_q_online, double_q: bool) -> jax.Array:
    """Eq. (1). `next_q_*`: [B, A] Q-values of s′ under the target / online parameters;
    `bootstrap_discount`: γ^m per sample (γ for one-step targets)."""
    if double_q:
        best = jnp.argmax(next_q_online, axis=-1)
    else:
        best = jnp.argmax(next_q_target, axis=-1)
    next_value = jnp.take_along_axis(next_q_target, best[:, None], axis=-1)[:, 0]
    return reward + bootstrap_discount * (1.0 - terminated.astype(jnp.float32)) * next_value


def q_loss(params, network: QNetwork, obs, action, target, loss: str) -> tuple[jax.Array, jax.Array]:
    """Eq. (2): mean Huber (δ = 1) or ½·squared TD error of Q_θ(s, a) against ⊥y. Returns (loss, Q(s, a))."""
    q = jnp.take_along_axis(network.apply(params, obs), action[:, None].astype(jnp.int32), axis=-1)[:, 0]
    error = q - jax.lax.stop_gradient(target)
    if loss == "huber":
        per_sample = optax.huber_loss(error, delta=1.0)
    else:
        per_sample = 0.5 * error**2
    return per_sample.mean(), q


def polyak(params, target_params, tau, times=1):
    """Eq. (3) applied `times` times with the same online parameters:
    θ⁻ ← θ + (1 − τ)^times (θ⁻ − θ)."""
    keep = (1.0 - tau) ** times
    return jax.tree.map(lambda p, t: p + keep * (t - p), params, target_params)


# ----------------------------------------------------------------------------- init / update / train
def _example_transition(env: envs.Environment) -> buffers.Transition:
    obs = jnp.zeros(env.obs_shape, env.raw_obs_dtype)  # raw observations, stored exactly (bool for MinAtar)
    return buffers.Transition(obs=obs, action=jnp.zeros((), jnp.int32), reward=jnp.zeros(()),
                              terminated=jnp.zeros((), bool), truncated=jnp.zeros((), bool), next_obs=obs)


def init(config: Config, key: jax.Array) -> TrainState:
    env = make_env(config.env, config.normalize_obs)
    network = make_network(config, env)
    key, param_key, reset_key = jax.random.split(key, 3)
    env_state, obs = env.reset(reset_key, config.num_envs)
    params = network.init(param_key, obs)
    return TrainState(
        params=params,
        target_params=params,
        opt_state=make_optimizer(config).init(params),
        env_state=env_state,
        obs=obs,
        buffer=buffers.create(_example_transition(env), config.num_envs, config.buffer_size),
        rng=key,
        update_step=jnp.zeros((), jnp.int32),
    )


def update(config: Config, state: TrainState, update_index=None) -> tuple[TrainState, dict]:
    """One DQN iteration: ε-greedy steps into the buffer → target update → gradient steps.

    `update_index` is `state.update_step` (the default) given unbatched: `evaluation.run_block`
    passes it so that under `vmap` over seeds the learning gate is a real branch."""
    env = make_env(config.env, config.normalize_obs)
    network = make_network(config, env)
    optimizer = make_optimizer(config)
    num_actions = env.action_space.n
    index = state.update_step if update_index is None else update_index
    steps_before = index * config.env_steps_per_update

    # 1. Act ε-greedily, eq. (4), and store every transition (true s′ for truncations),
    #    observations raw (before normalization).
    def env_step(carry, t):
        env_state, obs, buffer, rng = carry
        rng, explore_key, random_key, step_key = jax.random.split(rng, 4)
        eps = epsilon(config, steps_before + t * config.num_envs)
        greedy = jnp.argmax(network.apply(state.params, obs), axis=-1)
        random_action = jax.random.randint(random_key, greedy.shape, 0, num_actions)
        action = jnp.where(jax.random.uniform(explore_key, greedy.shape) < eps, random_action, greedy)
        raw_obs = env_state.raw_obs
        env_state, ts = env.step(step_key, env_state, action)
        buffer = buffers.add(buffer, buffers.Transition(raw_obs, action, ts.reward, ts.terminated, ts.truncated,
                                                        ts.raw_final_obs))
        done = ts.done.astype(jnp.float32)
        return (env_state, ts.obs, buffer, rng), (ts.episode_return * done, done)

    (env_state, obs, buffer, rng), (returns, dones) = jax.lax.scan(
        env_step, (state.env_state, state.obs, state.buffer, state.rng), jnp.arange(config.steps_per_update))
    steps_after = steps_before + config.env_steps_per_update

    # 2. Target network, eq. (3): once per interval crossed during this update's steps.
    crossings = steps_after // config.target_update_interval - steps_before // config.target_update_interval
    target_params = jax.tree.map(lambda p, t: jnp.where(crossings > 0, p, t),
                                 polyak(state.params, state.target_params, config.tau, crossings),
                                 state.target_params)

    # 3. Gradient steps on eq. (2), once learning has started, on minibatches normalized with
    #    the current statistics. The buffer is read, never a branch's output.
    normalize = functools.partial(env.normalize, env_state.obs_stats)

    def gradient_step(carry, key):
        params, opt_state = carry
        if config.n_step > 1:
            batch, discount = buffers.sample_n_step(buffer, key, config.batch_size, config.n_step, config.gamma,
                                                    normalize)
        else:
            batch = buffers.sample(buffer, key, config.batch_size, normalize)
            discount = jnp.full(config.batch_size, config.gamma)
        next_q_target = network.apply(target_params, batch.next_obs)
        next_q_online = network.apply(params, batch.next_obs) if config.double_q else next_q_target
        target = td_target(batch.reward, batch.terminated, discount, next_q_target, next_q_online, config.double_q)
        (loss, q), grads = jax.value_and_grad(q_loss, has_aux=True)(
            params, network, batch.obs, batch.action, target, config.loss)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), {"loss/q": loss, "q_mean": q.mean()}

    def learn(operand):
        params, opt_state, key = operand
        (params, opt_state), aux = jax.lax.scan(gradient_step, (params, opt_state),
                                                jax.random.split(key, config.gradient_steps))
        return params, opt_state, jax.tree.map(jnp.mean, aux)

    def skip(operand):
        params, opt_state, _ = operand
        return params, opt_state, {"loss/q": jnp.float32(jnp.nan), "q_mean": jnp.float32(jnp.nan)}

    rng, learn_key = jax.random.split(rng)
    operand = (state.params, state.opt_state, learn_key)
    if config.gradient_steps > 0:
        params, opt_state, metrics = jax.lax.cond(index >= config.first_learning_update, learn, skip, operand)
    else:
        params, opt_state, metrics = skip(operand)

    episodes = dones.sum()
    metrics["epsilon"] = epsilon(config, steps_after)
    metrics["train/episode_return"] = jnp.where(episodes > 0, returns.sum() / episodes, jnp.nan)
    metrics["train/episodes"] = episodes
    new_state = TrainState(params=params, target_params=target_params, opt_state=opt_state, env_state=env_state,
                           obs=obs, buffer=buffer, rng=rng, update_step=state.update_step + 1)
    return new_state, metrics


def act(config: Config, params, obs: jax.Array, key: jax.Array, deterministic: bool = True,
        epsilon_: float = 0.0) -> jax.Array:
    """Greedy actions (deterministic), or ε-greedy with ε = `epsilon_`."""
    env = make_env(config.env, config.normalize_obs)
    greedy = jnp.argmax(make_network(config, env).apply(params, obs), axis=-1)
    if deterministic:
        return greedy
    explore_key, random_key = jax.random.split(key)
    random_action = jax.random.randint(random_key, greedy.shape, 0, env.action_space.n)
    return jnp.where(jax.random.uniform(explore_key, greedy.shape) < epsilon_, random_action, greedy)


def evaluate(config: Config, state: TrainState) -> jax.Array:
    """Returns of `eval_episodes` greedy episodes, [eval_episodes]."""
    env = make_env(config.env, config.normalize_obs)
    key = jax.random.fold_in(state.rng, 0x5EED)  # independent of the training stream
    return run_episodes(env, functools.partial(act, config, state.params), key, config.eval_episodes,
                        state.env_state.obs_stats)


def train(config: Config, key: jax.Array):
    """`init` + `lax.scan` of `update`, evaluating every `eval_every` updates and at the end.

    Returns (final state, per-update metrics [num_updates], eval returns [num_evals, eval_episodes]).
    """
    state = init(config, key)
    return train_loop(functools.partial(update, config), functools.partial(evaluate, config), state,
                      config.num_updates, config.eval_every)
