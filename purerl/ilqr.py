"""iLQR / DDP trajectory optimization with derivatives from JAX (Li & Todorov 2004, "Iterative
linear quadratic regulator design for nonlinear biological movement systems"; Tassa, Erez &
Todorov 2012, "Synthesis and stabilization of complex behaviors through online trajectory
optimization", IROS — the regularization and line search used here).

Problem: minimize J(x_0, u_{0:T}) = Σ_{t<T} ℓ(x_t, u_t) + ℓ_f(x_T) subject to x_{t+1} = f(x_t, u_t),
for a given x_0. `f`, `ℓ`, `ℓ_f` are plain JAX functions of one (unbatched) state/control; their
derivatives come from `jax.jacfwd` (f_x, f_u), `jax.grad` and `jax.hessian` (ℓ_x, ℓ_u, ℓ_xx, ℓ_uu,
ℓ_ux) and, for DDP (`second_order=True`), `jax.hessian` of f (f_xx, f_uu, f_ux).

Backward pass, t = T−1 … 0, from V_x = ∂ℓ_f/∂x, V_xx = ∂²ℓ_f/∂x² at x̂_T (primes: step t+1):

    (1) Q_x  = ℓ_x  + f_xᵀ V′_x                 Q_u  = ℓ_u + f_uᵀ V′_x
    (2) Q_xx = ℓ_xx + f_xᵀ V′_xx f_x (+ V′_x·f_xx)
        Q_uu = ℓ_uu + f_uᵀ V′_xx f_u (+ V′_x·f_uu)
        Q_ux = ℓ_ux + f_uᵀ V′_xx f_x (+ V′_x·f_ux)          (the bracketed terms: DDP only)
    (3) Q̃_uu = Q_uu + μ I   (Levenberg–Marquardt regularization, μ ≥ 0; it must be positive definite)
    (4) k_t = −Q̃_uu⁻¹ Q_u     K_t = −Q̃_uu⁻¹ Q_ux
    (5) V_x  = Q_x  + K_tᵀ Q_uu k_t + K_tᵀ Q_u + Q_uxᵀ k_t
        V_xx = Q_xx + K_tᵀ Q_uu K_t + K_tᵀ Q_ux + Q_uxᵀ K_t   (symmetrized)
    (6) ΔJ(α) = α Σ_t k_tᵀ Q_u + ½ α² Σ_t k_tᵀ Q_uu k_t      (the expected change, reported)

Forward pass (line search), for each α in `alphas` (all evaluated at once with `vmap`):

    (7) x_0 = x̂_0,  u_t = û_t + α k_t + K_t (x_t − x̂_t),  x_{t+1} = f(x_t, u_t)

The best α is accepted only when its cost J is strictly below the current one; then μ shrinks
(μ ← μ/ρ, set to 0 below `mu_min`), otherwise the trajectory is kept and μ grows (μ ← max(μ ρ,
mu_min)). A backward pass whose Q̃_uu is not positive definite (a Cholesky factor with NaNs) also
grows μ. A run stops changing once an accepted step improves J by less than `tolerance`·|J|
(converged); the loop is a `lax.scan` of `max_iterations` iterations, so every quantity is a
fixed-shape array and the solver is jittable and vmappable (e.g. over start states).

On a linear system x' = A x + B u with ℓ = ½xᵀQx + ½uᵀRu and ℓ_f = ½xᵀP_f x, one iteration with
μ = 0 and α = 1 is exact and (4)–(5) are the finite-horizon discrete Riccati recursion:
K_t = −(R + BᵀP_{t+1}B)⁻¹BᵀP_{t+1}A, P_t = Q + AᵀP_{t+1}(A + B K_t), whose K_0 tends to the
infinite-horizon (DARE) gain as T grows (tests/test_ilqr.py checks both).

Usage:
    solution = jax.jit(lambda x0: ilqr.solve(f, cost, final_cost, x0, jnp.zeros((T, m))))(x0)
    solution.us, solution.K, solution.costs   # controls, feedback gains, J after each iteration
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from flax import struct

ALPHAS = tuple(10.0 ** (-0.5 * i) for i in range(9))  # 1, 0.32, 0.1, …, 1e-4: the line search's step sizes


@struct.dataclass
class Derivatives:
    """Derivatives along a trajectory: [T, ...] for the running terms, then the final cost's."""

    f_x: jax.Array  # [T, n, n]
    f_u: jax.Array  # [T, n, m]
    l_x: jax.Array  # [T, n]
    l_u: jax.Array  # [T, m]
    l_xx: jax.Array  # [T, n, n]
    l_uu: jax.Array  # [T, m, m]
    l_ux: jax.Array  # [T, m, n]
    final_x: jax.Array  # [n]
    final_xx: jax.Array  # [n, n]
    f_xx: jax.Array | None = None  # [T, n, n, n] (DDP only)
    f_uu: jax.Array | None = None  # [T, n, m, m]
    f_ux: jax.Array | None = None  # [T, n, m, n]


@struct.dataclass
class BackwardPass:
    K: jax.Array  # [T, m, n] feedback gains of eq. (4)
    k: jax.Array  # [T, m] feedforward terms of eq. (4)
    Q_uu: jax.Array  # [T, m, m] unregularized Q_uu of eq. (2)
    expected: jax.Array  # [2]: Σ k·Q_u and ½ Σ kᵀQ_uu k, eq. (6)
    ok: jax.Array  # bool: every Q̃_uu was positive definite


@struct.dataclass
class Solution:
    xs: jax.Array  # [T+1, n] nominal states x̂
    us: jax.Array  # [T, m] nominal controls û
    K: jax.Array  # [T, m, n] gains of the final backward pass (at the final trajectory)
    k: jax.Array  # [T, m]
    Q_uu: jax.Array  # [T, m, m] at the final trajectory
    cost: jax.Array  # J of the final trajectory
    costs: jax.Array  # [max_iterations] J after each iteration (repeated once converged)
    accepted: jax.Array  # [max_iterations] bool: the iteration's step was accepted
    mus: jax.Array  # [max_iterations] μ after each iteration
    num_iterations: jax.Array  # int32: iterations until convergence (max_iterations if it did not converge)
    converged: jax.Array  # bool


def rollout(dynamics: Callable, x0: jax.Array, us: jax.Array) -> jax.Array:
    """x_{0:T} [T+1, n] of the open-loop controls `us` [T, m]."""
    def step(x, u):
        x_next = dynamics(x, u)
        return x_next, x_next
    _, xs = jax.lax.scan(step, x0, us)
    return jnp.concatenate([x0[None], xs])


def trajectory_cost(running_cost: Callable, final_cost: Callable, xs: jax.Array, us: jax.Array) -> jax.Array:
    """J = Σ_{t<T} ℓ(x_t, u_t) + ℓ_f(x_T)."""
    return jnp.sum(jax.vmap(running_cost)(xs[:-1], us)) + final_cost(xs[-1])


def derivatives(dynamics: Callable, running_cost: Callable, final_cost: Callable, xs, us,
                second_order: bool = False) -> Derivatives:
    """f_x, f_u by `jax.jacfwd`, the cost's gradient and Hessian by `jax.grad` / `jax.hessian`
    (and f's Hessians for DDP), vmapped over the T steps of (xs[:-1], us)."""
    n = xs.shape[-1]

    def running(x, u):
        f_x, f_u = jax.jacfwd(dynamics, argnums=(0, 1))(x, u)
        z = jnp.concatenate([x, u])
        split = lambda z: running_cost(z[:n], z[n:])  # noqa: E731
        g, h = jax.grad(split)(z), jax.hessian(split)(z)
        out = dict(f_x=f_x, f_u=f_u, l_x=g[:n], l_u=g[n:], l_xx=h[:n, :n], l_uu=h[n:, n:], l_ux=h[n:, :n])
        if second_order:
            fh = jax.hessian(lambda z: dynamics(z[:n], z[n:]))(z)  # [n, n+m, n+m]
            out.update(f_xx=fh[:, :n, :n], f_uu=fh[:, n:, n:], f_ux=fh[:, n:, :n])
        return out

    out = jax.vmap(running)(xs[:-1], us)
    return Derivatives(final_x=jax.grad(final_cost)(xs[-1]), final_xx=jax.hessian(final_cost)(xs[-1]), **out)


def backward_pass(d: Derivatives, mu) -> BackwardPass:
    """Eqs. (1)–(6) from t = T−1 down to 0, with regularization μ."""
    m = d.l_u.shape[-1]

    def step(carry, t_terms):
        V_x, V_xx, ok = carry
        f_x, f_u, l_x, l_u, l_xx, l_uu, l_ux, second = t_terms
        Q_x = l_x + f_x.T @ V_x
        Q_u = l_u + f_u.T @ V_x
        Q_xx = l_xx + f_x.T @ V_xx @ f_x
        Q_uu = l_uu + f_u.T @ V_xx @ f_u
        Q_ux = l_ux + f_u.T @ V_xx @ f_x
        if second is not None:
            f_xx, f_uu, f_ux = second
            Q_xx = Q_xx + jnp.einsum("i,ijk->jk", V_x, f_xx)
            Q_uu = Q_uu + jnp.einsum("i,ijk->jk", V_x, f_uu)
            Q_ux = Q_ux + jnp.einsum("i,ijk->jk", V_x, f_ux)
        Q_uu_reg = 0.5 * (Q_uu + Q_uu.T) + mu * jnp.eye(m)
        chol = jnp.linalg.cholesky(Q_uu_reg)
        ok = ok & jnp.all(jnp.isfinite(chol))
        solve = lambda b: jax.scipy.linalg.cho_solve((chol, True), b)  # noqa: E731
        k = -solve(Q_u)
        K = -solve(Q_ux)
        V_x = Q_x + K.T @ Q_uu @ k + K.T @ Q_u + Q_ux.T @ k
        V_xx = Q_xx + K.T @ Q_uu @ K + K.T @ Q_ux + Q_ux.T @ K
        V_xx = 0.5 * (V_xx + V_xx.T)
        expected = jnp.stack([k @ Q_u, 0.5 * k @ Q_uu @ k])
        return (V_x, V_xx, ok), (K, k, Q_uu, expected)

    second = None if d.f_xx is None else (d.f_xx, d.f_uu, d.f_ux)
    terms = (d.f_x, d.f_u, d.l_x, d.l_u, d.l_xx, d.l_uu, d.l_ux, second)
    init = (d.final_x, d.final_xx, jnp.asarray(True))
    (_, _, ok), (K, k, Q_uu, expected) = jax.lax.scan(step, init, terms, reverse=True)
    finite = jnp.all(jnp.isfinite(K)) & jnp.all(jnp.isfinite(k))
    return BackwardPass(K=K, k=k, Q_uu=Q_uu, expected=expected.sum(axis=0), ok=ok & finite)


def forward_pass(dynamics: Callable, xs: jax.Array, us: jax.Array, K: jax.Array, k: jax.Array, alpha):
    """Eq. (7): the closed-loop rollout around (x̂, û) with step size α. Returns (xs, us)."""
    def step(x, t_terms):
        x_hat, u_hat, K_t, k_t = t_terms
        u = u_hat + alpha * k_t + K_t @ (x - x_hat)
        x_next = dynamics(x, u)
        return x_next, (x_next, u)

    _, (new_xs, new_us) = jax.lax.scan(step, xs[0], (xs[:-1], us, K, k))
    return jnp.concatenate([xs[:1], new_xs]), new_us


def solve(dynamics: Callable, running_cost: Callable, final_cost: Callable, x0: jax.Array, us_init: jax.Array,
          max_iterations: int = 100, alphas=ALPHAS, mu_init=1.0, mu_min=1e-6, mu_factor=10.0,
          mu_max=1e10, tolerance=1e-6, second_order: bool = False) -> Solution:
    """Minimize J from `x0` [n], starting from the open-loop controls `us_init` [T, m].

    `dynamics(x, u) -> x′`, `running_cost(x, u) -> ℓ`, `final_cost(x) -> ℓ_f`: unbatched JAX
    functions. iLQR by default; `second_order=True` adds f's Hessians (DDP). Float arguments
    may be traced; `max_iterations`, `alphas` and `second_order` fix the program's shape.
    """
    alphas = jnp.asarray(alphas, jnp.float32)
    xs = rollout(dynamics, x0, us_init)
    cost = trajectory_cost(running_cost, final_cost, xs, us_init)

    def iteration(carry, _):
        xs, us, cost, mu, converged, count = carry
        d = derivatives(dynamics, running_cost, final_cost, xs, us, second_order)
        bp = backward_pass(d, mu)
        cand_xs, cand_us = jax.vmap(lambda a: forward_pass(dynamics, xs, us, bp.K, bp.k, a))(alphas)
        cand_costs = jax.vmap(lambda x, u: trajectory_cost(running_cost, final_cost, x, u))(cand_xs, cand_us)
        cand_costs = jnp.where(jnp.isfinite(cand_costs), cand_costs, jnp.inf)
        best = jnp.argmin(cand_costs)
        new_cost = cand_costs[best]
        accept = bp.ok & (new_cost < cost) & ~converged
        improvement = cost - new_cost
        now_converged = converged | (accept & (improvement < tolerance * jnp.abs(cost))) | (mu > mu_max)
        xs = jnp.where(accept, cand_xs[best], xs)
        us = jnp.where(accept, cand_us[best], us)
        cost = jnp.where(accept, new_cost, cost)
        shrunk = mu / mu_factor
        mu = jnp.where(converged, mu, jnp.where(accept, jnp.where(shrunk < mu_min, 0.0, shrunk),
                                                jnp.maximum(mu * mu_factor, mu_min)))
        count = count + (~converged).astype(jnp.int32)
        return (xs, us, cost, mu, now_converged, count), (cost, accept, mu)

    init = (xs, us_init, cost, jnp.asarray(mu_init, jnp.float32), jnp.asarray(False), jnp.zeros((), jnp.int32))
    (xs, us, cost, mu, converged, count), (costs, accepted, mus) = jax.lax.scan(
        iteration, init, None, length=max_iterations)
    d = derivatives(dynamics, running_cost, final_cost, xs, us, second_order)
    final = backward_pass(d, mu)
    fallback = backward_pass(d, jnp.maximum(mu * mu_factor, 1e-2))  # used only where μ's pass is not PD
    final = jax.tree.map(lambda a, b: jnp.where(final.ok, a, b), final, fallback)
    return Solution(xs=xs, us=us, K=final.K, k=final.k, Q_uu=final.Q_uu, cost=cost, costs=costs, accepted=accepted,
                    mus=mus, num_iterations=count, converged=converged)
