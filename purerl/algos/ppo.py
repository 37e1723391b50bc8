"""PPO — Proximal Policy Optimization with a clipped surrogate (Schulman et al. 2017,
arXiv:1707.06347), GAE(λ) advantages (Schulman et al. 2016, arXiv:1506.02438).

One `update` = collect `num_steps` steps from `num_envs` parallel environments, then
`update_epochs` passes of minibatch SGD over that rollout. Equations:

    (1) ρ_t(θ) = π_θ(a_t|s_t) / π_old(a_t|s_t)
    (2) L_clip = −E[min(ρ_t Â_t, clip(ρ_t, 1−ε, 1+ε) Â_t)]
    (3) L_V    = ½ E[(V_θ(s_t) − R_t)²]    (clipped variant: ½ E[max((V−R)², (V_old + clip(V−V_old, −ε, ε) − R)²)])
    (4) L      = L_clip + c_V L_V − c_H E[H(π_θ(·|s_t))]
    (5) Â_t by GAE(λ) (`purerl.returns.gae`), bootstrapping through time-limit
        truncations (from the true final observation) and not through terminals;
        R_t = Â_t + V_old(s_t).

Discrete actions use a categorical policy, continuous ones a diagonal Gaussian with a
state-independent log standard deviation (actions in [−1, 1], rescaled by the
environment). Defaults follow PureJaxRL's CartPole settings (which match CleanRL's
`ppo.py`), the clipped value loss of eq. (3) included: without it, 24 seeds on CartPole-v1
(500k steps, 3 key sets) ended at 442–462 mean with seeds as low as 163; with it, all 24
reached 500 (see tests/algos/test_ppo.py). `PRESETS` holds settings for other environments,
from the RL Baselines3 Zoo where it has them.

Usage:
    purerl train ppo --env CartPole-v1 --num-seeds 16
    state, metrics, eval_returns = jax.jit(jax.vmap(ppo.train, in_axes=(None, 0)))(ppo.Config(), keys)
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from purerl import envs
from purerl.config import check_bool, check_choice, check_int, check_range, check_sizes, static
from purerl.evaluation import evaluate as run_episodes
from purerl.evaluation import train_loop
from purerl.returns import gae


# ----------------------------------------------------------------------------- config
@struct.dataclass
class Config:
    """PPO hyperparameters. Static fields fix the compiled program; float fields can be
    swept with `jax.vmap` (see `purerl.config.sweep_axes`)."""

    # -- static: environment and program shape
    env: str = static("CartPole-v1")  # environment name (purerl.envs.available())
    total_timesteps: int = static(500_000)  # environment steps per seed (all envs together)
    num_envs: int = static(4)  # parallel environments per seed
    num_steps: int = static(128)  # rollout length per environment per update
    update_epochs: int = static(4)  # passes over each rollout
    num_minibatches: int = static(4)  # minibatches per pass
    hidden_sizes: tuple[int, ...] = static((64, 64))  # MLP widths, actor and critic alike
    activation: str = static("tanh")  # "tanh" or "relu"
    anneal_lr: bool = static(True)  # decay the learning rate linearly to 0 over training
    normalize_advantages: bool = static(True)  # per-minibatch advantage standardization
    clip_value_loss: bool = static(True)  # use the clipped value loss of eq. (3), as PureJaxRL and CleanRL do
    normalize_obs: bool = static(False)  # running observation normalization (environment option)
    eval_every: int = static(25)  # updates between deterministic evaluations
    eval_episodes: int = static(8)  # episodes per evaluation
    # -- sweepable floats
    learning_rate: float = 2.5e-4  # Adam step size (initial value when annealed)
    gamma: float = 0.99  # discount γ
    gae_lambda: float = 0.95  # GAE λ
    clip_eps: float = 0.2  # surrogate clip ε (also the value clip)
    vf_coef: float = 0.5  # c_V
    ent_coef: float = 0.01  # c_H
    max_grad_norm: float = 0.5  # global-norm gradient clipping
    init_log_std: float = 0.0  # initial log σ of the Gaussian policy (continuous actions)

    def __post_init__(self):
        envs.check_name(self.env)
        for name in ("total_timesteps", "num_envs", "num_steps", "update_epochs", "num_minibatches",
                     "eval_every", "eval_episodes"):
            check_int(self, name)
        check_sizes(self, "hidden_sizes")
        check_choice(self, "activation", ("tanh", "relu"))
        for name in ("anneal_lr", "normalize_advantages", "clip_value_loss", "normalize_obs"):
            check_bool(self, name)
        if (self.num_envs * self.num_steps) % self.num_minibatches:
            raise ValueError(f"Config.num_minibatches={self.num_minibatches} is invalid: must divide the batch "
                             f"num_envs*num_steps={self.num_envs * self.num_steps}")
        if self.total_timesteps < self.num_envs * self.num_steps:
            raise ValueError(f"Config.total_timesteps={self.total_timesteps} is invalid: must be ≥ one rollout, "
                             f"num_envs*num_steps={self.num_envs * self.num_steps}")
        check_range(self, "learning_rate", 0.0, low_inclusive=False)
        check_range(self, "gamma", 0.0, 1.0)
        check_range(self, "gae_lambda", 0.0, 1.0)
        check_range(self, "clip_eps", 0.0, low_inclusive=False)
        check_range(self, "vf_coef", 0.0)
        check_range(self, "ent_coef", 0.0)
        check_range(self, "max_grad_norm", 0.0, low_inclusive=False)
        check_range(self, "init_log_std", -10.0, 2.0)

    @property
    def env_steps_per_update(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.env_steps_per_update

    @classmethod
    def for_env(cls, env: str, **overrides) -> "Config":
        """Defaults tuned for `env` (from `PRESETS`), then `overrides`."""
        return cls(**{"env": env, **PRESETS.get(env, {}), **overrides})


# Per-environment settings. Pendulum: RL Baselines3 Zoo's PPO entry (γ 0.9, lr 1e-3,
# 10 epochs, no entropy bonus, SB3's unclipped value loss) adapted to more, shorter rollouts.
# MinAtar: gymnax-blines' PPO settings, whose trained agents gymnax reports (Breakout 28,
# SpaceInvaders 131 at 10M steps): 64 envs × 128 steps, 8 minibatches × 4 epochs, separate
# 256-256 ReLU MLPs on the flattened 10×10×C grid, constant lr 5e-4 (their 5% warm-up is
# left out), γ 0.999. Whole runs: the GPU suite's `minatar` part; shortened CPU runs: README.
MINATAR: dict[str, Any] = dict(total_timesteps=10_000_000, num_envs=64, num_steps=128, num_minibatches=8,
                               update_epochs=4, hidden_sizes=(256, 256), activation="relu", anneal_lr=False,
                               learning_rate=5e-4, gamma=0.999, gae_lambda=0.95, clip_eps=0.2, ent_coef=0.01,
                               vf_coef=0.5, max_grad_norm=0.5, eval_every=61)
PRESETS: dict[str, dict[str, Any]] = {
    "Pendulum-v1": dict(total_timesteps=1_000_000, num_envs=16, num_steps=128, update_epochs=10,
                        num_minibatches=16, gamma=0.9, learning_rate=1e-3, ent_coef=0.0, normalize_obs=True,
                        clip_value_loss=False, eval_every=50),
    "Acrobot-v1": dict(ent_coef=0.0, total_timesteps=500_000),
    "MountainCarContinuous-v0": dict(normalize_obs=True, ent_coef=0.0),
    **{env: MINATAR for env in ("Breakout-MinAtar", "SpaceInvaders-MinAtar")},
}


# ----------------------------------------------------------------------------- networks
class MLP(nn.Module):
    """Hidden layers with orthogonal init (gain √2), then a linear head of gain `head_scale`."""

    hidden_sizes: Sequence[int]
    activation: str
    out_dim: int
    head_scale: float

    @nn.compact
    def __call__(self, x):
        act = nn.tanh if self.activation == "tanh" else nn.relu
        for size in self.hidden_sizes:
            x = act(nn.Dense(size, kernel_init=nn.initializers.orthogonal(np.sqrt(2)))(x))
        return nn.Dense(self.out_dim, kernel_init=nn.initializers.orthogonal(self.head_scale))(x)


class ActorCritic(nn.Module):
    """Separate actor and critic MLPs. `__call__(obs) -> (policy distribution, value)`."""

    obs_ndim: int  # trailing observation dimensions, flattened before the MLPs
    action_dim: int  # number of actions (discrete) or action dimension (continuous)
    discrete: bool
    hidden_sizes: Sequence[int]
    activation: str
    init_log_std: Any = 0.0

    def setup(self):
        self.actor = MLP(self.hidden_sizes, self.activation, self.action_dim, head_scale=0.01)
        self.critic = MLP(self.hidden_sizes, self.activation, 1, head_scale=1.0)
        if not self.discrete:
            self.log_std = self.param("log_std", nn.initializers.constant(self.init_log_std), (self.action_dim,))

    def _flat(self, obs):
        return obs.reshape(obs.shape[: obs.ndim - self.obs_ndim] + (-1,))

    def __call__(self, obs):
        return self.policy(obs), self.value(obs)

    def policy(self, obs) -> distrax.Distribution:
        out = self.actor(self._flat(obs))
        if self.discrete:
            return distrax.Categorical(logits=out)
        return distrax.MultivariateNormalDiag(out, jnp.exp(self.log_std))

    def value(self, obs) -> jax.Array:
        return self.critic(self._flat(obs))[..., 0]


@functools.lru_cache(maxsize=None)
def make_env(env_name: str, normalize_obs: bool) -> envs.Environment:
    return envs.make(env_name, normalize_obs=normalize_obs)


def make_network(config: Config, env: envs.Environment) -> ActorCritic:
    space = env.action_space
    return ActorCritic(
        obs_ndim=len(env.obs_shape),
        action_dim=space.n if env.discrete else int(np.prod(space.shape)),
        discrete=env.discrete,
        hidden_sizes=tuple(config.hidden_sizes),
        activation=config.activation,
        init_log_std=config.init_log_std,
    )


def make_optimizer(config: Config) -> optax.GradientTransformation:
    """Adam (ε = 1e-5) after global-norm clipping; the learning rate optionally decays
    linearly to 0 over `num_updates` (counted in whole updates)."""
    steps_per_update = config.update_epochs * config.num_minibatches

    def schedule(count):
        if not config.anneal_lr:
            return config.learning_rate
        done = (count // steps_per_update) / config.num_updates
        return config.learning_rate * (1.0 - done)

    return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(schedule, eps=1e-5))


# ----------------------------------------------------------------------------- state
@struct.dataclass
class TrainState:
    params: Any
    opt_state: Any
    env_state: envs.EnvState
    obs: jax.Array  # [num_envs, *obs_shape] what the policy acts on next
    rng: jax.Array
    update_step: jax.Array  # int32, updates done


@struct.dataclass
class Transition:
    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    final_obs: jax.Array
    episode_return: jax.Array
    episode_length: jax.Array
    raw_obs: jax.Array  # obs before observation normalization (equal to obs without it)
    raw_final_obs: jax.Array  # final_obs before observation normalization


# ----------------------------------------------------------------------------- losses
def ppo_loss(params, network: ActorCritic, config: Config, batch: Transition, advantages, targets):
    """Eq. (4): clipped surrogate + c_V · value loss − c_H · entropy. Returns (loss, aux)."""
    dist, value = network.apply(params, batch.obs)
    log_prob = dist.log_prob(batch.action)
    log_ratio = log_prob - batch.log_prob
    ratio = jnp.exp(log_ratio)  # eq. (1)
    if config.normalize_advantages:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    clipped_ratio = jnp.clip(ratio, 1.0 - config.clip_eps, 1.0 + config.clip_eps)
    policy_loss = -jnp.mean(jnp.minimum(ratio * advantages, clipped_ratio * advantages))  # eq. (2)

    value_loss = (value - targets) ** 2  # eq. (3)
    if config.clip_value_loss:
        value_clipped = batch.value + jnp.clip(value - batch.value, -config.clip_eps, config.clip_eps)
        value_loss = jnp.maximum(value_loss, (value_clipped - targets) ** 2)
    value_loss = 0.5 * jnp.mean(value_loss)

    entropy = jnp.mean(dist.entropy())
    loss = policy_loss + config.vf_coef * value_loss - config.ent_coef * entropy
    aux = {
        "loss/policy": policy_loss,
        "loss/value": value_loss,
        "loss/entropy": entropy,
        "approx_kl": jnp.mean((ratio - 1.0) - log_ratio),  # Schulman's k3 estimator
        "clip_fraction": jnp.mean((jnp.abs(ratio - 1.0) > config.clip_eps).astype(jnp.float32)),
    }
    return loss, aux


# ----------------------------------------------------------------------------- init / update / train
def init(config: Config, key: jax.Array) -> TrainState:
    env = make_env(config.env, config.normalize_obs)
    network = make_network(config, env)
    key, param_key, reset_key = jax.random.split(key, 3)
    env_state, obs = env.reset(reset_key, config.num_envs)
    params = network.init(param_key, obs)
    opt_state = make_optimizer(config).init(params)
    return TrainState(params=params, opt_state=opt_state, env_state=env_state, obs=obs, rng=key,
                      update_step=jnp.zeros((), jnp.int32))


def rollout(config: Config, params, env_state: envs.EnvState, obs: jax.Array, rng: jax.Array):
    """`num_steps` steps of `num_envs` environments with the policy of `params`.

    Returns ((env_state, obs, rng) after the rollout, the time-major `Transition` [num_steps, num_envs]).
    Methods built on PPO (GAIL, AIRL) call this, replace `reward`, and call `learn`."""
    env = make_env(config.env, config.normalize_obs)
    network = make_network(config, env)

    def env_step(carry, _):
        env_state, obs, rng = carry
        rng, action_key, step_key = jax.random.split(rng, 3)
        dist, value = network.apply(params, obs)
        action = dist.sample(seed=action_key)
        raw_obs = env_state.raw_obs
        env_state, ts = env.step(step_key, env_state, action)
        transition = Transition(obs, action, dist.log_prob(action), value, ts.reward, ts.terminated,
                                ts.truncated, ts.final_obs, ts.episode_return, ts.episode_length, raw_obs,
                                ts.raw_final_obs)
        return (env_state, ts.obs, rng), transition

    return jax.lax.scan(env_step, (env_state, obs, rng), None, length=config.num_steps)


def learn(config: Config, params, opt_state, traj: Transition, rng: jax.Array, extra_loss=None):
    """GAE on `traj` (eq. 5), then `update_epochs` × `num_minibatches` SGD steps on eq. (4).

    `extra_loss(params, minibatch, key) -> (loss, aux)`, when given, is added to eq. (4) in every
    SGD step, with a fresh key per step (a method built on PPO adds its own objective: ASE's
    diversity loss). Returns (params, opt_state, rng, per-step loss diagnostics)."""
    env = make_env(config.env, config.normalize_obs)
    network = make_network(config, env)
    optimizer = make_optimizer(config)

    # Advantages, eq. (5): V(s′_t) of every transition's true next observation.
    next_values = network.apply(params, traj.final_obs, method=ActorCritic.value)
    advantages, targets = gae(traj.reward, traj.value, next_values, traj.terminated, traj.truncated,
                              config.gamma, config.gae_lambda)

    batch_size = config.num_envs * config.num_steps
    minibatch_size = batch_size // config.num_minibatches

    def loss_fn(params, batch, adv, tgt, key):
        loss, aux = ppo_loss(params, network, config, batch, adv, tgt)
        if extra_loss is None:
            return loss, aux
        extra, extra_aux = extra_loss(params, batch, key)
        return loss + extra, {**aux, **extra_aux}

    def sgd_step(carry, minibatch):
        params, opt_state = carry
        batch, adv, tgt, key = minibatch
        grads, aux = jax.grad(loss_fn, has_aux=True)(params, batch, adv, tgt, key)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), aux

    def epoch(carry, epoch_key):
        flat = jax.tree.map(lambda x: x.reshape((batch_size,) + x.shape[2:]), (traj, advantages, targets))
        order = jax.random.permutation(epoch_key, batch_size)
        minibatches = jax.tree.map(
            lambda x: x[order].reshape((config.num_minibatches, minibatch_size) + x.shape[1:]), flat)
        # PPO alone draws no extra keys (its random stream is unchanged by this option)
        keys = (None if extra_loss is None
                else jax.random.split(jax.random.fold_in(epoch_key, 1), config.num_minibatches))
        return jax.lax.scan(sgd_step, carry, (*minibatches, keys))

    rng, epoch_key = jax.random.split(rng)
    (params, opt_state), aux = jax.lax.scan(
        epoch, (params, opt_state), jax.random.split(epoch_key, config.update_epochs))
    return params, opt_state, rng, aux


def episode_metrics(traj: Transition) -> dict:
    """Mean return of the episodes that ended in `traj` (NaN if none did) and their number."""
    done = (traj.terminated | traj.truncated).astype(jnp.float32)
    episodes = done.sum()
    return {"train/episode_return": jnp.where(episodes > 0, (traj.episode_return * done).sum() / episodes, jnp.nan),
            "train/episodes": episodes}


def update(config: Config, state: TrainState) -> tuple[TrainState, dict]:
    """One PPO iteration: rollout → GAE → epochs × minibatches of SGD."""
    (env_state, obs, rng), traj = rollout(config, state.params, state.env_state, state.obs, state.rng)
    params, opt_state, rng, aux = learn(config, state.params, state.opt_state, traj, rng)
    metrics = {**jax.tree.map(jnp.mean, aux), **episode_metrics(traj)}
    new_state = TrainState(params=params, opt_state=opt_state, env_state=env_state, obs=obs, rng=rng,
                           update_step=state.update_step + 1)
    return new_state, metrics


def act(config: Config, params, obs: jax.Array, key: jax.Array, deterministic: bool = True) -> jax.Array:
    """The policy's action for a batch of observations (mode when deterministic)."""
    env = make_env(config.env, config.normalize_obs)
    dist, _ = make_network(config, env).apply(params, obs)
    return dist.mode() if deterministic else dist.sample(seed=key)


def evaluate(config: Config, state: TrainState) -> jax.Array:
    """Returns of `eval_episodes` deterministic-policy episodes, [eval_episodes]."""
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
