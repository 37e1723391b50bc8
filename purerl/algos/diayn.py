"""DIAYN — Diversity Is All You Need (Eysenbach et al. 2018, "Diversity is All You Need:
Learning Skills without a Reward Function", arXiv:1802.06070; seed 000).

Skills are learned without a task reward. A skill z ~ p(z), uniform over K = `num_skills`
categories, is drawn at the start of every episode and held for all of it; the policy
π(a|s, z) sees the observation with z appended (one-hot) and is trained by SAC
(`purerl.algos.sac`) with a fixed temperature α (0.1, the paper's choice) on the pseudo-reward

    (1) r_z(s′) = log q_φ(z|s′) − log p(z) = log softmax(q_φ(s′))_z + log K

where the discriminator q_φ(z|s) sees states only (not actions, not z) and is trained by
cross-entropy on visited states,

    (2) L(φ) = −E_{(s′, z) ~ buffer}[log q_φ(z|s′)].

Together, (1) with SAC's entropy term maximizes the paper's objective
F(θ) = I(S; Z) + H[A|S] − I(A; Z|S) through its variational lower bound (their eq. 3).
purerl scores the state an action leads to (s′, the true next observation, before any
auto-reset), so that the reward is a function of the transition stored in the buffer. The
rewards of a minibatch are computed when it is sampled, with the current discriminator (as
the authors' code does), then (2) takes one Adam step on the same minibatch.

One `update` = `num_envs` environments take `steps_per_update` steps each (uniformly random
actions before `learning_starts`), then `gradient_steps` × (SAC's `agent_step` on the batch
with reward (1), then a discriminator step (2)).

Downstream use of the learned skills (paper §4.2):
* **hierarchical** — `skill_backend` / `register_skills` make an environment whose K discrete
  actions run the frozen skill policies for `skill_steps` steps each; any purerl discrete
  learner trains the high-level policy that picks a skill every `skill_steps`:
  `dqn.Config(env=name, total_timesteps=…, **HIGH_LEVEL_DQN)` is the measured choice on the
  point mass's sparse goal (tests/algos/test_diayn.py, `benchmarks/skills.py`).
* **fine-tuning** — `best_skill` finds the skill whose task return is highest and
  `finetune(config, pretrained, key)` continues SAC on the task reward with that skill fixed
  (`Config(skill_reward=False, fixed_skill=z)`), starting from the pretrained actor.

Defaults are for the 2-D point mass (`point/open`); the paper's networks are [300, 300],
ours smaller for it. `PRESETS` has a Brax ant configuration for an accelerator.

Usage:
    purerl train diayn --env point/open --num-seeds 4
    state, metrics, eval_returns = jax.jit(jax.vmap(diayn.train, in_axes=(None, 0)))(diayn.Config(), keys)
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from purerl import buffers, envs
from purerl.algos import sac
from purerl.config import check_bool, check_int, check_range, check_sizes, static
from purerl.evaluation import train_loop


# ----------------------------------------------------------------------------- config
@struct.dataclass
class Config:
    """DIAYN hyperparameters (SAC's, plus the skills and the discriminator). Static fields fix
    the compiled program; float fields can be swept with `jax.vmap`."""

    # -- static: environment and program shape
    env: str = static("point/open")  # environment name (continuous actions)
    num_skills: int = static(8)  # K, the number of skills; p(z) is uniform over them
    total_timesteps: int = static(20_000)  # environment steps per seed (all envs together)
    num_envs: int = static(4)  # parallel environments, each with its own skill
    steps_per_update: int = static(4)  # steps each environment takes per update
    gradient_steps: int = static(4)  # SAC + discriminator steps per update (after learning_starts)
    batch_size: int = static(128)  # transitions per gradient step
    buffer_size: int = static(100_000)  # replay capacity in transitions
    learning_starts: int = static(1_000)  # environment steps of random actions before learning
    hidden_sizes: tuple[int, ...] = static((64, 64))  # actor and critics (ReLU MLPs)
    disc_hidden_sizes: tuple[int, ...] = static((64, 64))  # discriminator q_φ(z|s)
    skill_reward: bool = static(True)  # True: reward (1); False: the environment's reward (fine-tuning)
    fixed_skill: int = static(-1)  # ≥ 0: every episode runs this skill; −1: z ~ p(z) per episode
    eval_every: int = static(500)  # updates between evaluations
    eval_episodes: int = static(12)  # deterministic episodes per evaluation (skill = episode mod K)
    # -- sweepable floats
    learning_rate: float = 3e-4  # Adam step size of SAC's actor and critics
    disc_learning_rate: float = 3e-4  # Adam step size of the discriminator, eq. (2)
    gamma: float = 0.99  # discount γ
    tau: float = 0.005  # Polyak rate of the target critics
    alpha: float = 0.1  # SAC's temperature, fixed (the paper's 0.1)

    def __post_init__(self):
        for name in ("num_skills", "total_timesteps", "num_envs", "steps_per_update", "batch_size",
                     "buffer_size", "eval_every", "eval_episodes"):
            check_int(self, name)
        check_int(self, "gradient_steps", low=0)
        check_int(self, "learning_starts", low=0)
        check_int(self, "fixed_skill", low=-1)
        check_sizes(self, "disc_hidden_sizes")
        check_bool(self, "skill_reward")
        if self.num_skills < 2:
            raise ValueError(f"Config.num_skills={self.num_skills} is invalid: must be ≥ 2 (K skills to tell apart)")
        if self.fixed_skill >= self.num_skills:
            raise ValueError(f"Config.fixed_skill={self.fixed_skill} is invalid: must be −1 (sample z ~ p(z)) or "
                             f"a skill in 0 … num_skills − 1 = {self.num_skills - 1}")
        check_range(self, "disc_learning_rate", 0.0, low_inclusive=False)
        sac_cfg = sac_config(self)  # SAC's own checks: env, sizes, learning rate, γ, τ, α
        # Brax environments are all continuous: do not build one (seconds on CPU) to check it
        if not self.env.startswith("brax/") and isinstance(make_env(self.env).action_space, envs.Discrete):
            raise ValueError(f"Config.env={self.env!r} is invalid: DIAYN here needs continuous actions "
                             "(the point mass, Pendulum-v1, MountainCarContinuous-v0, Brax)")
        del sac_cfg

    @property
    def env_steps_per_update(self) -> int:
        return self.num_envs * self.steps_per_update

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.env_steps_per_update

    @classmethod
    def for_env(cls, env: str, **overrides) -> "Config":
        """Defaults tuned for `env` (from `PRESETS`), then `overrides`."""
        return cls(**{"env": env, **PRESETS.get(env, {}), **overrides})


# Per-environment settings. brax/ant is the paper's setting (K = 50 skills, [300, 300] networks,
# one gradient step per environment step) for an accelerator; on CPU it is only smoke-tested
# (tests/algos/test_diayn.py, on brax/inverted_pendulum).
PRESETS: dict[str, dict[str, Any]] = {
    "point/open": dict(),
    "point/walls": dict(total_timesteps=40_000),
    "brax/ant": dict(num_skills=50, total_timesteps=10_000_000, num_envs=128, steps_per_update=1,
                     gradient_steps=128, batch_size=256, buffer_size=1_000_000, learning_starts=10_000,
                     hidden_sizes=(300, 300), disc_hidden_sizes=(300, 300), eval_every=5_000, eval_episodes=50),
}


# The high-level learner over the skills on the point mass's sparse goal (`register_skills`):
# DQN's fields for `dqn.Config(env=<skills env>, total_timesteps=<task steps> // skill_steps,
# **HIGH_LEVEL_DQN)`. Compared with SAC from scratch and with PPO over the same skills in
# benchmarks/skills.py (README, "Skills benchmark"); tests/algos/test_diayn.py asserts that it beats
# SAC from scratch on the radius-0.2 goal when both take 4 gradient steps per update.
HIGH_LEVEL_DQN: dict[str, Any] = dict(num_envs=4, steps_per_update=4, gradient_steps=16, batch_size=64,
                                      learning_starts=200, target_update_interval=100, hidden_sizes=(64, 64),
                                      learning_rate=1e-3, exploration_fraction=0.3, final_epsilon=0.05)


def sac_config(config: Config) -> sac.Config:
    """The inner SAC configuration: α fixed (`autotune_alpha=False`), the rest DIAYN's."""
    return sac.Config(env=config.env, total_timesteps=max(config.total_timesteps, config.env_steps_per_update),
                      num_envs=config.num_envs, steps_per_update=config.steps_per_update,
                      gradient_steps=config.gradient_steps, batch_size=config.batch_size,
                      buffer_size=config.buffer_size, learning_starts=config.learning_starts,
                      hidden_sizes=config.hidden_sizes, autotune_alpha=False, eval_every=config.eval_every,
                      eval_episodes=config.eval_episodes, learning_rate=config.learning_rate,
                      gamma=config.gamma, tau=config.tau, alpha=config.alpha)


@functools.lru_cache(maxsize=None)
def make_env(env_name: str) -> envs.Environment:
    return envs.make(env_name)


# ----------------------------------------------------------------------------- networks
def make_networks(config: Config) -> tuple[sac.Networks, sac.MLP]:
    """SAC's actor and twin critic on [observation, one-hot z], and the discriminator
    q_φ(z|s) (logits over the K skills) on the observation alone."""
    env = make_env(config.env)
    obs_dim = int(np.prod(env.obs_shape))
    networks = sac.make_networks(sac_config(config), (obs_dim + config.num_skills,), env.action_space)
    return networks, sac.MLP(tuple(config.disc_hidden_sizes), config.num_skills)


def with_skill(obs: jax.Array, skill: jax.Array, num_skills: int) -> jax.Array:
    """[observation (flattened), one-hot z]: what the policy and the critics see."""
    flat = obs.reshape(obs.shape[: skill.ndim] + (-1,))
    return jnp.concatenate([flat, jax.nn.one_hot(skill, num_skills)], axis=-1)


# ----------------------------------------------------------------------------- state
@struct.dataclass
class TrainState:
    agent: sac.Agent  # π(a|s, z), twin critics, α (fixed), optimizer states
    disc_params: Any  # q_φ(z|s)
    disc_opt_state: Any
    env_state: envs.EnvState
    obs: jax.Array  # [num_envs, *obs_shape]
    skill: jax.Array  # [num_envs] int32, each environment's current z
    buffer: buffers.ReplayBuffer  # Transition with obs/next_obs = [s, one-hot z]
    rng: jax.Array
    update_step: jax.Array  # int32


# ----------------------------------------------------------------------------- losses
def skill_reward(disc_logits: jax.Array, skill: jax.Array, num_skills: int) -> jax.Array:
    """Eq. (1): r_z(s′) = log q_φ(z|s′) − log p(z), with p(z) = 1/K."""
    log_q = jnp.take_along_axis(jax.nn.log_softmax(disc_logits, axis=-1), skill[..., None], axis=-1)[..., 0]
    return log_q + math.log(num_skills)


def discriminator_loss(disc_logits: jax.Array, skill: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Eq. (2): −E[log q_φ(z|s′)]. Returns (loss, accuracy of argmax q_φ(·|s′) = z)."""
    log_q = jax.nn.log_softmax(disc_logits, axis=-1)
    loss = -jnp.mean(jnp.take_along_axis(log_q, skill[..., None], axis=-1))
    return loss, jnp.mean(jnp.argmax(disc_logits, axis=-1) == skill)


def split_skill(config: Config, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The stored [s, one-hot z] → (s, z)."""
    return x[..., : -config.num_skills], jnp.argmax(x[..., -config.num_skills:], axis=-1)


def sample_skills(config: Config, key: jax.Array, num: int) -> jax.Array:
    """z ~ p(z) (uniform over K), or the fixed skill."""
    if config.fixed_skill >= 0:
        return jnp.full((num,), config.fixed_skill, jnp.int32)
    return jax.random.randint(key, (num,), 0, config.num_skills)


# ----------------------------------------------------------------------------- init / update / train
def init(config: Config, key: jax.Array) -> TrainState:
    env = make_env(config.env)
    networks, disc = make_networks(config)
    key, agent_key, disc_key, reset_key, skill_key = jax.random.split(key, 5)
    env_state, obs = env.reset(reset_key, config.num_envs)
    skill = sample_skills(config, skill_key, config.num_envs)
    x = with_skill(obs, skill, config.num_skills)
    example = buffers.Transition(obs=x[0], action=jnp.zeros((networks.action_dim,), jnp.float32),
                                 reward=jnp.zeros(()), terminated=jnp.zeros((), bool),
                                 truncated=jnp.zeros((), bool), next_obs=x[0])
    disc_params = disc.init(disc_key, obs.reshape(config.num_envs, -1))
    return TrainState(agent=sac.init_agent(sac_config(config), networks, x, agent_key), disc_params=disc_params,
                      disc_opt_state=optax.adam(config.disc_learning_rate).init(disc_params),
                      env_state=env_state, obs=obs, skill=skill,
                      buffer=buffers.create(example, config.num_envs, config.buffer_size), rng=key,
                      update_step=jnp.zeros((), jnp.int32))


def gradient_step(config: Config, agent: sac.Agent, disc_params, disc_opt_state, batch: buffers.Transition,
                  key: jax.Array):
    """One SAC step on `batch` with reward (1) (or the stored environment reward when
    `skill_reward` is off), then one discriminator step (2) on its next states."""
    networks, disc = make_networks(config)
    next_state, skill = split_skill(config, batch.next_obs)
    logits = disc.apply(disc_params, next_state)
    if config.skill_reward:
        batch = batch.replace(reward=jax.lax.stop_gradient(skill_reward(logits, skill, config.num_skills)))
    agent, metrics = sac.agent_step(sac_config(config), networks, agent, batch, key)

    def loss_fn(params):
        return discriminator_loss(disc.apply(params, next_state), skill)

    (disc_loss, accuracy), grads = jax.value_and_grad(loss_fn, has_aux=True)(disc_params)
    updates, disc_opt_state = optax.adam(config.disc_learning_rate).update(grads, disc_opt_state, disc_params)
    disc_params = optax.apply_updates(disc_params, updates)
    metrics.update({"loss/discriminator": disc_loss, "discriminator_accuracy": accuracy,
                    "reward/skill": batch.reward.mean()})
    return agent, disc_params, disc_opt_state, metrics


def update(config: Config, state: TrainState, update_index=None) -> tuple[TrainState, dict]:
    """One DIAYN iteration: skill-conditioned steps into the buffer → `gradient_steps` ×
    (SAC step on reward (1), discriminator step (2)). `update_index` as in `sac.update`."""
    env = make_env(config.env)
    networks, _ = make_networks(config)
    index = state.update_step if update_index is None else update_index
    steps_before = index * config.env_steps_per_update

    # 1. Act with each environment's skill; a finished episode draws a new one.
    def env_step(carry, t):
        env_state, obs, skill, buffer, rng = carry
        rng, policy_key, random_key, step_key, skill_key = jax.random.split(rng, 5)
        x = with_skill(obs, skill, config.num_skills)
        policy = sac.sample_action(networks, state.agent.actor_params, x, policy_key, deterministic=False)
        warmup = steps_before + t * config.num_envs < config.learning_starts
        action = jnp.where(warmup, sac.random_action(networks, random_key, config.num_envs), policy)
        raw_x = with_skill(env_state.raw_obs, skill, config.num_skills)
        env_state, ts = env.step(step_key, env_state, action)
        buffer = buffers.add(buffer, buffers.Transition(raw_x, action, ts.reward, ts.terminated, ts.truncated,
                                                        with_skill(ts.raw_final_obs, skill, config.num_skills)))
        skill = jnp.where(ts.done, sample_skills(config, skill_key, config.num_envs), skill)
        done = ts.done.astype(jnp.float32)
        return (env_state, ts.obs, skill, buffer, rng), (ts.episode_return * done, done)

    (env_state, obs, skill, buffer, rng), (returns, dones) = jax.lax.scan(
        env_step, (state.env_state, state.obs, state.skill, state.buffer, state.rng),
        jnp.arange(config.steps_per_update))

    # 2. Gradient steps once learning has started.
    def one_step(carry, key):
        sample_key, step_key = jax.random.split(key)
        batch = buffers.sample(buffer, sample_key, config.batch_size)
        agent, disc_params, disc_opt_state, metrics = gradient_step(config, *carry, batch, step_key)
        return (agent, disc_params, disc_opt_state), metrics

    carry = (state.agent, state.disc_params, state.disc_opt_state)
    _, metrics_shape = jax.eval_shape(one_step, carry, rng)

    def learn(operand):
        carry, key = operand
        carry, aux = jax.lax.scan(one_step, carry, jax.random.split(key, config.gradient_steps))
        return carry, jax.tree.map(jnp.mean, aux)

    def skip(operand):
        return operand[0], jax.tree.map(lambda m: jnp.full(m.shape, jnp.nan, m.dtype), metrics_shape)

    rng, learn_key = jax.random.split(rng)
    first_learning = sac_config(config).first_learning_update
    if config.gradient_steps > 0:
        carry, metrics = jax.lax.cond(index >= first_learning, learn, skip, (carry, learn_key))
    else:
        carry, metrics = skip((carry, learn_key))
    agent, disc_params, disc_opt_state = carry

    episodes = dones.sum()
    metrics["train/episode_return"] = jnp.where(episodes > 0, returns.sum() / episodes, jnp.nan)
    metrics["train/episodes"] = episodes
    return TrainState(agent=agent, disc_params=disc_params, disc_opt_state=disc_opt_state, env_state=env_state,
                      obs=obs, skill=skill, buffer=buffer, rng=rng, update_step=state.update_step + 1), metrics


def act(config: Config, params, obs: jax.Array, skill: jax.Array, key: jax.Array,
        deterministic: bool = True) -> jax.Array:
    """Skill `skill`'s action for a batch of observations; `params` are the actor's."""
    networks, _ = make_networks(config)
    return sac.sample_action(networks, params, with_skill(obs, skill, config.num_skills), key, deterministic)


def rollout_skills(config: Config, state: TrainState, key: jax.Array, num_episodes: int | None = None,
                   env_name: str | None = None, deterministic: bool = True) -> dict:
    """`num_episodes` (default `eval_episodes`) episodes, episode i running skill i mod K (or the
    fixed skill), for the full time limit of `env_name` (default `config.env`). Returns
    `skill` [N], `positions` [T + 1, N, *obs_shape] (raw observations, the first episode of each
    slot and frozen after it ends), `skill_return` (the sum of reward (1)) and `env_return` [N]."""
    env = make_env(env_name or config.env)
    _, disc = make_networks(config)
    n = num_episodes or config.eval_episodes
    skill = jnp.full((n,), config.fixed_skill) if config.fixed_skill >= 0 else jnp.arange(n) % config.num_skills
    skill = skill.astype(jnp.int32)
    reset_key, run_key = jax.random.split(key)
    env_state, obs = env.reset(reset_key, n)

    def step(carry, step_key):
        env_state, obs, alive, last = carry
        act_key, env_key = jax.random.split(step_key)
        action = act(config, state.agent.actor_params, obs, skill, act_key, deterministic)
        env_state, ts = env.step(env_key, env_state, action, update_stats=False)
        r_skill = skill_reward(disc.apply(state.disc_params, ts.raw_final_obs.reshape(n, -1)), skill,
                               config.num_skills)
        last = jnp.where(alive[:, None], ts.raw_final_obs.reshape(n, -1), last)
        out = (last, r_skill * alive, ts.reward * alive)
        alive = alive & ~ts.done
        return (env_state, ts.obs, alive, last), out

    first = env_state.raw_obs.reshape(n, -1)
    init_carry = (env_state, obs, jnp.ones(n, bool), first)
    _, (positions, r_skill, r_env) = jax.lax.scan(step, init_carry, jax.random.split(run_key, env.max_episode_steps))
    return {"skill": skill, "positions": jnp.concatenate([first[None], positions]),
            "skill_return": r_skill.sum(0), "env_return": r_env.sum(0)}


def evaluate(config: Config, state: TrainState) -> jax.Array:
    """Returns of `eval_episodes` deterministic episodes (episode i runs skill i mod K): the sum of
    the pseudo-reward (1) while learning skills, the environment's return when fine-tuning."""
    key = jax.random.fold_in(state.rng, 0x5EED)  # independent of the training stream
    out = rollout_skills(config, state, key)
    return out["skill_return"] if config.skill_reward else out["env_return"]


def discriminator_accuracy(config: Config, state: TrainState, key: jax.Array, num_episodes: int = 64,
                           deterministic: bool = False) -> jax.Array:
    """The discriminator's accuracy at naming the skill from each visited state of fresh
    (held-out) episodes of the stochastic skills; chance is 1/K."""
    _, disc = make_networks(config)
    out = rollout_skills(config, state, key, num_episodes, deterministic=deterministic)
    states = out["positions"][1:]  # [T, N, d], visited states (frozen after an episode's end)
    predicted = jnp.argmax(disc.apply(state.disc_params, states), axis=-1)
    return jnp.mean(predicted == out["skill"][None])


def train(config: Config, key: jax.Array):
    """`init` + `lax.scan` of `update`, evaluating every `eval_every` updates and at the end.

    Returns (final state, per-update metrics [num_updates], eval returns [num_evals, eval_episodes]).
    """
    state = init(config, key)
    return train_loop(functools.partial(update, config), functools.partial(evaluate, config), state,
                      config.num_updates, config.eval_every)


# ----------------------------------------------------------------------------- downstream
def skill_backend(config: Config, actor_params, task: str, skill_steps: int, name: str) -> envs.MacroBackend:
    """A backend whose K discrete actions are the frozen skills: action z runs π(·|s, z)
    (deterministically) in `task` for `skill_steps` steps, or until the episode ends, the task's
    rewards summed (`envs.MacroBackend`). The high-level MDP of the paper's hierarchical use
    (§4.2.2): a purerl discrete learner trains the policy that picks a skill."""
    networks, _ = make_networks(config)
    env = make_env(config.env)  # maps the skills' actions in [−1, 1] to the environment's units
    actor_params = jax.tree.map(np.asarray, actor_params)

    def controller(obs, skill, key):
        a = sac.sample_action(networks, actor_params, with_skill(obs, skill, config.num_skills), key, True)
        return env._to_native(a)

    return envs.MacroBackend(envs.make(task).backend, envs.Discrete(config.num_skills), controller, skill_steps,
                             name)


def register_skills(name: str, config: Config, state: TrainState, task: str, skill_steps: int) -> str:
    """Register `name` as the hierarchical environment of `skill_backend` over the skills of
    `state` (one seed's, unbatched) in the task `task`; returns `name`, for any algorithm's
    `Config(env=name)` (e.g. `ppo.Config(env=name)`)."""
    actor_params = jax.device_get(state.agent.actor_params)
    envs.register(name, lambda **_: skill_backend(config, actor_params, task, skill_steps, name))
    return name


def best_skill(config: Config, state: TrainState, task: str, key: jax.Array, episodes_per_skill: int = 4):
    """(z*, task return of every skill [K]): the skill whose deterministic episodes earn the most
    task reward in `task`."""
    n = config.num_skills * episodes_per_skill
    out = rollout_skills(config.replace(fixed_skill=-1), state, key, n, env_name=task)
    returns = jnp.zeros(config.num_skills).at[out["skill"]].add(out["env_return"]) / episodes_per_skill
    return jnp.argmax(returns), returns


def finetune(config: Config, pretrained: TrainState, key: jax.Array) -> TrainState:
    """A fresh train state for `config` (a task: `skill_reward=False`, `fixed_skill=z*`) whose
    actor is the pretrained one; critics, buffer and environments start afresh."""
    if config.skill_reward or config.fixed_skill < 0:
        raise ValueError("finetune needs Config(skill_reward=False, fixed_skill=z) with z ≥ 0, got "
                         f"skill_reward={config.skill_reward}, fixed_skill={config.fixed_skill}")
    state = init(config, key)
    optimizer = sac.make_optimizer(sac_config(config))
    agent = state.agent.replace(actor_params=pretrained.agent.actor_params,
                                actor_opt_state=optimizer.init(pretrained.agent.actor_params))
    return state.replace(agent=agent, disc_params=pretrained.disc_params)
