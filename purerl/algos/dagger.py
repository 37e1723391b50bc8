"""DAgger — dataset aggregation for imitation learning (Ross, Gordon & Bagnell 2011,
"A Reduction of Imitation Learning and Structured Prediction to No-Regret Online Learning",
arXiv:1011.0686; algorithm 3.8 of seed 003).

Behaviour cloning learns the expert's actions on the expert's states only; once the learner
errs it reaches states the expert never showed, and the errors compound (Ross & Bagnell 2010:
O(εT²) for BC against O(εT) for DAgger). DAgger asks the expert what it would have done in the
states the *learner* visits, and trains on all of it:

    D ← demonstrations
    for round i = 1 … N:
        (1) π̂_i ← BC on D                                  (`bc.gradient_step` on minibatches of D)
        (2) run π_i = β_i π* + (1 − β_i) π̂_i and record its states s (each step takes the
            expert's action with probability β_i = β · β_decay^(i−1), else the learner's)
        (3) label them with the expert: D_i = {(s, π*(s))}
        (4) aggregate: D ← D ∪ D_i

One `update` is one round, (1)–(4): `steps_per_update` gradient steps of BC on D, then
`num_envs × rollout_steps` environment steps. The expert is a pure function inside the
compiled program (`purerl.experts`: "scripted", or a name given to `experts.register`), so it
labels every visited state; the aggregated dataset is a fixed-capacity buffer in the train state,
demonstrations + N · num_envs · rollout_steps pairs, so every labelled pair is kept once and the
whole loop is one program. The learner (network, loss, state normalization with the
demonstrations' statistics) is `purerl.algos.bc`'s; the learner keeps training from round to
round (Ross et al. retrain from scratch; warm-starting is the common practice and cheaper).
Environments run on across rounds: an episode cut by the end of a round goes on in the next.

With β = 0 (the default) every round runs the learner alone; the first round's policy is then
plain BC on the demonstrations, the first evaluation is BC's. Ross et al. use β₁ = 1 (the first
round's data are the expert's own), which the demonstrations play here.

Usage:
    purerl collect --kind expert --expert scripted --env Pendulum-v1 --episodes 1 --out demos/pendulum-1
    purerl train dagger --dataset demos/pendulum-1 --num-seeds 8
    state, metrics, eval_returns = jax.jit(jax.vmap(dagger.train, in_axes=(None, 0, None)))(
        dagger.Config.for_env("Pendulum-v1"), keys, demos.transitions)
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from purerl import buffers, datasets, envs, experts
from purerl.algos import bc
from purerl.config import check_bool, check_choice, check_int, check_range, check_sizes, static
from purerl.evaluation import evaluate as run_episodes
from purerl.evaluation import train_loop

DEMONSTRATIONS = True


# ----------------------------------------------------------------------------- config
@struct.dataclass
class Config:
    """DAgger hyperparameters. Static fields fix the compiled program; float fields can be swept
    with `jax.vmap` (see `purerl.config.sweep_axes`)."""

    # -- static: environment, expert, data and program shape
    env: str = static("Pendulum-v1")  # environment of the demonstrations, of collection and of evaluation
    dataset: str = static("")  # path of the demonstrations the runner loads (`train` takes them itself)
    expert: str = static("scripted")  # the expert that labels visited states (`purerl.experts.get`)
    num_rounds: int = static(10)  # DAgger rounds N (= updates)
    num_envs: int = static(8)  # parallel environments run by the learner in each round
    rollout_steps: int = static(100)  # steps per environment per round (labelled pairs: num_envs × this)
    steps_per_update: int = static(500)  # BC gradient steps per round, step (1)
    batch_size: int = static(256)  # pairs per gradient step
    hidden_sizes: tuple[int, ...] = static((64, 64))  # the learner's MLP (ReLU)
    policy: str = static("deterministic")  # continuous actions: bc's "gaussian" or "deterministic"
    normalize_obs: bool = static(True)  # normalize states with the demonstrations' statistics (bc eq. 4)
    eval_every: int = static(1)  # rounds between evaluations
    eval_episodes: int = static(10)  # deterministic episodes per evaluation
    # -- sweepable floats
    learning_rate: float = 1e-3  # Adam step size of the learner
    beta: float = 0.0  # β of the mixture π_i = β_i π* + (1 − β_i) π̂_i, step (2)
    beta_decay: float = 0.5  # β_i = β · β_decay^(i−1)

    def __post_init__(self):
        envs.check_name(self.env)
        experts.check(self.expert, self.env)
        for name in ("num_rounds", "num_envs", "rollout_steps", "steps_per_update", "batch_size", "eval_every",
                     "eval_episodes"):
            check_int(self, name)
        check_sizes(self, "hidden_sizes")
        check_choice(self, "policy", bc.POLICIES)
        check_bool(self, "normalize_obs")
        check_range(self, "learning_rate", 0.0, low_inclusive=False)
        check_range(self, "beta", 0.0, 1.0)
        check_range(self, "beta_decay", 0.0, 1.0)

    @property
    def num_updates(self) -> int:
        return self.num_rounds

    @property
    def env_steps_per_update(self) -> int:
        return self.num_envs * self.rollout_steps

    @property
    def labels_per_round(self) -> int:
        return self.num_envs * self.rollout_steps

    @classmethod
    def for_env(cls, env: str, **overrides) -> "Config":
        """Defaults tuned for `env` (from `PRESETS`), then `overrides`."""
        return cls(**{"env": env, **PRESETS.get(env, {}), **overrides})


# Pendulum: a round of 8 × 100 steps and 500 gradient steps (see tests/algos/test_dagger.py for
# the levels). CartPole: longer rounds, since a good learner's episodes last 500 steps.
PRESETS: dict[str, dict[str, Any]] = {
    "Pendulum-v1": dict(hidden_sizes=(128, 128), num_envs=16, num_rounds=5),
    "CartPole-v1": dict(num_envs=4, rollout_steps=250, num_rounds=6),
}


def bc_config(config: Config) -> bc.Config:
    """The learner's BC configuration (network, loss, learning rate)."""
    return bc.Config(env=config.env, num_gradient_steps=config.steps_per_update,
                     steps_per_update=config.steps_per_update, batch_size=config.batch_size,
                     hidden_sizes=config.hidden_sizes, policy=config.policy, normalize_obs=config.normalize_obs,
                     learning_rate=config.learning_rate)


@functools.lru_cache(maxsize=None)
def make_env(env_name: str) -> envs.Environment:
    return envs.make(env_name)


# ----------------------------------------------------------------------------- state
@struct.dataclass
class Aggregate:
    """The aggregated dataset D, step (4): `obs` (raw) and the expert's `action` for each of the
    first `size` rows of a buffer of fixed capacity (demonstrations + N · labels_per_round)."""

    obs: jax.Array  # [capacity, *obs_shape]
    action: jax.Array  # [capacity, *action_shape] the expert's label
    size: jax.Array  # int32, rows filled


@struct.dataclass
class TrainState:
    learner: bc.TrainState  # params, optimizer state and the demonstrations' observation statistics
    data: Aggregate
    env_state: envs.EnvState
    obs: jax.Array  # [num_envs, *obs_shape] what the learner acts on next
    rng: jax.Array
    update_step: jax.Array  # int32, rounds done

    @property
    def params(self) -> bc.Policy:
        """The acting parameters (what `act` takes)."""
        return bc.policy(self.learner)


# ----------------------------------------------------------------------------- steps
def aggregate(data: Aggregate, obs: jax.Array, action: jax.Array) -> Aggregate:
    """Step (4): D ← D ∪ {(obs, action)}, appended after the `size` rows already there."""
    start = data.size
    return Aggregate(obs=jax.lax.dynamic_update_slice_in_dim(data.obs, obs.astype(data.obs.dtype), start, 0),
                     action=jax.lax.dynamic_update_slice_in_dim(data.action, action.astype(data.action.dtype),
                                                                start, 0),
                     size=data.size + obs.shape[0])


def sample(data: Aggregate, key: jax.Array, batch_size: int) -> buffers.Transition:
    """`batch_size` pairs drawn uniformly from the `size` filled rows (as a Transition with obs
    and action; the other fields are unused by BC)."""
    index = jax.random.randint(key, (batch_size,), 0, data.size)
    obs, action = data.obs[index], data.action[index]
    zeros = jnp.zeros(batch_size)
    return buffers.Transition(obs=obs, action=action, reward=zeros, terminated=zeros, truncated=zeros, next_obs=obs)


def mixture_beta(config: Config, round_index: jax.Array) -> jax.Array:
    """β_i = β · β_decay^(i−1) of step (2), for round i = round_index + 1."""
    return config.beta * config.beta_decay ** round_index.astype(jnp.float32)


def collect(config: Config, state: TrainState, learner: bc.TrainState):
    """Steps (2)–(3): `rollout_steps` steps of `num_envs` environments under the β_i-mixture,
    every visited state labelled by the expert. Returns (env_state, obs, rng, obs [L], labels [L],
    ended-episode returns and flags [L])."""
    env = make_env(config.env)
    expert = experts.get(config.expert, config.env)
    bcc = bc_config(config)
    beta = mixture_beta(config, state.update_step)

    def step(carry, key):
        env_state, obs = carry
        expert_key, learner_key, mix_key, env_key = jax.random.split(key, 4)
        label = expert(obs, expert_key)
        own = bc.act(bcc, bc.policy(learner), obs, learner_key)
        use_expert = jax.random.uniform(mix_key, (obs.shape[0],)) < beta
        shape = (-1,) + (1,) * (own.ndim - 1)
        action = jnp.where(use_expert.reshape(shape), label.astype(own.dtype), own)
        env_state, ts = env.step(env_key, env_state, action)
        return (env_state, ts.obs), (obs, label, ts.episode_return, ts.done)

    rng, collect_key = jax.random.split(state.rng)
    (env_state, obs), (visited, labels, returns, done) = jax.lax.scan(
        step, (state.env_state, state.obs), jax.random.split(collect_key, config.rollout_steps))
    flat = lambda x: x.reshape((-1,) + x.shape[2:])  # noqa: E731
    return env_state, obs, rng, flat(visited), flat(labels), flat(returns), flat(done)


# ----------------------------------------------------------------------------- init / update / train
def init(config: Config, key: jax.Array, demos: buffers.Transition) -> TrainState:
    """A fresh learner (bc.init: the demonstrations' statistics), D = the demonstrations."""
    env = make_env(config.env)
    datasets.check_shapes(demos, env)
    key, learner_key, reset_key = jax.random.split(key, 3)
    learner = bc.init(bc_config(config), learner_key, demos)
    n = demos.obs.shape[0]
    capacity = n + config.num_rounds * config.labels_per_round
    action = jnp.asarray(demos.action)
    data = Aggregate(obs=jnp.zeros((capacity,) + demos.obs.shape[1:], jnp.float32),
                     action=jnp.zeros((capacity,) + action.shape[1:], action.dtype), size=jnp.zeros((), jnp.int32))
    data = aggregate(data, jnp.asarray(demos.obs, jnp.float32), action)
    env_state, obs = env.reset(reset_key, config.num_envs)
    return TrainState(learner=learner, data=data, env_state=env_state, obs=obs, rng=key,
                      update_step=jnp.zeros((), jnp.int32))


def update(config: Config, state: TrainState, demos: buffers.Transition | None = None) -> tuple[TrainState, dict]:
    """One DAgger round: BC on D (1), run the mixture and label its states (2)–(3), aggregate (4).
    (`demos` are already in D since `init`; the argument keeps the contract's signature.)"""
    bcc = bc_config(config)
    rng, train_key = jax.random.split(state.rng)

    def gradient_step(learner, key):
        return bc.gradient_step(bcc, learner, sample(state.data, key, config.batch_size))

    learner, losses = jax.lax.scan(gradient_step, state.learner,
                                   jax.random.split(train_key, config.steps_per_update))
    env_state, obs, rng, visited, labels, returns, done = collect(config, state.replace(rng=rng), learner)

    # How far the learner's own actions are from the expert's labels on the states it visited.
    own = bc.act(bcc, bc.policy(learner), visited, rng)
    if jnp.issubdtype(labels.dtype, jnp.integer):
        disagreement = jnp.mean(own != labels)
    else:
        disagreement = jnp.mean(jnp.sum((own - labels) ** 2, axis=-1))
    data = aggregate(state.data, visited, labels)
    done = done.astype(jnp.float32)
    episodes = done.sum()
    metrics = {**jax.tree.map(jnp.mean, losses),
               "expert_disagreement": disagreement,
               "aggregate_size": data.size.astype(jnp.float32),
               "beta": mixture_beta(config, state.update_step),
               "train/episode_return": jnp.where(episodes > 0, (returns * done).sum() / episodes, jnp.nan),
               "train/episodes": episodes}
    return TrainState(learner=learner.replace(update_step=learner.update_step + 1), data=data, env_state=env_state,
                      obs=obs, rng=rng, update_step=state.update_step + 1), metrics


def act(config: Config, params: bc.Policy, obs: jax.Array, key: jax.Array, deterministic: bool = True) -> jax.Array:
    """The learner's action for raw observations `obs`; `params` is `state.params`."""
    return bc.act(bc_config(config), params, obs, key, deterministic)


def evaluate(config: Config, state: TrainState) -> jax.Array:
    """Returns of `eval_episodes` deterministic-learner episodes, [eval_episodes]."""
    key = jax.random.fold_in(state.rng, 0x5EED)  # independent of the training stream
    return run_episodes(make_env(config.env), functools.partial(act, config, state.params), key,
                        config.eval_episodes)


def train(config: Config, key: jax.Array, demos: buffers.Transition):
    """`init` + `lax.scan` of `update` (one round each), evaluating every `eval_every` rounds and at
    the end. Returns (final state, per-round metrics [num_rounds], eval returns [num_evals, episodes])."""
    state = init(config, key, demos)
    return train_loop(lambda s: update(config, s, demos), functools.partial(evaluate, config), state,
                      config.num_updates, config.eval_every)
