"""REINFORCE — Monte-Carlo policy gradient on whole episodes (Williams 1992, "Simple
statistical gradient-following algorithms for connectionist reinforcement learning",
Machine Learning 8; seed 003 algorithms 3.4 and 3.5).

One `update` = run N = `num_envs` complete episodes with the current policy, then one
gradient step. Each environment is reset and run for `max_episode_steps` steps; its
first episode is the sample, and every step after that episode's end is masked out
(m_t^n = 0). Equations (n indexes episodes, t time steps, H^n the episode's length):

    (1) R(τ^n) = Σ_{t<H^n} γ^t r_t^n                          full-trajectory return (alg. 3.4)
    (2) R̄_t^n = Σ_{t≤t'<H^n} γ^{t'−t} r_{t'}^n                reward-to-go (alg. 3.5, step 4)
    (3) G_t^n = R(τ^n) for every t   (returns="trajectory")
        G_t^n = R̄_t^n                (returns="reward_to_go")
    (4) b_t^n = 0                                      (baseline="none")
        b_t^n = Σ_{j≠n} m_t^j G_t^j / Σ_{j≠n} m_t^j    (baseline="mean": alg. 3.5 step 5, leave-one-out)
        b_t^n = V_φ(s_t^n)                              (baseline="value": learned state value)
    (5) L_π = −(1/N) Σ_n Σ_t m_t^n ⊥(G_t^n − b_t^n) log π_θ(a_t^n|s_t^n) − c_H · mean_valid H(π_θ(·|s_t^n))
        (the gradient of alg. 3.4 step 4 / alg. 3.5 step 6, plus an optional entropy bonus, 0 by default)
    (6) L_V = ½ mean_valid (V_φ(s_t^n) − G_t^n)²        (baseline="value" only)

The "mean" baseline is the leave-one-out mean (RLOO: Kool et al. 2019, "Buy 4 REINFORCE
samples, get a baseline for free!", ICLR workshop): episode n's baseline averages the
*other* episodes' returns, so it is independent of episode n's actions and the gradient
stays unbiased. Algorithm 3.5's plain mean (1/N) Σ_n R̄_t^n includes G_t^n itself, which
scales that term of the gradient by (1 − 1/N) — to 0 when only one episode is left.
The average is over the other episodes *still running* at step t (an ended episode has
no G_t; counting it as 0 would drag b_t towards 0 at late steps); b_t^n = 0 where no
other episode is running.

Time limits: an episode cut by the time limit is truncated, not terminal. With
baseline="value" its reward-to-go is bootstrapped, R̄_t += γ^{H−t} V_φ(s′_H) from the
true final observation (the critic exists); the pure Monte-Carlo options ("none",
"mean") use the plain finite-horizon sum, as algorithms 3.4/3.5 do.

Budget accounting: every update simulates `num_envs × max_episode_steps` environment
steps (the masked tails included: the program's shape is static), and that is what
`env_steps_per_update` and `total_timesteps` count. The number of steps that actually
entered the gradient is logged as `train/valid_steps`.

Gradient clipping (`max_grad_norm`, off by default): before each Adam step the policy's
gradient ∇_θ L_π and, separately, V_φ's gradient ∇_φ L_V are rescaled to global L2 norm
at most `max_grad_norm`, g ← g · min(1, max_grad_norm / ‖g‖₂); 0 disables it (the
algorithm as written). The unclipped ‖∇_θ L_π‖ is logged as `train/policy_grad_norm`.

Discrete actions use a categorical policy, continuous ones a diagonal Gaussian with a
state-independent log σ (actions in [−1, 1], rescaled by the environment). Adam,
learning rates and widths are our choice (the seed gives none); `PRESETS` hold the
settings we tuned for CartPole-v1 and Pendulum-v1 (see there).

Usage:
    purerl train reinforce --env CartPole-v1 --num-seeds 8
    purerl train reinforce --env CartPole-v1 --returns trajectory --baseline none   # algorithm 3.4
    state, metrics, eval_returns = jax.jit(jax.vmap(reinforce.train, in_axes=(None, 0)))(reinforce.Config(), keys)
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
from purerl.returns import reward_to_go

RETURNS = ("trajectory", "reward_to_go")
BASELINES = ("none", "mean", "value")


# ----------------------------------------------------------------------------- config
@struct.dataclass
class Config:
    """REINFORCE hyperparameters. Static fields fix the compiled program; float fields can
    be swept with `jax.vmap` (see `purerl.config.sweep_axes`)."""

    # -- static: environment and program shape
    env: str = static("CartPole-v1")  # environment name (purerl.envs.available())
    total_timesteps: int = static(1_000_000)  # simulated env steps per seed (num_envs × max_episode_steps per update)
    num_envs: int = static(16)  # N: complete episodes per update (one per parallel environment)
    returns: str = static("reward_to_go")  # eq. (3): "trajectory" R(τ) (alg. 3.4) or "reward_to_go" R̄_t (alg. 3.5)
    baseline: str = static("mean")  # eq. (4): "none", "mean" (alg. 3.5, leave-one-out) or "value" (learned V_φ)
    hidden_sizes: tuple[int, ...] = static((64, 64))  # MLP widths, policy and value alike
    activation: str = static("tanh")  # "tanh" or "relu"
    normalize_obs: bool = static(False)  # running observation normalization (environment option)
    eval_every: int = static(10)  # updates between deterministic evaluations
    eval_episodes: int = static(8)  # episodes per evaluation
    # -- sweepable floats
    learning_rate: float = 1e-3  # Adam step size η of the policy
    value_learning_rate: float = 1e-3  # Adam step size of V_φ (baseline="value")
    gamma: float = 0.99  # discount γ
    ent_coef: float = 0.0  # c_H of eq. (5); 0 is the algorithm as written
    init_log_std: float = 0.0  # initial log σ of the Gaussian policy (continuous actions)
    max_grad_norm: float = 0.0  # global-norm gradient clipping before Adam, policy and V_φ each; 0 disables

    def __post_init__(self):
        envs.check_name(self.env)
        for name in ("total_timesteps", "num_envs", "eval_every", "eval_episodes"):
            check_int(self, name)
        check_choice(self, "returns", RETURNS)
        check_choice(self, "baseline", BASELINES)
        if self.returns == "trajectory" and self.baseline == "value":
            raise ValueError("Config.baseline='value' is invalid with returns='trajectory': V(s_t) estimates the "
                             "reward-to-go, not the whole-trajectory return; use 'none' or 'mean'")
        check_sizes(self, "hidden_sizes")
        check_choice(self, "activation", ("tanh", "relu"))
        check_bool(self, "normalize_obs")
        if self.total_timesteps < self.env_steps_per_update:
            raise ValueError(f"Config.total_timesteps={self.total_timesteps} is invalid: must be ≥ one update, "
                             f"num_envs*max_episode_steps={self.env_steps_per_update}")
        check_range(self, "learning_rate", 0.0, low_inclusive=False)
        check_range(self, "value_learning_rate", 0.0, low_inclusive=False)
        check_range(self, "gamma", 0.0, 1.0)
        check_range(self, "ent_coef", 0.0)
        check_range(self, "init_log_std", -10.0, 2.0)
        check_range(self, "max_grad_norm", 0.0)

    @property
    def episode_steps(self) -> int:
        """T: steps simulated per environment per update (the environment's time limit)."""
        return make_env(self.env, self.normalize_obs).max_episode_steps

    @property
    def env_steps_per_update(self) -> int:
        return self.num_envs * self.episode_steps

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.env_steps_per_update

    @classmethod
    def for_env(cls, env: str, **overrides) -> "Config":
        """Defaults tuned for `env` (from `PRESETS`), then `overrides`."""
        return cls(**{"env": env, **PRESETS.get(env, {}), **overrides})


# Per-environment settings, tuned by us with a few 8-seed runs (no published REINFORCE
# settings exist for these gymnax tasks). Measured (8 seeds, mean final deterministic
# evaluation return, 2-core CPU shared with other jobs):
# * CartPole-v1: lr 1e-3 → 499.0 after 2 M simulated steps; lr 3e-3 → 499.9 after 600 k
#   (these two with the inclusive mean baseline). With the leave-one-out baseline, lr 3e-3:
#   500.0 / 500.0 / 498.2 / 499.0 / 500.0 after 320 k for five key sets (the learning test;
#   the inclusive mean gave 500.0 / 492.8 / 497.6 on the first three).
# * Pendulum-v1 (2 M steps, value baseline, γ 0.9, normalized observations): N = 16 →
#   −991, N = 4 → −878, N = 2 → −355 (still improving; more, smaller updates help most).
#   This run took about 4 min 50 s with compilation under a load average of 10.
#   Then γ 0.95, init log σ 0, value lr 1e-2 (no clipping): −159 / −237 / −174 / −285 for the
#   four key sets split(PRNGKey(k), 8), k = 0..3 (IQM ≈ −160); the mean was pulled down by
#   one seed in 8–16 that never took off (stayed near −1100 for all 2 M steps, its policy
#   gradient norm 10³–10⁴ with spikes to 1.6·10⁴). Global-norm clipping before Adam fixes
#   that seed: max_grad_norm 50 → −157.2 / −165.0 / −151.7 / −144.5 for k = 0..3 and −150.2
#   over 16 seeds split(PRNGKey(0), 16) (IQM −151.3, worst seed −202); max_grad_norm 200 →
#   −153.8 / −168.1 / −153.0 / −147.7, 16 seeds −147.3; 1000 → −252.5 on k = 3 (the stuck
#   seed is back). These were sweeps (max_grad_norm a vmapped array); the preset below run
#   as is (Config.for_env) gives −150.6 over 16 seeds split(PRNGKey(0), 16) (IQM −149.1,
#   worst −201) and −150.8 on k = 3 (float rounding differs between the two compiled
#   programs). Each 8-seed run takes about 1.5–2.5 min on a shared 2-core CPU.
PRESETS: dict[str, dict[str, Any]] = {
    "CartPole-v1": dict(learning_rate=3e-3, total_timesteps=800_000),
    "Pendulum-v1": dict(baseline="value", num_envs=2, gamma=0.95, learning_rate=1e-3, value_learning_rate=1e-2,
                        init_log_std=0.0, max_grad_norm=50.0, normalize_obs=True, total_timesteps=2_000_000,
                        eval_every=100),
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
    """π_θ(·|s): categorical over logits, or diagonal Gaussian with a state-independent log σ."""

    obs_ndim: int  # trailing observation dimensions, flattened before the MLP
    action_dim: int  # number of actions (discrete) or action dimension (continuous)
    discrete: bool
    hidden_sizes: Sequence[int]
    activation: str
    init_log_std: Any = 0.0

    @nn.compact
    def __call__(self, obs) -> distrax.Distribution:
        x = obs.reshape(obs.shape[: obs.ndim - self.obs_ndim] + (-1,))
        out = MLP(self.hidden_sizes, self.activation, self.action_dim, head_scale=0.01)(x)
        if self.discrete:
            return distrax.Categorical(logits=out)
        log_std = self.param("log_std", nn.initializers.constant(self.init_log_std), (self.action_dim,))
        return distrax.MultivariateNormalDiag(out, jnp.exp(log_std))


class Value(nn.Module):
    """V_φ(s), the learned baseline."""

    obs_ndim: int
    hidden_sizes: Sequence[int]
    activation: str

    @nn.compact
    def __call__(self, obs) -> jax.Array:
        x = obs.reshape(obs.shape[: obs.ndim - self.obs_ndim] + (-1,))
        return MLP(self.hidden_sizes, self.activation, 1, head_scale=1.0)(x)[..., 0]


@functools.lru_cache(maxsize=None)
def make_env(env_name: str, normalize_obs: bool) -> envs.Environment:
    return envs.make(env_name, normalize_obs=normalize_obs)


def make_networks(config: Config, env: envs.Environment) -> tuple[Policy, Value]:
    space = env.action_space
    policy = Policy(obs_ndim=len(env.obs_shape), action_dim=space.n if env.discrete else int(np.prod(space.shape)),
                    discrete=env.discrete, hidden_sizes=tuple(config.hidden_sizes), activation=config.activation,
                    init_log_std=config.init_log_std)
    value = Value(obs_ndim=len(env.obs_shape), hidden_sizes=tuple(config.hidden_sizes), activation=config.activation)
    return policy, value


def clip_by_global_norm(max_norm) -> optax.GradientTransformation:
    """Scale the gradient by min(1, max_norm / ‖g‖₂) (global norm over all leaves); a
    `max_norm` of 0 leaves it unchanged. Like `optax.clip_by_global_norm`, but `max_norm`
    may be a traced (swept) value and 0 switches it off."""

    def update_fn(updates, state, params=None):
        del params
        norm = optax.global_norm(updates)
        clip = (max_norm > 0) & (norm > max_norm)
        scale = jnp.where(clip, max_norm / jnp.where(clip, norm, 1.0), 1.0)
        return jax.tree.map(lambda g: g * scale.astype(g.dtype), updates), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)


def make_optimizers(config: Config) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
    """Adam for the policy (η = learning_rate) and for V_φ (value_learning_rate), each after
    global-norm clipping of its own gradient at `max_grad_norm` (0: no clipping)."""
    clip = clip_by_global_norm(config.max_grad_norm)
    return (optax.chain(clip, optax.adam(config.learning_rate)),
            optax.chain(clip, optax.adam(config.value_learning_rate)))


# ----------------------------------------------------------------------------- state
@struct.dataclass
class TrainState:
    params: Any  # {"policy": θ, "value": φ}
    opt_state: Any  # {"policy": ..., "value": ...}
    obs_stats: envs.RunningMeanStd  # observation-normalization statistics (every update starts from a fresh reset)
    rng: jax.Array
    update_step: jax.Array  # int32, updates done


@struct.dataclass
class Episodes:
    """N whole episodes, time-major [T, N]; `mask` is 1 on each environment's first episode."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    mask: jax.Array  # float32: step t belongs to episode n
    truncated: jax.Array  # bool: the episode was cut by the time limit at this step
    final_obs: jax.Array  # true next observation s′_t


# ----------------------------------------------------------------------------- returns and losses
def episode_returns(rewards, mask, gamma, kind: str, bootstrap=None):
    """G_t^n of eq. (3), [T, N]: the reward-to-go R̄_t (eq. 2) or the whole-trajectory
    return R(τ) (eq. 1) repeated over the episode's steps; 0 on masked steps.

    `bootstrap` [T, N], optional: added to the reward of each step before summing — pass
    γ·V(s′_t) on the step where an episode was truncated (0 elsewhere).
    """
    if bootstrap is not None:
        rewards = rewards + bootstrap
    to_go = reward_to_go(rewards, mask, gamma)
    if kind == "reward_to_go":
        return to_go
    return to_go[0][None, :] * mask  # R(τ) = R̄_0: every episode starts at t = 0


def baselines(returns, mask, kind: str, values=None):
    """b_t^n of eq. (4), [T, N]. "mean": the leave-one-out average of G_t^j over the other
    episodes j ≠ n still running at step t (0 where none is); "value": V_φ(s_t) (passed
    in); "none": 0. 0 on masked steps."""
    if kind == "none":
        return jnp.zeros_like(returns)
    if kind == "value":
        return values * mask
    total = (returns * mask).sum(axis=1, keepdims=True)  # Σ_j m_t^j G_t^j
    others = mask.sum(axis=1, keepdims=True) - mask  # Σ_{j≠n} m_t^j
    return (total - returns * mask) / jnp.maximum(others, 1.0) * mask


def policy_loss(policy_params, policy: Policy, obs, action, weights, mask, ent_coef):
    """Eq. (5): −(1/N) Σ_n Σ_t m·⊥w·log π(a|s) − c_H·mean entropy, with w = G − b.

    Its gradient is minus the estimator of algorithm 3.4 step 4 / 3.5 step 6."""
    dist = policy.apply(policy_params, obs)
    log_prob = dist.log_prob(action)
    num_episodes = mask.shape[1]
    pg_loss = -jnp.sum(mask * jax.lax.stop_gradient(weights) * log_prob) / num_episodes
    entropy = jnp.sum(mask * dist.entropy()) / jnp.maximum(mask.sum(), 1.0)
    return pg_loss - ent_coef * entropy, {"loss/policy": pg_loss, "loss/entropy": entropy}


def value_loss(value_params, value: Value, obs, targets, mask):
    """Eq. (6): ½ mean over valid steps of (V_φ(s) − G)²."""
    error = value.apply(value_params, obs) - targets
    return 0.5 * jnp.sum(mask * error**2) / jnp.maximum(mask.sum(), 1.0)


# ----------------------------------------------------------------------------- episodes
def collect_episodes(config: Config, policy_params, obs_stats, key: jax.Array):
    """Run `num_envs` environments from a fresh reset for `max_episode_steps` steps with
    π_θ; the first episode of each is the sample. Returns (obs_stats, Episodes)."""
    env = make_env(config.env, config.normalize_obs)
    policy, _ = make_networks(config, env)
    reset_key, run_key = jax.random.split(key)
    env_state, obs = env.reset(reset_key, config.num_envs, obs_stats)

    def env_step(carry, step_key):
        env_state, obs, alive = carry
        action_key, env_key = jax.random.split(step_key)
        action = policy.apply(policy_params, obs).sample(seed=action_key)
        env_state, ts = env.step(env_key, env_state, action)
        step = Episodes(obs, action, ts.reward, alive, ts.truncated & (alive > 0), ts.final_obs)
        alive = alive * (1.0 - ts.done.astype(jnp.float32))
        return (env_state, ts.obs, alive), step

    alive = jnp.ones(config.num_envs, jnp.float32)
    (env_state, _, _), episodes = jax.lax.scan(
        env_step, (env_state, obs, alive), jax.random.split(run_key, config.episode_steps))
    return env_state.obs_stats, episodes


def policy_weights(config: Config, params, episodes: Episodes):
    """(G, b) of eqs. (3)–(4) for a batch of episodes."""
    env = make_env(config.env, config.normalize_obs)
    _, value = make_networks(config, env)
    bootstrap, values = None, None
    if config.baseline == "value":
        values = value.apply(params["value"], episodes.obs)
        final_values = value.apply(params["value"], episodes.final_obs)
        bootstrap = config.gamma * final_values * episodes.truncated
    returns = episode_returns(episodes.reward, episodes.mask, config.gamma, config.returns, bootstrap)
    return returns, baselines(returns, episodes.mask, config.baseline, values)


# ----------------------------------------------------------------------------- init / update / train
def init(config: Config, key: jax.Array) -> TrainState:
    env = make_env(config.env, config.normalize_obs)
    policy, value = make_networks(config, env)
    policy_opt, value_opt = make_optimizers(config)
    key, policy_key, value_key = jax.random.split(key, 3)
    obs = jnp.zeros((config.num_envs,) + env.obs_shape, jnp.float32)  # shapes only: each update resets
    params = {"policy": policy.init(policy_key, obs), "value": value.init(value_key, obs)}
    opt_state = {"policy": policy_opt.init(params["policy"]), "value": value_opt.init(params["value"])}
    return TrainState(params=params, opt_state=opt_state, obs_stats=envs.RunningMeanStd.create(env.obs_shape),
                      rng=key, update_step=jnp.zeros((), jnp.int32))


def update(config: Config, state: TrainState) -> tuple[TrainState, dict]:
    """One REINFORCE iteration: N whole episodes → G, b → one gradient step (and one on V_φ)."""
    env = make_env(config.env, config.normalize_obs)
    policy, value = make_networks(config, env)
    policy_opt, value_opt = make_optimizers(config)
    params, opt_state = state.params, state.opt_state

    # 1. N complete episodes with the current policy (alg. 3.4/3.5 step 3).
    rng, episode_key = jax.random.split(state.rng)
    obs_stats, episodes = collect_episodes(config, params["policy"], state.obs_stats, episode_key)

    # 2. Returns and baseline, eqs. (1)–(4), from the parameters that collected the episodes.
    returns, baseline = policy_weights(config, params, episodes)

    # 3. One gradient step on eq. (5) (and on eq. (6) for the learned baseline).
    grads, aux = jax.grad(policy_loss, has_aux=True)(params["policy"], policy, episodes.obs, episodes.action,
                                                     returns - baseline, episodes.mask, config.ent_coef)
    updates, policy_opt_state = policy_opt.update(grads, opt_state["policy"], params["policy"])
    new_params = {"policy": optax.apply_updates(params["policy"], updates), "value": params["value"]}
    new_opt_state = {"policy": policy_opt_state, "value": opt_state["value"]}
    if config.baseline == "value":
        v_loss, v_grads = jax.value_and_grad(value_loss)(params["value"], value, episodes.obs, returns, episodes.mask)
        updates, value_opt_state = value_opt.update(v_grads, opt_state["value"], params["value"])
        new_params["value"] = optax.apply_updates(params["value"], updates)
        new_opt_state["value"] = value_opt_state
        aux["loss/value"] = v_loss

    metrics = dict(aux)
    metrics["train/policy_grad_norm"] = optax.global_norm(grads)  # before clipping
    metrics["train/episode_return"] = jnp.mean(jnp.sum(episodes.reward * episodes.mask, axis=0))
    metrics["train/episode_length"] = jnp.mean(jnp.sum(episodes.mask, axis=0))
    metrics["train/valid_steps"] = jnp.sum(episodes.mask)
    metrics["train/episodes"] = jnp.asarray(config.num_envs, jnp.float32)
    new_state = TrainState(params=new_params, opt_state=new_opt_state, obs_stats=obs_stats, rng=rng,
                           update_step=state.update_step + 1)
    return new_state, metrics


def act(config: Config, params, obs: jax.Array, key: jax.Array, deterministic: bool = True) -> jax.Array:
    """The policy's action for a batch of observations (mode when deterministic)."""
    env = make_env(config.env, config.normalize_obs)
    dist = make_networks(config, env)[0].apply(params["policy"], obs)
    return dist.mode() if deterministic else dist.sample(seed=key)


def evaluate(config: Config, state: TrainState) -> jax.Array:
    """Returns of `eval_episodes` deterministic-policy episodes, [eval_episodes]."""
    env = make_env(config.env, config.normalize_obs)
    key = jax.random.fold_in(state.rng, 0x5EED)  # independent of the training stream
    return run_episodes(env, functools.partial(act, config, state.params), key, config.eval_episodes,
                        state.obs_stats)


def train(config: Config, key: jax.Array):
    """`init` + `lax.scan` of `update`, evaluating every `eval_every` updates and at the end.

    Returns (final state, per-update metrics [num_updates], eval returns [num_evals, eval_episodes]).
    """
    state = init(config, key)
    return train_loop(functools.partial(update, config), functools.partial(evaluate, config), state,
                      config.num_updates, config.eval_every)
