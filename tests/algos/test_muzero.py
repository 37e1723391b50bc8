"""MuZero: value transform and two-hot support, n-step targets (hand-computed, with a terminal
and a truncation inside the window, and against a NumPy loop), unroll shapes and loss
masking, the ½ gradient scale at the dynamics and the 1/K head scale, CartPole learning,
Config validation."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl.algos import muzero

K, N, GAMMA = 2, 3, 0.5  # unroll steps, n-step horizon, discount of the hand-made segments
REWARDS = np.array([1.0, 2.0, 3.0, 4.0, 5.0], np.float32)  # L = K + n = 5 steps
FINAL_VALUES = np.array([10.0, 20.0, 30.0, 40.0, 50.0], np.float32)  # V⁻(s′_j)


def _targets(terminated=(), truncated=(), rewards=REWARDS, final_values=FINAL_VALUES, k=K, n=N, gamma=GAMMA):
    term = np.zeros(len(rewards), bool)
    trunc = np.zeros(len(rewards), bool)
    term[list(terminated)] = True
    trunc[list(truncated)] = True
    out = muzero.segment_targets(jnp.asarray(rewards), jnp.asarray(term), jnp.asarray(trunc),
                                 jnp.asarray(final_values), gamma, k, n)
    return {name: np.asarray(v) for name, v in out.items()}


# ----------------------------------------------------------------------------- value transform
def test_value_transform_inverts_and_two_hot_projects():
    x = jnp.array([-300.0, -5.0, -0.3, 0.0, 0.7, 1.0, 99.0, 500.0])
    np.testing.assert_allclose(muzero.inverse_value_transform(muzero.value_transform(x)), x, rtol=1e-4, atol=1e-4)
    assert float(muzero.value_transform(jnp.array(3.0))) == pytest.approx(1.0 + 3e-3)  # √4 − 1 + 0.003
    two_hot = np.asarray(muzero.scalar_to_support(jnp.array([2.3, -10.0, 12.0]), 10))
    assert two_hot.shape == (3, 21)
    np.testing.assert_allclose(two_hot[0, [12, 13]], [0.7, 0.3], atol=1e-6)  # 2.3 → 0.7 on 2, 0.3 on 3
    assert two_hot[1, 0] == 1.0 and two_hot[2, 20] == 1.0  # −S and clipped +S
    np.testing.assert_allclose(two_hot.sum(-1), 1.0, atol=1e-6)
    # the categorical head's scalar is φ⁻¹ of the support mean: logits = log(two-hot of φ(x)) → x
    value = jnp.array([7.0, 42.0])
    logits = jnp.log(muzero.scalar_to_support(muzero.value_transform(value), 10) + 1e-30)
    np.testing.assert_allclose(muzero.support_to_scalar(logits, 10), value, rtol=1e-4)


# ----------------------------------------------------------------------------- targets
def test_n_step_targets_without_episode_end():
    """z_k = Σ_{i<3} ½^i r_{k+i} + ⅛ V⁻(s′_{k+2}): 1 + 1 + 0.75 + 3.75, 2 + 1.5 + 1 + 5, 3 + 2 + 1.25 + 6.25."""
    t = _targets()
    np.testing.assert_allclose(t["value"], [6.5, 9.5, 12.5], rtol=1e-6)
    np.testing.assert_allclose(t["reward"], [1.0, 2.0])
    for mask in ("value_mask", "policy_mask", "reward_mask"):
        assert np.all(t[mask] == 1.0)


def test_n_step_targets_with_a_terminal_inside_the_window():
    """Terminal at step 1: z_0 = 1 + ½·2 = 2 and z_1 = 2 (no bootstrap); position 2 lies past
    the terminal, an absorbing state: value target 0 (still trained), no policy target."""
    t = _targets(terminated=[1])
    np.testing.assert_allclose(t["value"], [2.0, 2.0, 0.0])
    np.testing.assert_allclose(t["value_mask"], [1, 1, 1])
    np.testing.assert_allclose(t["policy_mask"], [1, 1, 0])
    np.testing.assert_allclose(t["reward"], [1.0, 2.0])
    np.testing.assert_allclose(t["reward_mask"], [1, 1])
    # terminal at step 0: positions 1, 2 absorbing, the reward out of the absorbing state is 0
    t = _targets(terminated=[0])
    np.testing.assert_allclose(t["value"], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(t["value_mask"], [1, 1, 1])
    np.testing.assert_allclose(t["policy_mask"], [1, 0, 0])
    np.testing.assert_allclose(t["reward"], [1.0, 0.0])
    np.testing.assert_allclose(t["reward_mask"], [1, 1])
    # a terminal later in the value window (step 3) only shortens the sums that reach it
    t = _targets(terminated=[3])
    np.testing.assert_allclose(t["value"], [6.5, 2.0 + 1.5 + 1.0, 3.0 + 2.0])


def test_n_step_targets_with_a_truncation_inside_the_window():
    """Truncation at step 2: the sums stop there and bootstrap from V⁻(s′_2) = 30:
    z_0 = 1 + 1 + 0.75 + ⅛·30 = 6.5, z_1 = 2 + 1.5 + ¼·30 = 11, z_2 = 3 + ½·30 = 18.
    Truncation at step 1: z_0 = 1 + 1 + ¼·20 = 7, z_1 = 2 + ½·20 = 12, and position 2 (past a
    time limit: unknown state) is masked out of every loss."""
    t = _targets(truncated=[2])
    np.testing.assert_allclose(t["value"], [6.5, 11.0, 18.0], rtol=1e-6)
    assert np.all(t["value_mask"] == 1.0) and np.all(t["policy_mask"] == 1.0)
    t = _targets(truncated=[1])
    np.testing.assert_allclose(t["value"][:2], [7.0, 12.0], rtol=1e-6)
    np.testing.assert_allclose(t["value_mask"], [1, 1, 0])
    np.testing.assert_allclose(t["policy_mask"], [1, 1, 0])
    np.testing.assert_allclose(t["reward"], [1.0, 2.0])
    np.testing.assert_allclose(t["reward_mask"], [1, 1])
    t = _targets(truncated=[0])
    np.testing.assert_allclose(t["value"][0], 1.0 + 0.5 * 10.0)
    np.testing.assert_allclose(t["value_mask"], [1, 0, 0])
    np.testing.assert_allclose(t["reward_mask"], [1, 0])


def _numpy_targets(rewards, term, trunc, final_values, gamma, k, n):
    """An independent loop over the definition, eqs. (3)–(4)."""
    value, value_mask, policy_mask = np.zeros(k + 1), np.zeros(k + 1), np.zeros(k + 1)
    for pos in range(k + 1):
        ends = [j for j in range(pos) if term[j] or trunc[j]]
        if ends:
            value_mask[pos] = 1.0 if term[ends[0]] else 0.0
            continue
        value_mask[pos] = policy_mask[pos] = 1.0
        g = 0.0
        for i in range(n):
            j = pos + i
            g += gamma**i * rewards[j]
            if term[j]:
                break
            if trunc[j] or i == n - 1:
                g += gamma ** (i + 1) * final_values[j]
                break
        value[pos] = g
    return value, value_mask, policy_mask


def test_n_step_targets_match_a_numpy_loop_on_random_segments():
    rng = np.random.default_rng(0)
    k, n, gamma = 5, 4, 0.9
    for _ in range(200):
        rewards = rng.normal(size=k + n).astype(np.float32)
        final_values = rng.normal(size=k + n).astype(np.float32) * 5
        events = rng.uniform(size=k + n)
        term, trunc = events < 0.1, (events >= 0.1) & (events < 0.2)
        t = muzero.segment_targets(jnp.asarray(rewards), jnp.asarray(term), jnp.asarray(trunc),
                                   jnp.asarray(final_values), gamma, k, n)
        value, value_mask, policy_mask = _numpy_targets(rewards, term, trunc, final_values, gamma, k, n)
        np.testing.assert_allclose(t["value"], value, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(t["value_mask"], value_mask)
        np.testing.assert_allclose(t["policy_mask"], policy_mask)
        np.testing.assert_allclose(t["reward_mask"], value_mask[:k])  # transition j is trained iff state j is


# ----------------------------------------------------------------------------- unroll and loss
CONFIG = muzero.Config(num_unroll_steps=3, td_steps=2, batch_size=4)


def _model_and_params():
    state = muzero.init(CONFIG, jax.random.PRNGKey(0))
    return muzero.make_model(CONFIG, muzero.make_env(CONFIG.env)), state.params


def _unroll(model, params, obs, actions):
    return muzero.unroll(lambda o: model.represent(params, o), lambda s, a: model.step(params, s, a),
                         lambda s: model.predict(params, s), obs, actions)


def test_unroll_shapes():
    model, params = _model_and_params()
    obs = jax.random.normal(jax.random.PRNGKey(1), (4, 4))
    actions = jnp.array([[0, 1, 1], [1, 0, 0], [1, 1, 1], [0, 0, 0]])
    logits, value_out, reward_out = _unroll(model, params, obs, actions)
    assert logits.shape == (4, 4, 2)  # [B, K+1, A]
    assert value_out.shape == (4, 4, 21)  # [B, K+1, 2S+1]
    assert reward_out.shape == (4, 3, 21)  # [B, K, 2S+1]
    latent = model.represent(params, obs)
    assert latent.shape == (4, CONFIG.latent_dim)
    np.testing.assert_allclose(latent.min(-1), 0.0, atol=1e-6)  # min-max normalized latent
    np.testing.assert_allclose(latent.max(-1), 1.0, atol=1e-6)
    # step 2's prediction equals applying g twice by hand (the ½ scale changes only gradients)
    s1, _ = model.step(params, latent, actions[:, 0])
    s2, r2 = model.step(params, s1, actions[:, 1])
    np.testing.assert_allclose(reward_out[:, 1], r2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logits[:, 2], model.predict(params, s2)[0], rtol=1e-5, atol=1e-6)


def _random_loss_inputs(key, b=4, k=3, a=2, s=10):
    keys = jax.random.split(key, 6)
    logits = jax.random.normal(keys[0], (b, k + 1, a))
    value_out = jax.random.normal(keys[1], (b, k + 1, 2 * s + 1))
    reward_out = jax.random.normal(keys[2], (b, k, 2 * s + 1))
    policy = jax.nn.softmax(jax.random.normal(keys[3], (b, k + 1, a)))
    targets = {"value": jax.random.uniform(keys[4], (b, k + 1)) * 50, "reward": jax.random.uniform(keys[5], (b, k)),
               "value_mask": jnp.ones((b, k + 1)), "policy_mask": jnp.ones((b, k + 1)),
               "reward_mask": jnp.ones((b, k))}
    return logits, value_out, reward_out, targets, policy


def test_unrolled_loss_masks_positions_and_matches_its_terms():
    logits, value_out, reward_out, targets, policy = _random_loss_inputs(jax.random.PRNGKey(0))
    config = CONFIG
    loss, metrics = muzero.unrolled_loss(config, logits, value_out, reward_out, targets, policy)
    # the value of the loss is the plain sum of its terms (the 1/K scale acts on gradients only)
    assert float(loss) == pytest.approx(float(metrics["loss/value"] + metrics["loss/policy"] + metrics["loss/reward"]),
                                        rel=1e-5)
    # policy term by hand: −Σ π log softmax(p), summed over positions, mean over the batch
    by_hand = -np.sum(np.asarray(policy) * np.asarray(jax.nn.log_softmax(logits)), axis=(1, 2)).mean()
    assert float(metrics["loss/policy"]) == pytest.approx(by_hand, rel=1e-5)
    # mask out position 2 of sample 0 (value and policy) and reward 1 of sample 3: changing their
    # targets then changes nothing, while changing an unmasked target does
    masked = dict(targets)
    masked["value_mask"] = targets["value_mask"].at[0, 2].set(0.0)
    masked["policy_mask"] = targets["policy_mask"].at[0, 2].set(0.0)
    masked["reward_mask"] = targets["reward_mask"].at[3, 1].set(0.0)
    base, _ = muzero.unrolled_loss(config, logits, value_out, reward_out, masked, policy)
    moved = dict(masked)
    moved["value"] = masked["value"].at[0, 2].set(-40.0)
    moved["reward"] = masked["reward"].at[3, 1].set(7.0)
    moved_policy = policy.at[0, 2].set(jnp.array([1.0, 0.0]))
    same, _ = muzero.unrolled_loss(config, logits, value_out, reward_out, moved, moved_policy)
    assert float(same) == pytest.approx(float(base), rel=1e-6)
    moved["value"] = moved["value"].at[0, 1].set(-40.0)  # unmasked
    different, _ = muzero.unrolled_loss(config, logits, value_out, reward_out, moved, moved_policy)
    assert abs(float(different) - float(base)) > 0.1
    assert float(base) < float(loss)  # masking removes non-negative terms


def test_head_losses_are_scaled_by_one_over_k_after_the_root():
    """∂l/∂(head output) at an unrolled position k ≥ 1 is 1/K times what the same error gives
    at the root (the paper's per-head 1/K scale)."""
    logits, value_out, reward_out, targets, policy = _random_loss_inputs(jax.random.PRNGKey(1))
    value_out = jnp.broadcast_to(value_out[:, :1], value_out.shape)  # same prediction at every position
    targets["value"] = jnp.broadcast_to(targets["value"][:, :1], targets["value"].shape)
    logits = jnp.broadcast_to(logits[:, :1], logits.shape)
    policy = jnp.broadcast_to(policy[:, :1], policy.shape)
    grads = jax.grad(lambda v, p: muzero.unrolled_loss(CONFIG, p, v, reward_out, targets, policy)[0],
                     argnums=(0, 1))(value_out, logits)
    for g in grads:
        g = np.asarray(g)
        assert np.abs(g[:, 0]).max() > 1e-3
        for k in (1, 2, 3):
            np.testing.assert_allclose(g[:, k], g[:, 0] / 3, rtol=1e-4, atol=1e-7)


def test_gradient_is_halved_at_every_dynamics_call():
    """With identity dynamics g(s, a) = (s, Σs) and f(s) = (0, Σs), every prediction equals
    Σ s⁰, but its gradient with respect to s⁰ is ½ᵏ after k dynamics calls (eq. 6)."""
    represent = lambda obs: obs  # noqa: E731
    step = lambda s, a: (s, s.sum(-1, keepdims=True))  # noqa: E731
    predict = lambda s: (jnp.zeros(s.shape[:-1] + (2,)), s.sum(-1, keepdims=True))  # noqa: E731
    obs = jnp.array([[0.5, -1.0, 2.0]])
    actions = jnp.zeros((1, 4), jnp.int32)
    _, values, rewards = muzero.unroll(represent, step, predict, obs, actions)
    np.testing.assert_allclose(values[0, :, 0], 1.5)
    for k in range(5):
        grad = jax.grad(lambda o: muzero.unroll(represent, step, predict, o, actions)[1][0, k, 0])(obs)
        np.testing.assert_allclose(grad, 0.5**k * np.ones((1, 3)), rtol=1e-6)
    for k in range(1, 5):  # the reward of step k comes out of the k-th dynamics call
        grad = jax.grad(lambda o: muzero.unroll(represent, step, predict, o, actions)[2][0, k - 1, 0])(obs)
        np.testing.assert_allclose(grad, 0.5**k * np.ones((1, 3)), rtol=1e-6)
    x = jnp.array(3.0)
    assert float(muzero.scale_gradient(x, 0.25)) == 3.0
    assert float(jax.grad(lambda v: muzero.scale_gradient(v, 0.25) ** 2)(x)) == pytest.approx(0.25 * 6.0)


def test_sampled_segments_are_consecutive_rows_of_one_environment():
    state = muzero.init(CONFIG.replace(num_envs=3), jax.random.PRNGKey(0))
    buffer = state.buffer
    rows, envs_ = buffer.rows, buffer.num_envs
    marker = jnp.arange(rows)[:, None] * 10 + jnp.arange(envs_)[None, :]  # row·10 + env
    buffer = buffer.replace(data=buffer.data.replace(reward=marker.astype(jnp.float32)),
                            rows_filled=jnp.asarray(7, jnp.int32), row=jnp.asarray(7, jnp.int32))
    batch = muzero.sample_segments(buffer, jax.random.PRNGKey(3), 256, 5)
    r = np.asarray(batch.reward)
    assert r.shape == (256, 5)
    np.testing.assert_allclose(np.diff(r, axis=1), 10.0)  # consecutive rows, same environment
    assert r.max() <= 6 * 10 + envs_ - 1  # never reads a row not yet written (rows 0…6 are)
    assert set(np.unique(r[:, 0] // 10).astype(int)) == {0, 1, 2}  # starts 0…rows_filled − L


# ----------------------------------------------------------------------------- learning
@pytest.mark.learning
def test_cartpole_learns():
    """CartPole-v1, 4 seeds vmapped, preset (16 envs × 16 steps per update, 16 gradient steps
    of 128 segments, K = 5, n = 10, 8 simulations), 20,480 env steps per seed. Asserts the mean
    final deterministic-search return over the 4 seeds ≥ 150 (a random policy gets ≈ 22).
    Measured (keys = split(PRNGKey(b), 4)): b = 0 (this test) 257.0 (seeds 417, 219, 272, 120),
    b = 1 275.6, b = 2 194.3, b = 3 377.0; single seeds range 107–500. Each run took 130–160 s
    wall (compile included) on the 2-core machine under a load average of ~7 from other jobs;
    about 65 s (compile 44 s + run 21 s) at load < 1."""
    config = muzero.Config.for_env("CartPole-v1", eval_every=40)
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    _, _, eval_returns = jax.jit(jax.vmap(muzero.train, in_axes=(None, 0)))(config, keys)
    assert eval_returns.shape == (4, 2, config.eval_episodes)
    assert float(eval_returns[:, -1].mean()) >= 150.0, eval_returns[:, -1].mean(axis=-1)


# ----------------------------------------------------------------------------- contract
PROBE = dict(num_envs=8, steps_per_update=5, gradient_steps=8, batch_size=32, learning_starts=0,
             num_unroll_steps=2, td_steps=3, num_simulations=4, eval_episodes=2)


def test_time_limit_probe_bootstraps_through_truncation_in_a_vmapped_sweep():
    """probe/time-limit: reward 1 every step, cut at 5 steps, observation always 0. With
    γ = 0.5 the bootstrapped value is V(0) = 1/(1 − γ) = 2; treating the cut as a terminal
    would average the 5 remaining-horizon returns (1 … 1.94, mean ≈ 1.6). Two learning rates
    are swept by `vmap` in the same program (one compile for both checks)."""
    from purerl.config import sweep_axes

    config = muzero.Config(env="probe/time-limit", gamma=0.5, total_timesteps=8 * 5 * 60, eval_every=60,
                           learning_rate=jnp.array([3e-3, 1e-2]), **PROBE)
    train = jax.jit(jax.vmap(muzero.train, in_axes=(sweep_axes(config, "learning_rate"), None)))
    state, metrics, eval_returns = train(config, jax.random.PRNGKey(0))
    assert eval_returns.shape == (2, 1, 2) and metrics["loss/value"].shape == (2, 60)
    model = muzero.make_model(config, muzero.make_env(config.env))
    for i in range(2):
        params = jax.tree.map(lambda x: x[i], state.params)
        value = float(muzero.value_of(config, model, params, jnp.zeros((1, 1)))[0])
        assert value == pytest.approx(2.0, abs=0.1), i
        losses = np.asarray(metrics["loss/value"][i])
        assert np.all(np.isfinite(losses)) and losses[-1] < np.nanmax(losses)
    np.testing.assert_allclose(eval_returns[:, -1], 5.0)  # 5 steps of reward 1 whatever the action


def test_survives_gpu_suite_few_updates():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from benchmarks.gpu_suite import few_updates

    config = few_updates(muzero, muzero.Config.for_env("CartPole-v1"), 2, num_envs=4, batch_size=8,
                         buffer_size=64)
    assert config.num_updates == 2 and config.buffer_rows >= config.segment_length
    assert dataclasses.replace(config).learning_starts == 0


@pytest.mark.parametrize("field, value", [
    ("env", "NoSuchEnv-v0"), ("env", "Pendulum-v1"), ("total_timesteps", 0), ("num_envs", 0), ("batch_size", 0),
    ("num_unroll_steps", 0), ("td_steps", 0), ("num_simulations", 0), ("value_loss", "huber"),
    ("hidden_sizes", (0,)), ("learning_rate", 0.0), ("gamma", 1.5), ("tau", 0.0), ("temperature", -1.0),
    ("dirichlet_fraction", 2.0), ("learning_starts", -1), ("eval_episodes", 0),
])
def test_config_rejects_bad_value(field, value):
    with pytest.raises(ValueError, match=field):
        muzero.Config(**{field: value})


def test_mse_value_loss_runs_with_scalar_heads():
    config = muzero.Config(env="probe/constant", value_loss="mse", total_timesteps=40, eval_every=1, **PROBE)
    state = muzero.init(config, jax.random.PRNGKey(0))
    assert state.params["prediction"]["params"]["Dense_2"]["kernel"].shape[-1] == 1
    state, metrics = jax.jit(lambda s: muzero.update(config, s))(state)
    assert np.isfinite(float(metrics["loss/value"]))
