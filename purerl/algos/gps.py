"""Guided Policy Search (Levine & Koltun 2013, "Guided Policy Search", ICML; seeds 000/001,
ALGORITHMS.md §6) on gymnax Pendulum-v1, with iLQR (`purerl.ilqr`) on the environment's own
dynamics as the guide.

The model. The state is x = (θ, θ̇); the planner's control is v ∈ ℝ, the agent's action is
a = tanh(v) ∈ (−1, 1) (the environment maps it to the torque 2a). One step is gymnax's own
`Pendulum.step_env` (with transition gradients enabled), so f(x, v) is the true dynamics and
ℓ(x, v) = −r(x, 2 tanh v) is minus the true reward; `jax.jacfwd` / `jax.hessian` of these give the
iLQR derivatives. The planner alone adds a barrier β·max(|v| − v_max, 0)² (0 for |a| ≤ tanh 2 =
0.96 with the defaults) that keeps v where tanh still has a gradient; the costs and returns we
report are the environment's own. iLQR is local: from v = 0 it stalls at poor minima (1,150–1,300
from near-hanging starts, measured), so it is warm-started from the open-loop controls of an
energy-pumping controller (`pumping_controls`), which it then improves (≈ 370 → 343 from hanging).

Algorithm 1 of the paper, as implemented (n start states i, horizon T = 200):
    1. iLQR from n start states x_1^i drawn from the environment's reset distribution → guiding
       linear-Gaussian controllers (the Laplace approximation of p(τ) ∝ exp(−ℓ(τ)), section 3):
       (1) π_G^i(v_t|x_t) = N(v̂_t + K_t (x_t − x̂_t), σ_t²),  σ_t² = min(temperature / Q_uu,t, σ_max²)
    2. m samples τ from each π_G^i.
    3. θ* ← argmax_θ Σ_τ Σ_t log π_θ(v_t|o_t) on the guide samples (`bc_steps` Adam steps).
    4. Samples of π_θ* from the same start states join the sample set S.
    for k = 1 … num_updates (one `update` each):
    7. θ_k ← argmin_θ L_S(θ) from θ* (`gradient_steps` Adam steps; the paper uses LBFGS), with the
       paper's regularized importance-sampled objective (eq. 4 there, written as a cost):
       (2) log w_{s,t}(θ) = Σ_{t'≤t} log π_θ(v_{s,t'}|o_{s,t'}) − log q(τ_{s,1:t})
       (3) q(τ_{1:t}) = (1/N_i) Σ_j n_j Π_{t'≤t} q_j(v_{t'}|x_{t'})   (fused: every distribution j that
           sampled from start i — guide i and the kept policy snapshots — weighted by its count n_j)
       (4) L_S(θ) = (1/T) Σ_i Σ_t [ Σ_s softmax_s(log w_{s,t}) ℓ_{s,t} − w_r · logsumexp_s(log w_{s,t}) ]
           (Σ_s softmax · ℓ is the self-normalized IS estimate of E_πθ[ℓ_t]; the second term is
           −w_r log Z_t, the paper's regularizer; s runs over the samples from start i)
    8. `policy_samples` samples of π_θk from every start state join S (a ring of the last
       `sample_buffer` updates' samples, with the snapshot θ_k that drew them).
    10–12. If the on-policy mean cost of those samples is below θ*'s, θ* ← θ_k and w_r ← w_r/ρ;
       otherwise w_r ← w_r·ρ (bounded to [w_r_min, w_r_max]).
    The returned (evaluated) policy is θ*.

Deviations from the paper, stated: the value of π_θk and π_θ* (steps 10–11) is the Monte-Carlo
mean cost of their own samples, not an importance-sampled estimate; Adam replaces LBFGS; no
adaptive guiding samples (step 9); initial-state densities cancel in (2)–(3) because every
distribution sampled from start i starts at the same x_1^i. The policy is a Gaussian over v with a
state-independent σ (a = tanh v); its input is the observation (cos θ, sin θ, θ̇) scaled by the
observation bounds (1, 1, 8).

Budget accounting: one update simulates n·policy_samples·T steps (`env_steps_per_update`), which is
what `total_timesteps` counts; `init`'s model use (iLQR's rollouts, the n·m guide samples and the
first policy samples) is not counted (model-based: the dynamics serve as a model).

Defaults are our choice (the paper gives no Pendulum settings); see PRESETS.

Usage:
    purerl train gps --env Pendulum-v1 --num-seeds 4
    state, metrics, eval_returns = jax.jit(jax.vmap(gps.train, in_axes=(None, 0)))(gps.Config(), keys)
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

from purerl import envs, ilqr
from purerl.config import check_choice, check_int, check_range, check_sizes, static
from purerl.evaluation import evaluate as run_episodes
from purerl.evaluation import train_loop

ENVS = ("Pendulum-v1",)  # GPS needs the dynamics as a differentiable function of (θ, θ̇)
OBS_SCALE = np.array([1.0, 1.0, 8.0], np.float32)


# ----------------------------------------------------------------------------- config
@struct.dataclass
class Config:
    """GPS hyperparameters. Static fields fix the compiled program; floats can be swept with vmap."""

    env: str = static("Pendulum-v1")  # only "Pendulum-v1" (see ENVS)
    total_timesteps: int = static(32_000)  # simulated env steps of the policy samples, per seed
    num_guides: int = static(16)  # n: start states, one iLQR guiding controller each
    guide_samples: int = static(4)  # m: samples per guiding controller
    policy_samples: int = static(1)  # samples of π_θk per start state per update
    sample_buffer: int = static(4)  # updates whose policy samples (and snapshots) stay in S
    ilqr_iterations: int = static(100)  # max iLQR iterations per guide
    bc_steps: int = static(2000)  # Adam steps of step 3 (initial θ*)
    gradient_steps: int = static(50)  # Adam steps on eq. (4) per update
    hidden_sizes: tuple[int, ...] = static((64, 64))
    activation: str = static("tanh")
    eval_every: int = static(5)  # updates between deterministic evaluations
    eval_episodes: int = static(16)  # episodes per evaluation (random start states of the env)
    # -- sweepable floats
    learning_rate: float = 3e-3  # Adam step size (steps 3 and 7)
    guide_temperature: float = 1.0  # scales σ_t² = temperature / Q_uu of eq. (1)
    guide_max_std: float = 0.5  # σ_max of eq. (1), in units of v
    init_log_std: float = -1.0  # initial log σ of the policy (over v)
    reg_weight: float = 1e-2  # initial w_r of eq. (4)
    reg_factor: float = 10.0  # ρ of steps 10–12
    reg_min: float = 1e-6
    reg_max: float = 1e-1
    barrier_weight: float = 1.0  # β: the planner's barrier on |v| > v_max
    barrier_v_max: float = 2.0  # v_max

    def __post_init__(self):
        if self.env not in ENVS:
            raise ValueError(f"Config.env={self.env!r} is invalid: GPS plans with the true dynamics as a function "
                             f"of the state (θ, θ̇) and supports only {list(ENVS)}")
        check_choice(self, "env", ENVS)
        for name in ("total_timesteps", "num_guides", "guide_samples", "policy_samples", "sample_buffer",
                     "ilqr_iterations", "gradient_steps", "eval_every", "eval_episodes"):
            check_int(self, name)
        check_int(self, "bc_steps", low=0)
        check_sizes(self, "hidden_sizes")
        check_choice(self, "activation", ("tanh", "relu"))
        if self.total_timesteps < self.env_steps_per_update:
            raise ValueError(f"Config.total_timesteps={self.total_timesteps} is invalid: must be ≥ one update, "
                             f"num_guides*policy_samples*200={self.env_steps_per_update}")
        check_range(self, "learning_rate", 0.0, low_inclusive=False)
        check_range(self, "guide_temperature", 0.0, low_inclusive=False)
        check_range(self, "guide_max_std", 0.0, low_inclusive=False)
        check_range(self, "init_log_std", -10.0, 2.0)
        check_range(self, "reg_weight", 0.0)
        check_range(self, "reg_factor", 1.0)
        check_range(self, "reg_min", 0.0)
        check_range(self, "reg_max", 0.0)
        check_range(self, "barrier_weight", 0.0)
        check_range(self, "barrier_v_max", 0.0, low_inclusive=False)

    @property
    def horizon(self) -> int:
        return make_env(self.env).max_episode_steps

    @property
    def env_steps_per_update(self) -> int:
        return self.num_guides * self.policy_samples * self.horizon

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.env_steps_per_update

    @classmethod
    def for_env(cls, env: str, **overrides) -> "Config":
        return cls(**{"env": env, **PRESETS.get(env, {}), **overrides})


# Defaults chosen with a few 4-seed runs (2-core CPU under heavy shared load), final deterministic
# return on 16 unseen reset states per seed: 8 guides, 1,000 BC steps at lr 1e-3 → −125 and −1,157
# (2 seeds, 10 updates); 8 guides, 2,000 steps at 3e-3, σ_max 1 → −383, −322, −812, −712 (4 updates);
# 16 guides, 2,000 steps at 3e-3 → −138, −244, −149, −133 (2 updates). Seeds vary a lot (when iLQR's
# guides disagree, left vs right swings, their average fails); the benchmark's quick run (keys from
# PRNGKey(100), 1 update) gave −173 with 4 guides and −293 with 16, so more guides is not always better.
PRESETS: dict[str, dict[str, Any]] = {"Pendulum-v1": {}}


# ----------------------------------------------------------------------------- the model
@functools.lru_cache(maxsize=None)
def make_env(env_name: str) -> envs.Environment:
    return envs.make(env_name)


def pendulum_step(x: jax.Array, v: jax.Array):
    """(x′, ℓ) of one true Pendulum-v1 step: gymnax's `step_env` from (θ, θ̇) = x with action
    tanh(v) (torque 2 tanh v), gradients kept. ℓ = −reward."""
    from gymnax.environments.classic_control.pendulum import EnvState

    backend = make_env("Pendulum-v1").backend
    env, params = backend.env.with_transition_gradients(), backend.params
    state = EnvState(theta=x[0], theta_dot=x[1], last_u=jnp.zeros(()), time=0)
    torque = params.max_torque * jnp.tanh(v)
    _, next_state, reward, _, _ = env.step_env(jax.random.PRNGKey(0), state, torque, params)
    return jnp.stack([next_state.theta, next_state.theta_dot]), -reward


def dynamics(x, v):
    return pendulum_step(x, v)[0]


def cost(x, v):
    """ℓ(x, v) = −r: the environment's own cost."""
    return pendulum_step(x, v)[1]


def observation(x):
    """The environment's observation (cos θ, sin θ, θ̇) of the state x."""
    return jnp.stack([jnp.cos(x[..., 0]), jnp.sin(x[..., 0]), x[..., 1]], axis=-1)


def planner_cost(config: Config):
    def running(x, v):
        return cost(x, v) + config.barrier_weight * jnp.sum(jax.nn.relu(jnp.abs(v) - config.barrier_v_max) ** 2)
    return running


def zero_final_cost(x):
    return 0.0 * jnp.sum(x)


def pumping_controls(x0, horizon: int):
    """Open-loop v [T, 1] of an energy-pumping controller from x0 (iLQR's warm start): with
    E = ½θ̇² + 15(cos θ − 1) (0 upright at rest, dE/dt = 3·torque·θ̇), full torque along θ̇ while
    E < 0 (against it above), and a PD hold −(10θ + 2θ̇)/2 near the top."""
    def body(x, _):
        theta = (x[0] + jnp.pi) % (2 * jnp.pi) - jnp.pi
        energy = 0.5 * x[1] ** 2 + 15.0 * (jnp.cos(theta) - 1.0)
        pump = jnp.where(energy < 0, jnp.sign(x[1] + 1e-3), -jnp.sign(x[1])) * 2.0
        near = (jnp.cos(theta) > 0.85) & (jnp.abs(x[1]) < 4.0)
        v = jnp.where(near, jnp.arctanh(jnp.clip(-(10.0 * theta + 2.0 * x[1]) / 2.0, -0.96, 0.96)), pump)
        v = v[None]
        return dynamics(x, v), v
    _, vs = jax.lax.scan(body, x0, None, length=horizon)
    return vs


def plan(config: Config, x0):
    """iLQR from x0 with the planner's cost, warm-started by `pumping_controls`."""
    return ilqr.solve(dynamics, planner_cost(config), zero_final_cost, x0, pumping_controls(x0, config.horizon),
                      max_iterations=config.ilqr_iterations)


# ----------------------------------------------------------------------------- networks
class Policy(nn.Module):
    """π_θ(v|o) = N(μ_θ(o), σ²): MLP mean on o / (1, 1, 8), state-independent log σ."""

    hidden_sizes: Sequence[int]
    activation: str
    init_log_std: Any = -1.0

    @nn.compact
    def __call__(self, obs):
        act = nn.tanh if self.activation == "tanh" else nn.relu
        h = obs / OBS_SCALE
        for size in self.hidden_sizes:
            h = act(nn.Dense(size, kernel_init=nn.initializers.orthogonal(np.sqrt(2)))(h))
        mean = nn.Dense(1, kernel_init=nn.initializers.orthogonal(0.01))(h)
        log_std = self.param("log_std", nn.initializers.constant(self.init_log_std), (1,))
        return mean, jnp.broadcast_to(log_std, mean.shape)


def make_policy(config: Config) -> Policy:
    return Policy(tuple(config.hidden_sizes), config.activation, config.init_log_std)


def gaussian_log_prob(v, mean, log_std):
    """log N(v; mean, σ²) summed over the last axis."""
    return jnp.sum(-0.5 * ((v - mean) / jnp.exp(log_std)) ** 2 - log_std - 0.5 * jnp.log(2 * jnp.pi), axis=-1)


# ----------------------------------------------------------------------------- state
@struct.dataclass
class Guides:
    """The n linear-Gaussian guiding controllers of eq. (1)."""

    x0: jax.Array  # [n, 2] start states
    xs: jax.Array  # [n, T+1, 2] nominal states x̂
    us: jax.Array  # [n, T, 1] nominal controls v̂
    K: jax.Array  # [n, T, 1, 2]
    std: jax.Array  # [n, T, 1] σ_t
    cost: jax.Array  # [n] iLQR cost J (the planner's cost)
    iterations: jax.Array  # [n] iLQR iterations to converge


@struct.dataclass
class Samples:
    """Trajectories [n, S, T, ...] from the n start states."""

    x: jax.Array  # [n, S, T, 2] states x_t
    v: jax.Array  # [n, S, T, 1] controls
    cost: jax.Array  # [n, S, T] ℓ(x_t, v_t)


@struct.dataclass
class TrainState:
    params: Any  # θ* (the best policy so far: what is evaluated)
    best_cost: jax.Array  # its mean sample cost per trajectory
    reg_weight: jax.Array  # w_r
    guides: Guides
    guide_samples: Samples  # [n, m, T]
    policy_samples: Samples  # [n, B·P, T] ring of the last B updates' samples
    snapshots: Any  # the B policy parameters that drew them (stacked)
    snapshot_valid: jax.Array  # [B] bool
    slot: jax.Array  # int32, next ring slot
    rng: jax.Array
    update_step: jax.Array


# ----------------------------------------------------------------------------- sampling
def guide_log_prob(guides: Guides, i, x, v):
    """log π_G^i(v_t|x_t) of eq. (1) for one trajectory x, v [T, ...] of start i."""
    mean = guides.us[i] + jnp.einsum("tmn,tn->tm", guides.K[i], x - guides.xs[i, :-1])
    return gaussian_log_prob(v, mean, jnp.log(guides.std[i]))


def sample_guide(guides: Guides, i, key):
    """One trajectory of π_G^i from x_1^i."""
    T = guides.us.shape[1]

    def step(x, inputs):
        t, k = inputs
        mean = guides.us[i, t] + guides.K[i, t] @ (x - guides.xs[i, t])
        v = mean + guides.std[i, t] * jax.random.normal(k, (1,))
        x_next, c = pendulum_step(x, v)
        return x_next, (x, v, c)

    _, (x, v, c) = jax.lax.scan(step, guides.x0[i], (jnp.arange(T), jax.random.split(key, T)))
    return Samples(x=x, v=v, cost=c)


def sample_policy(policy: Policy, params, x0, key, horizon: int, deterministic: bool = False):
    """One trajectory of π_θ from x0."""
    def step(x, k):
        mean, log_std = policy.apply(params, observation(x))
        v = mean if deterministic else mean + jnp.exp(log_std) * jax.random.normal(k, mean.shape)
        x_next, c = pendulum_step(x, v)
        return x_next, (x, v, c)

    _, (x, v, c) = jax.lax.scan(step, x0, jax.random.split(key, horizon))
    return Samples(x=x, v=v, cost=c)


def make_guides(config: Config, key) -> Guides:
    """Step 1: n start states from the reset distribution (θ ~ U[−π, π], θ̇ ~ U[−1, 1]) and iLQR
    from each; σ_t of eq. (1) from the final Q_uu."""
    env = make_env(config.env)
    _, obs = env.reset(key, config.num_guides)
    x0 = jnp.stack([jnp.arctan2(obs[:, 1], obs[:, 0]), obs[:, 2]], axis=-1)
    solution = jax.vmap(functools.partial(plan, config))(x0)
    precision = jnp.maximum(solution.Q_uu[..., 0], 1e-8)  # [n, T, 1]
    std = jnp.minimum(jnp.sqrt(config.guide_temperature / precision), config.guide_max_std)
    return Guides(x0=x0, xs=solution.xs, us=solution.us, K=solution.K, std=std,
                  cost=solution.cost, iterations=solution.num_iterations)


# ----------------------------------------------------------------------------- objectives
def prefix_log_weights(log_pi, log_q_each, counts):
    """Eqs. (2)–(3). log_pi [S, T]: log π_θ(v_{s,t}|o_{s,t}); log_q_each [J, S, T]: log q_j(v_{s,t}|x_{s,t})
    for every sampling distribution j; counts [J]: n_j (0 drops j). Returns log w [S, T]."""
    cum_q = jnp.cumsum(log_q_each, axis=-1)
    log_n = jnp.where(counts > 0, jnp.log(jnp.maximum(counts, 1e-30)), -jnp.inf)
    log_q = jax.nn.logsumexp(cum_q + log_n[:, None, None], axis=0) - jnp.log(jnp.sum(counts))
    return jnp.cumsum(log_pi, axis=-1) - log_q


def gps_objective(log_w, costs, valid, reg_weight):
    """Eq. (4) for one start state: (1/T) Σ_t [Σ_s softmax_s(log w) ℓ − w_r logsumexp_s(log w)].
    log_w, costs [S, T]; valid [S] masks empty buffer slots."""
    log_w = jnp.where(valid[:, None], log_w, -jnp.inf)
    weights = jax.nn.softmax(log_w, axis=0)
    expected_cost = jnp.sum(jnp.where(valid[:, None], weights * costs, 0.0), axis=0)
    log_z = jax.nn.logsumexp(log_w, axis=0)
    return jnp.mean(expected_cost - reg_weight * log_z), (jnp.mean(expected_cost), jnp.mean(log_z))


def likelihood_loss(policy: Policy, params, samples: Samples):
    """Step 3: −mean log π_θ(v|o) over the guide samples."""
    mean, log_std = policy.apply(params, observation(samples.x))
    return -jnp.mean(gaussian_log_prob(samples.v, mean, log_std))


def _adam_steps(loss_fn, params, learning_rate, steps: int):
    opt = optax.adam(learning_rate)

    def step(carry, _):
        params, opt_state = carry
        (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), (loss, aux)

    (params, _), (losses, aux) = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
    return params, losses, aux


def _all_samples(state: TrainState):
    """Guide and policy samples per start state, [n, m + B·P, T], with a validity mask [n, m + B·P]."""
    n, m = state.guide_samples.v.shape[:2]
    P_total = state.policy_samples.v.shape[1]
    B = state.snapshot_valid.shape[0]
    samples = jax.tree.map(lambda a, b: jnp.concatenate([a, b], axis=1), state.guide_samples, state.policy_samples)
    policy_valid = jnp.repeat(state.snapshot_valid, P_total // B)
    valid = jnp.concatenate([jnp.ones(m, bool), policy_valid])
    return samples, jnp.broadcast_to(valid, (n, m + P_total))


def sampling_log_probs(config: Config, state: TrainState, samples: Samples):
    """log q_j(v|x) [n, J = 1 + B, S, T] under guide i (j = 0) and every snapshot, and counts [J]."""
    policy = make_policy(config)
    n = samples.v.shape[0]
    guide = jax.vmap(lambda i, x, v: jax.vmap(lambda xs, vs: guide_log_prob(state.guides, i, xs, vs))(x, v))(
        jnp.arange(n), samples.x, samples.v)  # [n, S, T]

    def under(params):
        mean, log_std = policy.apply(params, observation(samples.x))
        return gaussian_log_prob(samples.v, mean, log_std)

    snaps = jax.vmap(under)(state.snapshots)  # [B, n, S, T]
    log_q_each = jnp.concatenate([guide[:, None], jnp.moveaxis(snaps, 0, 1)], axis=1)
    per_snapshot = state.policy_samples.v.shape[1] // state.snapshot_valid.shape[0]
    counts = jnp.concatenate([jnp.array([config.guide_samples], jnp.float32),
                              state.snapshot_valid * jnp.float32(per_snapshot)])
    return log_q_each, counts


# ----------------------------------------------------------------------------- init / update / train
def _draw_policy_samples(config: Config, params, x0, key):
    policy = make_policy(config)
    keys = jax.random.split(key, (config.num_guides, config.policy_samples))
    return jax.vmap(lambda x, ks: jax.vmap(lambda k: sample_policy(policy, params, x, k, config.horizon))(ks))(
        x0, keys)


def _store(config: Config, state_parts, params, new: Samples):
    """Write the samples of snapshot `params` into ring slot `slot`."""
    policy_samples, snapshots, valid, slot = state_parts
    P = config.policy_samples
    start = slot * P
    policy_samples = jax.tree.map(lambda buf, x: jax.lax.dynamic_update_slice_in_dim(buf, x, start, axis=1),
                                  policy_samples, new)
    snapshots = jax.tree.map(lambda buf, p: buf.at[slot].set(p), snapshots, params)
    return policy_samples, snapshots, valid.at[slot].set(True), (slot + 1) % config.sample_buffer


def init(config: Config, key: jax.Array) -> TrainState:
    policy = make_policy(config)
    key, start_key, guide_key, init_key, sample_key = jax.random.split(key, 5)
    T, n, m, B, P = config.horizon, config.num_guides, config.guide_samples, config.sample_buffer, config.policy_samples
    # 1–2. guiding controllers and their samples
    guides = make_guides(config, start_key)
    keys = jax.random.split(guide_key, (n, m))
    guide_samples = jax.vmap(lambda i, ks: jax.vmap(lambda k: sample_guide(guides, i, k))(ks))(jnp.arange(n), keys)
    # 3. θ* by maximum likelihood on the guide samples
    params = policy.init(init_key, jnp.zeros((1, 3)))
    if config.bc_steps > 0:
        params, _, _ = _adam_steps(lambda p: (likelihood_loss(policy, p, guide_samples), ()), params,
                                   config.learning_rate, config.bc_steps)
    # 4. samples of π_θ* join S
    new = _draw_policy_samples(config, params, guides.x0, sample_key)
    empty = Samples(x=jnp.zeros((n, B * P, T, 2)), v=jnp.zeros((n, B * P, T, 1)), cost=jnp.zeros((n, B * P, T)))
    snapshots = jax.tree.map(lambda p: jnp.zeros((B,) + p.shape, p.dtype), params)
    policy_samples, snapshots, valid, slot = _store(config, (empty, snapshots, jnp.zeros(B, bool), 0), params, new)
    return TrainState(params=params, best_cost=jnp.mean(jnp.sum(new.cost, axis=-1)),
                      reg_weight=jnp.asarray(config.reg_weight, jnp.float32), guides=guides,
                      guide_samples=guide_samples, policy_samples=policy_samples, snapshots=snapshots,
                      snapshot_valid=valid, slot=jnp.asarray(slot, jnp.int32), rng=key,
                      update_step=jnp.zeros((), jnp.int32))


def update(config: Config, state: TrainState) -> tuple[TrainState, dict]:
    """One iteration of Algorithm 1 (steps 7–12)."""
    policy = make_policy(config)
    rng, sample_key = jax.random.split(state.rng)
    samples, valid = _all_samples(state)
    log_q_each, counts = sampling_log_probs(config, state, samples)  # fixed during the optimization

    def loss_fn(params):
        mean, log_std = policy.apply(params, observation(samples.x))
        log_pi = gaussian_log_prob(samples.v, mean, log_std)  # [n, S, T]
        log_w = jax.vmap(prefix_log_weights, in_axes=(0, 0, None))(log_pi, log_q_each, counts)
        losses, (expected, log_z) = jax.vmap(gps_objective, in_axes=(0, 0, 0, None))(
            log_w, samples.cost, valid, state.reg_weight)
        return jnp.sum(losses), (jnp.sum(expected), jnp.mean(log_z))

    # 7. θ_k from θ*
    params, losses, (expected, log_z) = _adam_steps(loss_fn, state.params, config.learning_rate,
                                                    config.gradient_steps)
    # 8. its samples join S
    new = _draw_policy_samples(config, params, state.guides.x0, sample_key)
    policy_samples, snapshots, snapshot_valid, slot = _store(
        config, (state.policy_samples, state.snapshots, state.snapshot_valid, state.slot), params, new)
    # 10–12. keep the better policy; adapt w_r
    new_cost = jnp.mean(jnp.sum(new.cost, axis=-1))
    better = new_cost < state.best_cost
    best_params = jax.tree.map(lambda a, b: jnp.where(better, a, b), params, state.params)
    reg = jnp.where(better, state.reg_weight / config.reg_factor, state.reg_weight * config.reg_factor)
    reg = jnp.clip(reg, config.reg_min, config.reg_max)
    new_state = state.replace(params=best_params, best_cost=jnp.minimum(new_cost, state.best_cost), reg_weight=reg,
                              policy_samples=policy_samples, snapshots=snapshots, snapshot_valid=snapshot_valid,
                              slot=slot, rng=rng, update_step=state.update_step + 1)
    metrics = {"loss/objective": losses[-1], "loss/is_cost": expected[-1], "loss/log_z": log_z[-1],
               "train/sample_return": -new_cost, "train/best_return": -new_state.best_cost,
               "train/accepted": better.astype(jnp.float32), "train/reg_weight": reg,
               "train/guide_return": -jnp.mean(jnp.sum(state.guide_samples.cost, axis=-1))}
    return new_state, metrics


def act(config: Config, params, obs: jax.Array, key: jax.Array, deterministic: bool = True) -> jax.Array:
    """a = tanh(v), v the policy's mean (or a sample)."""
    mean, log_std = make_policy(config).apply(params, obs)
    v = mean if deterministic else mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
    return jnp.tanh(v)


def evaluate(config: Config, state: TrainState) -> jax.Array:
    """Returns of `eval_episodes` deterministic episodes of θ* in the environment itself, from its
    random reset states (never the guides' start states)."""
    env = make_env(config.env)
    key = jax.random.fold_in(state.rng, 0x5EED)
    return run_episodes(env, functools.partial(act, config, state.params), key, config.eval_episodes)


def train(config: Config, key: jax.Array):
    """`init` + `lax.scan` of `update` with evaluations. Returns (state, metrics, eval returns)."""
    state = init(config, key)
    return train_loop(functools.partial(update, config), functools.partial(evaluate, config), state,
                      config.num_updates, config.eval_every)
