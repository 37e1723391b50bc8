"""IQL — Implicit Q-Learning (Kostrikov, Nair, Levine 2021, "Offline Reinforcement Learning
with Implicit Q-Learning", arXiv:2110.06169), offline, for continuous actions (a Gaussian
policy) and discrete ones (a categorical policy), chosen from the environment's action space.

IQL never evaluates Q at an action outside the dataset. An upper expectile of the target
critics' values over the dataset's actions stands in for the max over actions, and the policy
is extracted afterwards by advantage-weighted regression onto the dataset's actions. One
gradient step, on a minibatch (s, a, r, s′) of `datasets.sample`:

    (0) r ← `reward_scale` · r  (the paper rescales locomotion rewards by 1000 / (max − min
        episode return); `reward_scale` is that factor, set per environment)
    (1) L_V(ψ) = E[ |τ − 1(u < 0)| · u² ],  u = ⊥min_i Q_θ̄i(s, a) − V_ψ(s)
        (expectile regression, `expectile` τ: weight τ where u > 0, 1 − τ where u < 0;
        τ = 0.5 is half the mean squared error, τ → 1 approaches max_a Q over the data)
    (2) L_π(φ) = −E[ w · log π_φ(a|s) ],  w = min(exp(β · ⊥(min_i Q_θ̄i(s, a) − V_ψ(s))), `max_weight`)
        β (`beta`) is the INVERSE temperature, as in the paper's eq. (7) and code and in CORL
        (β = 3 for locomotion, 10 for AntMaze; β = 0 is behaviour cloning). ALGORITHMS.md's
        exp(A/β) is the same weight with β replaced by 1/β. Weights are clipped at 100
        (the paper's code).
    (3) L_Q(θ) = Σ_i E[(Q_θi(s, a) − y)²],  y = r + γ (1 − d) ⊥V_ψ(s′)
        d = 1 only on a true terminal: a time-limit truncation bootstraps from V(s′).
    (4) θ̄_i ← τ_polyak θ_i + (1 − τ_polyak) θ̄_i  (`tau`)
    (5) state normalization (`normalize_obs`, as CORL): s = (o − mean_D) / (std_D + 1e-3), the
        dataset's per-dimension mean and standard deviation, kept in the `TrainState` and applied
        in `act` and `evaluate` (the convention of purerl's other offline algorithms).

Steps run in the order of the paper's code: V by (1), then the actor by (2) with the new V,
then the critics by (3) with the new V, then (4). The policy (the paper's and CORL's): a
Gaussian N(tanh(μ_φ(s)), diag σ²) with a state-independent, learned log σ (initial 0, clipped
to [−10, 2]), its log-density that of the unsquashed Gaussian at the dataset action (actions
lie in [−1, 1]^|A|); deterministic evaluation acts with the mean tanh(μ_φ(s)); a sampled
action is clipped to [−1, 1]. Discrete actions: π is categorical over |A| actions and the
critics output Q(s, ·); evaluation takes the most probable action.

Defaults are the paper's locomotion settings (its appendix and the authors' code): Adam 3e-4
for actor, critics and value, batch 256, two hidden layers of 256, γ 0.99, τ_polyak 0.005,
expectile 0.7, β 3, the actor's learning rate decayed to 0 by a cosine over training, 10⁶
gradient steps.
`PRESETS` holds purerl's settings for the small test problems (see tests/algos/test_iql.py).

Usage:
    purerl train iql --dataset data/pendulum-medium-replay --num-seeds 10
    jax.jit(jax.vmap(iql.train, in_axes=(None, 0, None)))(config, keys, dataset.transitions)
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

from purerl import buffers, datasets, envs
from purerl.config import check_bool, check_int, check_range, check_sizes, static
from purerl.evaluation import evaluate as run_episodes
from purerl.evaluation import train_loop

OFFLINE = True
LOG_STD_MIN, LOG_STD_MAX = -10.0, 2.0  # bounds of the policy's log σ (the paper's code)


# ----------------------------------------------------------------------------- config
@struct.dataclass
class Config:
    """IQL hyperparameters. Static fields fix the compiled program; float fields can be swept
    with `jax.vmap` (see `purerl.config.sweep_axes`)."""

    # -- static: environment, data and program shape
    env: str = static("Pendulum-v1")  # environment the policy is evaluated in (continuous or discrete)
    dataset: str = static("")  # path of the dataset the runner loads (`train` takes the data itself)
    num_gradient_steps: int = static(1_000_000)  # gradient steps per seed
    steps_per_update: int = static(1_000)  # gradient steps per `update`
    batch_size: int = static(256)  # transitions per gradient step
    hidden_sizes: tuple[int, ...] = static((256, 256))  # MLP widths (ReLU): actor, critics and value alike
    normalize_obs: bool = static(True)  # normalize states with the dataset's statistics, eq. (5)
    cosine_decay: bool = static(True)  # actor learning rate decays as a cosine to 0 over training
    eval_every: int = static(5)  # updates between evaluations
    eval_episodes: int = static(10)  # deterministic episodes per evaluation
    # -- sweepable floats
    actor_lr: float = 3e-4  # Adam step size of the policy (its initial value under cosine decay)
    critic_lr: float = 3e-4  # Adam step size of the twin critics
    value_lr: float = 3e-4  # Adam step size of V
    gamma: float = 0.99  # discount γ
    tau: float = 0.005  # Polyak rate of the target critics, eq. (4)
    expectile: float = 0.7  # expectile τ of eq. (1), in (0, 1)
    beta: float = 3.0  # INVERSE temperature β of eq. (2): weight exp(β·A); 0 = behaviour cloning
    max_weight: float = 100.0  # the weights' upper clip in eq. (2)
    reward_scale: float = 1.0  # rewards are multiplied by this, eq. (0)

    def __post_init__(self):
        envs.check_name(self.env)
        if not isinstance(self.dataset, str):
            raise ValueError(f"Config.dataset={self.dataset!r} is invalid: must be a path (a string)")
        for name in ("num_gradient_steps", "steps_per_update", "batch_size", "eval_every", "eval_episodes"):
            check_int(self, name)
        check_sizes(self, "hidden_sizes")
        for name in ("normalize_obs", "cosine_decay"):
            check_bool(self, name)
        if self.num_gradient_steps < self.steps_per_update:
            raise ValueError(f"Config.num_gradient_steps={self.num_gradient_steps} is invalid: must be ≥ one "
                             f"update, steps_per_update={self.steps_per_update}")
        for name in ("actor_lr", "critic_lr", "value_lr"):
            check_range(self, name, 0.0, low_inclusive=False)
        check_range(self, "gamma", 0.0, 1.0)
        check_range(self, "tau", 0.0, 1.0, low_inclusive=False)
        check_range(self, "expectile", 0.0, 1.0, low_inclusive=False, high_inclusive=False)
        check_range(self, "beta", 0.0)
        check_range(self, "max_weight", 0.0, low_inclusive=False)
        check_range(self, "reward_scale", 0.0, low_inclusive=False)

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
# tests/algos/test_iql.py for what they reach): (64, 64) networks and 5 000 gradient steps.
# Pendulum's rewards lie in [−16.3, 0]: scaled by 0.1 the values stay within reach of the
# networks in a few thousand steps, and β = 30 keeps β · reward_scale = 3 per unit of reward.
# CartPole-v1 on `offline_data.cartpole("medium")` (behaviour policy ≈ 153): 469 (4 seeds, measured once).
PRESETS: dict[str, dict[str, Any]] = {
    "Pendulum-v1": dict(num_gradient_steps=5_000, steps_per_update=500, hidden_sizes=(64, 64), reward_scale=0.1,
                        beta=30.0, eval_every=10),
    "CartPole-v1": dict(num_gradient_steps=5_000, steps_per_update=500, hidden_sizes=(64, 64), reward_scale=0.1,
                        beta=30.0, eval_every=10),
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
    """π_φ(·|s): N(tanh(μ_φ(s)), diag exp(2 log σ)) with a state-independent log σ, or a
    categorical over the actions."""

    obs_ndim: int
    action_dim: int  # number of actions (discrete) or action dimension (continuous)
    discrete: bool
    hidden_sizes: Sequence[int]

    @nn.compact
    def __call__(self, obs) -> distrax.Distribution:
        out = MLP(self.hidden_sizes, self.action_dim)(flatten(obs, self.obs_ndim))
        if self.discrete:
            return distrax.Categorical(logits=out)
        log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))
        std = jnp.exp(jnp.clip(log_std, LOG_STD_MIN, LOG_STD_MAX))
        return distrax.MultivariateNormalDiag(jnp.tanh(out), jnp.broadcast_to(std, out.shape))


class TwinCritic(nn.Module):
    """Two independent critics (an `nn.vmap` ensemble): Q_i(s, a) → [2, B] (continuous), or
    Q_i(s, ·) → [2, B, |A|] (discrete, `action=None`)."""

    obs_ndim: int
    out_dim: int  # 1 (continuous: the action is an input) or |A| (discrete)
    hidden_sizes: Sequence[int]

    @nn.compact
    def __call__(self, obs, action=None):
        x = flatten(obs, self.obs_ndim)
        if action is not None:
            x = jnp.concatenate([x, action], axis=-1)
        ensemble = nn.vmap(MLP, variable_axes={"params": 0}, split_rngs={"params": True}, in_axes=None,
                           out_axes=0, axis_size=2)
        q = ensemble(self.hidden_sizes, self.out_dim)(x)
        return q[..., 0] if action is not None else q


class ValueNet(nn.Module):
    """V_ψ(s) → [B]."""

    obs_ndim: int
    hidden_sizes: Sequence[int]

    @nn.compact
    def __call__(self, obs):
        return MLP(self.hidden_sizes, 1)(flatten(obs, self.obs_ndim))[..., 0]


class Networks(NamedTuple):
    actor: Actor
    critic: TwinCritic
    value: ValueNet
    discrete: bool
    action_dim: int


def make_networks(config: Config, obs_shape: tuple[int, ...], action_space) -> Networks:
    """Actor, twin critic and V for observations of `obs_shape` and `action_space`
    (`envs.Discrete` → categorical policy, `envs.Box` → Gaussian policy)."""
    discrete = isinstance(action_space, envs.Discrete)
    action_dim = action_space.n if discrete else int(np.prod(action_space.shape))
    sizes, obs_ndim = tuple(config.hidden_sizes), len(obs_shape)
    return Networks(actor=Actor(obs_ndim, action_dim, discrete, sizes),
                    critic=TwinCritic(obs_ndim, action_dim if discrete else 1, sizes),
                    value=ValueNet(obs_ndim, sizes), discrete=discrete, action_dim=action_dim)


@functools.lru_cache(maxsize=None)
def make_env(env_name: str) -> envs.Environment:
    return envs.make(env_name)


def _networks(config: Config) -> tuple[envs.Environment, Networks]:
    env = make_env(config.env)
    return env, make_networks(config, env.obs_shape, env.action_space)


# ----------------------------------------------------------------------------- state
@struct.dataclass
class Policy:
    """What `act` takes: the actor's parameters and the state normalization of eq. (5)."""

    params: Any
    obs_mean: jax.Array  # [*obs_shape] (zeros without `normalize_obs`)
    obs_std: jax.Array  # [*obs_shape] std + 1e-3 (ones without `normalize_obs`)


@struct.dataclass
class TrainState:
    actor_params: Any
    critic_params: Any
    target_critic_params: Any
    value_params: Any
    actor_opt_state: Any
    critic_opt_state: Any
    value_opt_state: Any
    obs_mean: jax.Array  # dataset statistics of eq. (5), fixed at `init`
    obs_std: jax.Array
    rng: jax.Array
    update_step: jax.Array  # int32, updates done


def policy(state: TrainState) -> Policy:
    """The acting parameters of `state` (what `act` takes)."""
    return Policy(state.actor_params, state.obs_mean, state.obs_std)


# ----------------------------------------------------------------------------- math
def expectile_loss(diff, expectile) -> jax.Array:
    """Eq. (1): E[|τ − 1(u < 0)| · u²] of `diff` u; τ = 0.5 gives ½·E[u²]."""
    weight = jnp.where(diff > 0, expectile, 1.0 - expectile)
    return jnp.mean(weight * diff**2)


def advantage_weights(advantages, beta, max_weight) -> jax.Array:
    """Eq. (2)'s weights: min(exp(β · A), max_weight), β the inverse temperature."""
    return jnp.minimum(jnp.exp(beta * advantages), max_weight)


def weighted_log_likelihood_loss(log_prob, weights) -> jax.Array:
    """Eq. (2): −E[w · log π(a|s)] (the weights are constants)."""
    return -jnp.mean(jax.lax.stop_gradient(weights) * log_prob)


def td_target(reward, terminated, gamma, next_value) -> jax.Array:
    """Eq. (3)'s target y = r + γ (1 − d) V(s′)."""
    return reward + gamma * (1.0 - terminated.astype(jnp.float32)) * next_value


def critic_loss_from_q(q, target) -> jax.Array:
    """Eq. (3): Σ_i E[(Q_i − ⊥y)²]; `q` is [2, B]."""
    return jnp.sum(jnp.mean((q - jax.lax.stop_gradient(target)) ** 2, axis=-1))


def polyak(online, target, tau):
    """Eq. (4): τ·online + (1 − τ)·target, leaf by leaf."""
    return jax.tree.map(lambda o, t: tau * o + (1.0 - tau) * t, online, target)


def q_values(networks: Networks, critic_params, obs, action) -> jax.Array:
    """Q_i(s, a) at the dataset's actions, [2, B]."""
    if networks.discrete:
        q_all = networks.critic.apply(critic_params, obs)  # [2, B, |A|]
        index = jnp.broadcast_to(action.astype(jnp.int32)[None, :, None], q_all.shape[:2] + (1,))
        return jnp.take_along_axis(q_all, index, axis=-1)[..., 0]
    return networks.critic.apply(critic_params, obs, action)


def value_loss(value_params, networks: Networks, obs, q_min, expectile) -> tuple[jax.Array, jax.Array]:
    """Eq. (1) for parameters `value_params`; `q_min` is min_i Q_θ̄i(s, a). Returns (loss, V(s))."""
    value = networks.value.apply(value_params, obs)
    return expectile_loss(jax.lax.stop_gradient(q_min) - value, expectile), value


def actor_loss(actor_params, networks: Networks, obs, action, weights) -> jax.Array:
    """Eq. (2) for parameters `actor_params`."""
    log_prob = networks.actor.apply(actor_params, obs).log_prob(action)
    return weighted_log_likelihood_loss(log_prob, weights)


def critic_loss(critic_params, networks: Networks, obs, action, target) -> tuple[jax.Array, jax.Array]:
    """Eq. (3) for parameters `critic_params`. Returns (loss, Q(s, a) [2, B])."""
    q = q_values(networks, critic_params, obs, action)
    return critic_loss_from_q(q, target), q


# ----------------------------------------------------------------------------- learning
def make_optimizers(config: Config) -> tuple[optax.GradientTransformation, ...]:
    """(actor, critic, value) optimizers: Adam, the actor's step size cosine-decayed to 0."""
    actor_lr = config.actor_lr
    if config.cosine_decay:
        actor_lr = optax.cosine_decay_schedule(config.actor_lr, config.num_gradient_steps)
    return optax.adam(actor_lr), optax.adam(config.critic_lr), optax.adam(config.value_lr)


def gradient_step(config: Config, networks: Networks, state: TrainState, batch: buffers.Transition
                  ) -> tuple[TrainState, dict]:
    """One IQL step on a minibatch of normalized observations: (1) V, (2) actor, (3) critics, (4) targets."""
    actor_opt, critic_opt, value_opt = make_optimizers(config)
    q_min = q_values(networks, state.target_critic_params, batch.obs, batch.action).min(axis=0)

    (v_loss, value), grads = jax.value_and_grad(value_loss, has_aux=True)(
        state.value_params, networks, batch.obs, q_min, config.expectile)
    updates, value_opt_state = value_opt.update(grads, state.value_opt_state, state.value_params)
    value_params = optax.apply_updates(state.value_params, updates)

    advantages = q_min - networks.value.apply(value_params, batch.obs)
    weights = advantage_weights(advantages, config.beta, config.max_weight)
    pi_loss, grads = jax.value_and_grad(actor_loss)(state.actor_params, networks, batch.obs, batch.action, weights)
    updates, actor_opt_state = actor_opt.update(grads, state.actor_opt_state, state.actor_params)
    actor_params = optax.apply_updates(state.actor_params, updates)

    next_value = networks.value.apply(value_params, batch.next_obs)
    target = td_target(config.reward_scale * batch.reward, batch.terminated, config.gamma, next_value)
    (q_loss, q), grads = jax.value_and_grad(critic_loss, has_aux=True)(
        state.critic_params, networks, batch.obs, batch.action, target)
    updates, critic_opt_state = critic_opt.update(grads, state.critic_opt_state, state.critic_params)
    critic_params = optax.apply_updates(state.critic_params, updates)

    new_state = state.replace(
        actor_params=actor_params, critic_params=critic_params, value_params=value_params,
        target_critic_params=polyak(critic_params, state.target_critic_params, config.tau),
        actor_opt_state=actor_opt_state, critic_opt_state=critic_opt_state, value_opt_state=value_opt_state)
    metrics = {"loss/value": v_loss, "loss/critic": q_loss, "loss/actor": pi_loss, "value": value.mean(),
               "q": q.mean(), "advantage": advantages.mean(), "weight": weights.mean(),
               "weight_clipped_fraction": jnp.mean(weights >= config.max_weight)}
    return new_state, metrics


# ----------------------------------------------------------------------------- init / update / train
def init(config: Config, key: jax.Array, dataset: buffers.Transition) -> TrainState:
    env, networks = _networks(config)
    key, actor_key, critic_key, value_key = jax.random.split(key, 4)
    obs = jnp.zeros((1,) + tuple(env.obs_shape), jnp.float32)
    actor_params = networks.actor.init(actor_key, obs)
    if networks.discrete:
        critic_params = networks.critic.init(critic_key, obs)
    else:
        critic_params = networks.critic.init(critic_key, obs, jnp.zeros((1, networks.action_dim)))
    value_params = networks.value.init(value_key, obs)
    actor_opt, critic_opt, value_opt = make_optimizers(config)
    obs_mean, obs_std = datasets.observation_stats(dataset.obs, config.normalize_obs)
    return TrainState(actor_params=actor_params, critic_params=critic_params, target_critic_params=critic_params,
                      value_params=value_params, actor_opt_state=actor_opt.init(actor_params),
                      critic_opt_state=critic_opt.init(critic_params), value_opt_state=value_opt.init(value_params),
                      obs_mean=obs_mean, obs_std=obs_std, rng=key, update_step=jnp.zeros((), jnp.int32))


def update(config: Config, state: TrainState, dataset: buffers.Transition) -> tuple[TrainState, dict]:
    """`steps_per_update` gradient steps, each on a fresh minibatch of the dataset."""
    _, networks = _networks(config)

    def step(state, key):
        batch = datasets.sample(dataset, key, config.batch_size)
        batch = batch.replace(obs=datasets.normalize_obs(batch.obs, state.obs_mean, state.obs_std),
                              next_obs=datasets.normalize_obs(batch.next_obs, state.obs_mean, state.obs_std))
        return gradient_step(config, networks, state, batch)

    rng, step_key = jax.random.split(state.rng)
    state, metrics = jax.lax.scan(step, state.replace(rng=rng), jax.random.split(step_key, config.steps_per_update))
    return state.replace(update_step=state.update_step + 1), jax.tree.map(jnp.mean, metrics)


def act(config: Config, params: Policy, obs: jax.Array, key: jax.Array, deterministic: bool = True) -> jax.Array:
    """An action for each observation in `obs` (raw, batched); `params` is `policy(state)`.
    Deterministic: the mean tanh(μ(s)) or the most probable action; else sampled from π
    (clipped to [−1, 1])."""
    _, networks = _networks(config)
    dist = networks.actor.apply(params.params, datasets.normalize_obs(obs, params.obs_mean, params.obs_std))
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
