"""AIRL — Adversarial Inverse Reinforcement Learning (Fu, Luo & Levine 2018, "Learning Robust
Rewards with Adversarial Inverse Reinforcement Learning", arXiv:1710.11248; seed 003's §4).

GAIL's discriminator (`purerl.algos.gail`) is a classifier with no structure; its output is a
good *policy* reward for the one environment it was trained in, and says little elsewhere. AIRL
gives the discriminator the form of an advantage, so that a part of it is a reward:

    (1) f(s, a, s′) = g(s) + γ (1 − terminal) h(s′) − h(s)       g: the reward, h: a shaping potential
    (2) D(s, a, s′) = exp f / (exp f + π(a|s))   ⇔   logit D = f(s, a, s′) − log π(a|s)

(`discriminator_logit`). D is the probability that a transition is the expert's; it is trained
with GAIL's binary cross-entropy (`gail.discriminator_loss`, label 1 on expert transitions):

    (3) L_D = −E_πE[log D] − E_π[log(1 − D)]                     (+ GAIL's optional gradient penalty)

and the policy maximizes, by PPO (`ppo.rollout` / `ppo.learn`), the discounted sum of

    (4) r̂(s, a, s′) = f(s, a, s′) − α log π(a|s)      (α = 1: log D − log(1 − D), Fu et al.'s)

with α = 1 an entropy-regularized return (Fu et al.'s §5: at optimum f* is the advantage and g*
the expert's reward up to a constant, for a state-only g under deterministic dynamics); the
−log π of (4) is then the entropy term, and PPO's own entropy bonus is off by default (`ent_coef`
0). `log_pi_coef` α < 1 weighs that entropy term down: the Pendulum preset uses α = 0 (the
policy's reward is f, as in the `imitation` library's AIRL), since with α = 1 PPO's Gaussian
policy there earns more by widening than by imitating (measured: below random returns).

g depends on the state only (`state_only`, the disentangled reward of Fu et al.'s §5), which is
what makes it transferable: `reward_function(config, state)` exports g as a
`reward_fn(obs, action, next_obs)` for `purerl.envs.variant`, so any purerl algorithm trains on
it, e.g. on a Pendulum with another mass. With `state_only=False`, g takes (s, a).

Absorbing states (`absorbing`, Kostrikov et al. 2019, "Discriminator-Actor-Critic",
arXiv:1809.02925, §4.2). Eq. (1) drops h(s′) after a true terminal, and the reward ends there:
an episode that ends early then gains whenever f is negative on the policy's states, a bias
towards (or away from) terminals that is not the expert's. With `absorbing`, a terminal leads
to an absorbing state s_a that loops on itself with one action (log π = 0), and both the
discriminator and the policy see it. As in DAC, g and h take one more input, an indicator bit:
0 on every real state, and s_a is the zero observation with the bit set (two free scalars for
g(s_a) and h(s_a) would move by about one Adam step size per step, far too slowly),

    (5) f(s, a, s_a) = g(s) + γ h(s_a) − h(s),    f_a = f(s_a, ·, s_a) = g(s_a) − (1 − γ) h(s_a)

each terminal transition in a discriminator batch brings one absorbing transition (logit f_a)
with it, and the policy's reward of a terminal transition adds the absorbing tail
Σ_{k≥1} γᵏ f_a = γ f_a / (1 − γ). An expert who never ends an episode (CartPole's 500 steps) then
teaches the discriminator that s_a is the policy's, and ending early costs the policy.

One `update` is one PPO iteration with the reward replaced, as in GAIL: `ppo.rollout`, then
`disc_steps` Adam steps of (3) on `disc_batch_size` policy transitions of this rollout against as
many expert transitions (log π of the expert's actions under the current policy), then the
rollout's rewards (4) from the updated discriminator, then `ppo.learn`. g and h see raw
observations normalized with the demonstrations' mean and standard deviation. The
demonstrations (whole episodes with next_obs and terminal flags) are an argument of the compiled
program, so `jax.vmap(train, in_axes=(None, 0, None))` runs many seeds on one copy.

Usage:
    purerl collect --kind expert --expert scripted --env CartPole-v1 --episodes 4 --out demos/cartpole-4
    purerl train airl --env CartPole-v1 --dataset demos/cartpole-4 --num-seeds 8
    state, metrics, eval_returns = jax.jit(jax.vmap(airl.train, in_axes=(None, 0, None)))(
        airl.Config.for_env("CartPole-v1"), keys, demos.transitions)
    reward_fn = airl.reward_function(config, jax.tree.map(lambda x: x[0], state))   # seed 0's g
    envs.variant("Pendulum-v1-heavy-airl", "Pendulum-v1", reward_fn=reward_fn, m=1.5)
"""

from __future__ import annotations

import functools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from purerl import buffers, datasets, envs
from purerl.algos import gail, ppo
from purerl.config import check_bool, check_int, check_range, check_sizes, static
from purerl.evaluation import train_loop

DEMONSTRATIONS = True


# ----------------------------------------------------------------------------- config
@struct.dataclass
class Config:
    """AIRL hyperparameters: PPO's (see `purerl.algos.ppo.Config`; `ppo_config` builds it) and
    the discriminator's. Static fields fix the compiled program; float fields can be swept with
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
    disc_hidden_sizes: tuple[int, ...] = static((64, 64))  # the MLPs of g and h (tanh)
    state_only: bool = static(True)  # g(s) (transferable, Fu et al. §5) or g(s, a)
    absorbing: bool = static(True)  # terminals lead to a learned absorbing state (eq. 5, DAC §4.2)
    disc_steps: int = static(4)  # discriminator Adam steps per update
    disc_batch_size: int = static(256)  # policy and expert transitions (each) per discriminator step
    eval_every: int = static(10)  # updates between evaluations
    eval_episodes: int = static(8)  # deterministic-policy episodes per evaluation (true reward)
    # -- sweepable floats
    learning_rate: float = 2.5e-4  # PPO's Adam step size (initial value when annealed)
    gamma: float = 0.99  # discount γ, of PPO and of eq. (1)
    gae_lambda: float = 0.95  # GAE λ
    clip_eps: float = 0.2  # PPO's surrogate clip ε
    vf_coef: float = 0.5  # PPO's c_V
    ent_coef: float = 0.0  # PPO's entropy bonus (eq. 4's −log π is the entropy term already)
    max_grad_norm: float = 0.5  # PPO's global-norm gradient clipping
    init_log_std: float = 0.0  # initial log σ of the Gaussian policy (continuous actions)
    disc_learning_rate: float = 3e-4  # the discriminator's Adam step size
    grad_penalty: float = 0.0  # GAIL's eq. (3) coefficient on the discriminator's input (0: off)
    log_pi_coef: float = 1.0  # α of eq. (4): the weight of −log π in the policy's reward

    def __post_init__(self):
        envs.check_name(self.env)
        for name in ("total_timesteps", "num_envs", "num_steps", "disc_steps", "disc_batch_size"):
            check_int(self, name)
        check_sizes(self, "disc_hidden_sizes")
        check_bool(self, "state_only")
        check_bool(self, "absorbing")
        if self.total_timesteps < self.num_envs * self.num_steps:
            raise ValueError(f"Config.total_timesteps={self.total_timesteps} is invalid: must be ≥ one rollout, "
                             f"num_envs*num_steps={self.num_envs * self.num_steps}")
        check_range(self, "disc_learning_rate", 0.0, low_inclusive=False)
        check_range(self, "grad_penalty", 0.0)
        check_range(self, "log_pi_coef", 0.0)
        if self.absorbing:  # eq. (5)'s tail γ f_a / (1 − γ)
            check_range(self, "gamma", 0.0, 1.0, high_inclusive=False)
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


# CartPole: the defaults (see tests/algos/test_airl.py for the levels). Pendulum (no terminals,
# so absorbing states change nothing but g's and h's input size; off, as measured): GAIL's Pendulum
# preset (PPO's γ 0.9, lr 1e-3, 10 epochs; gradient penalty 1) and α = 0, with the discriminator
# step size 3e-4: GAIL's 1e-3 made AIRL worse (8 seeds of one key set: mean 0.536, 3 seeds
# below 0.1, against 0.876 at 3e-4; 2e-3: 0.852, one seed at −0.04).
PRESETS: dict[str, dict[str, Any]] = {
    "CartPole-v1": dict(),
    "Pendulum-v1": dict(gail.PRESETS["Pendulum-v1"], log_pi_coef=0.0, disc_learning_rate=3e-4, absorbing=False),
}

ppo_config = gail.ppo_config  # the inner PPO configuration: the PPO fields of `Config`


@functools.lru_cache(maxsize=None)
def make_env(env_name: str) -> envs.Environment:
    """The environment without wrappers: shapes and action space for the discriminator."""
    return envs.make(env_name)


# ----------------------------------------------------------------------------- discriminator
class RewardShaping(nn.Module):
    """g and h of eq. (1): two MLPs (tanh) to one output each. `g(x)` takes the normalized
    observation (with the action appended when not state-only), `h(x)` the normalized observation
    (each with the absorbing indicator bit last when `Config.absorbing`)."""

    hidden_sizes: tuple[int, ...]

    def setup(self):
        self.reward = ppo.MLP(self.hidden_sizes, "tanh", 1, head_scale=1.0)
        self.shaping = ppo.MLP(self.hidden_sizes, "tanh", 1, head_scale=1.0)

    def __call__(self, g_input, obs):
        return self.g(g_input), self.h(obs)

    def g(self, x):
        return self.reward(x)[..., 0]

    def h(self, x):
        return self.shaping(x)[..., 0]


def make_discriminator(config: Config) -> RewardShaping:
    return RewardShaping(tuple(config.disc_hidden_sizes))


def features(env: envs.Environment, obs: jax.Array, obs_mean: jax.Array, obs_std: jax.Array,
             absorbing: bool = False) -> jax.Array:
    """Raw observations [B, *obs_shape] normalized with the demonstrations' statistics, flattened;
    with `absorbing`, the indicator bit (0: a real state) appended."""
    obs = datasets.normalize_obs(jnp.asarray(obs, jnp.float32), obs_mean, obs_std)
    x = obs.reshape((obs.shape[0], -1))
    if absorbing:
        x = jnp.concatenate([x, jnp.zeros((x.shape[0], 1))], axis=-1)
    return x


def g_input(config: Config, env: envs.Environment, x: jax.Array, action: jax.Array) -> jax.Array:
    """g's input: normalized observations, with the action (one-hot or clipped) when not state-only."""
    if config.state_only:
        return x
    if env.discrete:
        return jnp.concatenate([x, jax.nn.one_hot(action, env.action_space.n)], axis=-1)
    return jnp.concatenate([x, jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0).reshape((x.shape[0], -1))], -1)


def shaped_reward(g: jax.Array, h: jax.Array, h_next: jax.Array, terminated: jax.Array, gamma,
                  h_absorbing=None) -> jax.Array:
    """Eq. (1): f = g(s) + γ (1 − terminal) h(s′) − h(s) (no potential after a true terminal;
    a time-limit truncation keeps h(s′)). With `h_absorbing` = h(s_a), eq. (5): a terminal's
    next state is the absorbing state, f = g(s) + γ h(s_a) − h(s)."""
    terminated = terminated.astype(jnp.float32)
    if h_absorbing is None:
        return g + gamma * (1.0 - terminated) * h_next - h
    return g + gamma * ((1.0 - terminated) * h_next + terminated * h_absorbing) - h


def absorbing_f(g_absorbing, h_absorbing, gamma):
    """Eq. (5): f_a = g(s_a) + γ h(s_a) − h(s_a) of the absorbing state's self-loop."""
    return g_absorbing - (1.0 - gamma) * h_absorbing


def absorbing_loss(expert_logits, policy_logits, expert_terminated, policy_terminated, logit_a) -> jax.Array:
    """Eq. (3) on the batches with absorbing transitions: each terminal transition is followed by
    one absorbing transition of logit `logit_a` (= f_a, log π = 0 there), so each side's mean runs
    over its B transitions and its n terminals' absorbing ones,
    [Σ softplus(∓dᵢ) + n softplus(∓d_a)] / (B + n)."""
    n_e = jnp.sum(expert_terminated.astype(jnp.float32))
    n_p = jnp.sum(policy_terminated.astype(jnp.float32))
    expert = (jnp.sum(jax.nn.softplus(-expert_logits)) + n_e * jax.nn.softplus(-logit_a)) / (expert_logits.size + n_e)
    policy = (jnp.sum(jax.nn.softplus(policy_logits)) + n_p * jax.nn.softplus(logit_a)) / (policy_logits.size + n_p)
    return expert + policy


def discriminator_logit(f: jax.Array, log_pi: jax.Array) -> jax.Array:
    """Eq. (2): logit of D = exp f / (exp f + π(a|s)), which is f − log π(a|s) (and eq. 4's reward)."""
    return f - log_pi


def transition_f(config: Config, disc_params, env: envs.Environment, obs, action, next_obs, terminated,
                 obs_mean, obs_std) -> jax.Array:
    """f(s, a, s′) of eq. (1) for a batch of raw transitions [B, ...]."""
    network = make_discriminator(config)
    x = features(env, obs, obs_mean, obs_std, config.absorbing)
    x_next = features(env, next_obs, obs_mean, obs_std, config.absorbing)
    g, h = network.apply(disc_params, g_input(config, env, x, action), x)
    h_next = network.apply(disc_params, x_next, method=RewardShaping.h)
    h_absorbing = absorbing_values(config, disc_params, env)[1] if config.absorbing else None
    return shaped_reward(g, h, h_next, terminated, config.gamma, h_absorbing)


def absorbing_values(config: Config, disc_params, env: envs.Environment) -> tuple[jax.Array, jax.Array]:
    """(g(s_a), h(s_a)) of eq. (5): g and h on the zero observation with the indicator bit set (and,
    when g takes the action, a zero action)."""
    size = math.prod(env.obs_shape)
    x_a = jax.nn.one_hot(jnp.array([size]), size + 1)  # [1, obs size + 1]
    g_in = x_a
    if not config.state_only:
        action_size = env.action_space.n if env.discrete else math.prod(env.action_space.shape)
        g_in = jnp.concatenate([x_a, jnp.zeros((1, action_size))], -1)
    g_a, h_a = make_discriminator(config).apply(disc_params, g_in, x_a)
    return g_a[0], h_a[0]


def transition_f_absorbing(config: Config, disc_params, env: envs.Environment) -> jax.Array:
    """f_a of eq. (5) for the current g and h."""
    return absorbing_f(*absorbing_values(config, disc_params, env), config.gamma)


def policy_reward(f: jax.Array, log_pi: jax.Array, terminated: jax.Array, log_pi_coef, gamma,
                  f_absorbing=None) -> jax.Array:
    """Eq. (4), r̂ = f − α log π(a|s); with `f_absorbing` = f_a, eq. (5)'s absorbing tail
    γ f_a / (1 − γ) is added to each terminal transition's reward."""
    reward = f - log_pi_coef * log_pi
    if f_absorbing is None:
        return reward
    return reward + terminated.astype(jnp.float32) * (gamma / (1.0 - gamma) * f_absorbing)


def policy_log_prob(config: Config, policy: ppo.TrainState, raw_obs: jax.Array, action: jax.Array) -> jax.Array:
    """log π(a|s) of the current PPO policy for raw observations (normalized as the policy sees them)."""
    pc = ppo_config(config)
    env = ppo.make_env(pc.env, pc.normalize_obs)
    obs = env.normalize(policy.env_state.obs_stats, raw_obs)
    dist = ppo.make_network(pc, env).apply(policy.params, obs, method=ppo.ActorCritic.policy)
    return dist.log_prob(action)


# ----------------------------------------------------------------------------- state
# GAIL's: PPO's state, the discriminator's (here g and h) parameters and optimizer state, and the
# demonstrations' observation statistics.
TrainState = gail.TrainState


# ----------------------------------------------------------------------------- init / update / train
def init(config: Config, key: jax.Array, demos: buffers.Transition) -> TrainState:
    """PPO's fresh agent (`ppo.init`), fresh g and h, the demonstrations' statistics."""
    env = make_env(config.env)
    datasets.check_shapes(demos, env)
    key, policy_key, disc_key = jax.random.split(key, 3)
    policy = ppo.init(ppo_config(config), policy_key)
    obs_mean, obs_std = datasets.observation_stats(demos.obs)
    x = features(env, demos.obs[:1], obs_mean, obs_std, config.absorbing)
    disc_params = make_discriminator(config).init(disc_key, g_input(config, env, x, jnp.asarray(demos.action[:1])), x)
    disc_opt_state = optax.adam(config.disc_learning_rate).init(disc_params)
    return TrainState(policy=policy, disc_params=disc_params, disc_opt_state=disc_opt_state, obs_mean=obs_mean,
                      obs_std=obs_std)


def update(config: Config, state: TrainState, demos: buffers.Transition) -> tuple[TrainState, dict]:
    """One AIRL iteration: PPO rollout, `disc_steps` discriminator steps on eq. (3) (policy
    transitions of this rollout against expert transitions), rewards (4) in place of the
    environment's, then `ppo.learn`."""
    env = make_env(config.env)
    pc = ppo_config(config)
    policy = state.policy
    (env_state, obs, rng), traj = ppo.rollout(pc, policy.params, policy.env_state, policy.obs, policy.rng)
    flat = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), traj)

    def logits(params, batch_obs, action, next_obs, terminated, log_pi):
        f = transition_f(config, params, env, batch_obs, action, next_obs, terminated, state.obs_mean,
                         state.obs_std)
        return discriminator_logit(f, log_pi)

    def disc_step(carry, key):
        params, opt_state = carry
        policy_key, expert_key, penalty_key = jax.random.split(key, 3)
        i = jax.random.randint(policy_key, (config.disc_batch_size,), 0, flat.reward.shape[0])
        expert = datasets.sample(demos, expert_key, config.disc_batch_size)
        expert_log_pi = policy_log_prob(config, policy, jnp.asarray(expert.obs, jnp.float32), expert.action)
        x_e = features(env, expert.obs, state.obs_mean, state.obs_std, config.absorbing)
        x_p = features(env, flat.raw_obs[i], state.obs_mean, state.obs_std, config.absorbing)
        g_net = make_discriminator(config)

        def loss_fn(params):
            expert_logits = logits(params, expert.obs, expert.action, expert.next_obs, expert.terminated,
                                   expert_log_pi)
            policy_logits = logits(params, flat.raw_obs[i], flat.action[i], flat.raw_final_obs[i],
                                   flat.terminated[i], flat.log_prob[i])
            if config.absorbing:
                bce = absorbing_loss(expert_logits, policy_logits, expert.terminated, flat.terminated[i],
                                     transition_f_absorbing(config, params, env))
            else:
                bce = gail.discriminator_loss(expert_logits, policy_logits)
            # GAIL's gradient penalty, on the reward network g's state input
            g_of = lambda x: g_net.apply(params, x[None], method=RewardShaping.g)[0]  # noqa: E731
            penalty = gail.gradient_penalty(g_of, x_e, x_p, penalty_key) if config.state_only else 0.0
            aux = {"disc/loss": bce, "disc/expert_accuracy": jnp.mean(expert_logits > 0),
                   "disc/policy_accuracy": jnp.mean(policy_logits < 0)}
            return bce + config.grad_penalty * penalty, aux

        grads, aux = jax.grad(loss_fn, has_aux=True)(params)
        updates, opt_state = optax.adam(config.disc_learning_rate).update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), aux

    rng, disc_key = jax.random.split(rng)
    (disc_params, disc_opt_state), disc_aux = jax.lax.scan(
        disc_step, (state.disc_params, state.disc_opt_state), jax.random.split(disc_key, config.disc_steps))
    f = transition_f(config, disc_params, env, flat.raw_obs, flat.action, flat.raw_final_obs, flat.terminated,
                     state.obs_mean, state.obs_std)
    f_a = transition_f_absorbing(config, disc_params, env) if config.absorbing else None
    reward = policy_reward(f, flat.log_prob, flat.terminated, config.log_pi_coef, config.gamma, f_a)
    reward = reward.reshape(traj.reward.shape)
    metrics_absorbing = {"reward/f_absorbing": f_a} if config.absorbing else {}
    params, opt_state, rng, aux = ppo.learn(pc, policy.params, policy.opt_state, traj.replace(reward=reward), rng)
    metrics = {**jax.tree.map(jnp.mean, aux), **jax.tree.map(lambda x: x[-1], disc_aux),
               **ppo.episode_metrics(traj), "reward/mean": reward.mean(), "reward/f_mean": f.mean(),
               "disc/policy_prob": jnp.mean(jax.nn.sigmoid(discriminator_logit(f, flat.log_prob))), **metrics_absorbing}
    policy = ppo.TrainState(params=params, opt_state=opt_state, env_state=env_state, obs=obs, rng=rng,
                            update_step=policy.update_step + 1)
    return state.replace(policy=policy, disc_params=disc_params, disc_opt_state=disc_opt_state), metrics


act = gail.act  # the PPO policy's action (`params` is `state.params`)
evaluate = gail.evaluate  # deterministic-policy episodes on the true reward, [eval_episodes]


def train(config: Config, key: jax.Array, demos: buffers.Transition):
    """`init` + `lax.scan` of `update`, evaluating every `eval_every` updates and at the end.
    Returns (final state, per-update metrics [num_updates], eval returns [num_evals, episodes])."""
    state = init(config, key, demos)
    return train_loop(lambda s: update(config, s, demos), functools.partial(evaluate, config), state,
                      config.num_updates, config.eval_every)


# ----------------------------------------------------------------------------- the learned reward
def reward_function(config: Config, state: TrainState):
    """The learned reward g of one seed (an unbatched `state`) as `reward_fn(obs, action, next_obs)`
    on one raw transition, for `purerl.envs.variant(..., reward_fn=...)`: any purerl algorithm
    can then train on it, in this environment or in one with other dynamics. The action comes in
    the environment's units (what the backend steps with); a continuous one is rescaled to the
    agent's [−1, 1], the units g was trained on."""
    env = make_env(config.env)
    network = make_discriminator(config)
    disc_params, mean, std = state.disc_params, state.obs_mean, state.obs_std
    if not env.discrete:
        space = envs.make(config.env, rescale_actions=False).action_space
        low, high = jnp.asarray(space.low, jnp.float32), jnp.asarray(space.high, jnp.float32)

    def reward_fn(obs, action, next_obs):
        x = features(env, obs[None], mean, std, config.absorbing)
        action = jnp.asarray(action)
        if not env.discrete:
            action = 2.0 * (action.astype(jnp.float32) - low) / (high - low) - 1.0
        return network.apply(disc_params, g_input(config, env, x, action[None]),
                             method=RewardShaping.g)[0]

    return reward_fn
