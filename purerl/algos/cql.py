"""CQL — conservative Q-learning (Kumar et al. 2020, "Conservative Q-Learning for Offline
Reinforcement Learning", arXiv:2006.04779): an off-policy learner's critic loss plus a
term that pushes Q down on every action and up on the dataset's actions, so that actions
the data never took are not overestimated.

An offline algorithm (`OFFLINE = True`, see `purerl.algos`): it never acts in the
environment while learning. One `update` = `steps_per_update` gradient steps, each on a
minibatch drawn uniformly from the dataset (`purerl.datasets.sample`). The base learner
is chosen by the environment's action space:

- continuous actions: SAC (`purerl.algos.sac`: tanh-Gaussian actor, twin critics with
  target critics, learned temperature; its networks, target and losses are imported);
- discrete actions: DQN (`purerl.algos.dqn`: Q-network, TD target with a target network,
  Huber TD loss; imported), acting greedily.

Equations (s the normalized state, eq. (8); (s, a, r, s′, d) from the dataset D):

    (1) J_Q(θ) = J_TD(θ) + α · Σ_i gap_i(θ)            (CQL(H), α = `cql_alpha` fixed)
        J_TD: SAC's Σ_i ½ E[(Q_θi(s, a) − ⊥y)²] with y = r + γ (1 − d)(min_i Q_θ̄i(s′, a′)
        [− α_SAC log π(a′|s′) with `backup_entropy`]), a′ ~ π(·|s′) (`sac.compute_target`);
        or DQN's E[Huber(Q_θ(s, a) − ⊥y)] with y = r + γ (1 − d) max_a′ Q_θ̄(s′, a′)
        (`dqn.td_target`, Double DQN with `double_q`; LayerNorm in the Q-network with
        `layer_norm`). d = 1 only on a true terminal: a time-limit truncation bootstraps from s′.
    (2) gap_i = E_{s∈D}[log Σ_a exp Q_θi(s, a)] − E_{(s,a)∈D}[Q_θi(s, a)]   (per critic)
        discrete actions: the exact logsumexp over Q(s, ·)
    (3) continuous actions: log ∫ exp Q(s, a) da by importance sampling (the CQL(H)
        "importance-sampled" variant of the authors' code and CORL), with N =
        `num_sampled_actions` actions from each of three proposals, their log-densities
        log p_j(a_j) held constant:
            a ~ Uniform[−1, 1]^|A|  (log p = |A| log ½),   a ~ π(·|s),   a ~ π(·|s′)
            log ∫ exp Q(s, a) da ≈ logsumexp_j [Q(s, a_j) − log p_j(a_j)] − log 3N
        (the authors' code and CORL omit −log 3N, a constant that moves the gap, not its gradient)
    (4) CQL-Lagrange (`lagrange=True`): the weight of eq. (1) is α′ = clip(exp(log α′), 0, 10⁶)
        (initially `cql_alpha`) and the critic minimizes J_TD + α′ Σ_i (gap_i − τ), τ =
        `lagrange_threshold` (the same gradient as eq. (1) with α = α′); α′ by dual gradient
        descent on
            J(log α′) = −α′ · mean_i(⊥gap_i − τ),
        so α′ grows while the gap exceeds τ and shrinks once it is below.
    (5) continuous actions: SAC's actor loss E[α_SAC log π(ã|s) − min_i Q_θi(s, ã)] and
        temperature loss E[α_SAC · ⊥(−log π(ã|s) − H_target)], H_target = −|A|·scale
        (`sac.actor_loss`, `sac.temperature_loss`), on the critics after their step
    (6) θ̄ ← τ_polyak θ + (1 − τ_polyak) θ̄ after every gradient step
    (7) order of one gradient step: target y, critics (1)–(3), α′ (4), actor and
        temperature (5), targets (6)
    (8) state normalization (`normalize_obs`, as CORL): s = (o − mean_D) / (std_D + 1e-3), the
        dataset's per-dimension mean and standard deviation, kept in the `TrainState` and
        applied in `act` and `evaluate`.

Defaults follow the paper and CORL's `cql.py` (Tarasov et al. 2022, arXiv:2210.07105): critic
learning rate 3e-4, actor (and SAC temperature) learning rate 1e-4 (the paper; CORL uses 3e-5
on MuJoCo), α = 5 (the paper's Gym-MuJoCo CQL(H); CORL 10), N = 10 sampled actions, batch 256,
γ 0.99, Polyak 0.005, initial SAC temperature 1 learned towards −|A|, no entropy in the backup
(CORL's `backup_entropy=False`), (256, 256, 256) ReLU networks, normalized states, Lagrange
step size 3e-4 and threshold τ = 5 (the authors' AntMaze setting, there compared with the gap
before −log 3N and after the α multiplication). `PRESETS` holds smaller networks and fewer steps
for purerl's test datasets (see tests/algos/test_cql.py for the levels).

Usage:
    purerl train cql --env Pendulum-v1 --dataset data/pendulum-medium-replay --num-seeds 10
    state, metrics, eval_returns = jax.jit(jax.vmap(cql.train, in_axes=(None, 0, None)))(
        cql.Config.for_env("Pendulum-v1"), keys, dataset.transitions)
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from purerl import buffers, datasets, envs
from purerl.algos import dqn, sac
from purerl.config import check_bool, check_int, check_range, check_sizes, static
from purerl.evaluation import evaluate as run_episodes
from purerl.evaluation import train_loop

OFFLINE = True
ALPHA_PRIME_MAX = 1e6  # upper clip of the Lagrange multiplier α′, eq. (4) (as CORL)


# ----------------------------------------------------------------------------- config
@struct.dataclass
class Config:
    """CQL hyperparameters. Static fields fix the compiled program; float fields can be swept
    with `jax.vmap` (see `purerl.config.sweep_axes`)."""

    # -- static: environment, data and program shape
    env: str = static("Pendulum-v1")  # environment of the dataset and of evaluation (continuous or discrete)
    dataset: str = static("")  # path of the dataset the runner loads (`train` takes the data itself)
    num_gradient_steps: int = static(1_000_000)  # gradient steps per seed
    steps_per_update: int = static(1_000)  # gradient steps per `update`
    batch_size: int = static(256)  # transitions per gradient step
    hidden_sizes: tuple[int, ...] = static((256, 256, 256))  # MLP widths (ReLU): actor, critics, Q-network
    num_sampled_actions: int = static(10)  # N of eq. (3): actions per proposal (continuous actions)
    lagrange: bool = static(False)  # CQL-Lagrange, eq. (4): learn α′ against `lagrange_threshold`
    autotune_alpha: bool = static(True)  # continuous: learn the SAC temperature, eq. (5); False: `alpha` fixed
    backup_entropy: bool = static(False)  # continuous: −α_SAC log π(a′|s′) in the target of eq. (1)
    double_q: bool = static(False)  # discrete: the Double DQN target of eq. (1)
    layer_norm: bool = static(False)  # discrete: LayerNorm in the Q-network's hidden layers (`dqn.QNetwork`)
    normalize_obs: bool = static(True)  # normalize states with the dataset's statistics, eq. (8)
    eval_every: int = static(5)  # updates between evaluations
    eval_episodes: int = static(10)  # deterministic episodes per evaluation
    # -- sweepable floats
    critic_lr: float = 3e-4  # Adam step size of the critics (the Q-network for discrete actions)
    actor_lr: float = 1e-4  # Adam step size of the actor and of the SAC temperature
    lagrange_lr: float = 3e-4  # Adam step size of log α′, eq. (4)
    gamma: float = 0.99  # discount γ
    tau: float = 0.005  # Polyak rate of the target networks, eq. (6)
    alpha: float = 1.0  # SAC temperature α_SAC: its initial value when autotuned, else fixed
    target_entropy_scale: float = 1.0  # H_target = −scale·|A|, eq. (5)
    cql_alpha: float = 5.0  # α of eq. (1); with `lagrange`, α′'s initial value
    lagrange_threshold: float = 5.0  # τ of eq. (4), in units of the gap of eq. (2)

    def __post_init__(self):
        envs.check_name(self.env)
        for name in ("num_gradient_steps", "steps_per_update", "batch_size", "num_sampled_actions", "eval_every",
                     "eval_episodes"):
            check_int(self, name)
        check_sizes(self, "hidden_sizes")
        for name in ("lagrange", "autotune_alpha", "backup_entropy", "double_q", "layer_norm", "normalize_obs"):
            check_bool(self, name)
        if self.num_gradient_steps < self.steps_per_update:
            raise ValueError(f"Config.num_gradient_steps={self.num_gradient_steps} is invalid: must be ≥ one update, "
                             f"steps_per_update={self.steps_per_update}")
        for name in ("critic_lr", "actor_lr", "lagrange_lr", "alpha"):
            check_range(self, name, 0.0, low_inclusive=False)
        check_range(self, "gamma", 0.0, 1.0)
        check_range(self, "tau", 0.0, 1.0, low_inclusive=False)
        check_range(self, "target_entropy_scale", -10.0, 10.0)
        # α′ = exp(log α′) cannot start at 0 under CQL-Lagrange
        check_range(self, "cql_alpha", 0.0, low_inclusive=not self.lagrange)
        check_range(self, "lagrange_threshold")  # finite

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

    @property
    def discrete(self) -> bool:
        """Whether `env` has discrete actions (DQN base) rather than continuous ones (SAC base)."""
        return make_env(self.env).discrete

    @classmethod
    def for_env(cls, env: str, **overrides) -> "Config":
        """Defaults tuned for `env` (from `PRESETS`), then `overrides`."""
        return cls(**{"env": env, **PRESETS.get(env, {}), **overrides})


# Per-environment settings for purerl's small test datasets (tests/offline_data.py; the levels
# are in tests/algos/test_cql.py), chosen to learn within a few thousand gradient steps on a CPU.
# Pendulum (medium-replay, 2 500 transitions): (32, 32) networks, N = 2 sampled actions per
# proposal, faster targets (Polyak 0.02, γ 0.98, as SAC's RL Zoo Pendulum entry), step sizes 1e-3,
# α = 1 (the mostly random data covers the actions well) and an initial SAC temperature of 0.1.
# CartPole (medium): DQN's LayerNorm (without it the Q-values of this data diverge at Polyak 0.05,
# which α does not prevent: with two actions the gap stays near log 2 while both Q-values grow),
# Polyak 0.05, α = 1.
PRESETS: dict[str, dict[str, Any]] = {
    "Pendulum-v1": dict(num_gradient_steps=2_000, steps_per_update=500, batch_size=256, hidden_sizes=(32, 32),
                        num_sampled_actions=2, critic_lr=1e-3, actor_lr=1e-3, gamma=0.98, tau=0.02, alpha=0.1,
                        cql_alpha=1.0, eval_every=1),
    "CartPole-v1": dict(num_gradient_steps=5_000, steps_per_update=500, batch_size=128, hidden_sizes=(64, 64),
                        layer_norm=True, critic_lr=1e-3, tau=0.05, cql_alpha=1.0, eval_every=2),
}


# ----------------------------------------------------------------------------- networks
@functools.lru_cache(maxsize=None)
def make_env(env_name: str) -> envs.Environment:
    return envs.make(env_name)


def sac_config(config: Config) -> sac.Config:
    """The SAC settings the continuous agent shares: network widths, the initial temperature and
    the target-entropy scale. (SAC's `learning_rate` there only shapes Adam's state at
    `sac.init_agent`, the same for every step size; CQL's own step sizes are used in the steps.)"""
    return sac.Config(env=config.env, hidden_sizes=tuple(config.hidden_sizes), alpha=config.alpha,
                      target_entropy_scale=config.target_entropy_scale, learning_rate=config.critic_lr)


def make_networks(config: Config) -> sac.Networks:
    """Continuous actions: SAC's tanh-Gaussian actor and twin critic (`sac.make_networks`)."""
    env = make_env(config.env)
    return sac.make_networks(sac_config(config), env.obs_shape, env.action_space)


def make_q_network(config: Config) -> dqn.QNetwork:
    """Discrete actions: DQN's Q-network, Q(s, ·) for every action."""
    env = make_env(config.env)
    return dqn.QNetwork(obs_ndim=len(env.obs_shape), num_actions=env.action_space.n,
                        hidden_sizes=tuple(config.hidden_sizes), layer_norm=config.layer_norm)


# ----------------------------------------------------------------------------- state
@struct.dataclass
class QAgent:
    """What discrete CQL learns: the Q-network, its target and the optimizer state."""

    q_params: Any
    target_q_params: Any
    opt_state: Any


@struct.dataclass
class Policy:
    """What `act` takes: the actor's parameters (continuous) or the Q-network's (discrete, greedy),
    and the state normalization of eq. (8)."""

    params: Any
    obs_mean: jax.Array  # [*obs_shape] (zeros without `normalize_obs`)
    obs_std: jax.Array  # [*obs_shape] std + 1e-3 (ones without `normalize_obs`)


@struct.dataclass
class TrainState:
    agent: Any  # `sac.Agent` (continuous actions) or `QAgent` (discrete)
    log_alpha_prime: jax.Array  # log α′ of CQL-Lagrange, eq. (4) (log cql_alpha, unused, with a fixed α)
    alpha_prime_opt_state: Any
    obs_mean: jax.Array  # dataset statistics of eq. (8), fixed at `init`
    obs_std: jax.Array
    rng: jax.Array
    update_step: jax.Array  # int32, updates done


def policy(config: Config, state: TrainState) -> Policy:
    """The acting parameters of `state` (what `act` takes)."""
    params = state.agent.q_params if config.discrete else state.agent.actor_params
    return Policy(params, state.obs_mean, state.obs_std)


# ----------------------------------------------------------------------------- math
def discrete_logsumexp(q_all: jax.Array) -> jax.Array:
    """Eq. (2), discrete actions: log Σ_a exp Q(s, a) exactly; `q_all` [..., |A|] → [...]."""
    return jax.nn.logsumexp(q_all, axis=-1)


def importance_sampled_logsumexp(q_sampled: jax.Array, log_density: jax.Array) -> jax.Array:
    """Eq. (3): log ∫ exp Q(s, a) da ≈ logsumexp_j [Q(s, a_j) − log p_j(a_j)] − log M over the
    M = 3N sampled actions on the last axis; `q_sampled` [..., M], `log_density` [..., M]
    (broadcast) → [...]."""
    num = q_sampled.shape[-1]
    return jax.nn.logsumexp(q_sampled - jax.lax.stop_gradient(log_density), axis=-1) - math.log(num)


def conservative_gap(logsumexp_q: jax.Array, q_data: jax.Array) -> jax.Array:
    """Eq. (2): E_s[logsumexp_a Q(s, a)] − E_D[Q(s, a)], the mean over the batch (last) axis;
    `[2, B]` (one gap per critic) or `[B]`."""
    return jnp.mean(logsumexp_q, axis=-1) - jnp.mean(q_data, axis=-1)


def alpha_prime(log_alpha_prime: jax.Array) -> jax.Array:
    """Eq. (4): α′ = clip(exp(log α′), 0, 10⁶)."""
    return jnp.clip(jnp.exp(log_alpha_prime), 0.0, ALPHA_PRIME_MAX)


def lagrange_loss(log_alpha_prime: jax.Array, gap: jax.Array, threshold) -> jax.Array:
    """Eq. (4), the dual step's loss: −α′ · mean_i(⊥gap_i − τ). Its gradient descent raises α′
    when the gap exceeds τ and lowers it when the gap is below τ."""
    return -jnp.mean(alpha_prime(log_alpha_prime) * jax.lax.stop_gradient(gap - threshold))


def cql_weight(config: Config, log_alpha_prime: jax.Array) -> jax.Array:
    """The weight of the gap in eq. (1): `cql_alpha`, or α′ with `lagrange` (eq. 4)."""
    return alpha_prime(log_alpha_prime) if config.lagrange else jnp.asarray(config.cql_alpha, jnp.float32)


def proposal_actions(networks: sac.Networks, actor_params, obs: jax.Array, next_obs: jax.Array, key: jax.Array,
                     num: int) -> tuple[jax.Array, jax.Array]:
    """Eq. (3)'s samples: `num` actions from Uniform[−1, 1]^|A|, from π(·|s) and from π(·|s′)
    for each of B states, concatenated in that order. Returns (actions [B, 3·num, |A|],
    log-densities [B, 3·num]), both constants (no gradient to the actor)."""
    uniform_key, policy_key = jax.random.split(key)
    batch, action_dim = obs.shape[0], networks.action_dim
    uniform = jax.random.uniform(uniform_key, (batch, num, action_dim), minval=-1.0, maxval=1.0)
    uniform_log_density = jnp.full((batch, num), action_dim * math.log(0.5))

    # π(·|s) and π(·|s′) in one pass of the actor over [s; s′]: [num, 2B, ...] → [B, 2·num, ...]
    both = networks.actor.apply(actor_params, jnp.concatenate([obs, next_obs]))
    policy_action, policy_log_prob = both.sample_and_log_prob(seed=policy_key, sample_shape=(num,))
    policy_action = jnp.concatenate(jnp.split(jnp.swapaxes(policy_action, 0, 1), 2), axis=1)
    policy_log_prob = jnp.concatenate(jnp.split(jnp.swapaxes(policy_log_prob, 0, 1), 2), axis=1)
    actions = jnp.concatenate([uniform, policy_action], axis=1)
    log_density = jnp.concatenate([uniform_log_density, policy_log_prob], axis=1)
    return jax.lax.stop_gradient(actions), jax.lax.stop_gradient(log_density)


def critic_loss(critic_params, networks: sac.Networks, batch: buffers.Transition, target: jax.Array,
                actions: jax.Array, log_density: jax.Array, weight) -> tuple[jax.Array, tuple]:
    """Eqs. (1)–(3), continuous actions: SAC's TD loss (`sac.critic_loss`) + weight · Σ_i gap_i,
    with `actions` [B, M, |A|] and `log_density` [B, M] from `proposal_actions`.
    Returns (loss, (TD loss, gap per critic [2], Q(s, a) [2, B]))."""
    td_loss, q = sac.critic_loss(critic_params, networks, batch, target)
    obs = jnp.broadcast_to(batch.obs[:, None], actions.shape[:2] + batch.obs.shape[1:])
    q_sampled = networks.critic.apply(critic_params, obs, actions)  # [2, B, M]
    gap = conservative_gap(importance_sampled_logsumexp(q_sampled, log_density), q)
    return td_loss + weight * jnp.sum(gap), (td_loss, gap, q)


def discrete_critic_loss(q_params, network: dqn.QNetwork, batch: buffers.Transition, target: jax.Array,
                         weight) -> tuple[jax.Array, tuple]:
    """Eqs. (1)–(2), discrete actions: DQN's Huber TD loss (`dqn.q_loss`) + weight · gap with the
    exact logsumexp. Returns (loss, (TD loss, gap [1], Q(s, a) [B]))."""
    td_loss, q = dqn.q_loss(q_params, network, batch.obs, batch.action, target, "huber")
    gap = conservative_gap(discrete_logsumexp(network.apply(q_params, batch.obs)), q)
    return td_loss + weight * gap, (td_loss, gap[None], q)


# ----------------------------------------------------------------------------- gradient steps
def dual_step(config: Config, log_alpha_prime, opt_state, gap) -> tuple[jax.Array, Any, jax.Array]:
    """Eq. (4): one Adam step of log α′ on `lagrange_loss` (none with a fixed α). Returns
    (log α′, optimizer state, the loss)."""
    loss, grad = jax.value_and_grad(lagrange_loss)(log_alpha_prime, gap, config.lagrange_threshold)
    if not config.lagrange:
        return log_alpha_prime, opt_state, loss
    updates, opt_state = optax.adam(config.lagrange_lr).update(grad, opt_state)
    return optax.apply_updates(log_alpha_prime, updates), opt_state, loss


def continuous_step(config: Config, networks: sac.Networks, agent: sac.Agent, log_alpha_prime, dual_state,
                    batch: buffers.Transition, key: jax.Array):
    """One gradient step of eqs. (1)–(6) in the order of eq. (7) on a normalized `batch`."""
    target_key, proposal_key, actor_key = jax.random.split(key, 3)
    alpha = jnp.exp(agent.log_alpha)
    target = sac.compute_target(networks, agent, batch, alpha if config.backup_entropy else 0.0, config.gamma,
                                target_key)
    actions, log_density = proposal_actions(networks, agent.actor_params, batch.obs, batch.next_obs, proposal_key,
                                            config.num_sampled_actions)
    weight = cql_weight(config, log_alpha_prime)
    (loss, (td_loss, gap, q)), grads = jax.value_and_grad(critic_loss, has_aux=True)(
        agent.critic_params, networks, batch, target, actions, log_density, weight)
    critic_optimizer = optax.adam(config.critic_lr)
    updates, critic_opt_state = critic_optimizer.update(grads, agent.critic_opt_state, agent.critic_params)
    critic_params = optax.apply_updates(agent.critic_params, updates)

    log_alpha_prime, dual_state, dual_loss = dual_step(config, log_alpha_prime, dual_state, gap)

    actor_optimizer = optax.adam(config.actor_lr)
    (pi_loss, entropy), grads = jax.value_and_grad(sac.actor_loss, has_aux=True)(
        agent.actor_params, networks, critic_params, batch.obs, alpha, actor_key)
    updates, actor_opt_state = actor_optimizer.update(grads, agent.actor_opt_state, agent.actor_params)
    actor_params = optax.apply_updates(agent.actor_params, updates)

    h_target = sac.target_entropy(sac_config(config), networks)
    alpha_loss, grad = jax.value_and_grad(sac.temperature_loss)(agent.log_alpha, entropy, h_target)
    if config.autotune_alpha:
        update, alpha_opt_state = actor_optimizer.update(grad, agent.alpha_opt_state, agent.log_alpha)
        log_alpha = optax.apply_updates(agent.log_alpha, update)
    else:
        log_alpha, alpha_opt_state = agent.log_alpha, agent.alpha_opt_state

    target_critic_params = dqn.polyak(critic_params, agent.target_critic_params, config.tau)
    agent = sac.Agent(actor_params=actor_params, critic_params=critic_params,
                      target_critic_params=target_critic_params, log_alpha=log_alpha,
                      actor_opt_state=actor_opt_state, critic_opt_state=critic_opt_state,
                      alpha_opt_state=alpha_opt_state)
    metrics = {"loss/critic": loss, "loss/td": td_loss, "loss/actor": pi_loss, "loss/alpha": alpha_loss,
               "loss/alpha_prime": dual_loss, "cql/gap": gap.mean(), "cql/weight": weight, "alpha": alpha,
               "entropy": entropy.mean(), "q_mean": q.mean()}
    return agent, log_alpha_prime, dual_state, metrics


def discrete_step(config: Config, network: dqn.QNetwork, agent: QAgent, log_alpha_prime, dual_state,
                  batch: buffers.Transition):
    """One gradient step of eqs. (1), (2), (4), (6) (discrete actions) on a normalized `batch`."""
    next_q_target = network.apply(agent.target_q_params, batch.next_obs)
    next_q_online = network.apply(agent.q_params, batch.next_obs) if config.double_q else next_q_target
    target = dqn.td_target(batch.reward, batch.terminated, config.gamma, next_q_target, next_q_online,
                           config.double_q)
    weight = cql_weight(config, log_alpha_prime)
    (loss, (td_loss, gap, q)), grads = jax.value_and_grad(discrete_critic_loss, has_aux=True)(
        agent.q_params, network, batch, target, weight)
    updates, opt_state = optax.adam(config.critic_lr).update(grads, agent.opt_state, agent.q_params)
    q_params = optax.apply_updates(agent.q_params, updates)
    log_alpha_prime, dual_state, dual_loss = dual_step(config, log_alpha_prime, dual_state, gap)
    agent = QAgent(q_params=q_params, target_q_params=dqn.polyak(q_params, agent.target_q_params, config.tau),
                   opt_state=opt_state)
    metrics = {"loss/critic": loss, "loss/td": td_loss, "loss/alpha_prime": dual_loss, "cql/gap": gap.mean(),
               "cql/weight": weight, "q_mean": q.mean()}
    return agent, log_alpha_prime, dual_state, metrics


def gradient_step(config: Config, state: TrainState, batch: buffers.Transition, key: jax.Array):
    """One CQL gradient step on a raw `batch` (normalized here, eq. 8). Returns (state, metrics)."""
    batch = batch.replace(obs=datasets.normalize_obs(batch.obs, state.obs_mean, state.obs_std),
                          next_obs=datasets.normalize_obs(batch.next_obs, state.obs_mean, state.obs_std))
    if config.discrete:
        agent, log_alpha_prime, dual_state, metrics = discrete_step(
            config, make_q_network(config), state.agent, state.log_alpha_prime, state.alpha_prime_opt_state, batch)
    else:
        agent, log_alpha_prime, dual_state, metrics = continuous_step(
            config, make_networks(config), state.agent, state.log_alpha_prime, state.alpha_prime_opt_state, batch,
            key)
    return state.replace(agent=agent, log_alpha_prime=log_alpha_prime, alpha_prime_opt_state=dual_state), metrics


# ----------------------------------------------------------------------------- init / update / train
def init(config: Config, key: jax.Array, dataset: buffers.Transition) -> TrainState:
    """Fresh parameters, α′ = `cql_alpha`, and the dataset's observation statistics (eq. 8)."""
    datasets.check_shapes(dataset, make_env(config.env))
    key, agent_key = jax.random.split(key)
    obs_mean, obs_std = datasets.observation_stats(dataset.obs, config.normalize_obs)
    example_obs = jnp.zeros((1,) + dataset.obs.shape[1:], jnp.float32)
    if config.discrete:
        q_params = make_q_network(config).init(agent_key, example_obs)
        agent = QAgent(q_params=q_params, target_q_params=q_params,
                       opt_state=optax.adam(config.critic_lr).init(q_params))
    else:
        agent = sac.init_agent(sac_config(config), make_networks(config), example_obs, agent_key)
    # log max(α, tiny): a fixed α = 0 (plain SAC/DQN on the data) keeps log α′ finite
    log_alpha_prime = jnp.log(jnp.maximum(jnp.asarray(config.cql_alpha, jnp.float32), jnp.finfo(jnp.float32).tiny))
    return TrainState(agent=agent, log_alpha_prime=log_alpha_prime,
                      alpha_prime_opt_state=optax.adam(config.lagrange_lr).init(log_alpha_prime),
                      obs_mean=obs_mean, obs_std=obs_std, rng=key, update_step=jnp.zeros((), jnp.int32))


def update(config: Config, state: TrainState, dataset: buffers.Transition) -> tuple[TrainState, dict]:
    """`steps_per_update` gradient steps, each on a fresh minibatch of `dataset`; metrics are
    means over them."""
    rng, update_key = jax.random.split(state.rng)

    def step(state, key):
        sample_key, step_key = jax.random.split(key)
        return gradient_step(config, state, datasets.sample(dataset, sample_key, config.batch_size), step_key)

    state, metrics = jax.lax.scan(step, state, jax.random.split(update_key, config.steps_per_update))
    return state.replace(rng=rng, update_step=state.update_step + 1), jax.tree.map(jnp.mean, metrics)


def act(config: Config, params: Policy, obs: jax.Array, key: jax.Array, deterministic: bool = True) -> jax.Array:
    """An action for each observation in `obs` (raw, batched); `params` is `policy(config, state)`.
    Continuous: tanh(μ(s)) (deterministic) or a sample of π; discrete: argmax_a Q(s, a) always
    (CQL's discrete policy is greedy)."""
    obs = datasets.normalize_obs(obs, params.obs_mean, params.obs_std)
    if config.discrete:
        return jnp.argmax(make_q_network(config).apply(params.params, obs), axis=-1)
    return sac.sample_action(make_networks(config), params.params, obs, key, deterministic)


def evaluate(config: Config, state: TrainState) -> jax.Array:
    """Returns of `eval_episodes` deterministic-policy episodes in `config.env`, [eval_episodes]."""
    key = jax.random.fold_in(state.rng, 0x5EED)  # independent of the training stream
    return run_episodes(make_env(config.env), functools.partial(act, config, policy(config, state)), key,
                        config.eval_episodes)


def train(config: Config, key: jax.Array, dataset: buffers.Transition):
    """`init` + `lax.scan` of `update`, evaluating every `eval_every` updates and at the end.

    Returns (final state, per-update metrics [num_updates], eval returns [num_evals, eval_episodes]).
    """
    state = init(config, key, dataset)
    return train_loop(lambda s: update(config, s, dataset), functools.partial(evaluate, config), state,
                      config.num_updates, config.eval_every)
