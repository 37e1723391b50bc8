"""AlphaZero — tree search with a learned prior and value, using the true environment as the
model (Silver et al. 2018, "A general reinforcement-learning algorithm that masters chess,
shogi and Go through self-play", Science 362; single-agent use as in the MuZero paper's
appendix B, Schrittwieser et al. 2020). Search is DeepMind's `mctx`: PUCT (`muzero_policy`)
or Gumbel MuZero's sequential halving (`gumbel_muzero_policy`, Danihelka et al. 2022,
"Policy improvement by planning with Gumbel", ICLR).

One network f_θ(s) = (p_θ(·|s), v_θ(s)): policy logits and a value. At every real step the
search expands `num_simulations` nodes; an edge (s, a) of the tree is the environment's own
transition s′ = step(s, a) — purerl/gymnax `step` and pgx `step` are pure functions, so the
recurrent function steps a copy of the state. Equations (n = N(s,·) visit counts, P the prior):

    (1) a* = argmax_a  Q̂(s,a) + P(s,a) · √N(s) / (1 + N(s,a)) · (c₁ + log((N(s) + c₂ + 1)/c₂))
        (PUCT, MuZero eq. 2; Q̂ = Q min-max normalized over the node and its children)
    (2) Q(s,a) = r(s,a) + d(s,a) · V(s′),   d = γ (single agent), −1 (two players, alternating), 0 at a terminal
    (3) π_search(a|s) = N(s,a)^{1/τ} / Σ_b N(s,b)^{1/τ}            (PUCT target and acting policy)
        π_search = softmax(logits + σ(completed Q))                  (search="gumbel": the improved policy)
    (4) G_t = r_t + d_t · G_{t+1};  at a time-limit cut G_t = r_t + γ v_θ(s′_t); at the end of a
        rollout fragment G_T = v_θ(s_T)                              (value target: return / game outcome)
    (5) L(θ) = −Σ_a π_search(a|s) log p_θ(a|s) + c_v · (v̂_θ(s) − Ĝ)²
        with v̂ and Ĝ in units of 1/(1−γ) for a single agent (v_θ = v̂/(1−γ)), raw outcomes for games.

Environments (`Config.env`):
* any discrete purerl environment, e.g. "CartPole-v1" (gymnax): single agent, reward r_t, d = γ,
  d = 0 after termination. Inside the tree a time-limit truncation is not a terminal; the
  auto-reset state below it is searched as if the episode went on (a small error only within a
  few steps of the limit).
* "pgx/tic_tac_toe" or "pgx/connect_four" (pgx board games, not purerl environments): self-play of
  one network against itself; r is the reward of the player who moved, d = −1 (the value is
  always from the perspective of the player to move), illegal moves are masked at the root
  through mctx's `invalid_actions` and inside the tree through the prior logits. `evaluate` plays
  against a uniformly random legal player, the agent starting in the even-numbered games; the
  'return' of a game is its outcome for the agent (+1 win, 0 draw, −1 loss).

One `update` = `rollout_steps` steps in each of `num_envs` environments, each step one search
(Dirichlet noise at the root for PUCT, Gumbel noise for Gumbel), targets (3)–(4) into a FIFO
replay of the most recent `buffer_size` positions, then `num_gradient_steps` Adam steps on (5)
with minibatches of `batch_size`. Evaluation acts with the same search, without noise, greedily.

Defaults (c₁ = 1.25, c₂ = 19652, Dirichlet α = 0.3, fraction 0.25) are the papers'; the sizes in
`PRESETS` are ours, chosen for a 2-core CPU (see there).

Usage:
    purerl train alphazero --env CartPole-v1 --num-seeds 4
    purerl train alphazero --env pgx/tic_tac_toe --search gumbel
    state, metrics, eval_returns = jax.jit(jax.vmap(alphazero.train, in_axes=(None, 0)))(
        alphazero.Config.for_env("pgx/tic_tac_toe"), keys)
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import mctx
import numpy as np
import optax
from flax import struct

from purerl import envs
from purerl.config import check_choice, check_int, check_range, check_sizes, static
from purerl.evaluation import train_loop

SEARCHES = ("puct", "gumbel")
PGX_PREFIX = "pgx/"
PGX_GAMES = ("tic_tac_toe", "connect_four")  # two-player, zero-sum, alternating pgx games


def check_env(name: str, field: str = "env") -> None:
    """Raise a ValueError naming `field` unless `name` is a discrete purerl environment or
    "pgx/<game>" with <game> in `PGX_GAMES`."""
    if isinstance(name, str) and name.startswith(PGX_PREFIX):
        if name[len(PGX_PREFIX):] not in PGX_GAMES:
            raise ValueError(f"Config.{field}={name!r} is invalid: pgx games supported are "
                             f"{[PGX_PREFIX + g for g in PGX_GAMES]}")
        return
    envs.check_name(name, field=field)


# ----------------------------------------------------------------------------- config
@struct.dataclass
class Config:
    """AlphaZero hyperparameters. Static fields fix the compiled program; float fields can be
    swept with `jax.vmap` (see `purerl.config.sweep_axes`)."""

    # -- static: environment and program shape
    env: str = static("CartPole-v1")  # a discrete purerl environment, or "pgx/tic_tac_toe" / "pgx/connect_four"
    search: str = static("puct")  # "puct" (mctx.muzero_policy, eq. 1) or "gumbel" (mctx.gumbel_muzero_policy)
    total_timesteps: int = static(200_000)  # real environment steps per seed (num_envs × rollout_steps per update)
    num_envs: int = static(16)  # parallel environments (games), each step searched
    rollout_steps: int = static(16)  # real steps per environment per update
    num_simulations: int = static(16)  # search simulations per real step
    max_num_considered_actions: int = static(16)  # Gumbel: actions sampled at the root (sequential halving)
    buffer_size: int = static(4096)  # FIFO replay of the most recent positions (≥ one update's positions)
    batch_size: int = static(256)  # positions per gradient step
    num_gradient_steps: int = static(4)  # Adam steps per update
    hidden_sizes: tuple[int, ...] = static((64, 64))  # shared MLP torso widths
    eval_every: int = static(10)  # updates between evaluations
    eval_episodes: int = static(8)  # evaluation episodes (games against the random player for pgx)
    # -- sweepable floats
    learning_rate: float = 1e-3  # Adam step size
    max_grad_norm: float = 1.0  # global gradient-norm clip
    value_coef: float = 1.0  # c_v of eq. (5)
    gamma: float = 0.99  # γ of eq. (2), single agent only (games use d = −1)
    pb_c_init: float = 1.25  # c₁ of eq. (1)
    pb_c_base: float = 19652.0  # c₂ of eq. (1)
    dirichlet_alpha: float = 0.3  # root noise concentration (PUCT)
    dirichlet_fraction: float = 0.25  # root noise weight (PUCT); 0 disables
    temperature: float = 1.0  # τ of eq. (3) for acting in training (PUCT); 0 acts greedily
    gumbel_scale: float = 1.0  # Gumbel noise scale at the root in training (search="gumbel")

    def __post_init__(self):
        check_env(self.env)
        check_choice(self, "search", SEARCHES)
        for name in ("total_timesteps", "num_envs", "rollout_steps", "num_simulations", "max_num_considered_actions",
                     "buffer_size", "batch_size", "num_gradient_steps", "eval_every", "eval_episodes"):
            check_int(self, name)
        check_sizes(self, "hidden_sizes")
        game = make_game(self.env)
        if not game.discrete:
            raise ValueError(f"Config.env={self.env!r} is invalid: AlphaZero's search needs discrete actions")
        if self.total_timesteps < self.env_steps_per_update:
            raise ValueError(f"Config.total_timesteps={self.total_timesteps} is invalid: must be ≥ one update, "
                             f"num_envs*rollout_steps={self.env_steps_per_update}")
        if self.buffer_size < self.env_steps_per_update:
            raise ValueError(f"Config.buffer_size={self.buffer_size} is invalid: must hold one update's positions, "
                             f"num_envs*rollout_steps={self.env_steps_per_update}")
        check_range(self, "learning_rate", 0.0, low_inclusive=False)
        check_range(self, "max_grad_norm", 0.0, low_inclusive=False)
        check_range(self, "value_coef", 0.0)
        check_range(self, "gamma", 0.0, 1.0, high_inclusive=False)
        check_range(self, "pb_c_init", 0.0)
        check_range(self, "pb_c_base", 0.0, low_inclusive=False)
        check_range(self, "dirichlet_alpha", 0.0, low_inclusive=False)
        check_range(self, "dirichlet_fraction", 0.0, 1.0)
        check_range(self, "temperature", 0.0)
        check_range(self, "gumbel_scale", 0.0)

    @property
    def env_steps_per_update(self) -> int:
        return self.num_envs * self.rollout_steps

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.env_steps_per_update

    @classmethod
    def for_env(cls, env: str, **overrides) -> "Config":
        """Defaults tuned for `env` (from `PRESETS`), then `overrides`."""
        return cls(**{"env": env, **PRESETS.get(env, {}), **overrides})


# Per-environment settings, ours (small networks and few simulations for a 2-core CPU); the
# measurements behind them are in tests/algos/test_alphazero.py and benchmarks/planning_alphazero.py.
PRESETS: dict[str, dict[str, Any]] = {
    "CartPole-v1": dict(num_envs=16, rollout_steps=16, num_simulations=8, total_timesteps=16_384, eval_every=16,
                        eval_episodes=4, buffer_size=4096, batch_size=256, num_gradient_steps=4,
                        learning_rate=3e-3, temperature=0.0, max_num_considered_actions=2),
    # gumbel_scale 2, 4096-position replay (were 1, 1152): test levels hold on key sets 0–12 and 42 (first player 96.9–100 % wins, 0 losses)
    "pgx/tic_tac_toe": dict(search="gumbel", num_envs=16, rollout_steps=9, num_simulations=32,
                            total_timesteps=16 * 9 * 80, eval_every=40, eval_episodes=64, buffer_size=4096,
                            batch_size=256, gumbel_scale=2.0,
                            num_gradient_steps=8, learning_rate=3e-3, max_num_considered_actions=9),
    "pgx/connect_four": dict(num_envs=64, rollout_steps=42, num_simulations=64, total_timesteps=2_000_000,
                             eval_every=20, eval_episodes=64, buffer_size=64 * 42 * 8, batch_size=512,
                             num_gradient_steps=16, hidden_sizes=(256, 256), max_num_considered_actions=7),
}


# ----------------------------------------------------------------------------- environments as models
@struct.dataclass
class Step:
    """One real step of a batch of environments, for the value targets of eq. (4)."""

    reward: jax.Array  # [N] reward of the agent (player) that acted
    terminated: jax.Array  # [N] bool: a true terminal (game over), d = 0
    truncated: jax.Array  # [N] bool: cut by a time limit, bootstrap from final_obs
    final_obs: jax.Array  # [N, *obs] the true next observation (before any auto-reset)
    episode_return: jax.Array  # [N] return of the episode that ended here (0 elsewhere; player 0's for games)


class PurerlGame:
    """A discrete purerl environment as a single-agent model. The acting state is the batched
    `EnvState`; the search's embedding is its backend state (leading batch axis only)."""

    two_player = False

    def __init__(self, name: str):
        self.env = envs.make(name)
        self.name = name
        self.discrete = self.env.discrete
        self.num_actions = int(self.env.action_space.n) if self.discrete else 0
        self.obs_shape = tuple(self.env.obs_shape)
        self.max_episode_steps = self.env.max_episode_steps

    def reset(self, key, num_envs):
        return self.env.reset(key, num_envs)[0]

    def observe(self, state):
        return state.raw_obs

    def embedding(self, state):
        return state.backend_state

    def legal(self, state):
        return jnp.ones((state.raw_obs.shape[0], self.num_actions), bool)

    def step(self, key, state, action):
        state, ts = self.env.step(key, state, action)
        return state, Step(ts.reward, ts.terminated, ts.truncated, ts.final_obs, ts.episode_return)

    def model(self, key, embedding, action):
        """(embedding′, obs′, reward, terminated, legal′) of one batched transition."""
        keys = jax.random.split(key, action.shape[0])
        embedding, obs, reward, terminated, _, _ = jax.vmap(self.env.backend.step)(keys, embedding,
                                                                                   action.astype(jnp.int32))
        legal = jnp.ones((action.shape[0], self.num_actions), bool)
        return embedding, obs.astype(jnp.float32), reward.astype(jnp.float32), terminated.astype(bool), legal


class PgxGame:
    """A two-player pgx board game (self-play). The acting state and the embedding are the
    batched pgx `State`; observations are from the player to move."""

    two_player = True
    discrete = True

    def __init__(self, name: str):
        import pgx

        self.name = name
        self.pgx = pgx.make(name[len(PGX_PREFIX):])
        self.num_actions = int(self.pgx.num_actions)
        self.obs_shape = tuple(self.pgx.observation_shape)
        self.max_episode_steps = {"tic_tac_toe": 9, "connect_four": 42}[name[len(PGX_PREFIX):]]

    def reset(self, key, num_envs):
        return jax.vmap(self.pgx.init)(jax.random.split(key, num_envs))

    def observe(self, state):
        return state.observation.astype(jnp.float32)

    def embedding(self, state):
        return state

    def legal(self, state):
        return state.legal_action_mask

    def _play(self, state, action):
        mover = state.current_player
        state = jax.vmap(self.pgx.step)(state, action.astype(jnp.int32))
        reward = state.rewards[jnp.arange(action.shape[0]), mover]
        return state, reward

    def step(self, key, state, action):
        state, reward = self._play(state, action)
        final_obs = self.observe(state)
        done = state.terminated | state.truncated
        fresh = self.reset(key, action.shape[0])
        episode_return = jnp.where(done, state.rewards[:, 0], 0.0)
        state = jax.tree.map(lambda f, s: jnp.where(done.reshape((-1,) + (1,) * (s.ndim - 1)), f, s), fresh, state)
        return state, Step(reward, done, jnp.zeros_like(done), final_obs, episode_return)

    def model(self, key, embedding, action):
        embedding, reward = self._play(embedding, action)
        return embedding, self.observe(embedding), reward, embedding.terminated, embedding.legal_action_mask


@functools.lru_cache(maxsize=None)
def make_game(env_name: str):
    """The environment `Config.env` names, as a search model (`PurerlGame` or `PgxGame`)."""
    return PgxGame(env_name) if env_name.startswith(PGX_PREFIX) else PurerlGame(env_name)


# ----------------------------------------------------------------------------- network
class PolicyValueNet(nn.Module):
    """f_θ(s) = (policy logits [.., A], value [..]): a shared MLP torso and two linear heads.
    `value_out="tanh"` bounds the value to [−1, 1] (game outcomes); "linear" leaves it free."""

    obs_ndim: int
    num_actions: int
    hidden_sizes: Sequence[int]
    value_out: str = "linear"

    @nn.compact
    def __call__(self, obs):
        x = obs.reshape(obs.shape[: obs.ndim - self.obs_ndim] + (-1,))
        for size in self.hidden_sizes:
            x = nn.relu(nn.Dense(size, kernel_init=nn.initializers.orthogonal(np.sqrt(2)))(x))
        logits = nn.Dense(self.num_actions, kernel_init=nn.initializers.orthogonal(0.01))(x)
        value = nn.Dense(1, kernel_init=nn.initializers.orthogonal(1.0))(x)[..., 0]
        return logits, (jnp.tanh(value) if self.value_out == "tanh" else value)


def make_network(config: Config) -> PolicyValueNet:
    game = make_game(config.env)
    return PolicyValueNet(obs_ndim=len(game.obs_shape), num_actions=game.num_actions,
                          hidden_sizes=tuple(config.hidden_sizes), value_out="tanh" if game.two_player else "linear")


def value_scale(config: Config, two_player: bool):
    """v_θ = v̂ · scale: 1/(1−γ) for a single agent (returns of order 1/(1−γ)), 1 for games."""
    return 1.0 if two_player else 1.0 / (1.0 - config.gamma)


def predict(config: Config, params, obs, legal=None):
    """(logits masked to legal moves, value v_θ(s) in return units) for a batch of observations."""
    game = make_game(config.env)
    logits, value = make_network(config).apply(params, obs)
    if legal is not None:
        logits = jnp.where(legal, logits, jnp.finfo(logits.dtype).min)
    return logits, value * value_scale(config, game.two_player)


# ----------------------------------------------------------------------------- search
def make_recurrent_fn(config: Config) -> Callable:
    """mctx's recurrent function with the true environment as the model: `params` are the
    network's; the embedding is a copy of the environment state; eq. (2)'s discount is γ (single
    agent) or −1 (two players), 0 after a terminal."""
    game = make_game(config.env)

    def recurrent_fn(params, key, action, embedding):
        embedding, obs, reward, terminated, legal = game.model(key, embedding, action)
        logits, value = predict(config, params, obs, legal)
        discount = jnp.full_like(reward, -1.0 if game.two_player else config.gamma)
        discount = jnp.where(terminated, 0.0, discount)
        value = jnp.where(terminated, 0.0, value)
        return mctx.RecurrentFnOutput(reward=reward, discount=discount, prior_logits=logits, value=value), embedding

    return recurrent_fn


def run_search(config: Config, params, key: jax.Array, root: mctx.RootFnOutput, recurrent_fn: Callable,
               invalid_actions=None, explore: bool = True) -> mctx.PolicyOutput:
    """One batched search with `config.search`: PUCT (`mctx.muzero_policy`, eq. 1) or Gumbel
    (`mctx.gumbel_muzero_policy`). `explore=False` turns the root noise off (evaluation).
    Returns mctx's `PolicyOutput`; its `action_weights` are π_search of eq. (3)."""
    if config.search == "puct":
        return mctx.muzero_policy(
            params, key, root, recurrent_fn, config.num_simulations, invalid_actions=invalid_actions,
            dirichlet_fraction=config.dirichlet_fraction if explore else 0.0,
            dirichlet_alpha=config.dirichlet_alpha, pb_c_init=config.pb_c_init, pb_c_base=config.pb_c_base)
    return mctx.gumbel_muzero_policy(
        params, key, root, recurrent_fn, config.num_simulations, invalid_actions=invalid_actions,
        max_num_considered_actions=config.max_num_considered_actions,
        gumbel_scale=config.gumbel_scale if explore else 0.0)


def choose_action(config: Config, key: jax.Array, output: mctx.PolicyOutput, explore: bool) -> jax.Array:
    """The action played: Gumbel's own choice; for PUCT, a sample of N^{1/τ} (eq. 3) when exploring
    with τ > 0, else the most visited action."""
    if config.search == "gumbel":
        return output.action
    weights = output.action_weights
    greedy = jnp.argmax(weights, axis=-1)
    if not explore:
        return greedy
    tau = jnp.maximum(config.temperature, 1e-3)
    logits = jnp.where(weights > 0, jnp.log(jnp.maximum(weights, 1e-30)) / tau, -jnp.inf)
    sampled = jax.random.categorical(key, logits)
    return jnp.where(config.temperature > 0, sampled, greedy)


def search_step(config: Config, params, key: jax.Array, state, explore: bool):
    """Search from every environment's current state: (action, π_search, root value, obs, legal)."""
    game = make_game(config.env)
    obs, legal = game.observe(state), game.legal(state)
    logits, value = predict(config, params, obs, legal)
    root = mctx.RootFnOutput(prior_logits=logits, value=value, embedding=game.embedding(state))
    search_key, action_key = jax.random.split(key)
    output = run_search(config, params, search_key, root, make_recurrent_fn(config), ~legal, explore)
    action = choose_action(config, action_key, output, explore)
    return action, output.action_weights, output.search_tree.node_values[:, 0], obs, legal


# ----------------------------------------------------------------------------- targets and loss
def value_targets(rewards, discounts, truncated, truncated_values, bootstrap_value):
    """G_t of eq. (4), time-major [T, N]: G_t = r_t + d_t · G_{t+1} with G_T = `bootstrap_value`,
    and G_t = r_t + d_t · `truncated_values`_t where the episode was cut by a time limit
    (d_t: γ or −1, 0 at a terminal; an auto-reset after a terminal is cut off by d_t = 0)."""

    def backward(next_return, x):
        reward, discount, trunc, trunc_value = x
        g = reward + discount * jnp.where(trunc, trunc_value, next_return)
        return g, g

    _, returns = jax.lax.scan(backward, bootstrap_value, (rewards, discounts, truncated, truncated_values),
                              reverse=True)
    return returns


def loss_fn(params, config: Config, obs, legal, policy_target, value_target):
    """Eq. (5): cross-entropy of p_θ to π_search (illegal moves masked) + c_v · squared value
    error in the network's units. Returns (loss, metrics)."""
    game = make_game(config.env)
    logits, raw_value = make_network(config).apply(params, obs)
    log_probs = jax.nn.log_softmax(jnp.where(legal, logits, -1e9), axis=-1)
    policy_loss = -jnp.mean(jnp.sum(jnp.where(legal, policy_target * log_probs, 0.0), axis=-1))
    scale = value_scale(config, game.two_player)
    value_loss = jnp.mean((raw_value - value_target / scale) ** 2)
    entropy = -jnp.mean(jnp.sum(jnp.where(legal, jnp.exp(log_probs) * log_probs, 0.0), axis=-1))
    return policy_loss + config.value_coef * value_loss, {"loss/policy": policy_loss, "loss/value": value_loss,
                                                         "train/policy_entropy": entropy}


# ----------------------------------------------------------------------------- state
@struct.dataclass
class Replay:
    """FIFO replay of the most recent positions: [buffer_size, ...] arrays, `insert` the next slot."""

    obs: jax.Array
    legal: jax.Array
    policy_target: jax.Array
    value_target: jax.Array
    insert: jax.Array  # int32
    size: jax.Array  # int32, positions stored


@struct.dataclass
class TrainState:
    params: Any
    opt_state: Any
    env_state: Any  # the acting environments (EnvState or pgx State, batched)
    replay: Replay
    rng: jax.Array
    update_step: jax.Array  # int32


def make_optimizer(config: Config) -> optax.GradientTransformation:
    return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(config.learning_rate))


def replay_add(replay: Replay, obs, legal, policy_target, value_target) -> Replay:
    """Write a batch of positions (leaves [M, ...]) over the oldest ones."""
    capacity = replay.obs.shape[0]
    index = (replay.insert + jnp.arange(obs.shape[0])) % capacity
    return Replay(replay.obs.at[index].set(obs), replay.legal.at[index].set(legal),
                  replay.policy_target.at[index].set(policy_target), replay.value_target.at[index].set(value_target),
                  (replay.insert + obs.shape[0]) % capacity, jnp.minimum(replay.size + obs.shape[0], capacity))


def init(config: Config, key: jax.Array) -> TrainState:
    game = make_game(config.env)
    key, net_key, env_key = jax.random.split(key, 3)
    params = make_network(config).init(net_key, jnp.zeros((1,) + game.obs_shape, jnp.float32))
    n, a = config.buffer_size, game.num_actions
    replay = Replay(jnp.zeros((n,) + game.obs_shape, jnp.float32), jnp.ones((n, a), bool), jnp.zeros((n, a)),
                    jnp.zeros((n,)), jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))
    return TrainState(params=params, opt_state=make_optimizer(config).init(params),
                      env_state=game.reset(env_key, config.num_envs), replay=replay, rng=key,
                      update_step=jnp.zeros((), jnp.int32))


def update(config: Config, state: TrainState) -> tuple[TrainState, dict]:
    """Self-play/acting with search for `rollout_steps` steps, targets into the replay, then
    `num_gradient_steps` Adam steps on eq. (5)."""
    game = make_game(config.env)
    optimizer = make_optimizer(config)
    rng, rollout_key, train_key = jax.random.split(state.rng, 3)

    # 1. Act with search in every environment (eq. 1 → eq. 3).
    def env_step(env_state, key):
        search_key, step_key = jax.random.split(key)
        action, weights, root_value, obs, legal = search_step(config, state.params, search_key, env_state, True)
        env_state, step = game.step(step_key, env_state, action)
        return env_state, (obs, legal, weights, root_value, step)

    env_state, (obs, legal, weights, root_values, steps) = jax.lax.scan(
        env_step, state.env_state, jax.random.split(rollout_key, config.rollout_steps))

    # 2. Value targets, eq. (4).
    discount = -1.0 if game.two_player else config.gamma
    discounts = jnp.where(steps.terminated, 0.0, discount)
    _, truncated_values = predict(config, state.params, steps.final_obs)
    _, bootstrap = predict(config, state.params, game.observe(env_state), game.legal(env_state))
    targets = value_targets(steps.reward, discounts, steps.truncated, truncated_values, bootstrap)
    flat = lambda x: x.reshape((-1,) + x.shape[2:])  # noqa: E731
    replay = replay_add(state.replay, flat(obs), flat(legal), flat(weights), flat(targets))

    # 3. Gradient steps on minibatches of the replay.
    def grad_step(carry, key):
        params, opt_state = carry
        index = jax.random.randint(key, (config.batch_size,), 0, replay.size)
        (_, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            params, config, replay.obs[index], replay.legal[index], replay.policy_target[index],
            replay.value_target[index])
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), aux

    (params, opt_state), aux = jax.lax.scan(grad_step, (state.params, state.opt_state),
                                            jax.random.split(train_key, config.num_gradient_steps))
    done = (steps.terminated | steps.truncated).astype(jnp.float32)
    metrics = jax.tree.map(jnp.mean, aux)
    metrics["train/episodes"] = jnp.sum(done)
    metrics["train/episode_return"] = jnp.sum(steps.episode_return * done) / jnp.maximum(jnp.sum(done), 1.0)
    metrics["search/root_value"] = jnp.mean(root_values)
    metrics["train/value_target"] = jnp.mean(targets)
    new_state = TrainState(params=params, opt_state=opt_state, env_state=env_state, replay=replay, rng=rng,
                           update_step=state.update_step + 1)
    return new_state, metrics


# ----------------------------------------------------------------------------- evaluation
def evaluate(config: Config, state: TrainState) -> jax.Array:
    """[eval_episodes] returns of the greedy search policy (no root noise). For a pgx game: the
    outcome for the agent of games against a uniformly random legal player, the agent moving
    first in the even-numbered games."""
    key = jax.random.fold_in(state.rng, 0x5EED)  # independent of the training stream
    game = make_game(config.env)
    reset_key, run_key = jax.random.split(key)
    env_state = game.reset(reset_key, config.eval_episodes)
    n = config.eval_episodes
    if game.two_player:
        first = env_state.current_player  # pgx draws who moves first
        agent = jnp.where(jnp.arange(n) % 2 == 0, first, 1 - first)

    def step(carry, key):
        env_state, total, alive = carry
        search_key, random_key, env_key = jax.random.split(key, 3)
        action, *_ = search_step(config, state.params, search_key, env_state, False)
        if game.two_player:
            legal = game.legal(env_state)
            random_action = jax.random.categorical(random_key, jnp.where(legal, 0.0, -jnp.inf))
            action = jnp.where(env_state.current_player == agent, action, random_action)
            mover = env_state.current_player
            env_state, step = game.step(env_key, env_state, action)
            reward = jnp.where(mover == agent, step.reward, -step.reward)  # zero-sum
        else:
            env_state, step = game.step(env_key, env_state, action)
            reward = step.reward
        total = total + reward * alive
        alive = alive * (1.0 - (step.terminated | step.truncated).astype(jnp.float32))
        return (env_state, total, alive), None

    init_carry = (env_state, jnp.zeros(n), jnp.ones(n))
    (_, total, _), _ = jax.lax.scan(step, init_carry, jax.random.split(run_key, game.max_episode_steps))
    return total


def train(config: Config, key: jax.Array):
    """`init` + `lax.scan` of `update`, evaluating every `eval_every` updates and at the end.

    Returns (final state, per-update metrics [num_updates], eval returns [num_evals, eval_episodes]).
    """
    state = init(config, key)
    return train_loop(functools.partial(update, config), functools.partial(evaluate, config), state,
                      config.num_updates, config.eval_every)
