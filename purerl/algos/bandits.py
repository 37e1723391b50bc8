"""Multi-armed bandits — UCB1, ε-greedy and Thompson sampling (Beta-Bernoulli and Gaussian)
on the gymnax bandit environments, with exact (pseudo-)regret bookkeeping.

The simplest exploration–exploitation problem: K arms with unknown mean rewards μ_a; each
pull of arm a returns a noisy reward with mean μ_a, and a strategy should pull the best arm
μ* = max_a μ_a as often as possible while still learning which one it is. The strategies
keep, for every arm, its pull count n_a and reward sum S_a (t = Σ_a n_a pulls so far):

    (1) μ̂_a = S_a / n_a                                           empirical mean
    (2) UCB1:  a_t = argmax_a  μ̂_a + c·sqrt(ln t / n_a)            (n_a = 0 → +∞: each arm once first)
        Auer, Cesa-Bianchi & Fischer 2002, "Finite-time analysis of the multiarmed bandit
        problem", Machine Learning 47; c = √2 is their UCB1, E[R(T)] ≤ Σ_{a: Δ_a>0} 8 ln T/Δ_a
        + (1 + π²/3) Σ_a Δ_a for rewards in [0, 1].
    (3) ε-greedy:  P(a_t = a) = (1 − ε)·1[a ∈ G]/|G| + ε/K,   G = argmax_a μ̂_a (n_a = 0 → +∞)
        (Sutton & Barto 2018, §2.2–2.3; a fixed ε pulls a wrong arm a fraction ε(K−1)/K of
        the time for ever, so its regret grows linearly).
    (4) Thompson, Beta-Bernoulli:  θ_a ~ Beta(α₀ + S_a, β₀ + n_a − S_a),  a_t = argmax_a θ_a
        (Thompson 1933; Agrawal & Goyal 2012, "Analysis of Thompson sampling for the
        multi-armed bandit problem", COLT: asymptotically optimal for Bernoulli arms).
    (5) Thompson, Gaussian (known noise σ, prior N(m₀, σ₀²) on every μ_a):
        1/s_a² = 1/σ₀² + n_a/σ²,  m_a = s_a²·(m₀/σ₀² + S_a/σ²),  θ_a ~ N(m_a, s_a²)
    (6) pseudo-regret  R(T) = Σ_{t≤T} (μ* − μ_{a_t}) = Σ_a n_a(T)·Δ_a,   Δ_a = μ* − μ_a

Lai & Robbins (1985) bound every consistent strategy from below by
lim inf E[R(T)]/ln T ≥ Σ_{Δ_a>0} Δ_a / KL(μ_a, μ*): logarithmic regret is the best possible,
UCB1 and Thompson sampling reach that order, fixed-ε greedy does not.
Ties (every arm at the start, equal means) are broken uniformly at random.

The environments. `BernoulliBandit-misc` (Wang et al. 2017): two arms with success
probabilities (p, 1 − p) or (1 − p, p), drawn at reset, p = `reward_prob` (gymnax default
0.1, so μ = {0.1, 0.9}, gap Δ = |1 − 2p| = 0.8). `GaussianBandit-misc` (Lange & Sprekeler
2022): arm 0 always pays exactly 0, arm 1 pays μ + σ_l·ε with μ ~ N(mean_mu, sigma_p²)
drawn at reset (gymnax defaults −1, 1, σ_l = 0.1). gymnax redraws the arms when an episode
ends (its time limit, 100 pulls); here the time limit is set to 2³⁰ pulls, beyond any run
(the horizon is capped at 2²⁴), so each of a seed's `num_envs` bandit problems keeps its arms
for the whole run and the regret is relative to those arms (`train/resets` counts episode
ends and stays 0). The true means μ_a are read from the environment's state at `init`
(Bernoulli: `reward_probs`; Gaussian: (0, `mu`)) and kept in `TrainState.arm_means`.

One `update` = `pulls_per_update` pulls in each of the `num_envs` independent problems
(`env_steps_per_update = num_envs × pulls_per_update` environment steps); `total_timesteps`
counts pulls summed over the problems, so the horizon of each problem is
T = num_updates × pulls_per_update. Metrics, averaged over the problems:
`regret/cumulative` R(t) at the end of the update, `regret/instant` mean μ* − μ_{a_t} over
the update's pulls, `train/reward`, `train/best_arm_fraction` (pulls of arm argmax μ),
`train/greedy_arm_mean` (μ of the arm the strategy now believes best).

`evaluate` (the runner's "return"): `eval_episodes` one-pull episodes of the greedy arm —
argmax of μ̂ (ε-greedy, UCB1) or of the posterior mean (Thompson), unplayed arms last — in
every problem, on a copy of the environment (the learner does not see these rewards). Each
entry is the mean reward over the `num_envs` problems, so its expectation is the mean μ of
the greedy arms: it rises to the mean μ* (0.9 on the default Bernoulli bandit; on the
Gaussian one max(0, μ)) as the strategy identifies the best arm.

Defaults: c = √2 (UCB1 as published), ε = 0.1 (Sutton & Barto's example), uniform
Beta(1, 1) prior, Gaussian prior N(0, 1) with σ = 0.1 (gymnax's σ_l). Every float
(c, epsilon, prior_alpha, prior_beta, prior_mean, prior_std, noise_std) can be swept with
`jax.vmap` (`purerl.config.sweep_axes`).

Usage:
    purerl train bandits --env BernoulliBandit-misc --strategy ucb1 --num-seeds 16
    purerl train bandits --env BernoulliBandit-misc --strategy thompson --reward-prob 0.3
    purerl train bandits --env GaussianBandit-misc --strategy thompson
    config = bandits.Config(strategy="ucb1", c=jnp.array([0.5, 1.0, 1.414]))
    state, metrics, eval_returns = jax.jit(jax.vmap(bandits.train, in_axes=(sweep_axes(config, "c"), None)))(
        config, key)
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from purerl import envs
from purerl.config import check_choice, check_int, check_range, static
from purerl.evaluation import train_loop

STRATEGIES = ("ucb1", "epsilon_greedy", "thompson")
POSTERIORS = ("auto", "beta", "gaussian")
BANDIT_ENVS = ("BernoulliBandit-misc", "GaussianBandit-misc")
NEVER_RESET = 2**30  # gymnax time limit we set: far beyond any horizon (≤ MAX_HORIZON)
MAX_HORIZON = 2**24  # pulls per problem: float32 counts and gymnax's float time stay exact


# ----------------------------------------------------------------------------- config
@struct.dataclass
class Config:
    """Bandit strategy and its parameters. Static fields fix the compiled program; float
    fields can be swept with `jax.vmap` (see `purerl.config.sweep_axes`)."""

    # -- static: environment and program shape
    env: str = static("BernoulliBandit-misc")  # one of BANDIT_ENVS
    strategy: str = static("ucb1")  # "ucb1" (eq. 2), "epsilon_greedy" (eq. 3) or "thompson" (eqs. 4–5)
    posterior: str = static("auto")  # Thompson's model: "beta" (eq. 4), "gaussian" (eq. 5); auto: beta on Bernoulli
    total_timesteps: int = static(640_000)  # pulls per seed, summed over the num_envs problems
    num_envs: int = static(64)  # independent bandit problems per seed (each keeps its arms for the run)
    pulls_per_update: int = static(10)  # pulls of each problem per update
    eval_every: int = static(100)  # updates between evaluations
    eval_episodes: int = static(16)  # one-pull greedy-arm episodes per evaluation (each over all problems)
    reward_prob: float | None = static(None)  # BernoulliBandit p: arms (p, 1 − p); None = gymnax's 0.1
    mean_mu: float | None = static(None)  # GaussianBandit: mean of arm 1's μ prior; None = gymnax's −1
    sigma_p: float | None = static(None)  # GaussianBandit: std of arm 1's μ across problems; None = 1
    sigma_l: float | None = static(None)  # GaussianBandit: reward noise std of arm 1; None = 0.1
    # -- sweepable floats
    c: float = 1.4142135623730951  # UCB exploration coefficient of eq. (2); √2 is UCB1
    epsilon: float = 0.1  # ε of eq. (3), fixed
    prior_alpha: float = 1.0  # α₀ of eq. (4)
    prior_beta: float = 1.0  # β₀ of eq. (4)
    prior_mean: float = 0.0  # m₀ of eq. (5)
    prior_std: float = 1.0  # σ₀ of eq. (5)
    noise_std: float = 0.1  # σ of eq. (5): the reward noise the Gaussian model assumes

    def __post_init__(self):
        if self.env not in BANDIT_ENVS:
            raise ValueError(f"Config.env={self.env!r} is invalid: must be one of {list(BANDIT_ENVS)} "
                             "(the bandit algorithms need the arms' true means for the regret)")
        check_choice(self, "strategy", STRATEGIES)
        check_choice(self, "posterior", POSTERIORS)
        if self.posterior == "beta" and self.env != "BernoulliBandit-misc":
            raise ValueError(f"Config.posterior='beta' is invalid with env={self.env!r}: the Beta-Bernoulli model "
                             "needs rewards in {0, 1}; use 'gaussian' (or 'auto')")
        for name in ("total_timesteps", "num_envs", "pulls_per_update", "eval_every", "eval_episodes"):
            check_int(self, name)
        bernoulli = self.env == "BernoulliBandit-misc"
        for name in ("reward_prob",) if not bernoulli else ("mean_mu", "sigma_p", "sigma_l"):
            if getattr(self, name) is not None:
                raise ValueError(f"Config.{name}={getattr(self, name)!r} is invalid with env={self.env!r}: "
                                 f"it is a parameter of the other bandit; leave it None")
        if self.reward_prob is not None:
            check_range(self, "reward_prob", 0.0, 1.0)
        if self.mean_mu is not None:
            check_range(self, "mean_mu")
        for name in ("sigma_p", "sigma_l"):
            if getattr(self, name) is not None:
                check_range(self, name, 0.0)
        if self.total_timesteps < self.env_steps_per_update:
            raise ValueError(f"Config.total_timesteps={self.total_timesteps} is invalid: must be ≥ one update, "
                             f"num_envs*pulls_per_update={self.env_steps_per_update}")
        if self.horizon > MAX_HORIZON:
            raise ValueError(f"Config.total_timesteps={self.total_timesteps} is invalid: {self.horizon} pulls per "
                             f"problem is more than {MAX_HORIZON} (float32 counts); use more num_envs")
        check_range(self, "c", 0.0)
        check_range(self, "epsilon", 0.0, 1.0)
        check_range(self, "prior_alpha", 0.0, low_inclusive=False)
        check_range(self, "prior_beta", 0.0, low_inclusive=False)
        check_range(self, "prior_mean")
        check_range(self, "prior_std", 0.0, low_inclusive=False)
        check_range(self, "noise_std", 0.0, low_inclusive=False)

    @property
    def env_steps_per_update(self) -> int:
        return self.num_envs * self.pulls_per_update

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.env_steps_per_update

    @property
    def horizon(self) -> int:
        """T: pulls of each bandit problem over the run."""
        return self.num_updates * self.pulls_per_update

    @property
    def model(self) -> str:
        """Thompson's posterior, "beta" or "gaussian" (`posterior` with "auto" resolved)."""
        if self.posterior != "auto":
            return self.posterior
        return "beta" if self.env == "BernoulliBandit-misc" else "gaussian"

    @property
    def env_params(self) -> tuple:
        """gymnax EnvParams overrides, as (name, value) pairs (hashable: the env cache key)."""
        # gymnax's own field types: a float limit for the Bernoulli bandit, an int for the Gaussian
        limit = float(NEVER_RESET) if self.env == "BernoulliBandit-misc" else NEVER_RESET
        params = {"max_steps_in_episode": limit}
        for name in ("reward_prob", "mean_mu", "sigma_p", "sigma_l"):
            if getattr(self, name) is not None:
                params[name] = float(getattr(self, name))
        return tuple(sorted(params.items()))

    @classmethod
    def for_env(cls, env: str, **overrides) -> "Config":
        """Defaults for `env` (from `PRESETS`), then `overrides`."""
        return cls(**{"env": env, **PRESETS.get(env, {}), **overrides})


# No tuning: the defaults above are the published ones. On the Gaussian bandit the reward
# scale is ~1 (|μ| ~ 1, σ_l = 0.1), the same order as the Bernoulli one, so c = √2 stays.
PRESETS: dict[str, dict[str, Any]] = {
    "BernoulliBandit-misc": {},
    "GaussianBandit-misc": {},
}


@functools.lru_cache(maxsize=None)
def make_env(env_name: str, env_params: tuple) -> envs.Environment:
    return envs.make(env_name, **dict(env_params))


def config_env(config: Config) -> envs.Environment:
    return make_env(config.env, config.env_params)


def true_arm_means(backend_state) -> jax.Array:
    """μ_a of every arm, [N, K], from a batch of gymnax bandit states."""
    if hasattr(backend_state, "reward_probs"):  # BernoulliBandit: success probabilities
        return backend_state.reward_probs.astype(jnp.float32)
    if hasattr(backend_state, "mu"):  # GaussianBandit: arm 0 pays 0, arm 1 has mean mu
        mu = backend_state.mu.astype(jnp.float32)
        return jnp.stack([jnp.zeros_like(mu), mu], axis=-1)
    raise ValueError(f"not a gymnax bandit state: {type(backend_state).__name__}")


# ----------------------------------------------------------------------------- state
@struct.dataclass
class TrainState:
    counts: jax.Array  # n_a, [N, K] float32: pulls of each arm in each problem
    sums: jax.Array  # S_a, [N, K] float32: reward sums
    arm_means: jax.Array  # μ_a, [N, K]: the true means, fixed for the run (regret only; never shown to the strategy)
    cumulative_regret: jax.Array  # R(t) of eq. (6), [N]
    env_state: envs.EnvState  # the num_envs bandit problems
    rng: jax.Array
    t: jax.Array  # int32: pulls of each problem so far
    update_step: jax.Array  # int32: updates done


# ----------------------------------------------------------------------------- strategies (pure, [..., K])
def empirical_means(counts, sums, unplayed=jnp.inf):
    """μ̂_a of eq. (1); `unplayed` where n_a = 0."""
    return jnp.where(counts > 0, sums / jnp.maximum(counts, 1.0), unplayed)


def ucb_index(counts, sums, c):
    """Eq. (2): μ̂_a + c·sqrt(ln t / n_a) with t = Σ_a n_a; +∞ for an unplayed arm."""
    t = jnp.sum(counts, axis=-1, keepdims=True)
    bonus = c * jnp.sqrt(jnp.log(jnp.maximum(t, 1.0)) / jnp.maximum(counts, 1.0))
    return jnp.where(counts > 0, sums / jnp.maximum(counts, 1.0) + bonus, jnp.inf)


def epsilon_greedy_probs(counts, sums, epsilon):
    """Eq. (3): (1 − ε)·1[a ∈ G]/|G| + ε/K, G the arms of largest μ̂ (unplayed count as +∞)."""
    means = empirical_means(counts, sums)
    greedy = (means >= jnp.max(means, axis=-1, keepdims=True)).astype(jnp.float32)
    k = counts.shape[-1]
    return (1.0 - epsilon) * greedy / jnp.sum(greedy, axis=-1, keepdims=True) + epsilon / k


def beta_posterior(counts, sums, prior_alpha, prior_beta):
    """Eq. (4): (α, β) = (α₀ + S_a, β₀ + n_a − S_a) for Bernoulli rewards."""
    return prior_alpha + sums, prior_beta + counts - sums


def gaussian_posterior(counts, sums, prior_mean, prior_std, noise_std):
    """Eq. (5): posterior (m_a, s_a) of μ_a under prior N(m₀, σ₀²) and known noise σ."""
    precision = 1.0 / prior_std**2 + counts / noise_std**2
    mean = (prior_mean / prior_std**2 + sums / noise_std**2) / precision
    return mean, 1.0 / jnp.sqrt(precision)


def argmax_random_tie(key, values):
    """argmax over the last axis, ties broken uniformly at random."""
    is_max = values >= jnp.max(values, axis=-1, keepdims=True)
    return jnp.argmax(jnp.where(is_max, jax.random.uniform(key, values.shape), -1.0), axis=-1)


def select_arms(config: Config, counts, sums, key) -> jax.Array:
    """a_t of every problem, [N], by `config.strategy`."""
    if config.strategy == "ucb1":
        return argmax_random_tie(key, ucb_index(counts, sums, config.c))
    if config.strategy == "epsilon_greedy":
        return jax.random.categorical(key, jnp.log(epsilon_greedy_probs(counts, sums, config.epsilon)))
    sample_key, tie_key = jax.random.split(key)
    if config.model == "beta":
        alpha, beta = beta_posterior(counts, sums, config.prior_alpha, config.prior_beta)
        theta = jax.random.beta(sample_key, alpha, beta)
    else:
        mean, std = gaussian_posterior(counts, sums, config.prior_mean, config.prior_std, config.noise_std)
        theta = mean + std * jax.random.normal(sample_key, mean.shape)
    return argmax_random_tie(tie_key, theta)


def greedy_arms(config: Config, counts, sums, key) -> jax.Array:
    """The arm each problem's strategy believes best, [N]: argmax of the posterior mean
    (Thompson) or of μ̂ (UCB1, ε-greedy; unplayed arms last)."""
    if config.strategy == "thompson" and config.model == "beta":
        alpha, beta = beta_posterior(counts, sums, config.prior_alpha, config.prior_beta)
        estimate = alpha / (alpha + beta)
    elif config.strategy == "thompson":
        estimate = gaussian_posterior(counts, sums, config.prior_mean, config.prior_std, config.noise_std)[0]
    else:
        estimate = empirical_means(counts, sums, unplayed=-jnp.inf)
    return argmax_random_tie(key, estimate)


# ----------------------------------------------------------------------------- init / update / train
def init(config: Config, key: jax.Array) -> TrainState:
    """Draw the `num_envs` bandit problems (gymnax reset) and start with no pulls."""
    env = config_env(config)
    key, reset_key = jax.random.split(key)
    env_state, _ = env.reset(reset_key, config.num_envs)
    arm_means = true_arm_means(env_state.backend_state)
    zeros = jnp.zeros_like(arm_means)
    return TrainState(counts=zeros, sums=zeros, arm_means=arm_means,
                      cumulative_regret=jnp.zeros(config.num_envs, jnp.float32), env_state=env_state, rng=key,
                      t=jnp.zeros((), jnp.int32), update_step=jnp.zeros((), jnp.int32))


def update(config: Config, state: TrainState) -> tuple[TrainState, dict]:
    """`pulls_per_update` pulls in every problem: select (eqs. 2–5), pull, count, regret (eq. 6)."""
    env = config_env(config)
    k = state.arm_means.shape[-1]
    best = jnp.max(state.arm_means, axis=-1)
    best_arm = jnp.argmax(state.arm_means, axis=-1)

    def pull(carry, key):
        counts, sums, regret, env_state = carry
        select_key, env_key = jax.random.split(key)
        arm = select_arms(config, counts, sums, select_key)
        env_state, ts = env.step(env_key, env_state, arm)
        chosen = jax.nn.one_hot(arm, k, dtype=jnp.float32)
        instant = best - jnp.take_along_axis(state.arm_means, arm[:, None], axis=-1)[:, 0]
        carry = (counts + chosen, sums + chosen * ts.reward[:, None], regret + instant, env_state)
        return carry, (instant, ts.reward, (arm == best_arm).astype(jnp.float32), ts.done.astype(jnp.float32))

    rng, pulls_key, greedy_key = jax.random.split(state.rng, 3)
    (counts, sums, regret, env_state), (instant, reward, best_pulled, done) = jax.lax.scan(
        pull, (state.counts, state.sums, state.cumulative_regret, state.env_state),
        jax.random.split(pulls_key, config.pulls_per_update))
    greedy = greedy_arms(config, counts, sums, greedy_key)
    metrics = {
        "regret/cumulative": jnp.mean(regret),
        "regret/instant": jnp.mean(instant),
        "train/reward": jnp.mean(reward),
        "train/best_arm_fraction": jnp.mean(best_pulled),
        "train/greedy_arm_mean": jnp.mean(jnp.take_along_axis(state.arm_means, greedy[:, None], axis=-1)),
        "train/resets": jnp.sum(done),  # episode ends (a redrawn problem); 0 by construction
    }
    new_state = TrainState(counts=counts, sums=sums, arm_means=state.arm_means, cumulative_regret=regret,
                           env_state=env_state, rng=rng, t=state.t + config.pulls_per_update,
                           update_step=state.update_step + 1)
    return new_state, metrics


def evaluate(config: Config, state: TrainState) -> jax.Array:
    """[eval_episodes]: each entry the mean over the problems of one pull of the greedy arm,
    on a copy of the environment (the learner's statistics and state are untouched)."""
    env = config_env(config)
    key = jax.random.fold_in(state.rng, 0x5EED)  # independent of the training stream
    greedy_key, pulls_key = jax.random.split(key)
    arm = greedy_arms(config, state.counts, state.sums, greedy_key)

    def one_pull(key):
        _, ts = env.step(key, state.env_state, arm, update_stats=False)
        return jnp.mean(ts.reward)

    return jax.vmap(one_pull)(jax.random.split(pulls_key, config.eval_episodes))


def train(config: Config, key: jax.Array):
    """`init` + `lax.scan` of `update`, evaluating every `eval_every` updates and at the end.

    Returns (final state, per-update metrics [num_updates], eval returns [num_evals, eval_episodes]).
    """
    state = init(config, key)
    return train_loop(functools.partial(update, config), functools.partial(evaluate, config), state,
                      config.num_updates, config.eval_every)


def regret_curve(metrics: dict, config: Config) -> tuple[np.ndarray, np.ndarray]:
    """(pulls t per problem, mean cumulative regret R(t)) at the end of every update, from
    `train`'s metrics (any leading seed axes kept)."""
    t = np.arange(1, config.num_updates + 1) * config.pulls_per_update
    return t, np.asarray(metrics["regret/cumulative"])
