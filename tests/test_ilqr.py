"""iLQR against independent references: the finite-horizon Riccati recursion (NumPy) and the
infinite-horizon gain of scipy.linalg.solve_discrete_are on a linear-quadratic problem; DDP's
second-order terms; monotone cost and swing-up on the true Pendulum-v1 dynamics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from purerl import ilqr

A = np.array([[1.0, 0.1], [0.0, 1.0]])  # a double integrator, dt = 0.1
B = np.array([[0.005], [0.1]])
Q = np.diag([1.0, 0.5])
R = np.array([[0.2]])
P_FINAL = np.diag([3.0, 2.0])


def _lq(final):
    f = lambda x, u: jnp.asarray(A, jnp.float32) @ x + jnp.asarray(B, jnp.float32) @ u  # noqa: E731
    cost = lambda x, u: 0.5 * x @ jnp.asarray(Q, jnp.float32) @ x + 0.5 * u @ jnp.asarray(R, jnp.float32) @ u  # noqa: E731
    final_cost = lambda x: 0.5 * x @ jnp.asarray(final, jnp.float32) @ x  # noqa: E731
    return f, cost, final_cost


def numpy_riccati(T, final):
    """Finite-horizon discrete Riccati recursion: K_t = −(R + BᵀP′B)⁻¹BᵀP′A, P = Q + AᵀP′(A + BK)."""
    P, gains = final, []
    for _ in range(T):
        K = -np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)
        P = Q + A.T @ P @ (A + B @ K)
        gains.append(K)
    return np.array(gains[::-1]), P


def test_lq_gains_equal_finite_horizon_riccati_and_its_dare_limit():
    T = 300
    f, cost, final_cost = _lq(P_FINAL)
    x0 = jnp.array([1.0, -0.5])
    sol = jax.jit(lambda x: ilqr.solve(f, cost, final_cost, x, jnp.zeros((T, 1)), max_iterations=3, mu_init=0.0,
                                       mu_min=0.0))(x0)
    gains, P0 = numpy_riccati(T, P_FINAL)
    np.testing.assert_allclose(sol.K, gains, rtol=1e-4, atol=1e-5)  # every step, not only the first
    assert not np.allclose(gains[-1], gains[0], atol=1e-2)  # the horizon's end differs: the check has teeth
    P_inf = scipy.linalg.solve_discrete_are(A, B, Q, R)
    K_inf = -np.linalg.solve(R + B.T @ P_inf @ B, B.T @ P_inf @ A)
    np.testing.assert_allclose(sol.K[0], K_inf, rtol=1e-4, atol=1e-5)
    # one iteration is exact: the optimal cost ½x₀ᵀP₀x₀, and the first step was accepted
    assert bool(sol.accepted[0])
    assert float(sol.cost) == pytest.approx(0.5 * float(x0 @ P0 @ x0), rel=1e-4)
    assert float(sol.costs[0]) == pytest.approx(float(sol.cost), rel=1e-5)


def test_lq_with_dare_final_cost_has_stationary_gains():
    """With ℓ_f = ½xᵀP∞x every step's gain is the DARE gain."""
    P_inf = scipy.linalg.solve_discrete_are(A, B, Q, R)
    K_inf = -np.linalg.solve(R + B.T @ P_inf @ B, B.T @ P_inf @ A)
    f, cost, final_cost = _lq(P_inf)
    sol = jax.jit(lambda x: ilqr.solve(f, cost, final_cost, x, jnp.zeros((20, 1)), max_iterations=2,
                                       mu_init=0.0, mu_min=0.0))(jnp.array([0.3, 0.2]))
    np.testing.assert_allclose(sol.K, np.broadcast_to(K_inf, (20, 1, 2)), rtol=1e-4, atol=1e-5)


def test_regularization_shrinks_the_step_and_ddp_terms_vanish_for_linear_dynamics():
    f, cost, final_cost = _lq(P_FINAL)

    @jax.jit
    def passes(x0):
        xs = ilqr.rollout(f, x0, jnp.zeros((10, 1)))
        d1 = ilqr.derivatives(f, cost, final_cost, xs, jnp.zeros((10, 1)))
        d2 = ilqr.derivatives(f, cost, final_cost, xs, jnp.zeros((10, 1)), second_order=True)
        return d2.f_xx, ilqr.backward_pass(d1, 0.0), ilqr.backward_pass(d2, 0.0), ilqr.backward_pass(d1, 10.0)

    f_xx, bp1, bp2, bp_reg = passes(jnp.array([1.0, 0.0]))
    np.testing.assert_allclose(f_xx, 0.0)
    np.testing.assert_allclose(bp1.K, bp2.K, rtol=1e-6)
    k0, k1 = bp1.k, bp_reg.k
    assert np.all(np.abs(k1) < np.abs(k0) + 1e-7) and np.abs(k1).sum() < 0.5 * np.abs(k0).sum()


def test_ddp_second_order_term_matches_hand_computation():
    """f(x, u) = (x₀ + u², x₁); ℓ = 0; ℓ_f(x) = x₀. Then V_x = (1, 0) and DDP's Q_uu = V_x·f_uu = 2,
    which iLQR (first order) drops."""
    f = lambda x, u: jnp.array([x[0] + u[0] ** 2, x[1]])  # noqa: E731
    cost = lambda x, u: 0.0 * (x.sum() + u.sum())  # noqa: E731
    final_cost = lambda x: x[0]  # noqa: E731

    @jax.jit
    def passes(x0):
        xs = ilqr.rollout(f, x0, jnp.ones((1, 1)))
        ddp = ilqr.backward_pass(ilqr.derivatives(f, cost, final_cost, xs, jnp.ones((1, 1)), second_order=True), 0.0)
        first = ilqr.backward_pass(ilqr.derivatives(f, cost, final_cost, xs, jnp.ones((1, 1))), 1e-3)
        return ddp, first

    ddp, first = passes(jnp.array([0.0, 0.0]))
    assert float(ddp.Q_uu[0, 0, 0]) == pytest.approx(2.0)
    assert float(first.Q_uu[0, 0, 0]) == pytest.approx(0.0)
    # DDP's step from u = 1: k = −Q_uu⁻¹ Q_u = −(2)⁻¹ (2) = −1, the exact minimizer u = 0
    assert float(ddp.k[0, 0]) == pytest.approx(-1.0)


def test_pendulum_cost_falls_at_every_accepted_iteration_and_swings_up_from_hanging():
    """True Pendulum-v1 dynamics (gymnax step_env, via purerl.algos.gps), from hanging at rest
    (θ = π, θ̇ = 0), T = 200, the energy-pumping warm start. Measured: the warm start costs ≈ 372, iLQR
    ≈ 343; the pendulum ends upright (|θ mod 2π| < 0.05, |θ̇| < 0.1)."""
    from purerl.algos import gps

    config = gps.Config()
    x0 = jnp.array([np.pi, 0.0])
    sol = jax.jit(lambda x: gps.plan(config, x))(x0)
    costs, accepted = np.asarray(sol.costs), np.asarray(sol.accepted)
    start = float(ilqr.trajectory_cost(gps.planner_cost(config), gps.zero_final_cost,
                                       ilqr.rollout(gps.dynamics, x0, gps.pumping_controls(x0, 200)),
                                       gps.pumping_controls(x0, 200)))
    previous = np.concatenate([[start], costs[:-1]])
    assert accepted.sum() >= 5
    assert np.all(costs[accepted] < previous[accepted])  # strictly lower at every accepted step
    assert np.all(costs[~accepted] == previous[~accepted])  # rejected steps change nothing
    assert costs[-1] < start - 10.0
    true_cost = float(jnp.sum(jax.vmap(gps.cost)(sol.xs[:-1], sol.us)))
    assert true_cost < 360.0, true_cost
    theta, theta_dot = float(sol.xs[-1, 0]), float(sol.xs[-1, 1])
    assert abs((theta + np.pi) % (2 * np.pi) - np.pi) < 0.05 and abs(theta_dot) < 0.1
    # and upright for the last 50 steps
    angles = (np.asarray(sol.xs[-50:, 0]) + np.pi) % (2 * np.pi) - np.pi
    assert np.all(np.abs(angles) < 0.1)


def test_solver_vmaps_over_start_states():
    f, cost, final_cost = _lq(P_FINAL)
    x0s = jnp.array([[1.0, 0.0], [0.0, 1.0], [-2.0, 0.5]])
    sols = jax.jit(jax.vmap(lambda x: ilqr.solve(f, cost, final_cost, x, jnp.zeros((50, 1)), max_iterations=3,
                                                 mu_init=0.0, mu_min=0.0)))(x0s)
    gains, P0 = numpy_riccati(50, P_FINAL)
    np.testing.assert_allclose(sols.K, np.broadcast_to(gains, (3,) + gains.shape), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(sols.cost, [0.5 * x @ P0 @ x for x in np.asarray(x0s)], rtol=1e-4)
