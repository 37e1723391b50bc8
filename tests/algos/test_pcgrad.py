"""PCGrad: the projection against hand values and a NumPy reference, pytrees, the optax
transformation, the synthetic two-task landscape, Config validation, the vmapped sweep,
multi-task learning on the point mass."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from purerl.algos import pcgrad as pc
from purerl.config import sweep_axes


def numpy_pcgrad(grads, orders):
    """Algorithm 1 of the paper, literally: grads [T, D], orders[i] the order task i visits the others."""
    grads = np.asarray(grads, np.float64)
    out = grads.copy()
    for i, order in enumerate(orders):
        for j in order:
            if j != i and out[i] @ grads[j] < 0:
                out[i] = out[i] - (out[i] @ grads[j]) / (grads[j] @ grads[j]) * grads[j]
    return out


def orders_of(key, num_tasks):
    """The visiting orders `projection_coefficients` draws from `key`."""
    return [np.asarray(jax.random.permutation(jax.random.fold_in(key, i), num_tasks)) for i in range(num_tasks)]


# ----------------------------------------------------------------------------- math
def test_two_task_hand_example():
    """g1 = (1, 0), g2 = (−1, 1): g1·g2 = −1 < 0. g1' = g1 − (−1/2) g2 = (0.5, 0.5),
    g2' = g2 − (−1/1) g1 = (0, 1); the update is their sum (0.5, 1.5)."""
    grads = jnp.array([[1.0, 0.0], [-1.0, 1.0]])
    projected = pc.project_conflicting(grads, jax.random.PRNGKey(0))
    np.testing.assert_allclose(projected, [[0.5, 0.5], [0.0, 1.0]], atol=1e-6)
    assert float(projected[0] @ grads[1]) == pytest.approx(0.0, abs=1e-6)  # the conflict is removed exactly
    assert float(projected[1] @ grads[0]) == pytest.approx(0.0, abs=1e-6)


def test_identity_when_no_pair_conflicts():
    grads = jnp.array([[1.0, 0.5, 0.0], [0.2, 1.0, 0.0], [0.0, 0.3, 2.0]])  # every dot product ≥ 0
    for seed in range(3):
        np.testing.assert_allclose(pc.project_conflicting(grads, jax.random.PRNGKey(seed)), grads, atol=1e-7)


@pytest.mark.parametrize("seed", range(5))
def test_two_random_tasks_end_without_conflict(seed):
    """For two tasks the guarantee is exact: g1'·g2 ≥ 0 and g2'·g1 ≥ 0 (= 0 where they conflicted)."""
    g = jax.random.normal(jax.random.PRNGKey(seed), (2, 7))
    if float(g[0] @ g[1]) > 0:
        g = g.at[1].multiply(-1.0)  # make them conflict
    p = pc.project_conflicting(g, jax.random.PRNGKey(100 + seed))
    assert float(p[0] @ g[1]) == pytest.approx(0.0, abs=1e-5)
    assert float(p[1] @ g[0]) == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("seed", range(4))
def test_many_tasks_match_algorithm_1_step_by_step(seed):
    """T = 5 random conflicting gradients: the result equals the paper's loop run in NumPy with the
    same orders, and every step of that loop that projected on g_j left g_i^PC·g_j = 0 at that step
    (what is guaranteed for T > 2; a later step may bring a conflict back)."""
    num_tasks, dim = 5, 6
    g = np.asarray(jax.random.normal(jax.random.PRNGKey(seed), (num_tasks, dim)), np.float64)
    key = jax.random.PRNGKey(10 + seed)
    orders = orders_of(key, num_tasks)
    projected = np.asarray(pc.project_conflicting(jnp.asarray(g, jnp.float32), key))
    np.testing.assert_allclose(projected, numpy_pcgrad(g, orders), rtol=1e-4, atol=1e-5)
    projections = 0
    for i, order in enumerate(orders):
        gi = g[i].copy()
        for j in order:
            if j != i and gi @ g[j] < 0:
                gi = gi - (gi @ g[j]) / (g[j] @ g[j]) * g[j]
                assert abs(gi @ g[j]) < 1e-9  # this step removed the conflict with j
                projections += 1
    assert projections > 0  # the example does exercise the surgery


def test_order_matters_for_three_tasks_and_follows_the_key():
    """With three tasks the result depends on the order: two keys giving different orders for task 0
    give different g_0^PC, each equal to the NumPy loop in its own order."""
    g = np.array([[1.0, 0.0], [-1.0, 1.0], [-1.0, -0.5]])
    results = {}
    for seed in range(20):
        key = jax.random.PRNGKey(seed)
        orders = orders_of(key, 3)
        first = tuple(int(j) for j in orders[0] if j != 0)
        p = np.asarray(pc.project_conflicting(jnp.asarray(g, jnp.float32), key))
        np.testing.assert_allclose(p, numpy_pcgrad(g, orders), atol=1e-6)
        results[first] = p[0]
    assert set(results) == {(1, 2), (2, 1)}
    assert not np.allclose(results[(1, 2)], results[(2, 1)], atol=1e-3)


def test_pytree_equals_flat_computation():
    """A dict of leaves of different shapes (and a nested one) is projected as the flattened
    concatenation: dot products run over the whole pytree, not leaf by leaf."""
    keys = jax.random.split(jax.random.PRNGKey(3), 3)
    tree = {"w": jax.random.normal(keys[0], (3, 4, 2)), "b": jax.random.normal(keys[1], (3, 5)),
            "inner": {"s": jax.random.normal(keys[2], (3,))}}
    leaves, treedef = jax.tree.flatten(tree)
    flat = jnp.concatenate([x.reshape(3, -1) for x in leaves], axis=1)
    key = jax.random.PRNGKey(7)
    projected_tree = pc.project_conflicting(tree, key)
    projected_flat = pc.project_conflicting(flat, key)
    assert jax.tree.structure(projected_tree) == treedef
    back = jnp.concatenate([x.reshape(3, -1) for x in jax.tree.leaves(projected_tree)], axis=1)
    np.testing.assert_allclose(back, projected_flat, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(back, numpy_pcgrad(flat, orders_of(key, 3)), rtol=1e-4, atol=1e-5)
    # a leaf-by-leaf projection would differ: the example has conflicts that the whole-tree dot decides
    assert not np.allclose(back, flat, atol=1e-3)


def test_gradient_statistics():
    grads = jnp.array([[1.0, 0.0], [-1.0, 1.0], [0.0, 2.0]])
    stats = pc.gradient_statistics(grads)
    cosines = [-1 / np.sqrt(2), 0.0, 1 / np.sqrt(2)]  # pairs (0,1), (0,2), (1,2)
    assert float(stats["pcgrad/cosine"]) == pytest.approx(np.mean(cosines), abs=1e-6)
    assert float(stats["pcgrad/conflict_fraction"]) == pytest.approx(1 / 3)


# ----------------------------------------------------------------------------- optax
def test_optax_chain_gives_the_hand_value():
    """`optax.chain(pcgrad(), sgd(1))`: θ ← θ − (g1' + g2') = −(0.5, 1.5) from 0; `summed()` gives −(0, 1)."""
    grads = {"theta": jnp.array([[1.0, 0.0], [-1.0, 1.0]])}
    params = {"theta": jnp.zeros(2)}
    tx = optax.chain(pc.pcgrad(), optax.sgd(1.0))
    updates, state = jax.jit(tx.update)(grads, tx.init(params), params)
    np.testing.assert_allclose(optax.apply_updates(params, updates)["theta"], [-0.5, -1.5], atol=1e-6)
    tx_mean = optax.chain(pc.pcgrad(reduce="mean"), optax.sgd(1.0))
    updates, _ = tx_mean.update(grads, tx_mean.init(params), params)
    np.testing.assert_allclose(updates["theta"], [-0.25, -0.75], atol=1e-6)
    baseline = optax.chain(pc.summed(), optax.sgd(1.0))
    updates, _ = baseline.update(grads, baseline.init(params), params)
    np.testing.assert_allclose(updates["theta"], [0.0, -1.0], atol=1e-6)
    # the key in the state is split on every call
    (pc_state, _) = state
    assert not np.array_equal(np.asarray(pc_state.key), np.asarray(jax.random.PRNGKey(0)))
    with pytest.raises(ValueError, match="reduce"):
        pc.pcgrad(reduce="max")


def toy_losses(theta):
    """The two-task landscape of the paper's Fig. 1 (as defined in public reimplementations, e.g.
    CAGrad's toy example, Liu et al. 2021): for θ₂ > 0 two log-valleys that disagree about θ₁,
    for θ₂ < 0 two quadratics; the minimum of L₁ + L₂ lies at θ ≈ (0, −8.4), L₁ + L₂ ≈ −30.2."""
    x1, x2 = theta[0], theta[1]
    f1 = jnp.log(jnp.maximum(jnp.abs(0.5 * (-x1 - 7) - jnp.tanh(-x2)), 5e-6)) + 6
    f2 = jnp.log(jnp.maximum(jnp.abs(0.5 * (-x1 + 3) - jnp.tanh(-x2) + 2), 5e-6)) + 6
    q1 = ((-x1 + 7) ** 2 + 0.1 * (-x2 - 8) ** 2) / 10 - 20
    q2 = ((-x1 - 7) ** 2 + 0.1 * (-x2 - 8) ** 2) / 10 - 20
    c1, c2 = jnp.maximum(jnp.tanh(0.5 * x2), 0), jnp.maximum(jnp.tanh(-0.5 * x2), 0)
    return jnp.stack([c1 * f1 + c2 * q1, c1 * f2 + c2 * q2])


def _optimize(surgery, theta0, steps=50_000, learning_rate=1e-3):
    tx = optax.chain(surgery, optax.adam(learning_rate))

    def step(carry, _):
        theta, state = carry
        updates, state = tx.update(jax.jacrev(toy_losses)(theta), state, theta)  # per-task grads [2, 2]
        return (optax.apply_updates(theta, updates), state), None

    (theta, _), _ = jax.lax.scan(step, (theta0, tx.init(theta0)), None, length=steps)
    return theta, toy_losses(theta)


def test_synthetic_landscape_pcgrad_escapes_where_summed_adam_stalls():
    """From θ = (−8.5, 7.5) (one of the illustrated starts), Adam (lr 1e-3, 50,000 steps) on the
    summed gradient stalls in the valley: measured θ = (−5.01, 2.57), L₁ + L₂ = +7.6. With PCGrad
    it crosses to θ₂ < 0 and reaches θ = (−2.22, −7.96), L₁ = −11.5, L₂ = −17.7, L₁ + L₂ = −29.2
    (the joint minimum is −30.2). Deterministic (two tasks: the order is irrelevant)."""
    theta0 = jnp.array([-8.5, 7.5])
    theta_pc, losses_pc = jax.jit(lambda t: _optimize(pc.pcgrad(), t))(theta0)
    theta_sum, losses_sum = jax.jit(lambda t: _optimize(pc.summed(), t))(theta0)
    assert float(losses_pc.sum()) < -25.0, (theta_pc, losses_pc)
    assert float(losses_pc.max()) < -10.0, losses_pc  # both tasks good, not one traded for the other
    assert float(losses_sum.sum()) > 0.0, (theta_sum, losses_sum)
    assert float(theta_sum[1]) > 0.0 > float(theta_pc[1])


# ----------------------------------------------------------------------------- config
@pytest.mark.parametrize("field, value", [
    ("env", "NoSuchEnv-v0"), ("env", "point/open"), ("goals", ((0.5, 0.5),)), ("goals", ((0.5,), (0.1, 0.2))),
    ("goals", "up"), ("reward_scales", (1.0,)), ("reward_scales", (1.0, -2.0)), ("surgery", "mgda"),
    ("max_steps", 0), ("total_timesteps", 0), ("num_envs", 0), ("num_steps", 0), ("eval_every", 0),
    ("eval_episodes_per_task", 0), ("hidden_sizes", (0,)), ("activation", "gelu"), ("learning_rate", 0.0),
    ("gamma", 1.5), ("gae_lambda", -0.1), ("vf_coef", -1.0), ("ent_coef", -0.1), ("max_grad_norm", 0.0),
    ("init_log_std", 5.0),
])
def test_config_rejects_bad_value(field, value):
    with pytest.raises(ValueError, match=field):
        pc.Config(**{field: value})


def test_config_properties():
    config = pc.Config(goals=((0.5, 0.0), (-0.5, 0.0), (0.0, 0.5)), num_envs=4, num_steps=5,
                       eval_episodes_per_task=2, total_timesteps=600)
    assert config.num_tasks == 3 and config.env_steps_per_update == 60 and config.num_updates == 10
    assert config.eval_episodes == 6 and config.task_reward_scales == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="total_timesteps"):
        pc.Config(num_envs=4, num_steps=5, total_timesteps=39)


# ----------------------------------------------------------------------------- contract
def test_vmapped_learning_rate_sweep_is_one_program():
    config = pc.Config(num_envs=2, num_steps=4, hidden_sizes=(8,), total_timesteps=2 * 2 * 4 * 4, eval_every=2,
                       eval_episodes_per_task=2, learning_rate=jnp.array([1e-3, 1e-2, 3e-2]))
    train = jax.jit(jax.vmap(pc.train, in_axes=(sweep_axes(config, "learning_rate"), None)))
    lowered = train.lower(config, jax.random.PRNGKey(0))
    state, metrics, eval_returns = lowered.compile()(config, jax.random.PRNGKey(0))
    assert eval_returns.shape == (3, 2, 4)  # [sweep, evaluations, tasks × episodes]
    assert pc.task_returns(config, eval_returns).shape == (3, 2, 2, 2)
    assert metrics["pcgrad/cosine"].shape == (3, 4)
    assert np.all(np.isfinite(np.asarray(metrics["loss/policy"])))
    # the three learning rates really differ: the final policies differ
    log_std = np.asarray(state.params["policy"]["params"]["log_std"])
    assert not np.allclose(log_std[0], log_std[2])


# ----------------------------------------------------------------------------- learning
LEARNING = dict(total_timesteps=2 * 16 * 10 * 150, eval_every=50, learning_rate=3e-3, gamma=0.95, max_grad_norm=100.0)


@pytest.mark.learning
def test_both_surgeries_learn_both_opposite_goals():
    """Two tasks with opposite goals (±0.7, 0) on the dense point mass, one shared policy, 4 seeds
    vmapped, 150 updates (48,000 env steps per seed). A policy that does not move scores −35 per
    task; reaching the goal and stopping ≈ −3; a seed that overshoots to the wall (a local optimum
    the actor-critic sometimes keeps) ≈ −15. Asserts, for PCGrad AND for summed gradients, a mean
    final deterministic return ≥ −12 on EACH task.

    What this does NOT show: that PCGrad beats the sum here. Measured final returns per task
    (mean over 4 seeds; keys = split(PRNGKey(k), 4)), pcgrad vs sum:
      k = 42 (this test): (−4.58, −2.90) vs (−5.07, −3.59)
      k = 1:              (−7.95, −8.90) vs (−8.90, −9.29)   (2 of 4 seeds overshoot in both)
      k = 2:              (−2.90, −3.02) vs (−2.85, −3.25)
    PCGrad is ahead by 0.2–1.3 in total, within the seed-to-seed spread; with reward scales (1, 10)
    and (1, 100) (8 seeds, 200 updates) there was no consistent difference either. About 30 s per
    surgery on the 2-core CPU under load, compilation included. Where PCGrad is ahead: the next
    test (one 8-unit hidden layer, reward scales (1, 100))."""
    keys = jax.random.split(jax.random.PRNGKey(42), 4)
    for surgery in pc.SURGERIES:
        config = pc.Config(surgery=surgery, **LEARNING)
        _, metrics, eval_returns = jax.jit(jax.vmap(pc.train, in_axes=(None, 0)))(config, keys)
        per_task = np.asarray(pc.task_returns(config, eval_returns)).mean(-1)  # [seeds, evals, tasks]
        final = per_task[:, -1].mean(0)
        assert np.all(final >= -12.0), (surgery, per_task[:, -1])
        assert np.all(final > per_task[:, 0].mean(0)), (surgery, per_task.mean(0))  # improved since the first eval
        assert np.all(np.isfinite(np.asarray(metrics["pcgrad/cosine"])))
        conflict = np.asarray(metrics["pcgrad/conflict_fraction"])
        assert np.all((conflict >= 0) & (conflict <= 1))


# The setting in which PCGrad beats the sum: the two opposite goals with rewards scaled (1, 100)
# (tasks that differ in gradient magnitude as well as direction, the paper's "tragic triad") and a
# shared network too small to give each task its own features (one hidden layer of 8 units).
SMALL_SHARED = dict(hidden_sizes=(8,), reward_scales=(1.0, 100.0))


def small_shared_finals(key, num_seeds=16):
    """Final deterministic (unscaled) return per seed and task, [seeds, tasks], for each surgery:
    the point/goal preset (48,000 env steps per seed) with `SMALL_SHARED`."""
    keys = jax.random.split(key, num_seeds)
    finals = {}
    for surgery in pc.SURGERIES:
        config = pc.Config.for_env("point/goal", surgery=surgery, **SMALL_SHARED)
        _, metrics, eval_returns = jax.jit(jax.vmap(pc.train, in_axes=(None, 0)))(config, keys)
        finals[surgery] = np.asarray(pc.task_returns(config, eval_returns)).mean(-1)[:, -1]
        assert np.all(np.isfinite(np.asarray(metrics["pcgrad/cosine"])))
    return finals


@pytest.mark.learning
def test_pcgrad_beats_the_sum_when_a_small_shared_network_serves_unequal_reward_scales():
    """`SMALL_SHARED`, 16 seeds vmapped: with summed gradients the scale-100 task's gradient drowns
    the scale-1 task's and first drives it down (on this test's keys its mean return goes from −36.7
    at 3,200 steps to −43.0 at 12,800); PCGrad, which removes the conflicting components, lets it
    drop less (−34.9 to −37.2) and recover sooner. Asserts PCGrad ahead by ≥ 3 in mean final
    return summed over the two tasks and ≥ 3 on the scale-1 task, and within 1 of the sum on the
    scale-100 task (both reach its wall-overshoot optimum, about −15).

    Measured with this program on the 2-core AMD EPYC (2026-12-07), keys = split(PRNGKey(k), 16),
    PCGrad minus sum in mean summed return (on the scale-1 task; seeds ahead), truncated:
      k = 0 (this test): 7.40 (7.32; 14/16)    k = 1: 7.56 (7.53; 16/16)
      k = 2:             9.68 (9.65; 14/16)    k = 3: 8.96 (9.00; 12/16)
      k = 4:            10.57 (10.51; 16/16)   k = 5: 10.49 (10.42; 15/16)
    The scale-100 task differed by 0.09 at most. About 26 s on that machine, compilation included.
    The gap is one of speed, on a small network: by 96,000 steps the sum catches up (gap 0.51 and
    0.95 on k = 0, 1), with 16 hidden units it is 0.42 and 0.52 at 48,000 steps, with two of 64
    −0.79 and 4.61, and with equal reward scales none (−0.05, −0.02)."""
    finals = small_shared_finals(jax.random.PRNGKey(0))
    pcgrad, summed = finals["pcgrad"].mean(0), finals["sum"].mean(0)
    assert pcgrad.sum() - summed.sum() >= 3.0, (pcgrad, summed)
    assert pcgrad[0] - summed[0] >= 3.0, (pcgrad, summed)
    assert abs(pcgrad[1] - summed[1]) <= 1.0, (pcgrad, summed)
