"""GAIL — Generative Adversarial Imitation Learning (Ho & Ermon 2016, "Generative Adversarial
Imitation Learning", arXiv:1606.03476; seed 003's §4).

A discriminator D(s, a) learns to tell the expert's state-action pairs from the policy's, and
the policy is trained by RL (here PPO, `purerl.algos.ppo`) on a reward that is high where D
takes its pairs for the expert's. Ho & Ermon's saddle point (their eq. 16) is

    (1) min_π max_D  E_π[log D(s, a)] + E_πE[log(1 − D(s, a))] − λ H(π)

with D the probability that a pair is the *policy's*. purerl states it the other way round,
as most implementations do: **D(s, a) = σ(d(s, a)) is the probability that (s, a) is the
expert's** (D → 1 on expert pairs), d the discriminator network's logit. The discriminator then
minimizes the binary cross-entropy with label 1 on expert pairs and 0 on policy pairs,

    (2) L_D = −E_πE[log D(s, a)] − E_π[log(1 − D(s, a))]
            =  E_πE[softplus(−d(s, a))] + E_π[softplus(d(s, a))]

(`discriminator_loss`), optionally plus a gradient penalty on interpolates of the two batches
(Gulrajani et al. 2017, arXiv:1704.00028; used for adversarial imitation by Kostrikov et al.
2019, DAC, arXiv:1809.02925), x̂ = ε x_E + (1 − ε) x_π with ε ~ U[0, 1] per pair:

    (3) L_GP = grad_penalty · E[(‖∇_x̂ d(x̂)‖₂ − 1)²]          (off by default: grad_penalty = 0)

and the policy maximizes the discounted sum of the reward (`policy_reward`, config `reward`)

    (4) "gail":  r(s, a) = −log(1 − D(s, a)) = softplus(d(s, a))      (> 0; Ho & Ermon's cost log D
                                                                         of their convention, negated)
    (5) "airl":  r(s, a) = log D − log(1 − D) = d(s, a)                (Fu et al. 2018's form of the
                                                                         reward, arXiv:1710.11248)

The entropy term −λH(π) of (1) is PPO's entropy bonus, λ = `ent_coef`. Ho & Ermon train the
policy with TRPO; PPO is the common replacement (e.g. the `imitation` library's GAIL).

One `update` is one PPO iteration with the environment's reward replaced: `ppo.rollout`
(`num_envs × num_steps` steps), then `disc_steps` Adam steps of (2)+(3), each on
`disc_batch_size` policy pairs drawn from this rollout and as many expert pairs drawn from the
demonstrations, then the rollout's rewards recomputed with the updated discriminator by (4) or
(5), then `ppo.learn` (GAE and the clipped-surrogate epochs). The discriminator sees raw
observations normalized with the demonstrations' mean and standard deviation (kept in the train
state, like BC's), and actions one-hot for discrete environments, clipped to [−1, 1] (the
demonstrations' range) for continuous ones. Evaluation runs the deterministic policy on the
*true* environment reward. The demonstrations are an argument of the compiled program (never
stored per seed), so `jax.vmap(train, in_axes=(None, 0, None))` runs many seeds on one copy.

Usage:
    purerl collect --kind expert --expert scripted --env CartPole-v1 --episodes 4 --out demos/cartpole-4
    purerl train gail --env CartPole-v1 --dataset demos/cartpole-4 --num-seeds 8
    demos = experts.demonstrations("CartPole-v1", "scripted", episodes=4)
    state, metrics, eval_returns = jax.jit(jax.vmap(gail.train, in_axes=(None, 0, None)))(
        gail.Config.for_env("CartPole-v1"), keys, demos.transitions)
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from purerl import buffers, datasets, envs
from purerl.algos import ppo
from purerl.config import check_choice, check_int, check_range, check_sizes, static
from purerl.evaluation import train_loop

DEMONSTRATIONS = True
REWARDS = ("gail", "airl")


# ----------------------------------------------------------------------------- config
@struct.dataclass
class Config:
    """GAIL hyperparameters: PPO's (see `purerl.algos.ppo.Config`; `ppo_config` builds it) and the
    discriminator's. Static fields fix the compiled program; float fields can be swept with
    `jax.vmap` (see `purerl.config.sweep_axes`)."""

    # -- static: environment, data and program shape
    env: str = static("CartPole-v1")  # environment of the demonstrations, of training and of evaluation
    dataset: str = static("")  # path of the demonstrations the runner loads (`train` takes them itself)
    total_timesteps: int = static(200_000)  # environment steps per seed (all envs together)
    num_envs: int = static(8)  # parallel environments per seed
    num_steps: int = static(128)  # PPO rollout length per environment per update
    update_epochs: int = static(4)  # PPO passes over each rollout
    num_minibatches: int = static(4)  # PPO minibatches per pass
    hidden_sizes: tuple[int, ...] = static((64, 64))  # PPO's actor and critic MLPs
    activation: str = static("tanh")  # PPO's hidden activation, "tanh" or "relu"
    anneal_lr: bool = static(True)  # PPO's learning rate decays linearly to 0 over training
    normalize_advantages: bool = static(True)  # PPO's per-minibatch advantage standardization
    clip_value_loss: bool = static(True)  # PPO's clipped value loss
    normalize_obs: bool = static(False)  # PPO's running observation normalization (the policy's input only)
    disc_hidden_sizes: tuple[int, ...] = static((64, 64))  # the discriminator's MLP (tanh)
    disc_steps: int = static(4)  # discriminator Adam steps per update
    disc_batch_size: int = static(256)  # policy pairs and expert pairs (each) per discriminator step
    reward: str = static("gail")  # policy reward: "gail" −log(1 − D) (eq. 4) or "airl" log D − log(1 − D) (eq. 5)
    eval_every: int = static(10)  # updates between evaluations
    eval_episodes: int = static(8)  # deterministic-policy episodes per evaluation (true reward)
    # -- sweepable floats
    learning_rate: float = 2.5e-4  # PPO's Adam step size (initial value when annealed)
    gamma: float = 0.99  # discount γ
    gae_lambda: float = 0.95  # GAE λ
    clip_eps: float = 0.2  # PPO's surrogate clip ε
    vf_coef: float = 0.5  # PPO's c_V
    ent_coef: float = 0.01  # λ of eq. (1): PPO's entropy bonus c_H
    max_grad_norm: float = 0.5  # PPO's global-norm gradient clipping
    init_log_std: float = 0.0  # initial log σ of the Gaussian policy (continuous actions)
    disc_learning_rate: float = 3e-4  # the discriminator's Adam step size
    grad_penalty: float = 0.0  # coefficient of eq. (3) (0: the paper's plain discriminator)

    def __post_init__(self):
        envs.check_name(self.env)
        for name in ("total_timesteps", "num_envs", "num_steps", "disc_steps", "disc_batch_size"):
            check_int(self, name)
        check_sizes(self, "disc_hidden_sizes")
        check_choice(self, "reward", REWARDS)
        if self.total_timesteps < self.num_envs * self.num_steps:
            raise ValueError(f"Config.total_timesteps={self.total_timesteps} is invalid: must be ≥ one rollout, "
                             f"num_envs*num_steps={self.num_envs * self.num_steps}")
        check_range(self, "disc_learning_rate", 0.0, low_inclusive=False)
        check_range(self, "grad_penalty", 0.0)
        ppo_config(self)  # PPO's fields, checked by ppo.Config itself

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


# CartPole: the defaults (see tests/algos/test_gail.py for the levels). Pendulum: PPO's
# Pendulum preset (RL Baselines3 Zoo's γ 0.9, lr 1e-3, 10 epochs, no entropy bonus), the
# gradient penalty, without which a seed in four collapsed, and a discriminator step size of
# 1e-3: at 3e-4 some seeds stopped well short of the expert (fractions of its return, 8 seeds
# of one key set: mean 0.847, min 0.501; with 1e-3: 0.972, min 0.944; 8 seeds of two more key
# sets: 0.940 and 0.929, min 0.711; about the same at 2e-3, 0.936 and 0.950, and at 3e-3, 0.963
# on the first key set; 1e-4 (0.648) and a penalty of 10 (0.502) were worse). benchmarks/imitation.py
# measures it.
PRESETS: dict[str, dict[str, Any]] = {
    "CartPole-v1": dict(),
    "Pendulum-v1": dict(total_timesteps=409_600, num_envs=16, num_steps=128, update_epochs=10,
                        num_minibatches=16, gamma=0.9, learning_rate=1e-3, ent_coef=0.0, normalize_obs=True,
                        clip_value_loss=False, grad_penalty=1.0, disc_learning_rate=1e-3),
}


def ppo_config(config: Config) -> ppo.Config:
    """The inner PPO configuration (policy network, optimizer, rollout shape); its total_timesteps
    is a whole number of updates, so that PPO's learning-rate annealing ends with training."""
    return ppo.Config(env=config.env, total_timesteps=config.num_updates * config.env_steps_per_update,
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
    """The environment without wrappers: shapes and action space for the discriminator."""
    return envs.make(env_name)


# ----------------------------------------------------------------------------- discriminator
def make_discriminator(config: Config) -> ppo.MLP:
    """d(s, a): an MLP (tanh, orthogonal init) from `pair_features` to one logit."""
    return ppo.MLP(tuple(config.disc_hidden_sizes), "tanh", 1, head_scale=1.0)


def pair_features(env: envs.Environment, obs: jax.Array, action: jax.Array, obs_mean: jax.Array,
                  obs_std: jax.Array) -> jax.Array:
    """The discriminator's input for raw observations [B, *obs_shape] and actions [B, ...]:
    (obs − mean) / std flattened, then the action one-hot (discrete) or clipped to [−1, 1]."""
    obs = datasets.normalize_obs(jnp.asarray(obs, jnp.float32), obs_mean, obs_std)
    obs = obs.reshape((obs.shape[0], -1))
    if env.discrete:
        action = jax.nn.one_hot(action, env.action_space.n)
    else:
        action = jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0).reshape((obs.shape[0], -1))
    return jnp.concatenate([obs, action], axis=-1)


def discriminator_loss(expert_logits: jax.Array, policy_logits: jax.Array) -> jax.Array:
    """Eq. (2): the binary cross-entropy with label 1 on expert pairs and 0 on policy pairs,
    −E_πE[log D] − E_π[log(1 − D)] = E_πE[softplus(−d)] + E_π[softplus(d)] for logits d
    (D = σ(d), the probability that a pair is the expert's)."""
    return jnp.mean(jax.nn.softplus(-expert_logits)) + jnp.mean(jax.nn.softplus(policy_logits))


def gradient_penalty(logit_fn, expert_x: jax.Array, policy_x: jax.Array, key: jax.Array) -> jax.Array:
    """Eq. (3) without its coefficient: E[(‖∇_x̂ d(x̂)‖₂ − 1)²] on x̂ = ε x_E + (1 − ε) x_π,
    ε ~ U[0, 1] per pair, `logit_fn(x [D]) -> d` for one pair."""
    eps = jax.random.uniform(key, (expert_x.shape[0], 1))
    mixed = eps * expert_x + (1.0 - eps) * policy_x
    grads = jax.vmap(jax.grad(logit_fn))(mixed)
    return jnp.mean((jnp.sqrt(jnp.sum(grads**2, axis=-1) + 1e-12) - 1.0) ** 2)


def policy_reward(logits: jax.Array, kind: str = "gail") -> jax.Array:
    """The policy's reward from discriminator logits d (D = σ(d), the expert's probability):
    "gail", eq. (4): −log(1 − D) = softplus(d); "airl", eq. (5): log D − log(1 − D) = d."""
    if kind == "gail":
        return jax.nn.softplus(logits)
    if kind == "airl":
        return logits
    raise ValueError(f"reward={kind!r} is invalid: must be one of {list(REWARDS)}")


# ----------------------------------------------------------------------------- state
@struct.dataclass
class TrainState:
    policy: ppo.TrainState  # PPO's params, optimizer state, environments, rng and update count
    disc_params: Any
    disc_opt_state: Any
    obs_mean: jax.Array  # [*obs_shape] the demonstrations' observation mean (the discriminator's input)
    obs_std: jax.Array  # [*obs_shape] their standard deviation + 1e-3

    @property
    def params(self):
        """The acting parameters (what `act` takes)."""
        return self.policy.params

    @property
    def rng(self) -> jax.Array:
        return self.policy.rng

    @property
    def update_step(self) -> jax.Array:
        return self.policy.update_step


# ----------------------------------------------------------------------------- init / update / train
def init(config: Config, key: jax.Array, demos: buffers.Transition) -> TrainState:
    """PPO's fresh agent (`ppo.init`), a fresh discriminator, the demonstrations' statistics."""
    env = make_env(config.env)
    datasets.check_shapes(demos, env)
    key, policy_key, disc_key = jax.random.split(key, 3)
    policy = ppo.init(ppo_config(config), policy_key)
    obs_mean, obs_std = datasets.observation_stats(demos.obs)
    example = pair_features(env, demos.obs[:1], jnp.asarray(demos.action[:1]), obs_mean, obs_std)
    disc_params = make_discriminator(config).init(disc_key, example)
    disc_opt_state = optax.adam(config.disc_learning_rate).init(disc_params)
    return TrainState(policy=policy, disc_params=disc_params, disc_opt_state=disc_opt_state, obs_mean=obs_mean,
                      obs_std=obs_std)


def discriminator_step(config: Config, state: TrainState, expert_x: jax.Array, policy_x: jax.Array,
                       key: jax.Array):
    """One Adam step on eq. (2) + (3) for feature batches [B, D] of each kind.
    Returns (disc_params, disc_opt_state, diagnostics)."""
    network = make_discriminator(config)

    def loss_fn(params):
        expert_logits = network.apply(params, expert_x)[:, 0]
        policy_logits = network.apply(params, policy_x)[:, 0]
        bce = discriminator_loss(expert_logits, policy_logits)
        penalty = gradient_penalty(lambda x: network.apply(params, x[None])[0, 0], expert_x, policy_x, key)
        aux = {"disc/loss": bce, "disc/grad_penalty": penalty,
               "disc/expert_accuracy": jnp.mean(expert_logits > 0), "disc/policy_accuracy": jnp.mean(policy_logits < 0)}
        return bce + config.grad_penalty * penalty, aux

    grads, aux = jax.grad(loss_fn, has_aux=True)(state.disc_params)
    updates, opt_state = optax.adam(config.disc_learning_rate).update(grads, state.disc_opt_state, state.disc_params)
    return optax.apply_updates(state.disc_params, updates), opt_state, aux


def update(config: Config, state: TrainState, demos: buffers.Transition) -> tuple[TrainState, dict]:
    """One GAIL iteration: PPO rollout, `disc_steps` discriminator steps (policy pairs of this
    rollout against expert pairs of `demos`), rewards (4)/(5) from the updated discriminator in
    place of the environment's, then `ppo.learn`."""
    env = make_env(config.env)
    pc = ppo_config(config)
    network = make_discriminator(config)
    policy = state.policy
    (env_state, obs, rng), traj = ppo.rollout(pc, policy.params, policy.env_state, policy.obs, policy.rng)
    flat = lambda x: x.reshape((-1,) + x.shape[2:])  # noqa: E731
    policy_x = pair_features(env, flat(traj.raw_obs), flat(traj.action), state.obs_mean, state.obs_std)

    def disc_step(s, key):
        policy_key, expert_key, penalty_key = jax.random.split(key, 3)
        index = jax.random.randint(policy_key, (config.disc_batch_size,), 0, policy_x.shape[0])
        expert = datasets.sample(demos, expert_key, config.disc_batch_size)
        expert_x = pair_features(env, expert.obs, expert.action, s.obs_mean, s.obs_std)
        params, opt_state, aux = discriminator_step(config, s, expert_x, policy_x[index], penalty_key)
        return s.replace(disc_params=params, disc_opt_state=opt_state), aux

    rng, disc_key = jax.random.split(rng)
    state, disc_aux = jax.lax.scan(disc_step, state, jax.random.split(disc_key, config.disc_steps))
    logits = network.apply(state.disc_params, policy_x)[:, 0]
    reward = policy_reward(logits, config.reward).reshape(traj.reward.shape)
    params, opt_state, rng, aux = ppo.learn(pc, policy.params, policy.opt_state, traj.replace(reward=reward), rng)
    metrics = {**jax.tree.map(jnp.mean, aux), **jax.tree.map(lambda x: x[-1], disc_aux),
               **ppo.episode_metrics(traj), "reward/mean": reward.mean(),
               "disc/policy_prob": jnp.mean(jax.nn.sigmoid(logits))}
    policy = ppo.TrainState(params=params, opt_state=opt_state, env_state=env_state, obs=obs, rng=rng,
                            update_step=policy.update_step + 1)
    return state.replace(policy=policy), metrics


def act(config: Config, params, obs: jax.Array, key: jax.Array, deterministic: bool = True) -> jax.Array:
    """The policy's action for a batch of observations (normalized ones when `normalize_obs`);
    `params` is `state.params`."""
    return ppo.act(ppo_config(config), params, obs, key, deterministic)


def evaluate(config: Config, state: TrainState) -> jax.Array:
    """Returns (the environment's true reward) of `eval_episodes` deterministic-policy episodes,
    [eval_episodes]."""
    return ppo.evaluate(ppo_config(config), state.policy)


def train(config: Config, key: jax.Array, demos: buffers.Transition):
    """`init` + `lax.scan` of `update`, evaluating every `eval_every` updates and at the end.
    Returns (final state, per-update metrics [num_updates], eval returns [num_evals, episodes])."""
    state = init(config, key, demos)
    return train_loop(lambda s: update(config, s, demos), functools.partial(evaluate, config), state,
                      config.num_updates, config.eval_every)
