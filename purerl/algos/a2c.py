"""A2C — synchronous advantage actor-critic (Mnih et al. 2016, "Asynchronous Methods for
Deep Reinforcement Learning", arXiv:1602.01783, algorithm S3), with the asynchronous
workers of A3C replaced by `num_envs` parallel environments stepped in lockstep.

One `update` = collect `num_steps` steps from `num_envs` environments, then ONE gradient
step on the whole rollout. Equations:

    (1) n-step return (`advantage_estimator="n_step"`, the paper's target):
            G_t = r_t + γ r_{t+1} + … + γ^{k−1} r_{t+k−1} + γ^k V(s_{t+k}),
        k = steps left in the rollout; an episode end inside the rollout cuts the sum:
        a terminal adds no bootstrap, a time-limit truncation bootstraps from V of the
        true final observation (`purerl.returns.n_step_returns`).
        Â_t = G_t − V(s_t).
    (1′) GAE(λ) (`advantage_estimator="gae"`, Schulman et al. 2016, arXiv:1506.02438):
            Â_t = Σ_l (γλ)^l δ_{t+l},  δ_t = r_t + γ(1 − term_t) V(s′_t) − V(s_t),
        G_t = Â_t + V(s_t) (`purerl.returns.gae`; λ = 1 gives eq. (1) again).
    (2) L_π = −E[⊥(Â_t) log π_θ(a_t|s_t)]                    (policy-gradient loss)
    (3) L_V = E[(G_t − V_θ(s_t))²]                          (value regression)
    (4) L   = L_π + c_V L_V − c_H E[H(π_θ(·|s_t))]          (entropy bonus, weight c_H)

Options (static): `shared_network` — one MLP torso with a policy head and a value head
(the paper's architecture) or two separate MLPs (Stable-Baselines3's default for
vector observations); `optimizer` — "rmsprop" (the paper's; decay 0.99, ε 1e-5 as in
SB3, with PyTorch's g/(√ν + ε), not optax's default g/√(ν + ε)) or "adam";
`advantage_estimator` — "n_step" or "gae". `reward_scale` multiplies the rewards the
agent learns from (as Brax's `reward_scaling`): one gradient step clips the norm of the
policy and value gradients together, so a value loss on returns of hundreds would
otherwise crowd out the policy gradient.

Discrete actions use a categorical policy, continuous ones a diagonal Gaussian with a
state-independent log standard deviation (actions in [−1, 1], rescaled by the
environment). Defaults follow Stable-Baselines3's A2C (lr 7e-4, n_steps 5, RMSprop,
max grad norm 0.5, c_V 0.5) and the RL Baselines3 Zoo; `PRESETS` holds the settings
tuned here per environment (see each entry's comment).

Usage:
    purerl train a2c --env CartPole-v1 --num-seeds 16
    state, metrics, eval_returns = jax.jit(jax.vmap(a2c.train, in_axes=(None, 0)))(a2c.Config(), keys)
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
from purerl.returns import gae, n_step_returns


# ----------------------------------------------------------------------------- config
@struct.dataclass
class Config:
    """A2C hyperparameters. Static fields fix the compiled program; float fields can be
    swept with `jax.vmap` (see `purerl.config.sweep_axes`)."""

    # -- static: environment and program shape
    env: str = static("CartPole-v1")  # environment name (purerl.envs.available())
    total_timesteps: int = static(500_000)  # environment steps per seed (all envs together)
    num_envs: int = static(8)  # parallel environments per seed (the paper's workers)
    num_steps: int = static(5)  # rollout length per environment per update (the paper's t_max)
    advantage_estimator: str = static("n_step")  # "n_step" (eq. 1) or "gae" (eq. 1′)
    shared_network: bool = static(False)  # one torso with two heads, or separate actor/critic MLPs
    optimizer: str = static("rmsprop")  # "rmsprop" or "adam"
    hidden_sizes: tuple[int, ...] = static((64, 64))  # MLP widths
    activation: str = static("tanh")  # "tanh" or "relu"
    anneal_lr: bool = static(False)  # decay the learning rate linearly to 0 over training
    normalize_advantages: bool = static(False)  # standardize Â over each rollout
    normalize_obs: bool = static(False)  # running observation normalization (environment option)
    eval_every: int = static(500)  # updates between deterministic evaluations
    eval_episodes: int = static(8)  # episodes per evaluation
    # -- sweepable floats
    learning_rate: float = 7e-4  # step size (initial value when annealed)
    gamma: float = 0.99  # discount γ
    gae_lambda: float = 1.0  # GAE λ (advantage_estimator="gae" only)
    vf_coef: float = 0.5  # c_V
    ent_coef: float = 0.0  # c_H
    max_grad_norm: float = 0.5  # global-norm gradient clipping
    rmsprop_decay: float = 0.99  # RMSprop's squared-gradient average decay (α in PyTorch)
    optimizer_eps: float = 1e-5  # ε of RMSprop / Adam
    init_log_std: float = 0.0  # initial log σ of the Gaussian policy (continuous actions)
    reward_scale: float = 1.0  # rewards are multiplied by this for learning (V learns scaled returns)

    def __post_init__(self):
        envs.check_name(self.env)
        for name in ("total_timesteps", "num_envs", "num_steps", "eval_every", "eval_episodes"):
            check_int(self, name)
        check_choice(self, "advantage_estimator", ("n_step", "gae"))
        check_choice(self, "optimizer", ("rmsprop", "adam"))
        check_sizes(self, "hidden_sizes")
        check_choice(self, "activation", ("tanh", "relu"))
        for name in ("shared_network", "anneal_lr", "normalize_advantages", "normalize_obs"):
            check_bool(self, name)
        if self.total_timesteps < self.num_envs * self.num_steps:
            raise ValueError(f"Config.total_timesteps={self.total_timesteps} is invalid: must be ≥ one rollout, "
                             f"num_envs*num_steps={self.num_envs * self.num_steps}")
        check_range(self, "learning_rate", 0.0, low_inclusive=False)
        check_range(self, "gamma", 0.0, 1.0)
        check_range(self, "gae_lambda", 0.0, 1.0)
        check_range(self, "vf_coef", 0.0)
        check_range(self, "ent_coef", 0.0)
        check_range(self, "max_grad_norm", 0.0, low_inclusive=False)
        check_range(self, "rmsprop_decay", 0.0, 1.0, high_inclusive=False)
        check_range(self, "optimizer_eps", 0.0, low_inclusive=False)
        check_range(self, "init_log_std", -10.0, 2.0)
        check_range(self, "reward_scale", 0.0, low_inclusive=False)

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


# Per-environment settings, each measured here with vmapped seeds (figures in the comments:
# mean final deterministic return). CartPole: the RL Baselines3 Zoo entry (8 envs × 5
# steps, ent_coef 0) is the default Config: 500.0 over 8 seeds at 300k steps for three
# key sets (RMSprop with PyTorch's ε placement; 500.0 at 500k before that change).
# Acrobot: the Zoo uses 16 envs with VecNormalize (observations AND rewards); here
# GAE(0.95) over 16-step rollouts, advantage normalization and reward_scale 0.1 play the
# reward normalization's part: −80.6 to −84.9 over 8 seeds at 200k steps (five key sets;
# −78 over 4 seeds at 300k, reached by ~50k, before the ε change).
# Pendulum: the Zoo's rollout shape (8 envs × 8 steps, γ 0.9, λ 0.9, c_V 0.4, RMSprop with
# the learning rate annealed, observation normalization) without its gSDE exploration: a
# state-independent σ starting at 1 (log σ 0; −2 or −1 as in the Zoo stalled at −390 … −1052),
# lr 1.5e-3, reward_scale 0.1 and an entropy bonus c_H 3e-3. 1M steps, mean final return over
# 8 seeds, key sets PRNGKey(0…3): −207.3, −232.1, −237.6, −191.0 (worst seed −466). With
# c_H 1e-3 one seed in 8 sometimes stays near −1100 (−441.8 and −312.3 on key sets 1 and 2);
# c_H 1e-2: −212 … −292.
PRESETS: dict[str, dict[str, Any]] = {
    "CartPole-v1": dict(total_timesteps=300_000, eval_every=200),
    "Acrobot-v1": dict(total_timesteps=200_000, num_envs=16, num_steps=16, advantage_estimator="gae",
                       gae_lambda=0.95, normalize_obs=True, normalize_advantages=True, reward_scale=0.1,
                       eval_every=100),
    "Pendulum-v1": dict(total_timesteps=1_000_000, num_envs=8, num_steps=8, advantage_estimator="gae",
                        gamma=0.9, gae_lambda=0.9, vf_coef=0.4, ent_coef=3e-3, learning_rate=1.5e-3,
                        anneal_lr=True, reward_scale=0.1, init_log_std=0.0, normalize_obs=True,
                        eval_every=1000, eval_episodes=16),
}


# ----------------------------------------------------------------------------- networks
class MLP(nn.Module):
    """Hidden layers with orthogonal init (gain √2), then a linear head of gain `head_scale`
    (no head when `out_dim` is 0: the torso alone)."""

    hidden_sizes: Sequence[int]
    activation: str
    out_dim: int
    head_scale: float = 1.0

    @nn.compact
    def __call__(self, x):
        act = nn.tanh if self.activation == "tanh" else nn.relu
        for size in self.hidden_sizes:
            x = act(nn.Dense(size, kernel_init=nn.initializers.orthogonal(np.sqrt(2)))(x))
        if self.out_dim == 0:
            return x
        return nn.Dense(self.out_dim, kernel_init=nn.initializers.orthogonal(self.head_scale))(x)


class ActorCritic(nn.Module):
    """`__call__(obs) -> (policy distribution, value)`. With `shared` the policy and value
    heads sit on one MLP torso; otherwise actor and critic are separate MLPs."""

    obs_ndim: int  # trailing observation dimensions, flattened before the MLPs
    action_dim: int  # number of actions (discrete) or action dimension (continuous)
    discrete: bool
    shared: bool
    hidden_sizes: Sequence[int]
    activation: str
    init_log_std: Any = 0.0

    def setup(self):
        if self.shared:
            self.torso = MLP(self.hidden_sizes, self.activation, 0)
            self.policy_head = nn.Dense(self.action_dim, kernel_init=nn.initializers.orthogonal(0.01))
            self.value_head = nn.Dense(1, kernel_init=nn.initializers.orthogonal(1.0))
        else:
            self.actor = MLP(self.hidden_sizes, self.activation, self.action_dim, head_scale=0.01)
            self.critic = MLP(self.hidden_sizes, self.activation, 1, head_scale=1.0)
        if not self.discrete:
            self.log_std = self.param("log_std", nn.initializers.constant(self.init_log_std), (self.action_dim,))

    def _flat(self, obs):
        return obs.reshape(obs.shape[: obs.ndim - self.obs_ndim] + (-1,))

    def __call__(self, obs):
        obs = self._flat(obs)
        if self.shared:
            features = self.torso(obs)
            out, value = self.policy_head(features), self.value_head(features)[..., 0]
        else:
            out, value = self.actor(obs), self.critic(obs)[..., 0]
        if self.discrete:
            dist = distrax.Categorical(logits=out)
        else:
            dist = distrax.MultivariateNormalDiag(out, jnp.exp(self.log_std))
        return dist, value

    def value(self, obs) -> jax.Array:
        return self(obs)[1]


@functools.lru_cache(maxsize=None)
def make_env(env_name: str, normalize_obs: bool) -> envs.Environment:
    return envs.make(env_name, normalize_obs=normalize_obs)


def make_network(config: Config, env: envs.Environment) -> ActorCritic:
    space = env.action_space
    return ActorCritic(
        obs_ndim=len(env.obs_shape),
        action_dim=space.n if env.discrete else int(np.prod(space.shape)),
        discrete=env.discrete,
        shared=config.shared_network,
        hidden_sizes=tuple(config.hidden_sizes),
        activation=config.activation,
        init_log_std=config.init_log_std,
    )


def make_optimizer(config: Config) -> optax.GradientTransformation:
    """Global-norm clipping, then RMSprop (decay `rmsprop_decay`, ε `optimizer_eps` added to √ν,
    as PyTorch/SB3) or Adam;
    the learning rate optionally decays linearly to 0 over `num_updates` (one step each)."""

    def schedule(count):
        if not config.anneal_lr:
            return config.learning_rate
        return config.learning_rate * (1.0 - count / config.num_updates)

    if config.optimizer == "rmsprop":
        # PyTorch's RMSprop (SB3's A2C): ν ← αν + (1−α)g², θ ← θ − η g/(√ν + ε). optax's
        # default puts ε inside the root, g/√(ν + ε): with ε = 1e-5 that floors the
        # denominator at ≈ 3e-3 instead of 1e-5 and shrinks every small-gradient step.
        step = optax.rmsprop(schedule, decay=config.rmsprop_decay, eps=config.optimizer_eps, eps_in_sqrt=False)
    else:
        step = optax.adam(schedule, eps=config.optimizer_eps)
    return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), step)


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
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    final_obs: jax.Array
    episode_return: jax.Array
    episode_length: jax.Array


# ----------------------------------------------------------------------------- losses
def advantages_and_targets(config: Config, traj: Transition, values, next_values):
    """Eq. (1) or (1′). `values` = V(s_t), `next_values` = V(s′_t) of each transition's true
    next observation, both [T, N]. Returns (Â_t, G_t)."""
    rewards = config.reward_scale * traj.reward
    if config.advantage_estimator == "gae":
        return gae(rewards, values, next_values, traj.terminated, traj.truncated, config.gamma,
                   config.gae_lambda)
    # The observation after the rollout's last step is that step's final_obs unless the
    # episode ended there, and then n_step_returns uses next_values itself.
    targets = n_step_returns(rewards, next_values, traj.terminated, traj.truncated, config.gamma,
                             next_values[-1])
    return targets - values, targets


def a2c_loss(params, network: ActorCritic, config: Config, traj: Transition):
    """Eq. (4) = eq. (2) + c_V · eq. (3) − c_H · entropy, on one rollout [T, N]. Returns (loss, aux).

    The targets are computed inside the loss from the current parameters, under
    stop-gradient (the paper's semi-gradient: no gradient flows through the bootstrap)."""
    dist, values = network.apply(params, traj.obs)
    _, next_values = network.apply(params, traj.final_obs)
    advantages, targets = advantages_and_targets(config, traj, jax.lax.stop_gradient(values),
                                                 jax.lax.stop_gradient(next_values))
    if config.normalize_advantages:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    policy_loss = -jnp.mean(advantages * dist.log_prob(traj.action))  # eq. (2)
    value_loss = jnp.mean((targets - values) ** 2)  # eq. (3)
    entropy = jnp.mean(dist.entropy())
    loss = policy_loss + config.vf_coef * value_loss - config.ent_coef * entropy  # eq. (4)
    aux = {"loss/policy": policy_loss, "loss/value": value_loss, "loss/entropy": entropy,
           "advantage_mean": advantages.mean(), "value_mean": values.mean()}
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


def collect_rollout(config: Config, state: TrainState):
    """`num_steps` steps of the `num_envs` environments with the current policy.

    Returns (env_state, next obs, rng, trajectory [num_steps, num_envs])."""
    env = make_env(config.env, config.normalize_obs)
    network = make_network(config, env)

    def env_step(carry, _):
        env_state, obs, rng = carry
        rng, action_key, step_key = jax.random.split(rng, 3)
        dist, _ = network.apply(state.params, obs)
        action = dist.sample(seed=action_key)
        env_state, ts = env.step(step_key, env_state, action)
        transition = Transition(obs, action, ts.reward, ts.terminated, ts.truncated, ts.final_obs,
                                ts.episode_return, ts.episode_length)
        return (env_state, ts.obs, rng), transition

    (env_state, obs, rng), traj = jax.lax.scan(
        env_step, (state.env_state, state.obs, state.rng), None, length=config.num_steps)
    return env_state, obs, rng, traj


def update(config: Config, state: TrainState) -> tuple[TrainState, dict]:
    """One A2C iteration: rollout → targets (eq. 1 / 1′) → one gradient step on eq. (4)."""
    env = make_env(config.env, config.normalize_obs)
    network = make_network(config, env)
    env_state, obs, rng, traj = collect_rollout(config, state)

    grads, aux = jax.grad(a2c_loss, has_aux=True)(state.params, network, config, traj)
    updates, opt_state = make_optimizer(config).update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)

    done = (traj.terminated | traj.truncated).astype(jnp.float32)
    episodes = done.sum()
    metrics = dict(aux)
    metrics["grad_norm"] = optax.global_norm(grads)
    metrics["train/episode_return"] = jnp.where(episodes > 0, (traj.episode_return * done).sum() / episodes, jnp.nan)
    metrics["train/episodes"] = episodes
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
