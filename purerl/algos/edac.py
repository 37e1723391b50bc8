"""SAC-N and EDAC — offline soft actor-critic with an ensemble of N critics, pessimistic through
the minimum over all N, and EDAC's ensemble-diversity penalty on the critics' action-gradients
(An et al. 2021, "Uncertainty-Based Offline Reinforcement Learning with Diversified Q-Ensemble",
arXiv:2110.01548). `eta = 0` is SAC-N; `eta > 0` is EDAC, which needs far fewer critics.

One `update` = `steps_per_update` gradient steps, each on `batch_size` transitions drawn
uniformly from the dataset: temperature, then actor, then critics, then the Polyak target update
(the order of the authors' code and of CORL, which report it works better than SAC's
critic-first order). With ã ~ π_φ(·|s) by reparameterization and a′ ~ π_φ(·|s′):

    (1) y = r + γ (1 − d) (min_{i=1…N} Q_θ̄i(s′, a′) − α log π_φ(a′|s′))
        d = 1 only on a true terminal: a time-limit truncation bootstraps from s′.
    (2) J_TD(θ) = Σ_{i=1…N} E_D[(Q_θi(s, a) − ⊥y)²]   (no ½, as in the paper and CORL, so η
        keeps their scale: twice `sac.critic_loss_from_q`)
    (3) J_ES(θ) = E_D[ 1/(N−1) Σ_{i≠j} ⟨ĝ_i, ĝ_j⟩ ],  ĝ_i = g_i / (‖g_i‖ + 1e-10),
        g_i = ∇_a Q_θi(s, a) at the dataset's (s, a)
        The paper's ensemble similarity (eq. 5 of arXiv:2110.01548): the sum runs over ordered
        pairs i ≠ j (each unordered pair twice), divided by N − 1, averaged over the batch; the
        gradients are normalized to unit length as in the authors' code (snu-mllab/EDAC) and
        CORL's edac.py, so each term is the cosine similarity of two critics' action-gradients.
        It lies in [−N/(N−1), N] (= (‖Σ_i ĝ_i‖² − N)/(N − 1)): N when all N gradients point the
        same way, its least when they sum to zero.
    (4) J_Q(θ) = J_TD(θ) + η · J_ES(θ)      (η = 0: SAC-N)
    (5) J_π(φ) = E_D[α log π_φ(ã|s) − min_{i=1…N} Q_θi(s, ã)]      (the minimum, as CORL)
    (6) J(α) = E_D[α · ⊥(−log π_φ(ã|s) − H_target)],  H_target = −|A|,  α = exp(log α)
    (7) θ̄_i ← τ θ_i + (1 − τ) θ̄_i after every gradient step
    π_φ is SAC's tanh-Gaussian (`sac.Actor`, `sac.tanh_gaussian`); actions live in [−1, 1]^|A|.

Continuous actions only. Eqs. (1), (5), (6) are SAC's and are SAC's functions (`sac.compute_target`,
`sac.actor_loss`, `sac.temperature_loss`) applied to an N-member ensemble critic.

Defaults are CORL's edac.py (Tarasov et al. 2022, the paper's settings): N = 10 critics, η = 1
(the paper uses 1 on halfcheetah and 5 on most other tasks), Adam lr 3e-4 for actor, critics and
temperature, batch 256, γ 0.99, τ 0.005, initial α = 1, MLPs (256, 256, 256), 3 000 epochs of
1 000 gradient steps, 10 evaluation episodes every 5 epochs. Differences from CORL: SAC's actor
(one output layer for μ and log σ, log σ clipped to [−20, 2], Flax's default initialization;
CORL clips to [−5, 2] and initializes the last layers near zero) and SAC's temperature loss
(α, not log α, multiplies the entropy gap). No observation or reward normalization (as CORL).
`PRESETS` holds purerl's tuned settings (Pendulum-v1: 5 critics of (64, 64), γ 0.9, 5 000 gradient
steps; see tests/algos/test_edac.py for what they reach).

Usage:
    purerl train edac --dataset PATH --num-seeds 10
    state, metrics, eval_returns = jax.jit(jax.vmap(edac.train, in_axes=(None, 0, None)))(
        edac.Config.for_env("Pendulum-v1"), keys, dataset.transitions)
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

from purerl import buffers, datasets, envs
from purerl.algos import sac
from purerl.config import check_bool, check_int, check_range, check_sizes, static
from purerl.evaluation import evaluate as run_episodes
from purerl.evaluation import train_loop

OFFLINE = True
GRADIENT_NORM_EPS = 1e-10  # ĝ = g / (‖g‖ + ε) in eq. (3), as the authors' code and CORL


# ----------------------------------------------------------------------------- config
@struct.dataclass
class Config:
    """SAC-N / EDAC hyperparameters. Static fields fix the compiled program; float fields can be
    swept with `jax.vmap` (see `purerl.config.sweep_axes`)."""

    # -- static: environment, data and program shape
    env: str = static("Pendulum-v1")  # evaluation environment (continuous actions only)
    dataset: str = static("")  # path of the dataset the runner loads (`train` takes the data itself)
    num_gradient_steps: int = static(3_000_000)  # gradient steps per seed
    steps_per_update: int = static(1_000)  # gradient steps per `update` (CORL's epoch)
    batch_size: int = static(256)  # transitions per gradient step
    hidden_sizes: tuple[int, ...] = static((256, 256, 256))  # MLP widths (ReLU), actor and every critic
    num_critics: int = static(10)  # N, the ensemble size
    autotune_alpha: bool = static(True)  # learn α by eq. (6); False: α = `alpha` throughout
    eval_every: int = static(5)  # updates between evaluations
    eval_episodes: int = static(10)  # deterministic episodes per evaluation
    # -- sweepable floats
    learning_rate: float = 3e-4  # Adam step size (actor, critics and temperature)
    gamma: float = 0.99  # discount γ
    tau: float = 0.005  # Polyak rate τ of the target critics, eq. (7)
    alpha: float = 1.0  # temperature α: its initial value when autotuned, else fixed
    target_entropy_scale: float = 1.0  # H_target = −scale·|A|, eq. (6)
    eta: float = 1.0  # η, weight of the ensemble-diversity penalty, eq. (4); 0 = SAC-N

    def __post_init__(self):
        envs.check_name(self.env)
        if sac.make_env(self.env, False).discrete:
            raise ValueError(f"Config.env={self.env!r} is invalid: EDAC / SAC-N needs a continuous (Box) action "
                             "space (the diversity penalty differentiates Q with respect to the action); use cql "
                             "or iql for discrete actions")
        if not isinstance(self.dataset, str):
            raise ValueError(f"Config.dataset={self.dataset!r} is invalid: must be a path (a string)")
        for name in ("num_gradient_steps", "steps_per_update", "batch_size", "eval_every", "eval_episodes"):
            check_int(self, name)
        check_int(self, "num_critics", low=2)
        check_sizes(self, "hidden_sizes")
        check_bool(self, "autotune_alpha")
        if self.num_gradient_steps < self.steps_per_update:
            raise ValueError(f"Config.num_gradient_steps={self.num_gradient_steps} is invalid: must be ≥ one "
                             f"update, steps_per_update={self.steps_per_update}")
        check_range(self, "learning_rate", 0.0, low_inclusive=False)
        check_range(self, "gamma", 0.0, 1.0)
        check_range(self, "tau", 0.0, 1.0, low_inclusive=False)
        check_range(self, "alpha", 0.0, low_inclusive=False)
        check_range(self, "target_entropy_scale", -10.0, 10.0)
        check_range(self, "eta", 0.0)

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


# Per-environment settings (see tests/algos/test_edac.py for what they reach).
# Pendulum-v1: γ = 0.9 (RL Baselines3 Zoo's PPO entry for Pendulum-v1); with γ = 0.99 SAC-N / EDAC on
# the 2 500-transition medium-replay data first improves, then settles on spinning the pendulum at full
# speed, which the early replay data is full of. Its action is 1-D, so the diversity penalty is inert
# there (see `diversity_from_gradients`): EDAC is SAC-N on Pendulum-v1.
PRESETS: dict[str, dict[str, Any]] = {
    "Pendulum-v1": dict(num_gradient_steps=5_000, steps_per_update=1_000, num_critics=5, hidden_sizes=(64, 64),
                        batch_size=64, learning_rate=3e-3, gamma=0.9, eval_every=5, eval_episodes=8),
}


# ----------------------------------------------------------------------------- networks
class EnsembleCritic(nn.Module):
    """N independent critics Q_θi(s, a) → [N, ...] (an `nn.vmap` ensemble of `sac.MLP`s, like
    `sac.TwinCritic` with N members). The inputs are shared by every member, or, with
    `per_member=True`, carry a leading axis of N: member i reads row i (so ∇_a of Σ_i Q_i gives
    each member's own action-gradient, eq. 3)."""

    obs_ndim: int
    num_critics: int
    hidden_sizes: Sequence[int]

    @nn.compact
    def __call__(self, obs, action, per_member: bool = False):
        x = obs.reshape(obs.shape[: obs.ndim - self.obs_ndim] + (-1,))
        x = jnp.concatenate([x, action], axis=-1)
        ensemble = nn.vmap(sac.MLP, variable_axes={"params": 0}, split_rngs={"params": True},
                           in_axes=0 if per_member else None, out_axes=0, axis_size=self.num_critics)
        return ensemble(self.hidden_sizes, 1)(x)[..., 0]


def make_networks(config: Config, env: envs.Environment) -> sac.Networks:
    """SAC's actor and an N-critic ensemble, as `sac.Networks` (so SAC's losses apply)."""
    action_dim = int(np.prod(env.action_space.shape))
    sizes = tuple(config.hidden_sizes)
    obs_ndim = len(env.obs_shape)
    return sac.Networks(actor=sac.Actor(obs_ndim, action_dim, False, sizes),
                        critic=EnsembleCritic(obs_ndim, config.num_critics, sizes),
                        discrete=False, action_dim=action_dim, target_entropy=-float(action_dim))


def _networks(config: Config) -> tuple[envs.Environment, sac.Networks]:
    env = sac.make_env(config.env, False)
    return env, make_networks(config, env)


# ----------------------------------------------------------------------------- state
@struct.dataclass
class TrainState:
    agent: sac.Agent  # actor, N critics and their targets, log α, optimizer states
    rng: jax.Array
    update_step: jax.Array  # int32, updates done


# ----------------------------------------------------------------------------- losses
def ensemble_td_loss(q, target) -> jax.Array:
    """Eq. (2): Σ_i E[(Q_i − ⊥y)²] over the N critics; `q` is [N, B] (twice SAC's ½-weighted eq. 2)."""
    return 2.0 * sac.critic_loss_from_q(q, target)


def diversity_from_gradients(grads) -> jax.Array:
    """Eq. (3) from the action-gradients `grads` [N, B, |A|]: the batch mean of
    1/(N−1) Σ_{i≠j} ⟨ĝ_i, ĝ_j⟩ with ĝ = g / (‖g‖ + 1e-10), computed as
    (‖Σ_i ĝ_i‖² − Σ_i ‖ĝ_i‖²) / (N − 1) (the same sum, in O(N)).

    With a one-dimensional action every ĝ_i is ±1 (the sign of ∂Q_i/∂a), so the penalty is
    piecewise constant in the critics' parameters: its gradient vanishes and EDAC's update is
    SAC-N's (as in the authors' code and CORL's, which normalize the same way)."""
    num_critics = grads.shape[0]
    squared = jnp.sum(grads ** 2, axis=-1, keepdims=True)
    # ‖g‖ with a zero (not NaN) derivative at g = 0, where a ReLU critic can be flat in a
    norm = jnp.where(squared > 0.0, jnp.sqrt(jnp.where(squared > 0.0, squared, 1.0)), 0.0)
    unit = grads / (norm + GRADIENT_NORM_EPS)
    total = jnp.sum(jnp.sum(unit, axis=0) ** 2, axis=-1)  # Σ_i Σ_j ⟨ĝ_i, ĝ_j⟩, [B]
    own = jnp.sum(unit ** 2, axis=(0, 2))  # Σ_i ⟨ĝ_i, ĝ_i⟩, [B]
    return jnp.mean(total - own) / (num_critics - 1)


def action_gradients(critic: EnsembleCritic, critic_params, obs, action) -> jax.Array:
    """g_i = ∇_a Q_θi(s, a) for every critic and transition, [N, B, |A|]."""
    n = critic.num_critics
    obs_n = jnp.broadcast_to(obs, (n,) + obs.shape)
    action_n = jnp.broadcast_to(action, (n,) + action.shape)
    return jax.grad(lambda a: jnp.sum(critic.apply(critic_params, obs_n, a, per_member=True)))(action_n)


def critic_loss(critic_params, networks: sac.Networks, batch: buffers.Transition, target, eta):
    """Eq. (4) = (2) + η·(3) for parameters `critic_params`.
    Returns (loss, (Q(s, a) [N, B], TD part, diversity penalty J_ES))."""
    q = networks.critic.apply(critic_params, batch.obs, batch.action)
    td = ensemble_td_loss(q, target)
    diversity = diversity_from_gradients(action_gradients(networks.critic, critic_params, batch.obs, batch.action))
    return td + eta * diversity, (q, td, diversity)


# ----------------------------------------------------------------------------- learning
def init_agent(config: Config, networks: sac.Networks, obs_shape, key: jax.Array) -> sac.Agent:
    """Fresh parameters (`sac.init_agent` on an example batch of one observation)."""
    return sac.init_agent(config, networks, jnp.zeros((1,) + tuple(obs_shape)), key)


def gradient_step(config: Config, networks: sac.Networks, agent: sac.Agent, batch: buffers.Transition,
                  key: jax.Array) -> tuple[sac.Agent, dict]:
    """One gradient step on `batch`: temperature (6), actor (5), critics (1–4), targets (7)."""
    optimizer = sac.make_optimizer(config)
    entropy_key, actor_key, target_key = jax.random.split(key, 3)

    # Temperature, from the current policy's entropy at the batch's states.
    _, log_prob = networks.actor.apply(agent.actor_params, batch.obs).sample_and_log_prob(seed=entropy_key)
    alpha_loss, grad = jax.value_and_grad(sac.temperature_loss)(agent.log_alpha, -log_prob,
                                                                 sac.target_entropy(config, networks))
    if config.autotune_alpha:
        update, alpha_opt_state = optimizer.update(grad, agent.alpha_opt_state, agent.log_alpha)
        log_alpha = optax.apply_updates(agent.log_alpha, update)
    else:
        log_alpha, alpha_opt_state = agent.log_alpha, agent.alpha_opt_state
    alpha = jnp.exp(log_alpha)

    # Actor against the minimum of the current critics.
    (pi_loss, entropy), grads = jax.value_and_grad(sac.actor_loss, has_aux=True)(
        agent.actor_params, networks, agent.critic_params, batch.obs, alpha, actor_key)
    updates, actor_opt_state = optimizer.update(grads, agent.actor_opt_state, agent.actor_params)
    actor_params = optax.apply_updates(agent.actor_params, updates)

    # Critics: the N-min soft target with the new actor, TD + η · diversity.
    agent = agent.replace(actor_params=actor_params)
    target = sac.compute_target(networks, agent, batch, alpha, config.gamma, target_key)
    (q_loss, (q, td, diversity)), grads = jax.value_and_grad(critic_loss, has_aux=True)(
        agent.critic_params, networks, batch, target, config.eta)
    updates, critic_opt_state = optimizer.update(grads, agent.critic_opt_state, agent.critic_params)
    critic_params = optax.apply_updates(agent.critic_params, updates)
    target_critic_params = jax.tree.map(lambda p, t: config.tau * p + (1.0 - config.tau) * t,
                                        critic_params, agent.target_critic_params)

    new_agent = sac.Agent(actor_params=actor_params, critic_params=critic_params,
                          target_critic_params=target_critic_params, log_alpha=log_alpha,
                          actor_opt_state=actor_opt_state, critic_opt_state=critic_opt_state,
                          alpha_opt_state=alpha_opt_state)
    metrics = {"loss/critic": q_loss, "loss/td": td, "loss/diversity": diversity, "loss/actor": pi_loss,
               "loss/alpha": alpha_loss, "alpha": alpha, "entropy": entropy.mean(), "q_mean": q.mean(),
               "q_std": q.std(axis=0).mean()}
    return new_agent, metrics


# ----------------------------------------------------------------------------- init / update / train
def init(config: Config, key: jax.Array, dataset: buffers.Transition) -> TrainState:
    """Fresh parameters; `dataset` is not kept (nothing is normalized)."""
    env, networks = _networks(config)
    key, agent_key = jax.random.split(key)
    return TrainState(agent=init_agent(config, networks, env.obs_shape, agent_key), rng=key,
                      update_step=jnp.zeros((), jnp.int32))


def update(config: Config, state: TrainState, dataset: buffers.Transition) -> tuple[TrainState, dict]:
    """`steps_per_update` gradient steps, each on a fresh uniform minibatch of `dataset`."""
    _, networks = _networks(config)

    def step(agent, key):
        sample_key, step_key = jax.random.split(key)
        batch = datasets.sample(dataset, sample_key, config.batch_size)
        return gradient_step(config, networks, agent, batch, step_key)

    rng, key = jax.random.split(state.rng)
    agent, metrics = jax.lax.scan(step, state.agent, jax.random.split(key, config.steps_per_update))
    return (TrainState(agent=agent, rng=rng, update_step=state.update_step + 1),
            jax.tree.map(jnp.mean, metrics))


def act(config: Config, params, obs: jax.Array, key: jax.Array, deterministic: bool = True) -> jax.Array:
    """The policy's action for a batch of observations (tanh(μ) when deterministic); `params`
    are the actor's."""
    _, networks = _networks(config)
    return sac.sample_action(networks, params, obs, key, deterministic)


def evaluate(config: Config, state: TrainState) -> jax.Array:
    """Returns of `eval_episodes` deterministic-policy episodes in `config.env`, [eval_episodes]."""
    env = sac.make_env(config.env, False)
    key = jax.random.fold_in(state.rng, 0x5EED)  # independent of the training stream
    return run_episodes(env, functools.partial(act, config, state.agent.actor_params), key, config.eval_episodes)


def train(config: Config, key: jax.Array, dataset: buffers.Transition):
    """`init` + `lax.scan` of `update`, evaluating every `eval_every` updates and at the end.

    Returns (final state, per-update metrics [num_updates], eval returns [num_evals, eval_episodes]).
    """
    state = init(config, key, dataset)
    return train_loop(lambda s: update(config, s, dataset), functools.partial(evaluate, config), state,
                      config.num_updates, config.eval_every)
