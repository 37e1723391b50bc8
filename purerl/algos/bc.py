"""BC — behaviour cloning: supervised learning of the dataset's actions from its states
(Pomerleau 1991; the offline-RL baseline of Fu et al. 2020, "D4RL", arXiv:2004.07219).

An offline algorithm (`OFFLINE = True`, see `purerl.algos`): it never acts in the
environment while learning. One `update` = `steps_per_update` gradient steps, each on a
minibatch drawn uniformly from the dataset (`purerl.datasets.sample`). Equations (s the
normalized state, eq. (4); a the dataset's action):

    (1) "gaussian" (continuous actions, the default):
            π_φ(·|s) = tanh(N(μ_φ(s), σ_φ(s)²)),  L(φ) = −E_D[log π_φ(ā|s)]
            log π(ā|s) = log N(atanh ā; μ, σ²) − Σ_j log(1 − ā_j²)   (`sac.tanh_gaussian`)
            ā = clip(a, −1 + ε, 1 − ε), ε = 1e-6: the density of a tanh-Gaussian is 0 at
            exactly ±1 (atanh(±1) = ±∞), and a squashed policy's saturated actions are often
            stored as exactly ±1 in float32; clipping keeps the log-likelihood finite (each
            clipped action then counts as atanh(1 − ε) ≈ 7.25 before the squash).
    (2) "deterministic" (continuous actions): μ_φ(s) = tanh(MLP(s)),
            L(φ) = E_D[‖μ_φ(s) − a‖²]   (the squared error summed over action dimensions)
    (3) categorical (chosen automatically for a discrete action space, whatever `policy`
        says): π_φ(a|s) = softmax(logits_φ(s))_a,  L(φ) = −E_D[log π_φ(a|s)] (cross-entropy)
    (4) state normalization (`normalize_obs`, as CORL): s = (o − mean_D) / (std_D + 1e-3), the
        dataset's per-dimension mean and standard deviation, kept in the `TrainState` and
        applied in `act` and `evaluate`.

Evaluation is deterministic: tanh(μ_φ(s)) (gaussian), μ_φ(s) (deterministic) or the most
probable action (categorical).

Defaults follow CORL's `any_percent_bc` (Tarasov et al. 2022, arXiv:2210.07105) run on all the
data (its `frac = 1`: plain BC): Adam with learning rate 3e-4, minibatches of 256, (256, 256)
ReLU networks, normalized states with std + 1e-3, 10 evaluation episodes every 5 000 gradient
steps. CORL trains the deterministic tanh policy of eq. (2) (with the squared error averaged
over action dimensions, `F.mse_loss`; eq. (2) sums them); purerl's default is the
log-likelihood of eq. (1), as the seed asks ("maximize log π(a|s)"). `PRESETS` holds smaller
networks and fewer steps for purerl's test environments (see tests/algos/test_bc.py).

Usage:
    purerl train bc --env Pendulum-v1 --dataset data/pendulum-expert --num-seeds 10
    state, metrics, eval_returns = jax.jit(jax.vmap(bc.train, in_axes=(None, 0, None)))(
        bc.Config.for_env("Pendulum-v1"), keys, dataset.transitions)
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

from purerl import buffers, datasets, envs
from purerl.algos import sac
from purerl.config import check_bool, check_choice, check_int, check_range, check_sizes, static
from purerl.evaluation import evaluate as run_episodes
from purerl.evaluation import train_loop

OFFLINE = True
ACTION_EPS = 1e-6  # ε of eq. (1): dataset actions are clipped to [−1 + ε, 1 − ε] for the log-likelihood
POLICIES = ("gaussian", "deterministic")


# ----------------------------------------------------------------------------- config
@struct.dataclass
class Config:
    """BC hyperparameters. Static fields fix the compiled program; float fields can be swept
    with `jax.vmap` (see `purerl.config.sweep_axes`)."""

    # -- static: environment, data and program shape
    env: str = static("Pendulum-v1")  # environment of the dataset and of evaluation
    dataset: str = static("")  # path of the dataset the runner loads (`train` takes the data itself)
    num_gradient_steps: int = static(100_000)  # gradient steps per seed
    steps_per_update: int = static(1_000)  # gradient steps per `update`
    batch_size: int = static(256)  # transitions per gradient step
    hidden_sizes: tuple[int, ...] = static((256, 256))  # MLP widths (ReLU)
    policy: str = static("gaussian")  # continuous actions: "gaussian" eq. (1) or "deterministic" eq. (2)
    normalize_obs: bool = static(True)  # normalize states with the dataset's statistics, eq. (4)
    eval_every: int = static(5)  # updates between evaluations
    eval_episodes: int = static(10)  # deterministic episodes per evaluation
    # -- sweepable floats
    learning_rate: float = 3e-4  # Adam step size

    def __post_init__(self):
        envs.check_name(self.env)
        for name in ("num_gradient_steps", "steps_per_update", "batch_size", "eval_every", "eval_episodes"):
            check_int(self, name)
        check_sizes(self, "hidden_sizes")
        check_choice(self, "policy", POLICIES)
        check_bool(self, "normalize_obs")
        if self.num_gradient_steps < self.steps_per_update:
            raise ValueError(f"Config.num_gradient_steps={self.num_gradient_steps} is invalid: must be ≥ one update, "
                             f"steps_per_update={self.steps_per_update}")
        check_range(self, "learning_rate", 0.0, low_inclusive=False)

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
    def policy_kind(self) -> str:
        """The policy trained: "categorical" for discrete actions, else `policy`."""
        return "categorical" if make_env(self.env).discrete else self.policy

    @classmethod
    def for_env(cls, env: str, **overrides) -> "Config":
        """Defaults tuned for `env` (from `PRESETS`), then `overrides`."""
        return cls(**{"env": env, **PRESETS.get(env, {}), **overrides})


# Per-environment settings: (64, 64) networks, learning rate 1e-3 and 5 000 gradient steps are
# enough on purerl's Pendulum and CartPole datasets (see tests/algos/test_bc.py for the levels).
PRESETS: dict[str, dict[str, Any]] = {
    "Pendulum-v1": dict(num_gradient_steps=5_000, steps_per_update=500, hidden_sizes=(64, 64), learning_rate=1e-3,
                        eval_every=2),
    "CartPole-v1": dict(num_gradient_steps=5_000, steps_per_update=500, hidden_sizes=(64, 64), learning_rate=1e-3,
                        eval_every=2),
}


# ----------------------------------------------------------------------------- networks
class DeterministicActor(nn.Module):
    """Eq. (2): μ_φ(s) = tanh(MLP(s)) ∈ [−1, 1]^d."""

    obs_ndim: int
    action_dim: int
    hidden_sizes: Sequence[int]

    @nn.compact
    def __call__(self, obs):
        x = obs.reshape(obs.shape[: obs.ndim - self.obs_ndim] + (-1,))
        return jnp.tanh(sac.MLP(self.hidden_sizes, self.action_dim)(x))


@functools.lru_cache(maxsize=None)
def make_env(env_name: str) -> envs.Environment:
    return envs.make(env_name)


def make_policy(config: Config) -> nn.Module:
    """The network of `config.policy_kind`: `sac.Actor` (a tanh-Gaussian or a categorical
    distribution) or `DeterministicActor` (an action)."""
    env = make_env(config.env)
    obs_ndim, sizes = len(env.obs_shape), tuple(config.hidden_sizes)
    if env.discrete:
        return sac.Actor(obs_ndim, env.action_space.n, True, sizes)
    action_dim = int(np.prod(env.action_space.shape))
    if config.policy == "deterministic":
        return DeterministicActor(obs_ndim, action_dim, sizes)
    return sac.Actor(obs_ndim, action_dim, False, sizes)


# ----------------------------------------------------------------------------- state
@struct.dataclass
class Policy:
    """What `act` takes: the network's parameters and the state normalization of eq. (4)."""

    params: Any
    obs_mean: jax.Array  # [*obs_shape] (zeros without `normalize_obs`)
    obs_std: jax.Array  # [*obs_shape] std + 1e-3 (ones without `normalize_obs`)


@struct.dataclass
class TrainState:
    params: Any  # the policy network's
    opt_state: Any
    obs_mean: jax.Array  # dataset statistics of eq. (4), fixed at `init`
    obs_std: jax.Array
    rng: jax.Array
    update_step: jax.Array  # int32, updates done


def policy(state: TrainState) -> Policy:
    """The acting parameters of `state` (what `act` takes)."""
    return Policy(state.params, state.obs_mean, state.obs_std)


# ----------------------------------------------------------------------------- losses
def clip_action(action: jax.Array) -> jax.Array:
    """Eq. (1)'s ā = clip(a, −1 + ε, 1 − ε)."""
    return jnp.clip(action, -1.0 + ACTION_EPS, 1.0 - ACTION_EPS)


def log_likelihood_loss(dist: distrax.Distribution, action: jax.Array) -> jax.Array:
    """Eqs. (1) and (3): −E[log π(a|s)] (continuous actions are clipped to [−1 + ε, 1 − ε])."""
    if jnp.issubdtype(action.dtype, jnp.integer):
        return -jnp.mean(dist.log_prob(action))
    return -jnp.mean(dist.log_prob(clip_action(action)))


def mse_loss(predicted: jax.Array, action: jax.Array) -> jax.Array:
    """Eq. (2): E[‖μ(s) − a‖²], summed over action dimensions, averaged over the batch."""
    return jnp.mean(jnp.sum((predicted - action) ** 2, axis=-1))


def bc_loss(params, config: Config, obs: jax.Array, action: jax.Array) -> tuple[jax.Array, dict]:
    """The loss of `config.policy_kind` on normalized states `obs`, and diagnostics."""
    network = make_policy(config)
    out = network.apply(params, obs)
    if config.policy_kind == "deterministic":
        loss = mse_loss(out, action)
        return loss, {"action_mse": loss}
    loss = log_likelihood_loss(out, action)
    if config.policy_kind == "categorical":
        return loss, {"accuracy": jnp.mean(jnp.argmax(out.logits, axis=-1) == action)}
    mode = jnp.tanh(out.distribution.loc)
    return loss, {"action_mse": mse_loss(mode, action), "std": jnp.mean(out.distribution.scale_diag)}


# ----------------------------------------------------------------------------- init / update / train
def init(config: Config, key: jax.Array, dataset: buffers.Transition) -> TrainState:
    """Fresh parameters and the dataset's observation statistics (eq. 4)."""
    datasets.check_shapes(dataset, make_env(config.env))
    key, params_key = jax.random.split(key)
    obs_mean, obs_std = datasets.observation_stats(dataset.obs, config.normalize_obs)
    params = make_policy(config).init(params_key, jnp.zeros((1,) + dataset.obs.shape[1:], jnp.float32))
    return TrainState(params=params, opt_state=optax.adam(config.learning_rate).init(params), obs_mean=obs_mean,
                      obs_std=obs_std, rng=key, update_step=jnp.zeros((), jnp.int32))


def gradient_step(config: Config, state: TrainState, batch: buffers.Transition) -> tuple[TrainState, dict]:
    """One Adam step on the loss of eq. (1), (2) or (3) for `batch`."""
    optimizer = optax.adam(config.learning_rate)
    obs = datasets.normalize_obs(batch.obs, state.obs_mean, state.obs_std)
    (loss, aux), grads = jax.value_and_grad(bc_loss, has_aux=True)(state.params, config, obs, batch.action)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    return state.replace(params=optax.apply_updates(state.params, updates), opt_state=opt_state), \
        {"loss/bc": loss, **aux}


def update(config: Config, state: TrainState, dataset: buffers.Transition) -> tuple[TrainState, dict]:
    """`steps_per_update` gradient steps, each on a fresh minibatch of `dataset`; metrics are
    means over them."""
    rng, update_key = jax.random.split(state.rng)

    def step(state, key):
        return gradient_step(config, state, datasets.sample(dataset, key, config.batch_size))

    state, metrics = jax.lax.scan(step, state, jax.random.split(update_key, config.steps_per_update))
    return state.replace(rng=rng, update_step=state.update_step + 1), jax.tree.map(jnp.mean, metrics)


def act(config: Config, params: Policy, obs: jax.Array, key: jax.Array, deterministic: bool = True) -> jax.Array:
    """An action for each observation in `obs` (raw, batched); `params` is `policy(state)`.
    Deterministic: tanh(μ(s)), μ(s) or argmax; else sampled from π (the deterministic policy
    has nothing to sample and returns μ(s))."""
    out = make_policy(config).apply(params.params, datasets.normalize_obs(obs, params.obs_mean, params.obs_std))
    kind = config.policy_kind
    if kind == "deterministic":
        return out
    if not deterministic:
        return out.sample(seed=key)
    if kind == "categorical":
        return jnp.argmax(out.logits, axis=-1)
    return jnp.tanh(out.distribution.loc)


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
