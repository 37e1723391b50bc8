"""Apprenticeship learning via inverse RL (Abbeel & Ng 2004, "Apprenticeship Learning via Inverse
Reinforcement Learning", ICML; algorithm 3.9 of seed 003's §4).

The reward is assumed linear in known features, r_ϑ(s) = ϑᵀφ(s) with ‖ϑ‖₂ ≤ 1, so a policy's
value is ϑᵀμ(π) with its *feature expectations*

    (1) μ(π) = E[Σ_t γᵗ φ(s_t) | π]

and the expert's μ_E is the same sum over the demonstrations' episodes (`expert_feature_expectations`,
which recovers each transition's time index t from the terminated | truncated flags with a scan, so it
runs inside the compiled program). Iteration i finds a reward that separates the expert from the
policies found so far, trains a policy on it, and adds that policy's μ_i:

    (2) max-margin  t_i = max_{‖ϑ‖≤1} min_{j<i} ϑᵀ(μ_E − μ_j); its solution is ϑ_i = (μ_E − p)/‖μ_E − p‖,
                    t_i = ‖μ_E − p‖, with p the point of the convex hull of {μ_j} closest to μ_E
                    (`min_norm_point`: `hull_iterations` accelerated projected-gradient steps on the
                    simplex weights of the μ_j, a fixed-capacity array with a mask)
    (3) projection  μ̄_i = μ̄_{i−1} + ((μ_i − μ̄_{i−1})ᵀ(μ_E − μ̄_{i−1}) / ‖μ_i − μ̄_{i−1}‖²)(μ_i − μ̄_{i−1}),
                    μ̄_0 = μ_0, ϑ_{i+1} ∝ μ_E − μ̄_i, t_i = ‖μ_E − μ̄_i‖  (`projection_step`)
    (4) π_i = RL(r = ϑ_iᵀφ)    — here `inner_updates` PPO updates (`purerl.algos.ppo`)
    (5) stop when t_i < ε; the output is a mixture of the π_j with weights λ (max-margin) or the
        last policy.

Deviations and choices, stated: (a) the coefficient of (3) is clipped to [0, 1] — the projection of
μ_E onto the *segment* [μ̄_{i−1}, μ_i] rather than the line — so μ̄_i stays a mixture's feature
expectation; the two agree whenever the paper's coefficient already lies in [0, 1], and t_i is
non-increasing either way. (b) The reward uses ϑ normalized to ‖ϑ‖ = 1 in both variants (the
paper's projection ϑ = μ_E − μ̄ is unnormalized; the optimal policy is the same). (c) The policy is
warm-started: iteration i continues PPO from π_{i−1} (params, optimizer, environments) instead of
solving each RL problem from scratch, which is far cheaper; PPO's learning rate anneals over all
iterations. (d) A compiled program cannot stop early: training runs `num_updates` iterations, and
the metrics report `margin` (t_i) and `converged` (t_i < `epsilon`) each iteration. ε = 15 by default:
μ is estimated from a few episodes, and on CartPole-v1 (4 demonstration episodes, 4 μ episodes,
32 RBFs, γ = 0.99, ‖μ‖ up to about 100) policies at the expert's return measured t_i = 4.4–7.8. (e) Evaluation
runs the last policy π_i deterministically on the true reward (not the mixture of (5)).

Features (`features`): observations are normalized with the demonstrations' mean and standard
deviation (z = (s − mean)/std), then "rbf": φ(s) = (exp(−‖z − c_k‖² / (2 w² d)))_{k<K} ⊕ 1, K =
`num_centres` centres c_k ~ N(0, I) drawn with a fixed key (the same for every seed), w =
`rbf_width`, d the observation dimension; "obs": φ(s) = tanh(z) ⊕ tanh(z)² ⊕ 1. Both lie in
[−1, 1], so ‖μ‖ ≤ √F/(1 − γ). The constant feature makes ϑᵀμ reward staying alive where episodes
terminate.

One `update` is one outer iteration: `inner_updates` PPO updates on r_ϑ (`ppo.rollout` with
`traj.reward` replaced by ϑᵀφ(raw obs), then `ppo.learn`), then μ_i estimated from `mu_episodes`
fresh episodes of the stochastic policy (or the deterministic one, `deterministic_mu`), each run
for the whole time limit with a done mask, then step (2) or (3). `init` estimates μ_0 of the
initial policy the same way. `env_steps_per_update` counts both the PPO steps and the μ-estimation
steps (`mu_episodes × max_episode_steps`, every step of the masked scan).

Usage:
    purerl collect --kind expert --expert scripted --env CartPole-v1 --episodes 4 --out demos/cartpole-4
    purerl train apprenticeship --env CartPole-v1 --dataset demos/cartpole-4 --num-seeds 8
    demos = experts.demonstrations("CartPole-v1", "scripted", episodes=4)
    state, metrics, eval_returns = jax.jit(jax.vmap(apprenticeship.train, in_axes=(None, 0, None)))(
        apprenticeship.Config.for_env("CartPole-v1"), keys, demos.transitions)
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from purerl import buffers, datasets, envs
from purerl.algos import ppo
from purerl.config import check_bool, check_choice, check_int, check_range, static
from purerl.evaluation import train_loop

DEMONSTRATIONS = True
VARIANTS = ("projection", "max_margin")
FEATURES = ("rbf", "obs")
CENTRES_SEED = 0  # the fixed key of the RBF centres


# ----------------------------------------------------------------------------- config
@struct.dataclass
class Config:
    """Apprenticeship-learning hyperparameters: PPO's (see `purerl.algos.ppo.Config`; `ppo_config`
    builds it), the features' and the outer loop's. Static fields fix the compiled program; float
    fields can be swept with `jax.vmap` (see `purerl.config.sweep_axes`)."""

    # -- static: environment, data and program shape
    env: str = static("CartPole-v1")  # environment of the demonstrations, of training and of evaluation
    dataset: str = static("")  # path of the demonstrations the runner loads (`train` takes them itself)
    total_timesteps: int = static(300_000)  # environment steps per seed, PPO's and μ-estimation's together
    num_envs: int = static(8)  # PPO's parallel environments per seed
    num_steps: int = static(128)  # PPO rollout length per environment per PPO update
    update_epochs: int = static(4)  # PPO passes over each rollout
    num_minibatches: int = static(4)  # PPO minibatches per pass
    hidden_sizes: tuple[int, ...] = static((64, 64))  # PPO's actor and critic MLPs
    activation: str = static("tanh")  # PPO's hidden activation, "tanh" or "relu"
    anneal_lr: bool = static(True)  # PPO's learning rate decays linearly to 0 over all iterations
    normalize_advantages: bool = static(True)  # PPO's per-minibatch advantage standardization
    clip_value_loss: bool = static(True)  # PPO's clipped value loss
    normalize_obs: bool = static(False)  # PPO's running observation normalization (the policy's input only)
    variant: str = static("projection")  # "projection" (eq. 3) or "max_margin" (eq. 2)
    features: str = static("rbf")  # φ: "rbf" (Gaussian RBFs ⊕ 1) or "obs" (tanh z ⊕ tanh² z ⊕ 1)
    num_centres: int = static(32)  # K, RBF centres ("rbf" only)
    inner_updates: int = static(8)  # PPO updates per outer iteration (eq. 4), warm-started
    mu_episodes: int = static(4)  # episodes per estimate of μ(π_i), eq. (1)
    deterministic_mu: bool = static(True)  # estimate μ of the greedy policy (False: the stochastic one)
    hull_iterations: int = static(100)  # projected-gradient steps of the min-norm point (max_margin)
    eval_every: int = static(5)  # outer iterations between evaluations
    eval_episodes: int = static(8)  # deterministic-policy episodes per evaluation (true reward)
    # -- sweepable floats
    learning_rate: float = 2.5e-4  # PPO's Adam step size (initial value when annealed)
    gamma: float = 0.99  # discount γ, of PPO and of the feature expectations (1)
    gae_lambda: float = 0.95  # GAE λ
    clip_eps: float = 0.2  # PPO's surrogate clip ε
    vf_coef: float = 0.5  # PPO's c_V
    ent_coef: float = 0.01  # PPO's entropy bonus c_H
    max_grad_norm: float = 0.5  # PPO's global-norm gradient clipping
    init_log_std: float = 0.0  # initial log σ of the Gaussian policy (continuous actions)
    rbf_width: float = 0.5  # w: RBF width per dimension, in the demonstrations' standard deviations
    epsilon: float = 15.0  # ε of eq. (5), in the units of μ (discounted feature sums; see below)

    def __post_init__(self):
        envs.check_name(self.env)
        for name in ("total_timesteps", "num_envs", "num_steps", "num_centres", "inner_updates", "mu_episodes",
                     "hull_iterations"):
            check_int(self, name)
        check_choice(self, "variant", VARIANTS)
        check_choice(self, "features", FEATURES)
        check_bool(self, "deterministic_mu")
        if self.total_timesteps < self.env_steps_per_update:
            raise ValueError(f"Config.total_timesteps={self.total_timesteps} is invalid: must be ≥ one outer "
                             f"iteration, env_steps_per_update={self.env_steps_per_update}")
        check_range(self, "gamma", 0.0, 1.0, high_inclusive=False)  # μ of eq. (1) must be finite
        check_range(self, "rbf_width", 0.0, low_inclusive=False)
        check_range(self, "epsilon", 0.0, low_inclusive=False)
        ppo_config(self)  # PPO's fields, checked by ppo.Config itself

    @property
    def ppo_steps_per_update(self) -> int:
        """PPO's environment steps per outer iteration."""
        return self.inner_updates * self.num_envs * self.num_steps

    @property
    def mu_steps_per_update(self) -> int:
        """μ-estimation steps per outer iteration: every step of the masked scan."""
        return self.mu_episodes * make_env(self.env).max_episode_steps

    @property
    def env_steps_per_update(self) -> int:
        return self.ppo_steps_per_update + self.mu_steps_per_update

    @property
    def num_updates(self) -> int:
        """Outer iterations (the estimate of μ_0 in `init` is not counted)."""
        return self.total_timesteps // self.env_steps_per_update

    @classmethod
    def for_env(cls, env: str, **overrides) -> "Config":
        """Defaults tuned for `env` (from `PRESETS`), then `overrides`."""
        return cls(**{"env": env, **PRESETS.get(env, {}), **overrides})


# CartPole: the defaults (see tests/algos/test_apprenticeship.py for the levels).
PRESETS: dict[str, dict[str, Any]] = {
    "CartPole-v1": dict(),
}


def ppo_config(config: Config) -> ppo.Config:
    """The inner PPO configuration; its total_timesteps is the PPO updates of all outer iterations,
    so that PPO's learning-rate annealing ends with training."""
    return ppo.Config(env=config.env, total_timesteps=config.num_updates * config.ppo_steps_per_update,
                      num_envs=config.num_envs, num_steps=config.num_steps, update_epochs=config.update_epochs,
                      num_minibatches=config.num_minibatches, hidden_sizes=config.hidden_sizes,
                      activation=config.activation, anneal_lr=config.anneal_lr,
                      normalize_advantages=config.normalize_advantages, clip_value_loss=config.clip_value_loss,
                      normalize_obs=config.normalize_obs, eval_every=config.eval_every,
                      eval_episodes=config.eval_episodes, learning_rate=config.learning_rate, gamma=config.gamma,
                      gae_lambda=config.gae_lambda, clip_eps=config.clip_eps, vf_coef=config.vf_coef,
                      ent_coef=config.ent_coef, max_grad_norm=config.max_grad_norm,
                      init_log_std=config.init_log_std)


@functools.lru_cache(maxsize=None)
def make_env(env_name: str) -> envs.Environment:
    """The environment without wrappers: shapes and time limit."""
    return envs.make(env_name)


# ----------------------------------------------------------------------------- features
def num_features(config: Config) -> int:
    """F, the length of φ(s)."""
    dim = math.prod(make_env(config.env).obs_shape)
    return config.num_centres + 1 if config.features == "rbf" else 2 * dim + 1


def rbf_centres(config: Config, dim: int) -> jax.Array:
    """The K = `num_centres` RBF centres [K, dim] ~ N(0, I) in the normalized space, from a fixed key."""
    return jax.random.normal(jax.random.PRNGKey(CENTRES_SEED), (config.num_centres, dim))


def features(config: Config, obs: jax.Array, obs_mean: jax.Array, obs_std: jax.Array) -> jax.Array:
    """φ(s) [B, F] of raw observations [B, *obs_shape], normalized with the demonstrations' statistics."""
    z = datasets.normalize_obs(jnp.asarray(obs, jnp.float32), obs_mean, obs_std)
    z = z.reshape((z.shape[0], -1))
    one = jnp.ones((z.shape[0], 1), jnp.float32)
    if config.features == "rbf":
        centres = rbf_centres(config, z.shape[-1])
        sq_dist = jnp.sum((z[:, None, :] - centres[None]) ** 2, axis=-1)
        phi = jnp.exp(-sq_dist / (2.0 * config.rbf_width**2 * z.shape[-1]))
        return jnp.concatenate([phi, one], axis=-1)
    squashed = jnp.tanh(z)
    return jnp.concatenate([squashed, squashed**2, one], axis=-1)


def discounts_from_flags(done: jax.Array, gamma) -> jax.Array:
    """γᵗ for each transition of episode-ordered data [N] (episodes one after another), t its index
    within its episode, from the terminated | truncated flags `done` [N] (a forward scan)."""
    def step(discount, d):
        return jnp.where(d, 1.0, discount * gamma), discount

    _, out = jax.lax.scan(step, jnp.ones((), jnp.float32), done)
    return out


def expert_feature_expectations(config: Config, demos: buffers.Transition, obs_mean: jax.Array,
                                obs_std: jax.Array) -> jax.Array:
    """μ_E, eq. (1) over the demonstrations' episodes: Σ_i γ^{t_i} φ(s_i) / (number of episodes), [F].
    An unfinished last episode (neither terminated nor truncated) counts as one."""
    done = jnp.asarray(demos.terminated) | jnp.asarray(demos.truncated)
    discount = discounts_from_flags(done, config.gamma)
    phi = features(config, demos.obs, obs_mean, obs_std)
    episodes = done.sum() + (~done[-1]).astype(done.dtype)
    return (discount[:, None] * phi).sum(0) / episodes


def feature_expectations(config: Config, params, obs_stats, obs_mean: jax.Array, obs_std: jax.Array,
                         key: jax.Array):
    """μ(π) of the policy `params`, eq. (1), from `mu_episodes` fresh episodes run for the whole time
    limit (the first episode of each slot; a done mask stops the sums). `obs_stats`: the policy's
    observation-normalization statistics, used frozen. Returns (μ [F], mean undiscounted true return)."""
    pc = ppo_config(config)
    env = ppo.make_env(config.env, config.normalize_obs)
    reset_key, run_key = jax.random.split(key)
    env_state, obs = env.reset(reset_key, config.mu_episodes, obs_stats)

    def step(carry, step_key):
        env_state, obs, mu, total, discount, alive = carry
        act_key, env_key = jax.random.split(step_key)
        phi = features(config, env_state.raw_obs, obs_mean, obs_std)
        action = ppo.act(pc, params, obs, act_key, deterministic=config.deterministic_mu)
        env_state, ts = env.step(env_key, env_state, action, update_stats=False)
        mu = mu + (alive * discount)[:, None] * phi
        total = total + alive * ts.reward
        alive = alive * (1.0 - ts.done.astype(jnp.float32))
        return (env_state, ts.obs, mu, total, discount * config.gamma, alive), None

    n = config.mu_episodes
    init = (env_state, obs, jnp.zeros((n, num_features(config))), jnp.zeros(n), jnp.ones(()), jnp.ones(n))
    (_, _, mu, total, _, _), _ = jax.lax.scan(step, init, jax.random.split(run_key, env.max_episode_steps))
    return mu.mean(0), total.mean()


# ----------------------------------------------------------------------------- the outer steps
def projection_step(mu_bar: jax.Array, mu: jax.Array, mu_expert: jax.Array) -> jax.Array:
    """Eq. (3): the projection of μ_E onto the segment from μ̄_{i−1} to μ_i (the paper's coefficient,
    clipped to [0, 1]). Returns μ̄_i."""
    direction = mu - mu_bar
    coef = jnp.dot(direction, mu_expert - mu_bar) / jnp.maximum(jnp.dot(direction, direction), 1e-12)
    return mu_bar + jnp.clip(coef, 0.0, 1.0) * direction


def project_to_simplex(v: jax.Array, mask: jax.Array) -> jax.Array:
    """The Euclidean projection of v [K] onto the simplex over the entries where `mask` [K] is True
    (the others 0), by the sort-based algorithm (Duchi et al. 2008)."""
    valid_max = jnp.max(jnp.where(mask, v, -jnp.inf))
    v = jnp.where(mask, v, valid_max - 2.0)  # below θ ≥ max v − 1: projected to 0
    u = jnp.sort(v)[::-1]
    cumulative = jnp.cumsum(u) - 1.0
    index = jnp.arange(1, v.shape[0] + 1)
    rho = jnp.max(jnp.where(u - cumulative / index > 0, index, 0))
    theta = cumulative[rho - 1] / rho
    return jnp.where(mask, jnp.maximum(v - theta, 0.0), 0.0)


def largest_eigenvalue(gram: jax.Array, iterations: int = 30) -> jax.Array:
    """λ_max of a symmetric positive semi-definite matrix [K, K] by power iteration from a fixed random
    start (a symmetric one can be orthogonal to the top eigenvector), 1.05 × the estimate, at most the
    trace (an upper bound)."""
    def body(v, _):
        v = gram @ v
        return v / jnp.maximum(jnp.sqrt(jnp.sum(v**2)), 1e-30), None

    start = jax.random.uniform(jax.random.PRNGKey(0), (gram.shape[0],), minval=0.5, maxval=1.5)
    v, _ = jax.lax.scan(body, start / jnp.sqrt(jnp.sum(start**2)), None, length=iterations)
    return jnp.minimum(1.05 * v @ gram @ v, jnp.trace(gram))


def min_norm_point(points: jax.Array, mask: jax.Array, target: jax.Array, iterations: int,
                   start: jax.Array | None = None):
    """The point of the convex hull of `points` [K, F] (rows where `mask` [K]) closest to `target` [F]:
    min_λ ½‖Σ_j λ_j μ_j − μ_E‖² over the simplex, by `iterations` accelerated projected-gradient
    (FISTA) steps of size 1/λ_max(D Dᵀ) (by power iteration), D the rows μ_j − μ_E, keeping the best
    iterate, from `start` (weights [K] on the simplex; default uniform over the mask): warm-started
    from the previous iteration's weights, the distance never grows as points are added.
    Returns (closest point [F], weights λ [K])."""
    diff = jnp.where(mask[:, None], points - target, 0.0)
    gram = diff @ diff.T  # [K, K], the Hessian of the objective in λ
    step_size = 1.0 / (largest_eigenvalue(gram) + 1e-12)
    if start is None:
        start = mask / jnp.maximum(mask.sum(), 1)

    objective = lambda weights: weights @ gram @ weights  # noqa: E731 - ‖Σ_j λ_j μ_j − μ_E‖²

    def body(carry, _):
        weights, momentum_point, t, best = carry
        grad = gram @ momentum_point
        new = project_to_simplex(momentum_point - step_size * grad, mask)
        t_new = 0.5 * (1.0 + jnp.sqrt(1.0 + 4.0 * t**2))
        momentum_point = new + ((t - 1.0) / t_new) * (new - weights)
        best = jnp.where(objective(new) < objective(best), new, best)  # FISTA is not monotone
        return (new, momentum_point, t_new, best), None

    carry = (start, start, jnp.ones(()), start)
    (_, _, _, weights), _ = jax.lax.scan(body, carry, None, length=iterations)
    return weights @ jnp.where(mask[:, None], points, 0.0), weights


def reward_weights(mu_expert: jax.Array, closest: jax.Array) -> tuple[jax.Array, jax.Array]:
    """ϑ = (μ_E − p)/‖μ_E − p‖ (‖ϑ‖ = 1; 0 when p = μ_E) and the margin t = ‖μ_E − p‖."""
    w = mu_expert - closest
    margin = jnp.sqrt(jnp.sum(w**2))
    return w / jnp.maximum(margin, 1e-12), margin


# ----------------------------------------------------------------------------- state
@struct.dataclass
class TrainState:
    policy: ppo.TrainState  # PPO's params, optimizer state, environments, rng and PPO-update count
    obs_mean: jax.Array  # [*obs_shape] the demonstrations' observation mean (the features' input)
    obs_std: jax.Array  # [*obs_shape] their standard deviation + 1e-3
    mu_expert: jax.Array  # [F] μ_E
    mu_bar: jax.Array  # [F] μ̄_i of eq. (3) (projection)
    mus: jax.Array  # [num_updates + 1, F] μ_0 … μ_i, zero beyond (max_margin's hull)
    mus_mask: jax.Array  # [num_updates + 1] bool, the rows filled
    hull_weights: jax.Array  # [num_updates + 1] λ of the closest point p (max_margin; the mixture of eq. 5)
    theta: jax.Array  # [F] ϑ of the reward the policy trains on next
    margin: jax.Array  # t_i, the latest margin
    update_step: jax.Array  # int32, outer iterations done

    @property
    def params(self):
        """The acting parameters (what `act` takes)."""
        return self.policy.params

    @property
    def rng(self) -> jax.Array:
        return self.policy.rng


# ----------------------------------------------------------------------------- init / update / train
def outer_step(config: Config, state: TrainState, mu: jax.Array, index) -> TrainState:
    """Add μ_i as row `index` of the hull, then eq. (2) or (3): the new ϑ and margin."""
    mus = state.mus.at[index].set(mu)
    mus_mask = state.mus_mask.at[index].set(True)
    if config.variant == "projection":
        mu_bar = jnp.where(index == 0, mu, projection_step(state.mu_bar, mu, state.mu_expert))
        closest = mu_bar
    else:
        mu_bar = state.mu_bar
        start = jnp.where(index == 0, mus_mask.astype(jnp.float32), state.hull_weights)
        closest, weights = min_norm_point(mus, mus_mask, state.mu_expert, config.hull_iterations, start)
    theta, margin = reward_weights(state.mu_expert, closest)
    hull_weights = weights if config.variant == "max_margin" else state.hull_weights
    return state.replace(mus=mus, mus_mask=mus_mask, hull_weights=hull_weights, mu_bar=mu_bar, theta=theta,
                         margin=margin)


def init(config: Config, key: jax.Array, demos: buffers.Transition) -> TrainState:
    """PPO's fresh agent (`ppo.init`), the demonstrations' statistics and μ_E, then μ_0 of the
    initial policy and the first ϑ ∝ μ_E − μ_0."""
    env = make_env(config.env)
    datasets.check_shapes(demos, env)
    key, policy_key, mu_key = jax.random.split(key, 3)
    policy = ppo.init(ppo_config(config), policy_key)
    obs_mean, obs_std = datasets.observation_stats(demos.obs)
    mu_expert = expert_feature_expectations(config, demos, obs_mean, obs_std)
    f = mu_expert.shape[0]
    state = TrainState(policy=policy, obs_mean=obs_mean, obs_std=obs_std, mu_expert=mu_expert,
                       mu_bar=jnp.zeros(f), mus=jnp.zeros((config.num_updates + 1, f)),
                       mus_mask=jnp.zeros(config.num_updates + 1, bool), hull_weights=jnp.zeros(config.num_updates + 1),
                       theta=jnp.zeros(f), margin=jnp.zeros(()),
                       update_step=jnp.zeros((), jnp.int32))
    mu, _ = feature_expectations(config, policy.params, policy.env_state.obs_stats, obs_mean, obs_std, mu_key)
    return outer_step(config, state, mu, 0)


def update(config: Config, state: TrainState, demos: buffers.Transition = None) -> tuple[TrainState, dict]:
    """One outer iteration i: `inner_updates` PPO updates on r = ϑᵀφ(s) (eq. 4), μ_i of the new policy
    (eq. 1), then eq. (2) or (3). `demos` is not read (μ_E is in the state); it is taken for the
    contract of imitation algorithms."""
    pc = ppo_config(config)

    def ppo_update(policy, _):
        (env_state, obs, rng), traj = ppo.rollout(pc, policy.params, policy.env_state, policy.obs, policy.rng)
        flat_obs = traj.raw_obs.reshape((-1,) + traj.raw_obs.shape[2:])
        reward = (features(config, flat_obs, state.obs_mean, state.obs_std) @ state.theta).reshape(traj.reward.shape)
        params, opt_state, rng, aux = ppo.learn(pc, policy.params, policy.opt_state, traj.replace(reward=reward), rng)
        metrics = {**jax.tree.map(jnp.mean, aux), **ppo.episode_metrics(traj), "reward/mean": reward.mean()}
        policy = ppo.TrainState(params=params, opt_state=opt_state, env_state=env_state, obs=obs, rng=rng,
                                update_step=policy.update_step + 1)
        return policy, metrics

    policy, inner_metrics = jax.lax.scan(ppo_update, state.policy, None, length=config.inner_updates)
    rng, mu_key = jax.random.split(policy.rng)
    policy = policy.replace(rng=rng)
    mu, mu_return = feature_expectations(config, policy.params, policy.env_state.obs_stats, state.obs_mean,
                                         state.obs_std, mu_key)
    new = outer_step(config, state.replace(policy=policy), mu, state.update_step + 1)
    metrics = {**jax.tree.map(lambda x: jnp.nanmean(x, axis=0), inner_metrics),
               "margin": new.margin, "converged": new.margin < config.epsilon,
               "mu/distance": jnp.sqrt(jnp.sum((state.mu_expert - mu) ** 2)), "mu/return": mu_return,
               "theta/constant": new.theta[-1]}
    return new.replace(update_step=state.update_step + 1), metrics


def act(config: Config, params, obs: jax.Array, key: jax.Array, deterministic: bool = True) -> jax.Array:
    """The policy's action for a batch of observations (normalized ones when `normalize_obs`);
    `params` is `state.params`."""
    return ppo.act(ppo_config(config), params, obs, key, deterministic)


def evaluate(config: Config, state: TrainState) -> jax.Array:
    """Returns (the environment's true reward) of `eval_episodes` deterministic episodes of the
    latest policy, [eval_episodes]."""
    return ppo.evaluate(ppo_config(config), state.policy)


def train(config: Config, key: jax.Array, demos: buffers.Transition):
    """`init` + `lax.scan` of `update`, evaluating every `eval_every` updates and at the end.
    Returns (final state, per-update metrics [num_updates], eval returns [num_evals, episodes])."""
    state = init(config, key, demos)
    return train_loop(lambda s: update(config, s, demos), functools.partial(evaluate, config), state,
                      config.num_updates, config.eval_every)
