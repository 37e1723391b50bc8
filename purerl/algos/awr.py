"""AWR — Advantage-Weighted Regression (Peng, Kumar, Zhang, Levine 2019, "Advantage-Weighted
Regression: Simple and Scalable Off-Policy Reinforcement Learning", arXiv:1910.00177), offline
(the paper's §5.3, learning from a static dataset), for continuous actions (a Gaussian policy
with a fixed standard deviation) and discrete ones (a categorical policy).

AWR is two supervised regressions. A value function is fit to TD(λ) returns of the dataset's
episodes, and the policy to the dataset's actions, each weighted by the exponentiated
advantage. The returns depend on V, so every `update` first recomputes them over the whole
dataset with the current V (the paper alternates the two the same way), then takes
`steps_per_update` gradient steps on V and π, each on a minibatch of `datasets.sample`:

    (0) r ← `reward_scale` · r
    (1) R^λ_t = r_t + γ (1 − term_t) V(s′_t)                                 at an episode's end
        R^λ_t = r_t + γ [(1 − λ) V(s′_t) + λ R^λ_{t+1}]                       within an episode
        over the dataset in episode order (`purerl.returns.gae`: R^λ = A^GAE + V). An episode
        ends at a terminated or truncated transition; a truncation (a time limit, or the end of
        collection) bootstraps from V(s′), a true terminal does not. V is held fixed (⊥) here.
    (2) L_V(ψ) = ½ E[(V_ψ(s) − R^λ)²]
    (3) L_π(φ) = −E[w · log π_φ(a|s)],  w = min(exp(A / β), `max_weight`),  A = R^λ − ⊥V_ψ(s)
        β (`beta`) is the TEMPERATURE, as in the paper: a larger β flattens the weights
        (β → ∞ is behaviour cloning). With `normalize_advantages`, A is standardized over the
        minibatch, (A − mean) / (std + 1e-5), before the weights.
    (4) state normalization (`normalize_obs`, as CORL): s = (o − mean_D) / (std_D + 1e-3), the
        dataset's per-dimension mean and standard deviation, kept in the `TrainState` and applied
        in `act` and `evaluate` (the convention of purerl's other offline algorithms).

Each gradient step: V by (2), then π by (3) with the advantages of the updated V. The policy
(the paper's): a Gaussian N(tanh(μ_φ(s)), diag `action_std`²) with a fixed standard deviation
(0.2 in the paper, actions in [−1, 1]); deterministic evaluation acts with the mean tanh(μ_φ(s));
a sampled action is clipped to [−1, 1]. Discrete actions: a categorical policy; evaluation takes
the most probable action.

Defaults are the paper's (its appendix and the authors' code): β = 1.0, w_max = 20, λ = 0.95,
γ = 0.99, batch 256, networks (128, 64) with ReLU, action σ 0.2, 1000 policy steps per
iteration. The paper optimizes with SGD and momentum 0.9 (policy step 5e-5, value 1e-2);
purerl uses Adam (policy 3e-4, value 1e-3), as recent offline reimplementations do, so that a
small budget of gradient steps suffices. `PRESETS` holds purerl's settings for its small
datasets (see tests/algos/test_awr.py).

Usage:
    purerl train awr --dataset data/pendulum-medium --num-seeds 10
    jax.jit(jax.vmap(awr.train, in_axes=(None, 0, None)))(config, keys, dataset.transitions)
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

from purerl import buffers, datasets, envs, returns
from purerl.config import check_bool, check_int, check_range, check_sizes, static
from purerl.evaluation import evaluate as run_episodes
from purerl.evaluation import train_loop

OFFLINE = True
ADV_EPS = 1e-5  # added to the advantages' std with `normalize_advantages`, eq. (3)


# ----------------------------------------------------------------------------- config
@struct.dataclass
class Config:
    """AWR hyperparameters. Static fields fix the compiled program; float fields can be swept
    with `jax.vmap` (see `purerl.config.sweep_axes`)."""

    # -- static: environment, data and program shape
    env: str = static("Pendulum-v1")  # environment the policy is evaluated in (continuous or discrete)
    dataset: str = static("")  # path of the dataset the runner loads (`train` takes the data itself)
    num_gradient_steps: int = static(1_000_000)  # gradient steps per seed (each on V and on π)
    steps_per_update: int = static(1_000)  # gradient steps per `update`; the λ-returns are recomputed before them
    batch_size: int = static(256)  # transitions per gradient step
    hidden_sizes: tuple[int, ...] = static((128, 64))  # MLP widths (ReLU): policy and value alike
    normalize_obs: bool = static(True)  # normalize states with the dataset's statistics, eq. (4)
    normalize_advantages: bool = static(False)  # standardize A over the minibatch before the weights, eq. (3)
    eval_every: int = static(5)  # updates between evaluations
    eval_episodes: int = static(10)  # deterministic episodes per evaluation
    # -- sweepable floats
    actor_lr: float = 3e-4  # Adam step size of the policy
    value_lr: float = 1e-3  # Adam step size of V
    gamma: float = 0.99  # discount γ
    lam: float = 0.95  # λ of the TD(λ) returns, eq. (1)
    beta: float = 1.0  # TEMPERATURE β of eq. (3): weight exp(A / β)
    max_weight: float = 20.0  # the weights' upper clip w_max, eq. (3)
    action_std: float = 0.2  # the Gaussian policy's fixed standard deviation (continuous actions)
    reward_scale: float = 1.0  # rewards are multiplied by this, eq. (0)

    def __post_init__(self):
        envs.check_name(self.env)
        if not isinstance(self.dataset, str):
            raise ValueError(f"Config.dataset={self.dataset!r} is invalid: must be a path (a string)")
        for name in ("num_gradient_steps", "steps_per_update", "batch_size", "eval_every", "eval_episodes"):
            check_int(self, name)
        check_sizes(self, "hidden_sizes")
        for name in ("normalize_obs", "normalize_advantages"):
            check_bool(self, name)
        if self.num_gradient_steps < self.steps_per_update:
            raise ValueError(f"Config.num_gradient_steps={self.num_gradient_steps} is invalid: must be ≥ one "
                             f"update, steps_per_update={self.steps_per_update}")
        for name in ("actor_lr", "value_lr", "beta", "max_weight", "action_std", "reward_scale"):
            check_range(self, name, 0.0, low_inclusive=False)
        check_range(self, "gamma", 0.0, 1.0)
        check_range(self, "lam", 0.0, 1.0)

    @property
    def num_updates(self) -> int:
        return self.num_gradient_steps // self.steps_per_update

    @property
    def env_steps_per_update(self) -> int:
        # For an offline algorithm the runner's step axis counts gradient steps.
        return self.steps_per_update

    @property
    def gradient_steps_per_update(self) -> int:
        return self.steps_per_update

    @classmethod
    def for_env(cls, env: str, **overrides) -> "Config":
        """Defaults tuned for `env` (from `PRESETS`), then `overrides`."""
        return cls(**{"env": env, **PRESETS.get(env, {}), **overrides})


# Per-environment settings for purerl's own small datasets (tests/offline_data.py; see
# tests/algos/test_awr.py for what they reach): (64, 64) networks, 5 000 gradient steps, rewards
# scaled by 0.1 (the values then stay within reach of V in a few thousand steps) and β = 0.3,
# i.e. exp(A / 3) in the unscaled rewards. CartPole-v1 on `offline_data.cartpole("medium")`
# (behaviour policy ≈ 153): 383 (4 seeds, measured once).
PRESETS: dict[str, dict[str, Any]] = {
    "Pendulum-v1": dict(num_gradient_steps=5_000, steps_per_update=500, hidden_sizes=(64, 64), reward_scale=0.1,
                        beta=0.3, eval_every=10),
    "CartPole-v1": dict(num_gradient_steps=5_000, steps_per_update=500, hidden_sizes=(64, 64), reward_scale=0.1,
                        beta=0.3, eval_every=10),
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


def flatten(obs, obs_ndim: int):
    """[..., *obs_shape] → [..., prod(obs_shape)]."""
    return obs.reshape(obs.shape[: obs.ndim - obs_ndim] + (-1,))


class Actor(nn.Module):
    """The mean tanh(μ_φ(s)) (continuous: [..., |A|]) or the logits (discrete: [..., |A|])."""

    obs_ndim: int
    action_dim: int
    discrete: bool
    hidden_sizes: Sequence[int]

    @nn.compact
    def __call__(self, obs):
        out = MLP(self.hidden_sizes, self.action_dim)(flatten(obs, self.obs_ndim))
        return out if self.discrete else jnp.tanh(out)


class ValueNet(nn.Module):
    """V_ψ(s) → [...]."""

    obs_ndim: int
    hidden_sizes: Sequence[int]

    @nn.compact
    def __call__(self, obs):
        return MLP(self.hidden_sizes, 1)(flatten(obs, self.obs_ndim))[..., 0]


class Networks(NamedTuple):
    actor: Actor
    value: ValueNet
    discrete: bool
    action_dim: int


def make_networks(config: Config, obs_shape: tuple[int, ...], action_space) -> Networks:
    """Policy and V for observations of `obs_shape` and `action_space` (`envs.Discrete` →
    categorical policy, `envs.Box` → Gaussian policy)."""
    discrete = isinstance(action_space, envs.Discrete)
    action_dim = action_space.n if discrete else int(np.prod(action_space.shape))
    sizes, obs_ndim = tuple(config.hidden_sizes), len(obs_shape)
    return Networks(actor=Actor(obs_ndim, action_dim, discrete, sizes), value=ValueNet(obs_ndim, sizes),
                    discrete=discrete, action_dim=action_dim)


def policy_distribution(config: Config, networks: Networks, actor_params, obs) -> distrax.Distribution:
    """π_φ(·|s): N(tanh(μ_φ(s)), diag `action_std`²) or a categorical."""
    out = networks.actor.apply(actor_params, obs)
    if networks.discrete:
        return distrax.Categorical(logits=out)
    return distrax.MultivariateNormalDiag(out, jnp.full(out.shape, config.action_std, out.dtype))


@functools.lru_cache(maxsize=None)
def make_env(env_name: str) -> envs.Environment:
    return envs.make(env_name)


def _networks(config: Config) -> tuple[envs.Environment, Networks]:
    env = make_env(config.env)
    return env, make_networks(config, env.obs_shape, env.action_space)


# ----------------------------------------------------------------------------- state
@struct.dataclass
class Policy:
    """What `act` takes: the policy's parameters and the state normalization of eq. (4)."""

    params: Any
    obs_mean: jax.Array  # [*obs_shape] (zeros without `normalize_obs`)
    obs_std: jax.Array  # [*obs_shape] std + 1e-3 (ones without `normalize_obs`)


@struct.dataclass
class TrainState:
    actor_params: Any
    value_params: Any
    actor_opt_state: Any
    value_opt_state: Any
    obs_mean: jax.Array  # dataset statistics of eq. (4), fixed at `init`
    obs_std: jax.Array
    rng: jax.Array
    update_step: jax.Array  # int32, updates done


def policy(state: TrainState) -> Policy:
    """The acting parameters of `state` (what `act` takes)."""
    return Policy(state.actor_params, state.obs_mean, state.obs_std)


# ----------------------------------------------------------------------------- math
def lambda_returns(rewards, values, next_values, terminated, truncated, gamma, lam) -> jax.Array:
    """Eq. (1): TD(λ) returns of episode-ordered transitions [N, ...]; `values` = V(s_t),
    `next_values` = V(s′_t). Within an episode V(s′_t) is V(s_{t+1}), so this is GAE's value
    target A^GAE_t + V(s_t) (`purerl.returns.gae`)."""
    _, targets = returns.gae(rewards, values, next_values, terminated, truncated, gamma, lam)
    return targets


def value_loss_from_values(values, targets) -> jax.Array:
    """Eq. (2): ½ E[(V(s) − ⊥R^λ)²]."""
    return 0.5 * jnp.mean((values - jax.lax.stop_gradient(targets)) ** 2)


def advantage_weights(advantages, beta, max_weight) -> jax.Array:
    """Eq. (3)'s weights: min(exp(A / β), w_max), β the temperature."""
    return jnp.minimum(jnp.exp(advantages / beta), max_weight)


def normalize_advantages(advantages) -> jax.Array:
    """(A − mean) / (std + 1e-5) over the minibatch."""
    return (advantages - advantages.mean()) / (advantages.std() + ADV_EPS)


def weighted_log_likelihood_loss(log_prob, weights) -> jax.Array:
    """Eq. (3): −E[w · log π(a|s)] (the weights are constants)."""
    return -jnp.mean(jax.lax.stop_gradient(weights) * log_prob)


def dataset_lambda_returns(config: Config, networks: Networks, state: TrainState,
                           dataset: buffers.Transition) -> jax.Array:
    """Eq. (1) over the whole dataset with the current V, [N] (scaled rewards, eq. 0)."""
    obs = datasets.normalize_obs(dataset.obs, state.obs_mean, state.obs_std)
    values = networks.value.apply(state.value_params, obs)
    next_values = networks.value.apply(state.value_params,
                                       datasets.normalize_obs(dataset.next_obs, state.obs_mean, state.obs_std))
    targets = lambda_returns(config.reward_scale * dataset.reward, values, next_values, dataset.terminated,
                             dataset.truncated, config.gamma, config.lam)
    return jax.lax.stop_gradient(targets)


def value_loss(value_params, networks: Networks, obs, targets) -> tuple[jax.Array, jax.Array]:
    """Eq. (2) for parameters `value_params`. Returns (loss, V(s))."""
    values = networks.value.apply(value_params, obs)
    return value_loss_from_values(values, targets), values


def actor_loss(actor_params, config: Config, networks: Networks, obs, action, weights) -> jax.Array:
    """Eq. (3) for parameters `actor_params`."""
    log_prob = policy_distribution(config, networks, actor_params, obs).log_prob(action)
    return weighted_log_likelihood_loss(log_prob, weights)


# ----------------------------------------------------------------------------- learning
def make_optimizers(config: Config) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
    """(policy, value) optimizers."""
    return optax.adam(config.actor_lr), optax.adam(config.value_lr)


def gradient_step(config: Config, networks: Networks, state: TrainState, batch: buffers.Transition,
                  targets: jax.Array) -> tuple[TrainState, dict]:
    """One AWR step on a minibatch of normalized observations and their λ-returns `targets`:
    V by (2), then π by (3) with the updated V."""
    actor_opt, value_opt = make_optimizers(config)
    (v_loss, values), grads = jax.value_and_grad(value_loss, has_aux=True)(
        state.value_params, networks, batch.obs, targets)
    updates, value_opt_state = value_opt.update(grads, state.value_opt_state, state.value_params)
    value_params = optax.apply_updates(state.value_params, updates)

    advantages = targets - networks.value.apply(value_params, batch.obs)
    if config.normalize_advantages:
        advantages = normalize_advantages(advantages)
    weights = advantage_weights(advantages, config.beta, config.max_weight)
    pi_loss, grads = jax.value_and_grad(actor_loss)(state.actor_params, config, networks, batch.obs, batch.action,
                                                    weights)
    updates, actor_opt_state = actor_opt.update(grads, state.actor_opt_state, state.actor_params)
    actor_params = optax.apply_updates(state.actor_params, updates)

    new_state = state.replace(actor_params=actor_params, value_params=value_params, actor_opt_state=actor_opt_state,
                              value_opt_state=value_opt_state)
    metrics = {"loss/value": v_loss, "loss/actor": pi_loss, "value": values.mean(), "lambda_return": targets.mean(),
               "advantage": advantages.mean(), "weight": weights.mean(),
               "weight_clipped_fraction": jnp.mean(weights >= config.max_weight)}
    return new_state, metrics


# ----------------------------------------------------------------------------- init / update / train
def init(config: Config, key: jax.Array, dataset: buffers.Transition) -> TrainState:
    env, networks = _networks(config)
    key, actor_key, value_key = jax.random.split(key, 3)
    obs = jnp.zeros((1,) + tuple(env.obs_shape), jnp.float32)
    actor_params = networks.actor.init(actor_key, obs)
    value_params = networks.value.init(value_key, obs)
    actor_opt, value_opt = make_optimizers(config)
    obs_mean, obs_std = datasets.observation_stats(dataset.obs, config.normalize_obs)
    return TrainState(actor_params=actor_params, value_params=value_params,
                      actor_opt_state=actor_opt.init(actor_params), value_opt_state=value_opt.init(value_params),
                      obs_mean=obs_mean, obs_std=obs_std, rng=key, update_step=jnp.zeros((), jnp.int32))


def update(config: Config, state: TrainState, dataset: buffers.Transition) -> tuple[TrainState, dict]:
    """The λ-returns of the whole dataset with the current V (eq. 1), then `steps_per_update`
    gradient steps, each on a fresh minibatch."""
    _, networks = _networks(config)
    targets = dataset_lambda_returns(config, networks, state, dataset)

    def step(state, key):
        # `datasets.sample` draws one index for every field: the λ-returns ride in the reward
        # field (unused by the losses) so that each comes with its (s, a).
        batch = datasets.sample(dataset.replace(reward=targets), key, config.batch_size)
        batch = batch.replace(obs=datasets.normalize_obs(batch.obs, state.obs_mean, state.obs_std))
        return gradient_step(config, networks, state, batch, batch.reward)

    rng, step_key = jax.random.split(state.rng)
    state, metrics = jax.lax.scan(step, state.replace(rng=rng), jax.random.split(step_key, config.steps_per_update))
    return state.replace(update_step=state.update_step + 1), jax.tree.map(jnp.mean, metrics)


def act(config: Config, params: Policy, obs: jax.Array, key: jax.Array, deterministic: bool = True) -> jax.Array:
    """An action for each observation in `obs` (raw, batched); `params` is `policy(state)`.
    Deterministic: the mean tanh(μ(s)) or the most probable action; else sampled from π
    (clipped to [−1, 1])."""
    _, networks = _networks(config)
    obs = datasets.normalize_obs(obs, params.obs_mean, params.obs_std)
    dist = policy_distribution(config, networks, params.params, obs)
    if networks.discrete:
        return jnp.argmax(dist.logits, axis=-1) if deterministic else dist.sample(seed=key)
    return dist.mean() if deterministic else jnp.clip(dist.sample(seed=key), -1.0, 1.0)


def evaluate(config: Config, state: TrainState) -> jax.Array:
    """Returns of `eval_episodes` deterministic-policy episodes, [eval_episodes]."""
    key = jax.random.fold_in(state.rng, 0x5EED)  # independent of the training stream
    return run_episodes(make_env(config.env), functools.partial(act, config, policy(state)), key,
                        config.eval_episodes)


def train(config: Config, key: jax.Array, dataset: buffers.Transition):
    """`init` + `lax.scan` of `update`, evaluating every `eval_every` updates and at the end.

    Returns (final state, per-update metrics [num_updates], eval returns [num_evals, eval_episodes]).
    """
    state = init(config, key, dataset)
    return train_loop(lambda s: update(config, s, dataset), functools.partial(evaluate, config), state,
                      config.num_updates, config.eval_every)
