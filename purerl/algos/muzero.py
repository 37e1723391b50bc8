"""MuZero — planning with a learned model (Schrittwieser et al. 2020, "Mastering Atari, Go,
chess and shogi by planning with a learned model", Nature 588:604; arXiv:1911.08265).

Three networks (small MLPs here) make the model, all in a learned latent space:

    (1) s⁰ = h_θ(o_t)                          representation
        (sᵏ, rᵏ) = g_θ(sᵏ⁻¹, a_{t+k−1})          dynamics: next latent state and reward
        (pᵏ, vᵏ) = f_θ(sᵏ)                       prediction: policy logits and value
        every latent state is min-max normalized to [0, 1]: s ← (s − min s)/(max s − min s)
        (the paper's "scale the hidden state to the same range as the action input")
    (2) acting: `mctx.muzero_policy` (PUCT, Dirichlet noise at the root, Q min-max normalized
        over the tree) searches the learned model from s⁰ for `num_simulations` simulations;
        the action is drawn from the root visit counts N(a)^{1/T}; the visit distribution
        π_t = N(·)/Σ N and the search value ν_t are stored with the transition.
    (3) n-step value target from state t+k (k = 0…K), stopping at the episode's end:
            z_{t+k} = Σ_{i<m} γ^i u_{t+k+i} + γ^m (1 − term) V⁻(s′_{t+k+m−1}),   m ≤ n
        V⁻ = f_θ⁻(h_θ⁻(·)) the value of the target network (θ⁻ ← τθ + (1−τ)θ⁻ every gradient
        step; τ = 1 is the current network), evaluated on the stored true next observation
        s′. A terminal within the n steps stops the sum without a bootstrap; a time-limit
        truncation stops it and bootstraps from its true final observation.
    (4) states past the end of the root's episode: after a terminal they are absorbing —
        value target 0, reward target 0, no policy target (the paper's pseudocode); after a
        truncation nothing is known, so every loss there is masked out.
    (5) unrolled loss over K steps of the model, for one segment:
            l = Σ_{k=0}^{K} ⊥ₖ[ c_v l^v(z_{t+k}, vᵏ) + l^p(π_{t+k}, pᵏ) ] + Σ_{k=1}^{K} ⊥ₖ[ l^r(u_{t+k−1}, rᵏ) ]
                + c‖θ‖²
        with ⊥ₖ = scale_gradient(·, 1) for k = 0 and (·, 1/K) for k ≥ 1 (the paper scales each
        head's loss by 1/K), l^p = −Σ_a π(a) log softmax(pᵏ)(a) (cross-entropy), and
        l^v, l^r: `value_loss="categorical"` (default, the paper's Atari choice): cross-entropy
        against the two-hot projection of φ(x) on the integer support {−S…S}, with the
        invertible transform φ(x) = sign(x)(√(|x|+1) − 1) + εx, ε = 10⁻³; the scalar is
        φ⁻¹(Σ p_i i). `value_loss="mse"`: ½(x − x̂)² on raw scalar heads (the paper's board
        games). We chose categorical because CartPole's values (≈ 1/(1−γ) = 100) make plain
        MSE gradients large; φ(100) ≈ 9.2 fits the default support S = 10.
    (6) gradient scaling at the dynamics: each dynamics call receives
        scale_gradient(sᵏ⁻¹, ½), scale_gradient(x, s) = s·x + (1 − s)·⊥x: the paper's "we also
        scale the gradient at the start of the dynamics function by 1/2" (applied to every call,
        as the text says; the published pseudocode skips it on the first call).

One `update` = each of `num_envs` vmapped environments takes `steps_per_update` search-driven
steps into a replay of trajectory rows (`purerl.buffers`: time-major [rows, num_envs]), then
`gradient_steps` Adam steps, each on `batch_size` segments of K + n consecutive rows drawn
uniformly (none before `learning_starts` environment steps). Acting temperature: T, then T/2
after half the run, T/4 after three quarters (the paper's schedule; `temperature_schedule`).
Evaluation is deterministic: the same search with no root noise, the most-visited action.

Not implemented (the paper has them): prioritized replay (we sample uniformly), Reanalyse
(re-running search on old data for fresh policy targets — our value targets already
bootstrap from the current target network rather than stored search values, which is the
value half of Reanalyse; stored policy targets are never refreshed), and frame stacking of
past observations/actions (CartPole's state is Markov). Widths, learning rate, K = 5, n = 10
and the CartPole preset are ours; pb_c_init 1.25, pb_c_base 19652, Dirichlet α 0.25 and
fraction 0.25, weight decay 10⁻⁴ and the temperature schedule are the paper's.

Usage:
    purerl train muzero --env CartPole-v1 --num-seeds 4
    state, metrics, eval_returns = jax.jit(jax.vmap(muzero.train, in_axes=(None, 0)))(muzero.Config(), keys)
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import mctx
import optax
from flax import struct

from purerl import buffers, envs
from purerl.config import check_bool, check_choice, check_int, check_range, check_sizes, static
from purerl.evaluation import evaluate as run_episodes
from purerl.evaluation import train_loop

VALUE_LOSSES = ("categorical", "mse")
TRANSFORM_EPS = 1e-3  # ε of the value transform φ, eq. (5)


# ----------------------------------------------------------------------------- config
@struct.dataclass
class Config:
    """MuZero hyperparameters. Static fields fix the compiled program; float fields can be
    swept with `jax.vmap` (see `purerl.config.sweep_axes`)."""

    # -- static: environment and program shape
    env: str = static("CartPole-v1")  # environment name (discrete actions, gymnax/probes)
    total_timesteps: int = static(20_480)  # environment steps per seed (all envs together)
    num_envs: int = static(16)  # parallel environments, searched as one batch
    steps_per_update: int = static(16)  # steps each environment takes per update
    gradient_steps: int = static(16)  # gradient steps per update (after learning_starts)
    batch_size: int = static(128)  # segments per gradient step
    buffer_size: int = static(20_480)  # replay capacity in transitions (at least num_envs·(K+n) are kept)
    learning_starts: int = static(512)  # environment steps collected before the first gradient step
    num_unroll_steps: int = static(5)  # K: model unroll length, eq. (5)
    td_steps: int = static(10)  # n of the n-step value target, eq. (3)
    num_simulations: int = static(8)  # search simulations per acting step, eq. (2)
    hidden_sizes: tuple[int, ...] = static((64,))  # MLP widths (ReLU) of h, g and f
    latent_dim: int = static(32)  # size of the latent state s
    value_loss: str = static("categorical")  # eq. (5): "categorical" (two-hot of φ(x)) or "mse"
    support_size: int = static(10)  # S: categorical support {−S…S} of value and reward
    temperature_schedule: bool = static(True)  # T, T/2 after 50 %, T/4 after 75 % of the run
    eval_every: int = static(20)  # updates between evaluations
    eval_episodes: int = static(8)  # deterministic-search episodes per evaluation
    # -- sweepable floats
    learning_rate: float = 3e-3  # Adam step size
    gamma: float = 0.99  # discount γ (search and targets)
    tau: float = 0.05  # target network update rate per gradient step, eq. (3); 1 = current network
    value_coef: float = 1.0  # c_v of eq. (5) (the paper uses 0.25 with Reanalyse)
    weight_decay: float = 1e-4  # c of eq. (5), L2 on all parameters
    max_grad_norm: float = 5.0  # global-norm gradient clipping
    temperature: float = 1.0  # T: visit-count softmax temperature when acting
    dirichlet_alpha: float = 0.25  # root noise concentration
    dirichlet_fraction: float = 0.25  # root noise mixing fraction
    pb_c_init: float = 1.25  # c₁ of PUCT
    pb_c_base: float = 19652.0  # c₂ of PUCT

    def __post_init__(self):
        envs.check_name(self.env)
        if self.env.startswith("brax/") or not make_env(self.env).discrete:
            raise ValueError(f"Config.env={self.env!r} is invalid: MuZero here needs discrete actions")
        for name in ("total_timesteps", "num_envs", "steps_per_update", "batch_size", "buffer_size",
                     "num_unroll_steps", "td_steps", "num_simulations", "latent_dim", "support_size",
                     "eval_every", "eval_episodes"):
            check_int(self, name)
        check_int(self, "gradient_steps", low=0)
        check_int(self, "learning_starts", low=0)
        check_sizes(self, "hidden_sizes")
        check_choice(self, "value_loss", VALUE_LOSSES)
        check_bool(self, "temperature_schedule")
        if self.total_timesteps < self.env_steps_per_update:
            raise ValueError(f"Config.total_timesteps={self.total_timesteps} is invalid: must be ≥ one update, "
                             f"num_envs*steps_per_update={self.env_steps_per_update}")
        check_range(self, "learning_rate", 0.0, low_inclusive=False)
        check_range(self, "gamma", 0.0, 1.0)
        check_range(self, "tau", 0.0, 1.0, low_inclusive=False)
        check_range(self, "value_coef", 0.0)
        check_range(self, "weight_decay", 0.0)
        check_range(self, "max_grad_norm", 0.0, low_inclusive=False)
        check_range(self, "temperature", 0.0)
        check_range(self, "dirichlet_alpha", 0.0, low_inclusive=False)
        check_range(self, "dirichlet_fraction", 0.0, 1.0)
        check_range(self, "pb_c_init", 0.0)
        check_range(self, "pb_c_base", 0.0, low_inclusive=False)

    @property
    def env_steps_per_update(self) -> int:
        return self.num_envs * self.steps_per_update

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.env_steps_per_update

    @property
    def segment_length(self) -> int:
        """L = K + n: replay rows one training segment reads."""
        return self.num_unroll_steps + self.td_steps

    @property
    def buffer_rows(self) -> int:
        """Rows of the replay: `buffer_size // num_envs`, at least L."""
        return max(self.buffer_size // self.num_envs, self.segment_length)

    @property
    def first_learning_update(self) -> int:
        """Index of the first update that learns: the first whose collection reaches
        `learning_starts` env steps and leaves L rows in the replay."""
        return max(-(-self.learning_starts // self.env_steps_per_update),
                   -(-self.segment_length // self.steps_per_update), 1) - 1

    @classmethod
    def for_env(cls, env: str, **overrides) -> "Config":
        """Defaults tuned for `env` (from `PRESETS`), then `overrides`."""
        return cls(**{"env": env, **PRESETS.get(env, {}), **overrides})


# Per-environment settings. CartPole-v1: the defaults above (chosen by us; no published MuZero
# settings exist for gymnax CartPole). Measured, 4 seeds vmapped, mean final deterministic-search
# return: 20,480 env steps → 257.0 / 275.6 / 194.3 / 377.0 for keys split(PRNGKey(b), 4), b = 0…3
# (tests/algos/test_muzero.py); 30,720 steps → 281.6 for b = 0. Episodes still lengthen at the
# end of these runs: longer runs (benchmarks/planning_muzero.py) go further.
PRESETS: dict[str, dict[str, Any]] = {
    "CartPole-v1": dict(),
}


# ----------------------------------------------------------------------------- value transform
def value_transform(x):
    """φ(x) = sign(x)(√(|x|+1) − 1) + εx (Pohlen et al. 2018), eq. (5)."""
    return jnp.sign(x) * (jnp.sqrt(jnp.abs(x) + 1.0) - 1.0) + TRANSFORM_EPS * x


def inverse_value_transform(y):
    """φ⁻¹(y) = sign(y)[((√(1 + 4ε(|y| + 1 + ε)) − 1)/(2ε))² − 1]."""
    eps = TRANSFORM_EPS
    return jnp.sign(y) * (((jnp.sqrt(1.0 + 4.0 * eps * (jnp.abs(y) + 1.0 + eps)) - 1.0) / (2.0 * eps)) ** 2 - 1.0)


def scalar_to_support(x, support_size: int):
    """Two-hot projection of x (clipped to [−S, S]) on the integer support {−S…S}: [..., 2S+1]."""
    x = jnp.clip(x, -support_size, support_size)
    low = jnp.floor(x)
    upper_weight = x - low
    index = (low + support_size).astype(jnp.int32)
    size = 2 * support_size + 1
    return (jax.nn.one_hot(index, size) * (1.0 - upper_weight)[..., None]
            + jax.nn.one_hot(jnp.minimum(index + 1, size - 1), size) * upper_weight[..., None])


def support_to_scalar(logits, support_size: int):
    """φ⁻¹(Σ_i softmax(logits)_i · i) over the support {−S…S}."""
    support = jnp.arange(-support_size, support_size + 1, dtype=jnp.float32)
    return inverse_value_transform(jnp.sum(jax.nn.softmax(logits, axis=-1) * support, axis=-1))


def head_to_scalar(config: Config, out):
    """A value or reward head's output as a scalar (categorical: eq. 5's φ⁻¹ of the mean)."""
    if config.value_loss == "categorical":
        return support_to_scalar(out, config.support_size)
    return out[..., 0]


def head_loss(config: Config, out, target):
    """l^v / l^r of eq. (5): cross-entropy against the two-hot of φ(target), or ½ squared error."""
    if config.value_loss == "categorical":
        probs = scalar_to_support(value_transform(target), config.support_size)
        return -jnp.sum(probs * jax.nn.log_softmax(out, axis=-1), axis=-1)
    return 0.5 * (out[..., 0] - target) ** 2


# ----------------------------------------------------------------------------- networks
def normalize_latent(s):
    """Eq. (1): min-max scale each latent vector to [0, 1]."""
    low = s.min(axis=-1, keepdims=True)
    high = s.max(axis=-1, keepdims=True)
    return (s - low) / jnp.maximum(high - low, 1e-5)


class MLP(nn.Module):
    hidden_sizes: Sequence[int]
    out_dim: int

    @nn.compact
    def __call__(self, x):
        for size in self.hidden_sizes:
            x = nn.relu(nn.Dense(size)(x))
        return nn.Dense(self.out_dim)(x)


class Representation(nn.Module):
    """h_θ(o) → s⁰, eq. (1)."""

    obs_ndim: int
    hidden_sizes: Sequence[int]
    latent_dim: int

    @nn.compact
    def __call__(self, obs):
        x = obs.reshape(obs.shape[: obs.ndim - self.obs_ndim] + (-1,))
        return normalize_latent(MLP(self.hidden_sizes, self.latent_dim)(x))


class Dynamics(nn.Module):
    """g_θ(s, a) → (s′, reward head output), eq. (1); the action enters one-hot."""

    num_actions: int
    hidden_sizes: Sequence[int]
    latent_dim: int
    head_dim: int

    @nn.compact
    def __call__(self, latent, action):
        x = jnp.concatenate([latent, jax.nn.one_hot(action, self.num_actions)], axis=-1)
        for size in self.hidden_sizes:
            x = nn.relu(nn.Dense(size)(x))
        next_latent = normalize_latent(nn.Dense(self.latent_dim)(x))
        return next_latent, nn.Dense(self.head_dim)(x)


class Prediction(nn.Module):
    """f_θ(s) → (policy logits, value head output), eq. (1)."""

    num_actions: int
    hidden_sizes: Sequence[int]
    head_dim: int

    @nn.compact
    def __call__(self, latent):
        x = latent
        for size in self.hidden_sizes:
            x = nn.relu(nn.Dense(size)(x))
        logits = nn.Dense(self.num_actions, kernel_init=nn.initializers.zeros)(x)
        return logits, nn.Dense(self.head_dim, kernel_init=nn.initializers.zeros)(x)


@struct.dataclass
class Model:
    """The three networks' apply functions over a params dict {"representation", "dynamics",
    "prediction"}; static (hashable) modules."""

    representation: Representation = struct.field(pytree_node=False)
    dynamics: Dynamics = struct.field(pytree_node=False)
    prediction: Prediction = struct.field(pytree_node=False)

    def represent(self, params, obs):
        return self.representation.apply(params["representation"], obs)

    def step(self, params, latent, action):
        return self.dynamics.apply(params["dynamics"], latent, action)

    def predict(self, params, latent):
        return self.prediction.apply(params["prediction"], latent)


@functools.lru_cache(maxsize=None)
def make_env(env_name: str) -> envs.Environment:
    return envs.make(env_name)


def make_model(config: Config, env: envs.Environment) -> Model:
    num_actions = env.action_space.n
    head_dim = 2 * config.support_size + 1 if config.value_loss == "categorical" else 1
    hidden = tuple(config.hidden_sizes)
    return Model(Representation(len(env.obs_shape), hidden, config.latent_dim),
                 Dynamics(num_actions, hidden, config.latent_dim, head_dim),
                 Prediction(num_actions, hidden, head_dim))


def make_optimizer(config: Config) -> optax.GradientTransformation:
    return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(config.learning_rate))


# ----------------------------------------------------------------------------- replay
@struct.dataclass
class Step:
    """One stored environment step with its search statistics, eq. (2)."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    final_obs: jax.Array  # true next observation s′
    policy: jax.Array  # [A] root visit distribution π_t
    search_value: jax.Array  # ν_t, the root value of the search


def sample_segments(buffer: buffers.ReplayBuffer, key: jax.Array, batch_size: int, length: int) -> Step:
    """`batch_size` segments of `length` consecutive rows of one environment, leaves
    [B, length, ...]; starts uniform over the rows whose `length − 1` successors are stored
    (so only rows written are read)."""
    row_key, env_key = jax.random.split(key)
    oldest = (buffer.row - buffer.rows_filled) % buffer.rows
    starts = jnp.maximum(buffer.rows_filled - length + 1, 1)
    offset = jax.random.randint(row_key, (batch_size,), 0, starts)
    rows = (oldest + offset[:, None] + jnp.arange(length)[None, :]) % buffer.rows
    env_index = jax.random.randint(env_key, (batch_size,), 0, buffer.num_envs)[:, None]
    return jax.tree.map(lambda x: x[rows, env_index], buffer.data)


# ----------------------------------------------------------------------------- targets
def segment_targets(rewards, terminated, truncated, final_values, gamma, num_unroll_steps: int, td_steps: int):
    """Targets of eqs. (3)–(4) for one segment of L = K + n steps (inputs [L]; `final_values`
    = V⁻(s′_j) of every step's true next observation).

    Returns a dict: value [K+1], value_mask [K+1], reward [K] (of transitions 0…K−1),
    reward_mask [K], policy_mask [K+1]. Position k is `alive` when no episode end lies in
    steps 0…k−1 and `absorbing` when the first such end is a terminal."""
    terminated = terminated.astype(jnp.float32)
    done = jnp.maximum(terminated, truncated.astype(jnp.float32))
    # alive_k = Π_{j<k} (1 − done_j); absorbing_k: some j < k is the episode's (first) end and a terminal
    alive = jnp.concatenate([jnp.ones(1), jnp.cumprod(1.0 - done[:num_unroll_steps])])
    absorbing = jnp.concatenate([jnp.zeros(1), jnp.cumsum(alive[:-1] * terminated[:num_unroll_steps])])

    # window of position k: steps j = k + i, i < n; running_{k,i} = no end in steps k … k+i−1
    window = jnp.arange(num_unroll_steps + 1)[:, None] + jnp.arange(td_steps)[None, :]
    done_w, terminated_w = done[window], terminated[window]
    running = jnp.concatenate([jnp.ones((num_unroll_steps + 1, 1)), jnp.cumprod(1.0 - done_w, axis=1)[:, :-1]],
                              axis=1)
    discounts = gamma ** jnp.arange(td_steps, dtype=jnp.float32)
    last = jnp.zeros(td_steps).at[-1].set(1.0)  # the n-th step bootstraps if the episode goes on
    ends = jnp.maximum(done_w, last[None, :])
    total = jnp.sum(running * discounts * rewards[window], axis=1)
    bootstrap = jnp.sum(running * ends * (1.0 - terminated_w) * discounts * gamma * final_values[window], axis=1)
    values = alive * (total + bootstrap)

    head = slice(0, num_unroll_steps)
    return {"value": values, "value_mask": jnp.maximum(alive, absorbing),
            "reward": alive[head] * rewards[head], "reward_mask": jnp.maximum(alive[head], absorbing[head]),
            "policy_mask": alive}


# ----------------------------------------------------------------------------- unroll and loss
def scale_gradient(x, scale):
    """Identity forward; gradient multiplied by `scale` (eq. 6)."""
    return jax.tree.map(lambda v: v * scale + jax.lax.stop_gradient(v) * (1.0 - scale), x)


def unroll(represent: Callable, step: Callable, predict: Callable, obs, actions):
    """Eq. (1) unrolled K = actions.shape[1] steps, with the ½ gradient scale of eq. (6) at the
    start of every dynamics call. `obs` [B, ...], `actions` [B, K].

    Returns (policy logits [B, K+1, A], value outputs [B, K+1, ...], reward outputs [B, K, ...])."""
    latent = represent(obs)
    logits, value = predict(latent)

    def model_step(latent, action):
        latent, reward = step(scale_gradient(latent, 0.5), action)
        logits, value = predict(latent)
        return latent, (logits, value, reward)

    _, (logits_k, value_k, reward_k) = jax.lax.scan(model_step, latent, jnp.swapaxes(actions, 0, 1))
    batch_major = lambda x: jnp.swapaxes(x, 0, 1)  # noqa: E731
    return (jnp.concatenate([logits[:, None], batch_major(logits_k)], axis=1),
            jnp.concatenate([value[:, None], batch_major(value_k)], axis=1), batch_major(reward_k))


def unrolled_loss(config: Config, policy_logits, value_out, reward_out, targets, policy_targets):
    """Eq. (5) averaged over the batch, weight decay excluded. Inputs batch-major: logits
    [B, K+1, A], head outputs [B, K+1, ·] and [B, K, ·], `targets` from `segment_targets`
    (vmapped), `policy_targets` [B, K+1, A]. Returns (loss, per-term metrics)."""
    num_unroll = reward_out.shape[1]
    policy_l = -jnp.sum(policy_targets * jax.nn.log_softmax(policy_logits, axis=-1), axis=-1)
    value_l = head_loss(config, value_out, targets["value"])
    reward_l = head_loss(config, reward_out, targets["reward"])
    per_position = (config.value_coef * targets["value_mask"] * value_l + targets["policy_mask"] * policy_l)
    per_position = per_position.at[:, 1:].add(targets["reward_mask"] * reward_l)
    scales = jnp.concatenate([jnp.ones(1), jnp.full(num_unroll, 1.0 / max(num_unroll, 1))])
    loss = jnp.sum(jax.vmap(scale_gradient, in_axes=(1, 0), out_axes=1)(per_position, scales), axis=1).mean()
    return loss, {"loss/value": jnp.sum(targets["value_mask"] * value_l, axis=1).mean(),
                  "loss/policy": jnp.sum(targets["policy_mask"] * policy_l, axis=1).mean(),
                  "loss/reward": jnp.sum(targets["reward_mask"] * reward_l, axis=1).mean()}


def value_of(config: Config, model: Model, params, obs):
    """V(o) = f(h(o))'s value as a scalar."""
    return head_to_scalar(config, model.predict(params, model.represent(params, obs))[1])


def loss_fn(params, target_params, config: Config, model: Model, batch: Step):
    """Eq. (5) on a batch of segments (leaves [B, L, ...]), L2 included."""
    k = config.num_unroll_steps
    final_values = jax.lax.stop_gradient(value_of(config, model, target_params, batch.final_obs))
    targets = jax.vmap(segment_targets, in_axes=(0, 0, 0, 0, None, None, None))(
        batch.reward, batch.terminated, batch.truncated, final_values, config.gamma, k, config.td_steps)
    logits, value_out, reward_out = unroll(functools.partial(model.represent, params),
                                           functools.partial(model.step, params),
                                           functools.partial(model.predict, params),
                                           batch.obs[:, 0], batch.action[:, :k])
    loss, metrics = unrolled_loss(config, logits, value_out, reward_out, targets, batch.policy[:, : k + 1])
    l2 = sum(jnp.sum(p**2) for p in jax.tree.leaves(params))
    metrics["value_target_mean"] = jnp.sum(targets["value"][:, 0]) / batch.reward.shape[0]
    return loss + config.weight_decay * l2, metrics


# ----------------------------------------------------------------------------- search
def search(config: Config, model: Model, params, obs, key, temperature, noise: bool):
    """Eq. (2): `mctx.muzero_policy` over the learned model from h(obs). Returns the
    `mctx.PolicyOutput` (action, action_weights = visit distribution, search_tree)."""
    latent = model.represent(params, obs)
    logits, value_out = model.predict(params, latent)
    root = mctx.RootFnOutput(prior_logits=logits, value=head_to_scalar(config, value_out), embedding=latent)

    def recurrent_fn(params, _key, action, latent):
        next_latent, reward_out = model.step(params, latent, action)
        logits, value_out = model.predict(params, next_latent)
        out = mctx.RecurrentFnOutput(reward=head_to_scalar(config, reward_out),
                                     discount=jnp.full(action.shape, config.gamma, jnp.float32),
                                     prior_logits=logits, value=head_to_scalar(config, value_out))
        return out, next_latent

    return mctx.muzero_policy(params, key, root, recurrent_fn, config.num_simulations,
                              dirichlet_fraction=config.dirichlet_fraction if noise else 0.0,
                              dirichlet_alpha=config.dirichlet_alpha, pb_c_init=config.pb_c_init,
                              pb_c_base=config.pb_c_base, temperature=temperature)


def acting_temperature(config: Config, update_index):
    """T, T/2 after half of the updates, T/4 after three quarters (if `temperature_schedule`)."""
    if not config.temperature_schedule:
        return jnp.asarray(config.temperature, jnp.float32)
    progress = update_index / max(config.num_updates, 1)
    return config.temperature * jnp.where(progress < 0.5, 1.0, jnp.where(progress < 0.75, 0.5, 0.25))


# ----------------------------------------------------------------------------- state
@struct.dataclass
class TrainState:
    params: Any  # {"representation", "dynamics", "prediction"}
    target_params: Any  # θ⁻ of eq. (3)
    opt_state: Any
    env_state: envs.EnvState
    obs: jax.Array  # [num_envs, *obs_shape]
    buffer: buffers.ReplayBuffer
    rng: jax.Array
    update_step: jax.Array  # int32, updates done


def _example_step(env: envs.Environment) -> Step:
    obs = jnp.zeros(env.obs_shape, jnp.float32)
    return Step(obs=obs, action=jnp.zeros((), jnp.int32), reward=jnp.zeros(()), terminated=jnp.zeros((), bool),
                truncated=jnp.zeros((), bool), final_obs=obs, policy=jnp.zeros(env.action_space.n),
                search_value=jnp.zeros(()))


def init(config: Config, key: jax.Array) -> TrainState:
    env = make_env(config.env)
    model = make_model(config, env)
    key, h_key, g_key, f_key, reset_key = jax.random.split(key, 5)
    env_state, obs = env.reset(reset_key, config.num_envs)
    latent = jnp.zeros((config.num_envs, config.latent_dim))
    params = {"representation": model.representation.init(h_key, obs),
              "dynamics": model.dynamics.init(g_key, latent, jnp.zeros(config.num_envs, jnp.int32)),
              "prediction": model.prediction.init(f_key, latent)}
    return TrainState(params=params, target_params=params, opt_state=make_optimizer(config).init(params),
                      env_state=env_state, obs=obs,
                      buffer=buffers.create(_example_step(env), config.num_envs,
                                            config.buffer_rows * config.num_envs),
                      rng=key, update_step=jnp.zeros((), jnp.int32))


def update(config: Config, state: TrainState, update_index=None) -> tuple[TrainState, dict]:
    """One MuZero iteration: search-driven steps into the replay → gradient steps on eq. (5).

    `update_index` is `state.update_step` given unbatched (`evaluation.run_block` passes it),
    so that under `vmap` over seeds the learning gate is a real branch."""
    env = make_env(config.env)
    model = make_model(config, env)
    optimizer = make_optimizer(config)
    index = state.update_step if update_index is None else update_index
    temperature = acting_temperature(config, index)

    # 1. Act by searching the learned model, eq. (2); store steps with π_t and ν_t.
    def env_step(carry, _):
        env_state, obs, buffer, rng = carry
        rng, search_key, step_key = jax.random.split(rng, 3)
        out = search(config, model, state.params, obs, search_key, temperature, noise=True)
        env_state, ts = env.step(step_key, env_state, out.action)
        buffer = buffers.add(buffer, Step(obs, out.action, ts.reward, ts.terminated, ts.truncated, ts.final_obs,
                                          out.action_weights, out.search_tree.summary().value))
        done = ts.done.astype(jnp.float32)
        return (env_state, ts.obs, buffer, rng), (ts.episode_return * done, done,
                                                  out.search_tree.summary().value)

    (env_state, obs, buffer, rng), (returns, dones, search_values) = jax.lax.scan(
        env_step, (state.env_state, state.obs, state.buffer, state.rng), None, config.steps_per_update)

    # 2. Gradient steps on eq. (5), Polyak target update of eq. (3) after each.
    def gradient_step(carry, key):
        params, target_params, opt_state = carry
        batch = sample_segments(buffer, key, config.batch_size, config.segment_length)
        (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, target_params, config, model,
                                                                           batch)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        target_params = jax.tree.map(lambda p, t: t + config.tau * (p - t), params, target_params)
        return (params, target_params, opt_state), {"loss/total": loss, **metrics}

    metric_names = ("loss/total", "loss/value", "loss/policy", "loss/reward", "value_target_mean")

    def learn(operand):
        params, target_params, opt_state, key = operand
        (params, target_params, opt_state), aux = jax.lax.scan(
            gradient_step, (params, target_params, opt_state), jax.random.split(key, config.gradient_steps))
        return params, target_params, opt_state, jax.tree.map(jnp.mean, aux)

    def skip(operand):
        params, target_params, opt_state, _ = operand
        return params, target_params, opt_state, {name: jnp.float32(jnp.nan) for name in metric_names}

    rng, learn_key = jax.random.split(rng)
    operand = (state.params, state.target_params, state.opt_state, learn_key)
    if config.gradient_steps > 0:
        params, target_params, opt_state, metrics = jax.lax.cond(index >= config.first_learning_update, learn,
                                                                 skip, operand)
    else:
        params, target_params, opt_state, metrics = skip(operand)

    episodes = dones.sum()
    metrics["train/episode_return"] = jnp.where(episodes > 0, returns.sum() / jnp.maximum(episodes, 1), jnp.nan)
    metrics["train/episodes"] = episodes
    metrics["search_value"] = search_values.mean()
    metrics["temperature"] = temperature
    new_state = TrainState(params=params, target_params=target_params, opt_state=opt_state, env_state=env_state,
                           obs=obs, buffer=buffer, rng=rng, update_step=state.update_step + 1)
    return new_state, metrics


def act(config: Config, params, obs: jax.Array, key: jax.Array, deterministic: bool = True) -> jax.Array:
    """The search's action: the most-visited root action without root noise (deterministic),
    or one sampled from the visit counts with noise (T = `config.temperature`)."""
    model = make_model(config, make_env(config.env))
    temperature = 0.0 if deterministic else config.temperature
    return search(config, model, params, obs, key, temperature, noise=not deterministic).action


def evaluate(config: Config, state: TrainState) -> jax.Array:
    """Returns of `eval_episodes` deterministic-search episodes, [eval_episodes]."""
    env = make_env(config.env)
    key = jax.random.fold_in(state.rng, 0x5EED)  # independent of the training stream
    return run_episodes(env, functools.partial(act, config, state.params), key, config.eval_episodes)


def train(config: Config, key: jax.Array):
    """`init` + `lax.scan` of `update`, evaluating every `eval_every` updates and at the end.

    Returns (final state, per-update metrics [num_updates], eval returns [num_evals, eval_episodes]).
    """
    state = init(config, key)
    return train_loop(functools.partial(update, config), functools.partial(evaluate, config), state,
                      config.num_updates, config.eval_every)
