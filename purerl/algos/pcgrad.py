"""PCGrad — gradient surgery for multi-task learning (Yu, Kumar, Gupta, Levine, Hausman and
Finn 2020, "Gradient Surgery for Multi-Task Learning", NeurIPS, arXiv:2001.06782, algorithm 1),
as an optax gradient transformation, and a multi-task actor-critic that trains one shared
policy on several task variants of an environment with it.

Gradient surgery. Given the gradients g_1 … g_T of T task losses with respect to the SAME
(shared) parameters θ — dot products taken over the whole flattened parameter pytree:

    (1) conflict:    tasks i and j conflict when g_i·g_j < 0   (cos φ_ij < 0)
    (2) projection:  for each task i, for the other tasks j in a random order,
                         if g_i^PC·g_j < 0:   g_i^PC ← g_i^PC − (g_i^PC·g_j / ‖g_j‖²) g_j
                     starting from g_i^PC = g_i; g_j is always task j's ORIGINAL gradient
    (3) update:      Δθ = Σ_i g_i^PC      (reduce="sum"; "mean" divides by T)

Each projection step (2) leaves g_i^PC·g_j = 0 for the j it projected on. For two tasks that
is the whole story (g_1^PC·g_2 ≥ 0 and g_2^PC·g_1 ≥ 0); for T > 2 a later projection can bring
back a conflict with an earlier j (the paper's guarantee is only for the last step), which is
why the order is random. Without any conflict (2) is the identity and (3) the plain sum.

Every g_i^PC is a linear combination of the original gradients, g_i^PC = Σ_k A_ik g_k, so
`project_conflicting` runs eq. (2) on the T × T Gram matrix G_jk = g_j·g_k (g_i^PC·g_j =
(A G)_ij), then forms A·g leaf by leaf: the cost is one pass over the parameters for G and
one for the combination, whatever T.

Multi-task loop. Task k is `envs.make(env, goal=goals[k], reward="dense")` — on the point mass
the reward is −‖p − goal_k‖ — with its rewards multiplied by `reward_scales[k]` for learning
(the paper's setting of tasks whose gradients differ in magnitude as well as direction).
One policy π_θ(a|s, e_k) and one value V_θ(s, e_k) serve every task; they see the observation
concatenated with the one-hot task id e_k. One `update` (A2C-style, one gradient step):

    (4) roll out `num_steps` steps of `num_envs` environments of every task (envs persist
        across updates; truncation bootstraps from the true final observation)
    (5) Â_t, V̂_t = GAE(λ) of task k's scaled rewards (`purerl.returns.gae`)
    (6) L_k(θ) = −mean_t,n[⊥Â log π_θ(a|s, e_k)] + c_V ½ mean (V_θ(s, e_k) − V̂)² − c_H mean H(π_θ)
    (7) g_k = ∇_θ L_k, stacked [T, ...];  Δ = PCGrad(g) (eqs. 1–3)  or  Σ_k g_k  (surgery="sum")
    (8) θ ← Adam(clip_by_global_norm(Δ))

Metrics: `pcgrad/cosine` (mean pairwise cosine of the task gradients, before surgery),
`pcgrad/conflict_fraction` (fraction of pairs with g_i·g_j < 0), per-task training returns.
`evaluate` returns `eval_episodes` deterministic episodes of each task, task-major and flat
([T · eval_episodes], unscaled returns; `task_returns` reshapes them to [..., T, eval_episodes]).

The actor-critic, Adam and the defaults are our choice (the paper's RL experiments use SAC on
Meta-World); the comment above `Config` says what was measured.

Usage:
    purerl train pcgrad --env point/goal
    tx = optax.chain(pcgrad.pcgrad(), optax.adam(1e-3))    # updates: per-task gradients [T, ...]
    state, metrics, eval_returns = jax.jit(jax.vmap(pcgrad.train, in_axes=(None, 0)))(pcgrad.Config(), keys)
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

from purerl import envs
from purerl.config import check_choice, check_int, check_range, check_sizes, static
from purerl.evaluation import evaluate as run_episodes
from purerl.evaluation import train_loop
from purerl.returns import gae

SURGERIES = ("pcgrad", "sum")
REDUCTIONS = ("sum", "mean")


# ----------------------------------------------------------------------------- gradient surgery
def _gram(task_grads) -> jax.Array:
    """G_jk = g_j·g_k over the whole pytree, [T, T] (leaves [T, ...])."""
    leaves = jax.tree.leaves(task_grads)
    if not leaves:
        raise ValueError("project_conflicting: task_grads has no leaves")
    num_tasks = leaves[0].shape[0]
    gram = jnp.zeros((num_tasks, num_tasks), jnp.float32)
    for leaf in leaves:
        flat = leaf.reshape(num_tasks, -1).astype(jnp.float32)
        gram = gram + flat @ flat.T
    return gram


def projection_coefficients(gram: jax.Array, key: jax.Array) -> jax.Array:
    """A [T, T] with g_i^PC = Σ_k A_ik g_k: eq. (2) on the Gram matrix G_jk = g_j·g_k.

    Task i visits the tasks in the order `jax.random.permutation(fold_in(key, i), T)`,
    skipping itself; a step with g_i^PC·g_j = (A G)_ij < 0 subtracts (A G)_ij / G_jj from A_ij."""
    num_tasks = gram.shape[0]

    def one_task(i):
        order = jax.random.permutation(jax.random.fold_in(key, i), num_tasks)

        def visit(step, row):
            j = order[step]
            dot = row @ gram[:, j]  # g_i^PC · g_j
            conflict = (dot < 0) & (j != i)
            shift = jnp.where(conflict, dot / jnp.where(conflict, gram[j, j], 1.0), 0.0)
            return row.at[j].add(-shift)

        return jax.lax.fori_loop(0, num_tasks, visit, jax.nn.one_hot(i, num_tasks, dtype=gram.dtype))

    return jax.vmap(one_task)(jnp.arange(num_tasks))


def project_conflicting(task_grads, key: jax.Array):
    """Eq. (2): the projected per-task gradients g_i^PC, a pytree like `task_grads` (leaves
    [T, ...], a leading task axis). Pure and jittable; `key` draws each task's order."""
    coefficients = projection_coefficients(_gram(task_grads), key)
    return jax.tree.map(lambda g: jnp.tensordot(coefficients, g.astype(jnp.float32), axes=1).astype(g.dtype),
                        task_grads)


def gradient_statistics(task_grads) -> dict[str, jax.Array]:
    """Mean pairwise cosine of the task gradients and the fraction of conflicting pairs (eq. 1),
    over the pairs i < j (NaN for a single task)."""
    gram = _gram(task_grads)
    num_tasks = gram.shape[0]
    norms = jnp.sqrt(jnp.maximum(jnp.diag(gram), 1e-30))
    cosine = gram / (norms[:, None] * norms[None, :])
    upper = np.triu(np.ones((num_tasks, num_tasks), bool), k=1)
    pairs = max(int(upper.sum()), 1) if num_tasks > 1 else np.nan
    return {"pcgrad/cosine": jnp.sum(jnp.where(upper, cosine, 0.0)) / pairs,
            "pcgrad/conflict_fraction": jnp.sum(jnp.where(upper, gram < 0, False)) / pairs}


def _reduce(task_grads, reduce: str):
    return jax.tree.map(lambda g: g.sum(0) if reduce == "sum" else g.mean(0), task_grads)


class PCGradState(NamedTuple):
    key: jax.Array  # split at every update for the projection orders


def pcgrad(seed: int | jax.Array = 0, reduce: str = "sum") -> optax.GradientTransformation:
    """PCGrad as an optax transformation: `update(task_grads, state, params=None)` takes per-task
    gradients (leaves [T, ...]), projects them (eq. 2, a fresh key each call) and returns their
    sum (eq. 3; `reduce="mean"` divides by T) — leaves without the task axis, so it chains:
    `optax.chain(pcgrad(), optax.adam(lr))`. `seed`: an int or a PRNG key."""
    if reduce not in REDUCTIONS:
        raise ValueError(f"pcgrad: reduce={reduce!r} is invalid; allowed: {list(REDUCTIONS)}")

    def init(params):
        del params
        return PCGradState(key=jax.random.PRNGKey(seed) if isinstance(seed, (int, np.integer)) else seed)

    def update(updates, state, params=None):
        del params
        key, projection_key = jax.random.split(state.key)
        return _reduce(project_conflicting(updates, projection_key), reduce), PCGradState(key=key)

    return optax.GradientTransformation(init, update)


def summed(reduce: str = "sum") -> optax.GradientTransformation:
    """The baseline with `pcgrad`'s interface: per-task gradients [T, ...] → their plain sum (or mean)."""
    if reduce not in REDUCTIONS:
        raise ValueError(f"summed: reduce={reduce!r} is invalid; allowed: {list(REDUCTIONS)}")

    def update(updates, state, params=None):
        del params
        return _reduce(updates, reduce), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


# ----------------------------------------------------------------------------- config
# Measured (4 seeds vmapped, 150 updates = 48,000 env steps per seed, goals (±0.7, 0),
# learning_rate 3e-3, gamma 0.95, max_grad_norm 100): both surgeries learn both tasks (mean final
# return per task −3 to −9 against −35 for a still policy; a seed that overshoots to the wall
# stays near −15), PCGrad 0.2–1.3 ahead in total on three key sets — within the seed spread. With
# reward_scales (1, 10) or (1, 100) no consistent difference either. PCGrad is ahead where the
# shared network is too small to give each task its own features: hidden_sizes (8,) with
# reward_scales (1, 100), 16 seeds, by 7.40–10.57 in summed final return on six key sets — all of
# it on the scale-1 task, which the sum's gradients first drive down. The sum catches up by 96,000
# steps; with 16 hidden units the gap is 0.4–0.5 (see tests/algos/test_pcgrad.py).
@struct.dataclass
class Config:
    """Multi-task actor-critic hyperparameters. Static fields fix the compiled program; float
    fields can be swept with `jax.vmap` (see `purerl.config.sweep_axes`)."""

    # -- static: tasks and program shape
    env: str = static("point/goal")  # environment name; each task is make(env, goal=g, reward="dense")
    goals: tuple[tuple[float, float], ...] = static(((0.7, 0.0), (-0.7, 0.0)))  # one (x, y) goal per task
    reward_scales: tuple[float, ...] = static(())  # per-task reward multiplier for learning; () = all 1
    max_steps: int = static(50)  # episode length (time limit) of every task
    surgery: str = static("pcgrad")  # eq. (7): "pcgrad" (eqs. 1–3) or "sum" (plain summed gradients)
    total_timesteps: int = static(400_000)  # environment steps per seed, all tasks together
    num_envs: int = static(16)  # parallel environments PER TASK
    num_steps: int = static(10)  # rollout length per environment per update
    hidden_sizes: tuple[int, ...] = static((64, 64))  # MLP widths, policy and value alike
    activation: str = static("tanh")  # "tanh" or "relu"
    eval_every: int = static(50)  # updates between deterministic evaluations
    eval_episodes_per_task: int = static(4)  # deterministic episodes per task per evaluation
    # -- sweepable floats
    learning_rate: float = 1e-3  # Adam step size
    gamma: float = 0.99  # discount γ
    gae_lambda: float = 0.95  # GAE λ
    vf_coef: float = 0.5  # c_V of eq. (6)
    ent_coef: float = 0.0  # c_H of eq. (6)
    max_grad_norm: float = 1.0  # global-norm clipping of the combined gradient
    init_log_std: float = -0.5  # initial log σ of the Gaussian policy

    def __post_init__(self):
        envs.check_name(self.env)
        if not self.env.startswith("point/goal"):
            raise ValueError(f"Config.env={self.env!r} is invalid: must be a goal-conditioned point mass "
                             "('point/goal' or 'point/goal-walls'), whose tasks differ by goal")
        goals = self.goals
        if (not isinstance(goals, tuple) or len(goals) < 2
                or not all(isinstance(g, tuple) and len(g) == 2 and all(np.isfinite(float(v)) for v in g)
                           for g in goals)):
            raise ValueError(f"Config.goals={goals!r} is invalid: must be a tuple of at least two (x, y) tuples")
        scales = self.reward_scales
        if (not isinstance(scales, tuple) or (scales and len(scales) != len(goals))
                or not all(isinstance(s, (int, float)) and np.isfinite(s) and s > 0 for s in scales)):
            raise ValueError(f"Config.reward_scales={scales!r} is invalid: must be () or one positive number "
                             f"per goal ({len(goals)})")
        check_choice(self, "surgery", SURGERIES)
        for name in ("max_steps", "total_timesteps", "num_envs", "num_steps", "eval_every",
                     "eval_episodes_per_task"):
            check_int(self, name)
        check_sizes(self, "hidden_sizes")
        check_choice(self, "activation", ("tanh", "relu"))
        if self.total_timesteps < self.env_steps_per_update:
            raise ValueError(f"Config.total_timesteps={self.total_timesteps} is invalid: must be ≥ one update, "
                             f"tasks*num_envs*num_steps={self.env_steps_per_update}")
        check_range(self, "learning_rate", 0.0, low_inclusive=False)
        check_range(self, "gamma", 0.0, 1.0)
        check_range(self, "gae_lambda", 0.0, 1.0)
        check_range(self, "vf_coef", 0.0)
        check_range(self, "ent_coef", 0.0)
        check_range(self, "max_grad_norm", 0.0, low_inclusive=False)
        check_range(self, "init_log_std", -10.0, 2.0)

    @property
    def num_tasks(self) -> int:
        return len(self.goals)

    @property
    def task_reward_scales(self) -> tuple[float, ...]:
        return tuple(float(s) for s in self.reward_scales) or (1.0,) * self.num_tasks

    @property
    def env_steps_per_update(self) -> int:
        return self.num_tasks * self.num_envs * self.num_steps

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.env_steps_per_update

    @property
    def eval_episodes(self) -> int:
        """Episodes per evaluation, all tasks together (the length of `evaluate`'s result)."""
        return self.num_tasks * self.eval_episodes_per_task

    @classmethod
    def for_env(cls, env: str, **overrides) -> "Config":
        """Defaults tuned for `env` (from `PRESETS`), then `overrides`."""
        return cls(**{"env": env, **PRESETS.get(env, {}), **overrides})


# The settings of the measurements above (tests/algos/test_pcgrad.py's learning test).
PRESETS: dict[str, dict[str, Any]] = {
    "point/goal": dict(total_timesteps=48_000, learning_rate=3e-3, gamma=0.95, max_grad_norm=100.0, eval_every=50),
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
    """π_θ(·|s, e_k): diagonal Gaussian, mean from an MLP, state-independent log σ."""

    action_dim: int
    hidden_sizes: Sequence[int]
    activation: str
    init_log_std: Any = -0.5

    @nn.compact
    def __call__(self, x) -> distrax.Distribution:
        mean = MLP(self.hidden_sizes, self.activation, self.action_dim, head_scale=0.01)(x)
        log_std = self.param("log_std", nn.initializers.constant(self.init_log_std), (self.action_dim,))
        return distrax.MultivariateNormalDiag(mean, jnp.exp(log_std))


class Value(nn.Module):
    """V_θ(s, e_k)."""

    hidden_sizes: Sequence[int]
    activation: str

    @nn.compact
    def __call__(self, x) -> jax.Array:
        return MLP(self.hidden_sizes, self.activation, 1, head_scale=1.0)(x)[..., 0]


@functools.lru_cache(maxsize=None)
def make_env(env_name: str, goal: tuple[float, float], max_steps: int) -> envs.Environment:
    return envs.make(env_name, goal=goal, reward="dense", max_steps=max_steps)


def task_envs(config: Config) -> tuple[envs.Environment, ...]:
    """One environment per task (goal)."""
    return tuple(make_env(config.env, tuple(float(v) for v in g), config.max_steps) for g in config.goals)


def task_inputs(obs: jax.Array, task, num_tasks: int) -> jax.Array:
    """The networks' input: the observation [..., 2] concatenated with the one-hot task id."""
    one_hot = jnp.broadcast_to(jax.nn.one_hot(task, num_tasks), obs.shape[:-1] + (num_tasks,))
    return jnp.concatenate([obs, one_hot], axis=-1)


def make_networks(config: Config) -> tuple[Policy, Value]:
    action_dim = int(np.prod(task_envs(config)[0].action_space.shape))
    return (Policy(action_dim, tuple(config.hidden_sizes), config.activation, config.init_log_std),
            Value(tuple(config.hidden_sizes), config.activation))


def make_optimizer(config: Config, key: jax.Array | int = 0) -> optax.GradientTransformation:
    """Eqs. (7)–(8) for one network: surgery (or sum) on its per-task gradients, clipping, Adam.
    `key` seeds PCGrad's projection orders (used by `init` only; the state carries it afterwards)."""
    surgery = pcgrad(key) if config.surgery == "pcgrad" else summed()
    return optax.chain(surgery, optax.clip_by_global_norm(config.max_grad_norm), optax.adam(config.learning_rate))


# ----------------------------------------------------------------------------- state
@struct.dataclass
class TrainState:
    params: Any  # {"policy": θ_π, "value": θ_V}, shared by every task
    opt_state: Any
    env_states: tuple  # one envs.EnvState per task, [num_envs]
    obs: jax.Array  # [T, num_envs, obs_dim] observations the agent acts on next
    rng: jax.Array
    update_step: jax.Array  # int32


@struct.dataclass
class Rollout:
    """Time-major, task-second: [num_steps, T, num_envs, ...]."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array  # scaled by reward_scales (what the agent learns from)
    terminated: jax.Array
    truncated: jax.Array
    final_obs: jax.Array
    episode_return: jax.Array  # unscaled return of the episode that ended at this step (0 elsewhere)
    done: jax.Array


# ----------------------------------------------------------------------------- losses
def task_loss(params, policy: Policy, value: Value, batch: dict, task, num_tasks: int, vf_coef, ent_coef):
    """Eq. (6) for one task: its rollout `batch` (leaves [num_steps, num_envs, ...]) with
    advantages and value targets from eq. (5)."""
    x = task_inputs(batch["obs"], task, num_tasks)
    dist = policy.apply(params["policy"], x)
    pg_loss = -jnp.mean(jax.lax.stop_gradient(batch["advantages"]) * dist.log_prob(batch["action"]))
    v_loss = 0.5 * jnp.mean((value.apply(params["value"], x) - jax.lax.stop_gradient(batch["targets"])) ** 2)
    entropy = jnp.mean(dist.entropy())
    return pg_loss + vf_coef * v_loss - ent_coef * entropy, {"loss/policy": pg_loss, "loss/value": v_loss,
                                                             "loss/entropy": entropy}


# ----------------------------------------------------------------------------- rollout
def collect_rollout(config: Config, params, env_states: tuple, obs: jax.Array, key: jax.Array):
    """Eq. (4): `num_steps` steps of every task's environments. Returns (env_states, obs, Rollout)."""
    task_env = task_envs(config)
    policy, _ = make_networks(config)
    scales = jnp.asarray(config.task_reward_scales, jnp.float32)[:, None]
    tasks = jnp.arange(config.num_tasks)[:, None]  # [T, 1]: task k's id for its num_envs envs

    def env_step(carry, step_key):
        env_states, obs = carry
        act_key, env_key = jax.random.split(step_key)
        action = policy.apply(params["policy"], task_inputs(obs, tasks, config.num_tasks)).sample(seed=act_key)
        steps = [env.step(k, s, a) for env, k, s, a in
                 zip(task_env, jax.random.split(env_key, config.num_tasks), env_states, action)]
        env_states = tuple(s for s, _ in steps)
        ts = jax.tree.map(lambda *leaves: jnp.stack(leaves), *[t for _, t in steps])  # leaves [T, N, ...]
        step = Rollout(obs=obs, action=action, reward=ts.reward * scales, terminated=ts.terminated,
                       truncated=ts.truncated, final_obs=ts.final_obs, episode_return=ts.episode_return,
                       done=ts.done)
        return (env_states, ts.obs), step

    (env_states, obs), rollout = jax.lax.scan(env_step, (env_states, obs), jax.random.split(key, config.num_steps))
    return env_states, obs, rollout


# ----------------------------------------------------------------------------- init / update / train
def init(config: Config, key: jax.Array) -> TrainState:
    policy, value = make_networks(config)
    key, policy_key, value_key, surgery_key, *env_keys = jax.random.split(key, 4 + config.num_tasks)
    x = task_inputs(jnp.zeros((1, 2), jnp.float32), 0, config.num_tasks)
    params = {"policy": policy.init(policy_key, x), "value": value.init(value_key, x)}
    policy_key_pc, value_key_pc = jax.random.split(surgery_key)
    opt_state = {"policy": make_optimizer(config, policy_key_pc).init(params["policy"]),
                 "value": make_optimizer(config, value_key_pc).init(params["value"])}
    resets = [env.reset(k, config.num_envs) for env, k in zip(task_envs(config), env_keys)]
    return TrainState(params=params, opt_state=opt_state, env_states=tuple(s for s, _ in resets),
                      obs=jnp.stack([o for _, o in resets]), rng=key, update_step=jnp.zeros((), jnp.int32))


def update(config: Config, state: TrainState) -> tuple[TrainState, dict]:
    """One iteration: roll out every task, GAE, per-task gradients, surgery (or sum), Adam."""
    policy, value = make_networks(config)
    rng, rollout_key = jax.random.split(state.rng)
    params = state.params
    env_states, obs, rollout = collect_rollout(config, params, state.env_states, state.obs, rollout_key)

    # Eq. (5): GAE per task (the arrays are [S, T, N]; gae scans over S elementwise).
    tasks = jnp.arange(config.num_tasks)[None, :, None]
    values = value.apply(params["value"], task_inputs(rollout.obs, tasks, config.num_tasks))
    next_values = value.apply(params["value"], task_inputs(rollout.final_obs, tasks, config.num_tasks))
    advantages, targets = gae(rollout.reward, values, next_values, rollout.terminated, rollout.truncated,
                              config.gamma, config.gae_lambda)

    # Eqs. (6)–(7): one gradient per task, stacked [T, ...], then surgery and Adam (eq. 8).
    batch = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), {"obs": rollout.obs, "action": rollout.action,
                                                            "advantages": advantages, "targets": targets})
    def loss(params, batch, task):
        return task_loss(params, policy, value, batch, task, config.num_tasks, config.vf_coef, config.ent_coef)

    task_grads, aux = jax.vmap(jax.grad(loss, has_aux=True), in_axes=(None, 0, 0))(
        params, batch, jnp.arange(config.num_tasks))
    optimizer = make_optimizer(config)
    new_params, opt_state = {}, {}
    for net in ("policy", "value"):  # surgery on each network's gradients, as the paper does for actor and critic
        updates, opt_state[net] = optimizer.update(task_grads[net], state.opt_state[net], params[net])
        new_params[net] = optax.apply_updates(params[net], updates)
    params = new_params

    metrics = {name: jnp.mean(v) for name, v in aux.items()}
    metrics.update(gradient_statistics(task_grads["policy"]))
    metrics.update({k.replace("pcgrad/", "pcgrad/value_"): v
                    for k, v in gradient_statistics(task_grads["value"]).items()})
    finished = rollout.done.astype(jnp.float32)
    per_task = jnp.sum(rollout.episode_return * finished, axis=(0, 2)) / jnp.maximum(finished.sum(axis=(0, 2)), 1.0)
    for k in range(config.num_tasks):
        metrics[f"train/episode_return_task{k}"] = jnp.where(finished[:, k].sum() > 0, per_task[k], jnp.nan)
    metrics["train/episode_return"] = jnp.sum(rollout.episode_return * finished) / jnp.maximum(finished.sum(), 1.0)
    new_state = TrainState(params=params, opt_state=opt_state, env_states=env_states, obs=obs, rng=rng,
                           update_step=state.update_step + 1)
    return new_state, metrics


def act(config: Config, params, obs: jax.Array, key: jax.Array, task, deterministic: bool = True) -> jax.Array:
    """The shared policy's action for observations of task `task` (its mean when deterministic)."""
    dist = make_networks(config)[0].apply(params["policy"], task_inputs(obs, task, config.num_tasks))
    return dist.mode() if deterministic else dist.sample(seed=key)


def _act_on_task(config, params, task, obs, key):
    return act(config, params, obs, key, task)


def evaluate(config: Config, state: TrainState) -> jax.Array:
    """Unscaled returns of `eval_episodes_per_task` deterministic episodes of every task,
    task-major, [T · eval_episodes_per_task] (see `task_returns`)."""
    key = jax.random.fold_in(state.rng, 0x5EED)  # independent of the training stream
    returns = [run_episodes(env, functools.partial(_act_on_task, config, state.params, k), jax.random.fold_in(key, k),
                            config.eval_episodes_per_task)
               for k, env in enumerate(task_envs(config))]
    return jnp.concatenate(returns)


def task_returns(config: Config, eval_returns) -> jax.Array:
    """`evaluate`'s returns [..., T · E] as [..., T, E]."""
    eval_returns = jnp.asarray(eval_returns)
    return eval_returns.reshape(eval_returns.shape[:-1] + (config.num_tasks, config.eval_episodes_per_task))


def train(config: Config, key: jax.Array):
    """`init` + `lax.scan` of `update`, evaluating every `eval_every` updates and at the end.

    Returns (final state, per-update metrics [num_updates], eval returns [num_evals, T · eval_episodes_per_task]).
    """
    state = init(config, key)
    return train_loop(functools.partial(update, config), functools.partial(evaluate, config), state,
                      config.num_updates, config.eval_every)
