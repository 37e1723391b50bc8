"""TRPO — Trust Region Policy Optimization (Schulman et al. 2015, arXiv:1502.05477), with
GAE(λ) advantages (Schulman et al. 2016, arXiv:1506.02438); natural policy gradient
(Kakade 2001) as an option.

One `update` = collect `num_steps` steps from `num_envs` parallel environments, then one
constrained policy step and a separate fit of the value function. Equations:

    (1) ρ_t(θ) = π_θ(a_t|s_t) / π_old(a_t|s_t)
    (2) maximize  L(θ) = E[ρ_t(θ) Â_t]   subject to   D̄_KL(θ) = E[KL(π_old(·|s_t) ‖ π_θ(·|s_t))] ≤ δ
        (the paper's eq. 14, sample-based with the "single path" estimator).
    (3) Fisher-vector product: F v = ∇_θ((∇_θ D̄_KL(θ))ᵀ v) at θ = θ_old, plus damping·v —
        the Hessian of the mean KL, never formed as a matrix (paper appendix C.1).
    (4) s ≈ F⁻¹ g by `cg_iterations` steps of conjugate gradient, g = ∇_θ L(θ_old).
    (5) full step β s with β = sqrt(2δ / sᵀ F s), so that the quadratic model of the KL
        equals δ (appendix C).
    (6) backtracking line search on θ_old + κ^j β s, j = 0 … `line_search_steps`−1
        (κ = `backtrack_ratio`): take the first candidate with D̄_KL ≤ δ and
        L(θ) − L(θ_old) > 0; when none qualifies keep θ_old.
    (7) value function: `critic_epochs` passes of minibatch Adam on
        L_V = ½ E[(V_φ(s_t) − R_t)²], R_t = Â_t + V_old(s_t) (the GAE value targets).
    (8) natural policy gradient (`natural_gradient=True`): θ ← θ_old + α s with a fixed
        step size α = `npg_step_size`, no KL scaling and no line search.

Â_t by GAE(λ) (`purerl.returns.gae`), bootstrapping through time-limit truncations from
the true final observation and not through terminals; Â is standardized per rollout.

Everything, the conjugate gradient and line search included, is inside `update`, as
fixed-length loops: the CG is a `lax.scan` of `cg_iterations` steps, and the line search
evaluates all `line_search_steps` candidates at once (`vmap`) and keeps the first that
qualifies — the same choice a sequential backtracking search makes.

Discrete actions use a categorical policy, continuous ones a diagonal Gaussian with a
state-independent log standard deviation (actions in [−1, 1], rescaled by the
environment). Defaults follow sb3-contrib's TRPO (δ 0.01, CG damping 0.1, line search
shrink 0.8 × 10, critic Adam lr 1e-3) and the RL Baselines3 Zoo's CartPole entry;
`PRESETS` holds the settings tuned here per environment.

Usage:
    purerl train trpo --env CartPole-v1 --num-seeds 16
    purerl train trpo --env CartPole-v1 --natural-gradient --npg-step-size 0.2
    state, metrics, eval_returns = jax.jit(jax.vmap(trpo.train, in_axes=(None, 0)))(trpo.Config(), keys)
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from jax.flatten_util import ravel_pytree

from purerl import envs
from purerl.config import check_bool, check_choice, check_int, check_range, check_sizes, static
from purerl.evaluation import evaluate as run_episodes
from purerl.evaluation import train_loop
from purerl.returns import gae


# ----------------------------------------------------------------------------- config
@struct.dataclass
class Config:
    """TRPO hyperparameters. Static fields fix the compiled program; float fields can be
    swept with `jax.vmap` (see `purerl.config.sweep_axes`)."""

    # -- static: environment and program shape
    env: str = static("CartPole-v1")  # environment name (purerl.envs.available())
    total_timesteps: int = static(100_000)  # environment steps per seed (all envs together)
    num_envs: int = static(8)  # parallel environments per seed
    num_steps: int = static(128)  # rollout length per environment per update
    cg_iterations: int = static(10)  # conjugate-gradient steps, eq. (4)
    line_search_steps: int = static(10)  # backtracking candidates, eq. (6)
    critic_epochs: int = static(10)  # passes of the value fit over each rollout, eq. (7)
    critic_minibatches: int = static(4)  # minibatches per pass
    natural_gradient: bool = static(False)  # eq. (8) instead of eqs. (5)–(6)
    hidden_sizes: tuple[int, ...] = static((64, 64))  # MLP widths, policy and value alike
    activation: str = static("tanh")  # "tanh" or "relu"
    normalize_obs: bool = static(False)  # running observation normalization (environment option)
    eval_every: int = static(10)  # updates between deterministic evaluations
    eval_episodes: int = static(8)  # episodes per evaluation
    # -- sweepable floats
    max_kl: float = 0.01  # δ, the trust-region radius in nats
    cg_damping: float = 0.1  # added to F: (F + damping·I) v
    backtrack_ratio: float = 0.8  # κ, step shrink factor of the line search
    npg_step_size: float = 0.2  # α of eq. (8) (CartPole, 4 seeds, 50k steps: 0.2 → 500, 0.05 → 375)
    critic_learning_rate: float = 1e-3  # Adam step size of the value fit
    gamma: float = 0.99  # discount γ
    gae_lambda: float = 0.95  # GAE λ
    init_log_std: float = 0.0  # initial log σ of the Gaussian policy (continuous actions)

    def __post_init__(self):
        envs.check_name(self.env)
        for name in ("total_timesteps", "num_envs", "num_steps", "cg_iterations", "line_search_steps",
                     "critic_epochs", "critic_minibatches", "eval_every", "eval_episodes"):
            check_int(self, name)
        check_sizes(self, "hidden_sizes")
        check_choice(self, "activation", ("tanh", "relu"))
        for name in ("natural_gradient", "normalize_obs"):
            check_bool(self, name)
        if (self.num_envs * self.num_steps) % self.critic_minibatches:
            raise ValueError(f"Config.critic_minibatches={self.critic_minibatches} is invalid: must divide the "
                             f"batch num_envs*num_steps={self.num_envs * self.num_steps}")
        if self.total_timesteps < self.num_envs * self.num_steps:
            raise ValueError(f"Config.total_timesteps={self.total_timesteps} is invalid: must be ≥ one rollout, "
                             f"num_envs*num_steps={self.num_envs * self.num_steps}")
        check_range(self, "max_kl", 0.0, low_inclusive=False)
        check_range(self, "cg_damping", 0.0)
        check_range(self, "backtrack_ratio", 0.0, 1.0, low_inclusive=False, high_inclusive=False)
        check_range(self, "npg_step_size", 0.0, low_inclusive=False)
        check_range(self, "critic_learning_rate", 0.0, low_inclusive=False)
        check_range(self, "gamma", 0.0, 1.0)
        check_range(self, "gae_lambda", 0.0, 1.0)
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


# Per-environment settings, each measured here with vmapped seeds (figures: mean final
# deterministic return). CartPole: the RL Baselines3 Zoo's 1024 steps per update and λ 0.98,
# 200k steps: every seed at 500 for 3 of 4 key sets of 8 seeds (one seed at 225 in the 4th);
# λ 0.95 at 100k gave 432.9 on one key set (two seeds near 230). Acrobot (Zoo: observation
# normalization, 100k steps): δ 0.02 reaches about −85 by 64k steps (4 seeds: −85 at
# 96k, −84.6 at 150k; δ 0.01: −86.2 at 150k, −100.1 over 8 seeds at 100k). Pendulum (Zoo:
# γ 0.9, gSDE, −170 at 100k): with a plain Gaussian and the default critic step size 1e-3,
# −225 over 8 seeds at 200k steps (−253 over 16 in the benchmark); critic step size 3e-3 and
# λ 0.9 (a lower-variance advantage): −182.8 over the benchmark's 16 seeds (split of
# PRNGKey(0)), −180.4, −183.1 and −172.1 over 8 seeds for key sets PRNGKey(0), (1), (2). The
# outliers (a seed or two per 16 near −350) are deterministic evaluation episodes stuck near
# the bottom, not a failed value fit or a collapsed log σ. With λ 0.95 (the earlier preset):
# −199 … −218 over 16, −233 on PRNGKey(1); one vmapped sweep from there, 16 seeds: λ 0.98 −204,
# δ 0.01 −192, δ 0.03 −189 (−251 on PRNGKey(2)), γ 0.95 −216, init log σ −0.5 −204, CG damping
# 0.01 −245; with λ 0.9: δ 0.03 −211 … −226, γ 0.95 −153/−184/−200 (16/8/8 seeds).
PRESETS: dict[str, dict[str, Any]] = {
    "CartPole-v1": dict(total_timesteps=200_000, gae_lambda=0.98),
    "Acrobot-v1": dict(total_timesteps=100_000, normalize_obs=True, max_kl=0.02),
    "Pendulum-v1": dict(total_timesteps=200_000, num_steps=256, gamma=0.9, gae_lambda=0.9, normalize_obs=True,
                        max_kl=0.02, critic_learning_rate=3e-3),
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


class Policy(nn.Module):
    """`__call__(obs) -> distribution`: categorical logits or a diagonal Gaussian with a
    state-independent log σ. Its parameters are the θ of eqs. (2)–(8)."""

    obs_ndim: int
    action_dim: int
    discrete: bool
    hidden_sizes: Sequence[int]
    activation: str
    init_log_std: Any = 0.0

    @nn.compact
    def __call__(self, obs) -> distrax.Distribution:
        obs = obs.reshape(obs.shape[: obs.ndim - self.obs_ndim] + (-1,))
        out = MLP(self.hidden_sizes, self.activation, self.action_dim, head_scale=0.01)(obs)
        if self.discrete:
            return distrax.Categorical(logits=out)
        log_std = self.param("log_std", nn.initializers.constant(self.init_log_std), (self.action_dim,))
        return distrax.MultivariateNormalDiag(out, jnp.exp(log_std))


class Value(nn.Module):
    """`__call__(obs) -> V(s)`, fitted separately, eq. (7)."""

    obs_ndim: int
    hidden_sizes: Sequence[int]
    activation: str

    @nn.compact
    def __call__(self, obs) -> jax.Array:
        obs = obs.reshape(obs.shape[: obs.ndim - self.obs_ndim] + (-1,))
        return MLP(self.hidden_sizes, self.activation, 1, head_scale=1.0)(obs)[..., 0]


@functools.lru_cache(maxsize=None)
def make_env(env_name: str, normalize_obs: bool) -> envs.Environment:
    return envs.make(env_name, normalize_obs=normalize_obs)


def make_networks(config: Config, env: envs.Environment) -> tuple[Policy, Value]:
    space = env.action_space
    policy = Policy(
        obs_ndim=len(env.obs_shape),
        action_dim=space.n if env.discrete else int(np.prod(space.shape)),
        discrete=env.discrete,
        hidden_sizes=tuple(config.hidden_sizes),
        activation=config.activation,
        init_log_std=config.init_log_std,
    )
    return policy, Value(obs_ndim=len(env.obs_shape), hidden_sizes=tuple(config.hidden_sizes),
                         activation=config.activation)


def make_critic_optimizer(config: Config) -> optax.GradientTransformation:
    return optax.adam(config.critic_learning_rate)


# ----------------------------------------------------------------------------- state
@struct.dataclass
class TrainState:
    policy_params: Any
    value_params: Any
    value_opt_state: Any
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


# ----------------------------------------------------------------------------- the math
def surrogate(policy_params, policy: Policy, obs, actions, log_prob_old, advantages):
    """Eq. (2)'s objective L(θ) = E[ρ_t(θ) Â_t] (ρ of eq. 1)."""
    log_prob = policy.apply(policy_params, obs).log_prob(actions)
    return jnp.mean(jnp.exp(log_prob - log_prob_old) * advantages)


def mean_kl(policy_params, policy: Policy, obs, old_dist: distrax.Distribution):
    """Eq. (2)'s constraint D̄_KL(θ) = E_s[KL(π_old(·|s) ‖ π_θ(·|s))]."""
    return jnp.mean(old_dist.kl_divergence(policy.apply(policy_params, obs)))


def fisher_vector_product(kl_fn: Callable, params_flat, vector, damping):
    """Eq. (3): (F + damping·I) v with F the Hessian of `kl_fn` (a function of the flat
    parameters whose minimum, 0, is at `params_flat`), as forward-over-reverse
    differentiation: the directional derivative of ∇KL along v. F at the old policy equals
    the Fisher information E[∇log π ∇log πᵀ]."""
    _, hvp = jax.jvp(jax.grad(kl_fn), (params_flat,), (vector,))
    return hvp + damping * vector


def conjugate_gradient(matvec: Callable, b, iterations: int):
    """Eq. (4): approximately solve A x = b for a symmetric positive-definite A given only
    `matvec(v) = A v`, with a fixed number of conjugate-gradient iterations from x = 0.
    Steps after an exact solve (zero residual) leave x unchanged."""

    def step(carry, _):
        x, r, p, r_dot_r = carry
        a_p = matvec(p)
        p_a_p = p @ a_p
        alpha = jnp.where(p_a_p > 0, r_dot_r / jnp.where(p_a_p > 0, p_a_p, 1.0), 0.0)
        x = x + alpha * p
        r = r - alpha * a_p
        new_r_dot_r = r @ r
        beta = jnp.where(r_dot_r > 0, new_r_dot_r / jnp.where(r_dot_r > 0, r_dot_r, 1.0), 0.0)
        return (x, r, r + beta * p, new_r_dot_r), None

    x0 = jnp.zeros_like(b)
    (x, _, _, _), _ = jax.lax.scan(step, (x0, b, b, b @ b), None, length=iterations)
    return x


def policy_step(config: Config, policy: Policy, policy_params, obs, actions, log_prob_old, advantages):
    """Eqs. (3)–(8): one trust-region (or natural-gradient) step of the policy parameters on a
    batch. Returns (new policy parameters, info dict of scalars)."""
    params_flat, unravel = ravel_pytree(policy_params)
    old_dist = policy.apply(policy_params, obs)  # a constant: kl_fn differentiates `flat` only

    def loss_fn(flat):
        return surrogate(unravel(flat), policy, obs, actions, log_prob_old, advantages)

    def kl_fn(flat):
        return mean_kl(unravel(flat), policy, obs, old_dist)

    surrogate_old, g = jax.value_and_grad(loss_fn)(params_flat)
    fvp = functools.partial(fisher_vector_product, kl_fn, params_flat, damping=config.cg_damping)
    direction = conjugate_gradient(fvp, g, config.cg_iterations)  # s ≈ F⁻¹ g, eq. (4)
    s_f_s = direction @ fvp(direction)

    if config.natural_gradient:  # eq. (8)
        new_flat = params_flat + config.npg_step_size * direction
        info = {"line_search/accepted": jnp.float32(1.0), "line_search/step_fraction": jnp.float32(1.0)}
    else:  # eqs. (5)–(6)
        beta = jnp.sqrt(2.0 * config.max_kl / jnp.maximum(s_f_s, 1e-12))
        full_step = beta * direction
        fractions = config.backtrack_ratio ** jnp.arange(config.line_search_steps, dtype=jnp.float32)
        candidates = params_flat[None] + fractions[:, None] * full_step[None]
        surrogates = jax.vmap(loss_fn)(candidates)
        kls = jax.vmap(kl_fn)(candidates)
        ok = (kls <= config.max_kl) & (surrogates > surrogate_old) & jnp.isfinite(surrogates) & jnp.isfinite(kls)
        first = jnp.argmax(ok)  # the first (largest) qualifying step
        accepted = ok.any()
        new_flat = jnp.where(accepted, candidates[first], params_flat)
        info = {"line_search/accepted": accepted.astype(jnp.float32),
                "line_search/step_fraction": jnp.where(accepted, fractions[first], 0.0)}
    info["kl"] = kl_fn(new_flat)
    info["surrogate_improvement"] = loss_fn(new_flat) - surrogate_old
    info["policy_grad_norm"] = jnp.linalg.norm(g)
    info["natural_grad_sFs"] = s_f_s
    return unravel(new_flat), info


def value_loss(value_params, value_net: Value, obs, targets):
    """Eq. (7): ½ E[(V_φ(s_t) − R_t)²]."""
    return 0.5 * jnp.mean((value_net.apply(value_params, obs) - targets) ** 2)


# ----------------------------------------------------------------------------- init / update / train
def init(config: Config, key: jax.Array) -> TrainState:
    env = make_env(config.env, config.normalize_obs)
    policy, value_net = make_networks(config, env)
    key, policy_key, value_key, reset_key = jax.random.split(key, 4)
    env_state, obs = env.reset(reset_key, config.num_envs)
    policy_params = policy.init(policy_key, obs)
    value_params = value_net.init(value_key, obs)
    return TrainState(policy_params=policy_params, value_params=value_params,
                      value_opt_state=make_critic_optimizer(config).init(value_params), env_state=env_state,
                      obs=obs, rng=key, update_step=jnp.zeros((), jnp.int32))


def collect_rollout(config: Config, state: TrainState):
    """`num_steps` steps of the `num_envs` environments with the current policy, and the
    GAE advantages (normalized) and value targets of eq. (7).

    Returns (env_state, next obs, rng, trajectory [num_steps, num_envs], advantages, targets)."""
    env = make_env(config.env, config.normalize_obs)
    policy, value_net = make_networks(config, env)

    def env_step(carry, _):
        env_state, obs, rng = carry
        rng, action_key, step_key = jax.random.split(rng, 3)
        dist = policy.apply(state.policy_params, obs)
        action = dist.sample(seed=action_key)
        value = value_net.apply(state.value_params, obs)
        env_state, ts = env.step(step_key, env_state, action)
        transition = Transition(obs, action, dist.log_prob(action), value, ts.reward, ts.terminated,
                                ts.truncated, ts.final_obs, ts.episode_return, ts.episode_length)
        return (env_state, ts.obs, rng), transition

    (env_state, obs, rng), traj = jax.lax.scan(
        env_step, (state.env_state, state.obs, state.rng), None, length=config.num_steps)
    next_values = value_net.apply(state.value_params, traj.final_obs)
    advantages, targets = gae(traj.reward, traj.value, next_values, traj.terminated, traj.truncated,
                              config.gamma, config.gae_lambda)
    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    return env_state, obs, rng, traj, advantages, targets


def update(config: Config, state: TrainState) -> tuple[TrainState, dict]:
    """One TRPO iteration: rollout → GAE → trust-region policy step → value fit."""
    env = make_env(config.env, config.normalize_obs)
    policy, value_net = make_networks(config, env)
    env_state, obs, rng, traj, advantages, targets = collect_rollout(config, state)
    batch_size = config.num_envs * config.num_steps
    flat = jax.tree.map(lambda x: x.reshape((batch_size,) + x.shape[2:]), (traj, advantages, targets))
    batch, advantages, targets = flat

    # 1. Policy: eqs. (2)–(8) on the whole rollout.
    dist_old = policy.apply(state.policy_params, batch.obs)
    policy_params, info = policy_step(config, policy, state.policy_params, batch.obs, batch.action,
                                      batch.log_prob, advantages)

    # 2. Value function: epochs × minibatches of Adam on eq. (7).
    optimizer = make_critic_optimizer(config)
    minibatch_size = batch_size // config.critic_minibatches

    def sgd_step(carry, minibatch):
        params, opt_state = carry
        mb_obs, mb_targets = minibatch
        loss, grads = jax.value_and_grad(value_loss)(params, value_net, mb_obs, mb_targets)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    def epoch(carry, epoch_key):
        order = jax.random.permutation(epoch_key, batch_size)
        minibatches = jax.tree.map(
            lambda x: x[order].reshape((config.critic_minibatches, minibatch_size) + x.shape[1:]),
            (batch.obs, targets))
        return jax.lax.scan(sgd_step, carry, minibatches)

    rng, epoch_key = jax.random.split(rng)
    (value_params, value_opt_state), losses = jax.lax.scan(
        epoch, (state.value_params, state.value_opt_state), jax.random.split(epoch_key, config.critic_epochs))

    done = (traj.terminated | traj.truncated).astype(jnp.float32)
    episodes = done.sum()
    metrics = dict(info)
    metrics["loss/value"] = losses.mean()
    metrics["loss/entropy"] = jnp.mean(dist_old.entropy())
    metrics["train/episode_return"] = jnp.where(episodes > 0, (traj.episode_return * done).sum() / episodes, jnp.nan)
    metrics["train/episodes"] = episodes
    new_state = TrainState(policy_params=policy_params, value_params=value_params, value_opt_state=value_opt_state,
                           env_state=env_state, obs=obs, rng=rng, update_step=state.update_step + 1)
    return new_state, metrics


def act(config: Config, policy_params, obs: jax.Array, key: jax.Array, deterministic: bool = True) -> jax.Array:
    """The policy's action for a batch of observations (mode when deterministic)."""
    env = make_env(config.env, config.normalize_obs)
    dist = make_networks(config, env)[0].apply(policy_params, obs)
    return dist.mode() if deterministic else dist.sample(seed=key)


def evaluate(config: Config, state: TrainState) -> jax.Array:
    """Returns of `eval_episodes` deterministic-policy episodes, [eval_episodes]."""
    env = make_env(config.env, config.normalize_obs)
    key = jax.random.fold_in(state.rng, 0x5EED)  # independent of the training stream
    return run_episodes(env, functools.partial(act, config, state.policy_params), key, config.eval_episodes,
                        state.env_state.obs_stats)


def train(config: Config, key: jax.Array):
    """`init` + `lax.scan` of `update`, evaluating every `eval_every` updates and at the end.

    Returns (final state, per-update metrics [num_updates], eval returns [num_evals, eval_episodes]).
    """
    state = init(config, key)
    return train_loop(functools.partial(update, config), functools.partial(evaluate, config), state,
                      config.num_updates, config.eval_every)
