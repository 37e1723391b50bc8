"""TD3+BC — TD3 with a behaviour-cloning term in the actor loss and normalized states
(Fujimoto & Gu 2021, "A Minimalist Approach to Offline Reinforcement Learning",
arXiv:2106.06860).

An offline algorithm (`OFFLINE = True`, see `purerl.algos`): TD3 (`purerl.algos.td3`: its
networks, clipped double-Q target with target-policy smoothing, critic loss and Polyak
step) trained on minibatches drawn uniformly from a fixed dataset. One `update` =
`steps_per_update` gradient steps; every one updates the twin critics, every
`policy_delay`-th one also the actor and the targets. Equations (s, s′ normalized by (5)):

    (1) target-policy smoothing: ã = clip(μ_φ′(s′) + clip(ε̃, −c, c), −1, 1),  ε̃ ~ N(0, σ̃²)
        (σ̃ = `policy_noise` 0.2, c = `noise_clip` 0.5)                          `td3.smoothed_target_action`
    (2) y = r + γ (1 − d) min_{i=1,2} Q_θ′_i(s′, ã)   (d = terminated: a truncated transition
        bootstraps from s′)                                                        `td3.critic_target`
    (3) L_Q = Σ_{i=1,2} E_D[(Q_θ_i(s, a) − ⊥y)²]                                   `td3.critic_loss`
    (4) the delayed actor loss:
            L_π(φ) = −λ E_D[Q_θ_1(s, π_φ(s))] + E_D[(π_φ(s) − a)²],
            λ = α / ⊥(E_D[|Q_θ_1(s, π_φ(s))|])   (α = `alpha` 2.5; ⊥: no gradient through λ)
        the squared error averaged over the batch and the action dimensions (the authors'
        `F.mse_loss`; the paper's (π(s) − a)² for a scalar action)             `actor_objective`
    (5) state normalization: s = (o − mean_D) / (std_D + 1e-3), the dataset's per-dimension
        statistics, kept in the `TrainState` and applied in `act` and `evaluate`
        (`datasets.observation_stats`, `datasets.normalize_obs`; `normalize_obs=False` turns it off)
    (6) Polyak targets after each actor step: θ′_i ← τ θ_i + (1 − τ) θ′_i,  φ′ ← τ φ + (1 − τ) φ′
        (`td3.polyak`)

Gradient steps are counted from 1 and the actor moves on the multiples of `policy_delay`, as
in TD3: an `update` is a scan of `steps_per_update / policy_delay` cycles, each
`policy_delay − 1` critic steps and then one critic-and-actor step on one minibatch (no
branch on a counter, so nothing is computed and thrown away under `vmap`).

Continuous actions only (a Box action space, actions in [−1, 1]^|A|). Defaults are the
paper's and the authors' code's (github.com/sfujim/TD3_BC): Adam 3e-4 for actor and critics, batch 256,
(256, 256) ReLU networks, γ 0.99, τ 0.005, σ̃ 0.2, c 0.5, delay 2, α 2.5, 1M gradient steps,
evaluations every 5 000 steps of 10 episodes. `PRESETS` holds smaller settings for purerl's
Pendulum-v1 datasets (see tests/algos/test_td3_bc.py). Evaluation is deterministic: π_φ(s).

Usage:
    purerl train td3_bc --env Pendulum-v1 --dataset data/pendulum-medium-replay --num-seeds 10
    state, metrics, eval_returns = jax.jit(jax.vmap(td3_bc.train, in_axes=(None, 0, None)))(
        td3_bc.Config.for_env("Pendulum-v1"), keys, dataset.transitions)
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from purerl import buffers, datasets, envs
from purerl.algos import bc, td3
from purerl.config import check_bool, check_int, check_range, check_sizes, static
from purerl.evaluation import evaluate as run_episodes
from purerl.evaluation import train_loop

OFFLINE = True


# ----------------------------------------------------------------------------- config
@struct.dataclass
class Config:
    """TD3+BC hyperparameters. Static fields fix the compiled program; float fields can be
    swept with `jax.vmap` (see `purerl.config.sweep_axes`)."""

    # -- static: environment, data and program shape
    env: str = static("Pendulum-v1")  # environment of the dataset and of evaluation (continuous actions)
    dataset: str = static("")  # path of the dataset the runner loads (`train` takes the data itself)
    num_gradient_steps: int = static(1_000_000)  # gradient steps per seed
    steps_per_update: int = static(1_000)  # gradient steps per `update` (a multiple of policy_delay)
    batch_size: int = static(256)  # transitions per gradient step
    hidden_sizes: tuple[int, ...] = static((256, 256))  # MLP widths (ReLU), actor and critics alike
    policy_delay: int = static(2)  # gradient steps per actor and target update, eqs. (4), (6)
    normalize_obs: bool = static(True)  # normalize states with the dataset's statistics, eq. (5)
    eval_every: int = static(5)  # updates between evaluations
    eval_episodes: int = static(10)  # deterministic episodes per evaluation
    # -- sweepable floats
    actor_lr: float = 3e-4  # Adam step size of the actor
    critic_lr: float = 3e-4  # Adam step size of the critics
    gamma: float = 0.99  # discount γ
    tau: float = 0.005  # Polyak rate τ of the targets, eq. (6)
    policy_noise: float = 0.2  # σ̃ of the target-policy smoothing noise, eq. (1), in [−1, 1] action units
    noise_clip: float = 0.5  # c, the smoothing noise is clipped to [−c, c], eq. (1)
    alpha: float = 2.5  # α of λ = α / mean|Q|, eq. (4): larger α weighs Q more against the BC term

    def __post_init__(self):
        envs.check_name(self.env)
        if make_env(self.env).discrete:
            raise ValueError(f"Config.env={self.env!r} is invalid: TD3+BC needs a continuous (Box) action space; "
                             "use bc, cql or iql for discrete actions")
        for name in ("num_gradient_steps", "steps_per_update", "batch_size", "policy_delay", "eval_every",
                     "eval_episodes"):
            check_int(self, name)
        check_sizes(self, "hidden_sizes")
        check_bool(self, "normalize_obs")
        if self.steps_per_update % self.policy_delay:
            raise ValueError(f"Config.steps_per_update={self.steps_per_update} is invalid: must be a multiple of "
                             f"policy_delay={self.policy_delay}")
        if self.num_gradient_steps < self.steps_per_update:
            raise ValueError(f"Config.num_gradient_steps={self.num_gradient_steps} is invalid: must be ≥ one update, "
                             f"steps_per_update={self.steps_per_update}")
        check_range(self, "actor_lr", 0.0, low_inclusive=False)
        check_range(self, "critic_lr", 0.0, low_inclusive=False)
        check_range(self, "gamma", 0.0, 1.0)
        check_range(self, "tau", 0.0, 1.0, low_inclusive=False)
        check_range(self, "policy_noise", 0.0)
        check_range(self, "noise_clip", 0.0)
        check_range(self, "alpha", 0.0)

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


# Per-environment settings. Pendulum-v1: (64, 64) networks, Adam 1e-3, 10 000 gradient steps,
# γ 0.98 (the RL Baselines3 Zoo's Pendulum discount, as td3's preset) and α = 5 instead of the
# paper's 2.5. On purerl's Pendulum datasets (tests/offline_data.py; 4 seeds, PRNGKey(0)) the
# final normalized scores were, for α = 2.5 / 5 / 10 / 30: expert 99.6 / 99.6 / 86.1 / 48.7,
# medium 49.8 / 65.3 / 67.8 / 20.9, medium-replay about 5 / 17.7 / 29.8 / 81.5 (BC: 97, 31, −12).
# α = 5 is the best across kinds; the narrow expert data wants a small α, the 2 500 poor
# transitions of medium-replay a large one (α is the paper's knob for how much to trust Q).
PRESETS: dict[str, dict[str, Any]] = {
    "Pendulum-v1": dict(num_gradient_steps=10_000, steps_per_update=1_000, hidden_sizes=(64, 64), actor_lr=1e-3,
                        critic_lr=1e-3, gamma=0.98, alpha=5.0, eval_every=2),
}


# ----------------------------------------------------------------------------- networks
@functools.lru_cache(maxsize=None)
def make_env(env_name: str) -> envs.Environment:
    return envs.make(env_name)


def make_networks(config: Config) -> tuple[td3.Actor, td3.Critic]:
    """TD3's deterministic tanh actor and its critic (two copies, parameters stacked on axis 0)."""
    env = make_env(config.env)
    obs_ndim, sizes = len(env.obs_shape), tuple(config.hidden_sizes)
    return (td3.Actor(obs_ndim, int(np.prod(env.action_space.shape)), sizes, "relu"),
            td3.Critic(obs_ndim, sizes, "relu"))


# ----------------------------------------------------------------------------- state
Policy = bc.Policy  # what `act` takes: the actor's parameters and the state normalization of eq. (5)


@struct.dataclass
class TrainState:
    actor_params: Any
    critic_params: Any  # both critics, stacked on axis 0
    actor_target: Any  # φ′
    critic_target: Any  # θ′_1, θ′_2
    actor_opt_state: Any
    critic_opt_state: Any
    obs_mean: jax.Array  # dataset statistics of eq. (5), fixed at `init`
    obs_std: jax.Array  # std + 1e-3
    rng: jax.Array
    update_step: jax.Array  # int32, updates done


def policy(state: TrainState) -> Policy:
    """The acting parameters of `state` (what `act` takes)."""
    return Policy(state.actor_params, state.obs_mean, state.obs_std)


# ----------------------------------------------------------------------------- losses
def bc_lambda(q: jax.Array, alpha) -> jax.Array:
    """Eq. (4)'s λ = α / ⊥(mean |Q|): the Q term's scale, with no gradient through it."""
    return alpha / jax.lax.stop_gradient(jnp.mean(jnp.abs(q)))


def actor_objective(q: jax.Array, pi: jax.Array, action: jax.Array, alpha) -> tuple[jax.Array, dict]:
    """Eq. (4) from its terms: −λ·mean Q_1(s, π(s)) + mean (π(s) − a)², for `q` [B],
    `pi` and `action` [B, |A|]."""
    lam = bc_lambda(q, alpha)
    bc_term = jnp.mean((pi - action) ** 2)
    return -lam * jnp.mean(q) + bc_term, {"lambda": lam, "bc_mse": bc_term, "q_pi": jnp.mean(q)}


def actor_loss(actor_params, actor: td3.Actor, critic: td3.Critic, critic_params, obs: jax.Array,
               action: jax.Array, alpha) -> tuple[jax.Array, dict]:
    """Eq. (4) for parameters `actor_params` on normalized states `obs` and dataset actions."""
    pi = actor.apply(actor_params, obs)
    return actor_objective(td3.first_q(critic, critic_params, obs, pi), pi, action, alpha)


# ----------------------------------------------------------------------------- init / update / train
def init(config: Config, key: jax.Array, dataset: buffers.Transition) -> TrainState:
    """Fresh actor, twin critics and their targets, and the dataset's observation statistics
    (eq. 5)."""
    env = make_env(config.env)
    if tuple(dataset.obs.shape[1:]) != tuple(env.obs_shape):
        raise ValueError(f"dataset observations of shape {tuple(dataset.obs.shape[1:])} do not match "
                         f"Config.env={config.env!r}'s {tuple(env.obs_shape)}")
    if tuple(dataset.action.shape[1:]) != tuple(env.action_space.shape):
        raise ValueError(f"dataset actions of shape {tuple(dataset.action.shape[1:])} do not match "
                         f"Config.env={config.env!r}'s continuous action space {env.action_space}")
    actor, critic = make_networks(config)
    key, actor_key, critic_key = jax.random.split(key, 3)
    obs_mean, obs_std = datasets.observation_stats(dataset.obs, config.normalize_obs)
    obs = jnp.zeros((1,) + dataset.obs.shape[1:], jnp.float32)
    action = jnp.zeros((1,) + dataset.action.shape[1:], jnp.float32)
    actor_params = actor.init(actor_key, obs)
    critic_params = jax.vmap(critic.init, in_axes=(0, None, None))(jax.random.split(critic_key, 2), obs, action)
    return TrainState(
        actor_params=actor_params, critic_params=critic_params, actor_target=actor_params,
        critic_target=critic_params, actor_opt_state=optax.adam(config.actor_lr).init(actor_params),
        critic_opt_state=optax.adam(config.critic_lr).init(critic_params), obs_mean=obs_mean, obs_std=obs_std,
        rng=key, update_step=jnp.zeros((), jnp.int32))


def gradient_step(config: Config, state: TrainState, batch: buffers.Transition, noise_key: jax.Array,
                  update_actor: bool) -> tuple[TrainState, dict]:
    """One critic step (eqs. 1–3) on `batch` (raw observations); with `update_actor` (a
    Python bool) also one actor step (eq. 4) on the same batch and one Polyak step (eq. 6)."""
    actor, critic = make_networks(config)
    batch = batch.replace(obs=datasets.normalize_obs(batch.obs, state.obs_mean, state.obs_std),
                          next_obs=datasets.normalize_obs(batch.next_obs, state.obs_mean, state.obs_std))

    noise = config.policy_noise * jax.random.normal(noise_key, batch.action.shape)
    target = td3.critic_target(actor, critic, state.actor_target, state.critic_target, batch, noise, config.gamma,
                               config.noise_clip)
    (q_loss, q), grads = jax.value_and_grad(td3.critic_loss, has_aux=True)(state.critic_params, critic, batch, target)
    critic_opt = optax.adam(config.critic_lr)
    updates, critic_opt_state = critic_opt.update(grads, state.critic_opt_state, state.critic_params)
    state = state.replace(critic_params=optax.apply_updates(state.critic_params, updates),
                          critic_opt_state=critic_opt_state)
    metrics = {"loss/critic": q_loss, "q": jnp.mean(q)}
    if not update_actor:
        return state, metrics

    (pi_loss, aux), grads = jax.value_and_grad(actor_loss, has_aux=True)(
        state.actor_params, actor, critic, state.critic_params, batch.obs, batch.action, config.alpha)
    actor_opt = optax.adam(config.actor_lr)
    updates, actor_opt_state = actor_opt.update(grads, state.actor_opt_state, state.actor_params)
    actor_params = optax.apply_updates(state.actor_params, updates)
    state = state.replace(actor_params=actor_params, actor_opt_state=actor_opt_state,
                          actor_target=td3.polyak(state.actor_target, actor_params, config.tau),
                          critic_target=td3.polyak(state.critic_target, state.critic_params, config.tau))
    return state, {**metrics, "loss/actor": pi_loss, **aux}


def update(config: Config, state: TrainState, dataset: buffers.Transition) -> tuple[TrainState, dict]:
    """`steps_per_update` gradient steps, each on a fresh minibatch of `dataset`: a scan of
    cycles of `policy_delay − 1` critic steps and one critic-and-actor step. Metrics are means
    over the steps (the actor's over its steps)."""
    rng, update_key = jax.random.split(state.rng)

    def step(state, key, update_actor):
        sample_key, noise_key = jax.random.split(key)
        batch = datasets.sample(dataset, sample_key, config.batch_size)
        return gradient_step(config, state, batch, noise_key, update_actor)

    def cycle(state, keys):
        state, critic_metrics = jax.lax.scan(functools.partial(step, update_actor=False), state, keys[:-1])
        state, metrics = step(state, keys[-1], update_actor=True)
        for name, value in critic_metrics.items():  # the cycle's critic metrics: means over its steps
            metrics[name] = (jnp.sum(value) + metrics[name]) / config.policy_delay
        return state, metrics

    cycles = config.steps_per_update // config.policy_delay
    keys = jax.random.split(update_key, cycles * config.policy_delay).reshape(cycles, config.policy_delay, -1)
    state, metrics = jax.lax.scan(cycle, state, keys)
    return state.replace(rng=rng, update_step=state.update_step + 1), jax.tree.map(jnp.mean, metrics)


def act(config: Config, params: Policy, obs: jax.Array, key: jax.Array, deterministic: bool = True) -> jax.Array:
    """π_φ(s) for each raw observation in `obs` (batched), normalized by eq. (5); `params` is
    `policy(state)`. The policy is deterministic: `key` and `deterministic` change nothing
    (offline, there is no exploration)."""
    actor, _ = make_networks(config)
    return actor.apply(params.params, datasets.normalize_obs(obs, params.obs_mean, params.obs_std))


def evaluate(config: Config, state: TrainState) -> jax.Array:
    """Returns of `eval_episodes` deterministic-policy episodes in `config.env`, [eval_episodes]."""
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
