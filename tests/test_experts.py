"""Experts and demonstrations: the Pendulum LQR gain against scipy's Riccati solution, the
scripted controllers' returns, the demonstrations' format and references, `purerl collect
--expert` and its errors, environment variants (other parameters, a replaced reward), and
`purerl train dagger --dataset DEMOS` end to end."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from purerl import cli, datasets, envs, evaluation, experts


# ----------------------------------------------------------------------------- scripted experts
def test_pendulum_lqr_gain_matches_scipy_riccati():
    """Eq. (3): K = (R + BᵀPB)⁻¹ BᵀPA with P the stabilizing solution of the discrete algebraic
    Riccati equation for Q = diag(1, 0.1), R = 0.001 on the linearized step."""
    a, b = experts.pendulum_linearization()
    q, r = np.diag([1.0, 0.1]), np.array([[0.001]])
    p = scipy.linalg.solve_discrete_are(a, b, q, r)
    k = np.linalg.solve(r + b.T @ p @ b, b.T @ p @ a)[0]
    np.testing.assert_allclose(experts.pendulum_lqr_gain(), k, rtol=1e-6)
    # the closed loop is stable (every eigenvalue inside the unit circle) and the open loop is not
    assert np.max(np.abs(np.linalg.eigvals(a - b @ k[None]))) < 1.0 < np.max(np.abs(np.linalg.eigvals(a)))


def test_pendulum_linearization_is_gymnax_step_near_upright():
    """(A, B) predict gymnax Pendulum's next (θ, θ̇) for a small state and torque."""
    env = envs.make("Pendulum-v1", rescale_actions=False)
    state, _ = env.reset(jax.random.PRNGKey(0), 1)
    theta, theta_dot, torque = 0.01, -0.02, 0.05
    backend = state.backend_state.replace(theta=jnp.array([theta]), theta_dot=jnp.array([theta_dot]))
    _, ts = env.step(jax.random.PRNGKey(1), state.replace(backend_state=backend), jnp.array([[torque]]))
    a, b = experts.pendulum_linearization()
    predicted = a @ np.array([theta, theta_dot]) + b[:, 0] * torque
    obs = np.asarray(ts.obs)[0]
    np.testing.assert_allclose([np.arctan2(obs[1], obs[0]), obs[2]], predicted, atol=1e-5)


def test_cartpole_linear_pushes_toward_the_fall():
    np.testing.assert_array_equal(np.asarray(experts.cartpole_linear(jnp.array([[0.0, 0.0, 0.05, 0.0],
                                                                               [0.0, 0.0, -0.05, 0.0]]))), [1, 0])


@pytest.mark.parametrize("env, low, high", [("CartPole-v1", 500.0, 500.0), ("Pendulum-v1", -200.0, -100.0)])
def test_scripted_experts_returns(env, low, high):
    """Over 32 episodes: CartPole's controller reaches the 500-step limit every time; Pendulum's
    swing-up + LQR averages between −200 and −100 (measured −149 over the 100 reference episodes
    of `demonstrations`' seed 0; PPO's and SAC's presets reach about −150 to −200)."""
    env_ = envs.make(env)
    act = experts.get("scripted", env)
    returns = np.asarray(jax.jit(lambda k: evaluation.evaluate(env_, act, k, 32))(jax.random.PRNGKey(3)))
    if env == "CartPole-v1":
        np.testing.assert_array_equal(returns, 500.0)
    else:
        assert low <= returns.mean() <= high, returns.mean()
        assert returns.min() > -400.0, returns.min()


def test_expert_names_register_and_errors():
    assert experts.get("scripted", "CartPole-v1") is experts.cartpole_linear
    with pytest.raises(ValueError, match="Config.expert='scripted' is invalid for env='Acrobot-v1'"):
        experts.check("scripted", "Acrobot-v1")
    with pytest.raises(ValueError, match="Config.expert"):
        experts.check("nobody-registered", "CartPole-v1")
    with pytest.raises(ValueError, match="reserved"):
        experts.register("scripted", experts.cartpole_linear)
    experts.register("test-always-left", lambda obs, key: jnp.zeros(obs.shape[0], jnp.int32))
    np.testing.assert_array_equal(np.asarray(experts.get("test-always-left", "CartPole-v1")(jnp.ones((3, 4)), None)), 0)


# ----------------------------------------------------------------------------- demonstrations
def test_demonstrations_are_whole_episodes_with_references():
    demos = experts.demonstrations("CartPole-v1", "scripted", episodes=2, seed=0, reference_episodes=8)
    t, info = demos.transitions, demos.info
    assert demos.size == info["steps"] == 1000  # two whole 500-step episodes
    assert info["kind"] == "expert" and info["expert"] == "scripted" and info["episodes"] == 2
    assert info["expert_return"] == 500.0 and 9.0 < info["random_return"] < 40.0
    # labels are the expert's actions on the recorded states; each episode ends truncated, not terminated
    np.testing.assert_array_equal(t.action, np.asarray(experts.cartpole_linear(jnp.asarray(t.obs))))
    assert t.truncated.sum() == 2 and t.truncated[499] and t.truncated[999] and not t.terminated.any()
    np.testing.assert_allclose(t.next_obs[:499], t.obs[1:500], atol=1e-6)  # one episode, step after step
    assert len(datasets.episodes(t)) == 2
    with pytest.raises(ValueError, match="episodes"):
        experts.demonstrations("CartPole-v1", "scripted", episodes=0)


def test_pendulum_demonstrations_are_in_the_agents_action_range():
    demos = experts.demonstrations("Pendulum-v1", "scripted", episodes=1, seed=0, reference_episodes=4)
    a = demos.transitions.action
    assert a.shape == (200, 1) and a.min() >= -1.0 and a.max() <= 1.0
    assert demos.transitions.reward.sum() > -400.0


def test_collect_expert_through_the_cli_and_its_errors(tmp_path, capsys):
    out = str(tmp_path / "demos")
    assert cli.main(["collect", "--kind", "expert", "--expert", "scripted", "--env", "CartPole-v1", "--episodes", "1",
                     "--out", out]) == 0
    d = datasets.load(out)
    assert d.size == 500 and d.info["expert"] == "scripted" and d.info["expert_return"] == 500.0
    assert "1 episodes" in capsys.readouterr().out
    for argv, message in [
        (["--expert", "scripted", "--env", "CartPole-v1"], "--episodes"),
        (["--expert", "scripted", "--episodes", "1"], "--env"),
        (["--expert", "scripted", "--env", "Acrobot-v1", "--episodes", "1"], "--expert"),
        (["--expert", "nobody", "--env", "CartPole-v1", "--episodes", "1"], "allowed: scripted, run"),
        (["--expert", "run", "--episodes", "1"], "--run"),
    ]:
        assert cli.main(["collect", "--kind", "expert", *argv, "--out", str(tmp_path / "bad")]) == 2, argv
        assert message in capsys.readouterr().err, argv
    assert cli.main(["collect", "--kind", "random", "--expert", "scripted", "--env", "CartPole-v1", "--episodes", "1",
                     "--out", str(tmp_path / "bad")]) == 2
    assert "kind expert" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


# ----------------------------------------------------------------------------- environment variants
def test_variant_with_other_parameters_and_a_replaced_reward():
    heavy = envs.variant("Pendulum-v1-test-heavy", "Pendulum-v1", m=2.0)
    assert heavy == "Pendulum-v1-test-heavy"
    envs.check_name(heavy)  # a Config may name it
    base, variant = envs.make("Pendulum-v1"), envs.make(heavy)
    key = jax.random.PRNGKey(0)
    s0, o0 = base.reset(key, 2)
    s1, o1 = variant.reset(key, 2)
    np.testing.assert_allclose(np.asarray(o0), np.asarray(o1))  # same reset distribution
    action = jnp.ones((2, 1))
    _, t0 = base.step(key, s0, action)
    _, t1 = variant.step(key, s1, action)
    assert not np.allclose(np.asarray(t0.obs), np.asarray(t1.obs))  # a heavier pendulum moves differently

    def reward_fn(obs, action, next_obs):
        return next_obs[2] - 10.0 * action[0]  # θ̇ after the step, minus 10 × torque

    shaped = envs.variant("Pendulum-v1-test-reward", "Pendulum-v1", reward_fn=reward_fn)
    env = envs.make(shaped, rescale_actions=False)
    s, o = env.reset(key, 2)
    _, ts = env.step(key, s, jnp.full((2, 1), 0.5))
    np.testing.assert_allclose(np.asarray(ts.reward), np.asarray(ts.obs)[:, 2] - 5.0, rtol=1e-5)
    with pytest.raises(ValueError, match="registered already"):
        envs.variant("Pendulum-v1-test-reward", "Pendulum-v1")
    with pytest.raises(ValueError, match="base='NoSuch-v0'"):
        envs.variant("x-test", "NoSuch-v0")


# ----------------------------------------------------------------------------- the runner
def test_train_dagger_from_collected_demonstrations(tmp_path, capsys):
    """`purerl collect --expert scripted` then `purerl train dagger --dataset`: the runner loads the
    demonstrations, counts environment steps and reports the normalized score."""
    demos = str(tmp_path / "demos")
    assert cli.main(["collect", "--kind", "expert", "--expert", "scripted", "--env", "CartPole-v1", "--episodes", "1",
                     "--out", demos]) == 0
    argv = ["train", "dagger", "--dataset", demos, "--num-seeds", "2", "--num-rounds", "2", "--num-envs", "2",
            "--rollout-steps", "10", "--steps-per-update", "5", "--hidden-sizes", "8", "--eval-episodes", "1",
            "--runs-dir", str(tmp_path), "--run-name", "d", "--no-progress", "--no-plot"]
    assert cli.main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "normalized score" in out
    results = json.load(open(tmp_path / "d" / "results.json"))
    assert results["env"] == "CartPole-v1" and len(results["final_eval_return_per_seed"]) == 2
    assert results["env_steps_per_seed"] == 2 * 2 * 10  # rounds × num_envs × rollout_steps
    assert results["dataset"]["expert_return"] == 500.0 and results["dataset"]["kind"] == "expert"
    final = np.array(results["final_eval_return_per_seed"])
    expected = 100 * (final - results["dataset"]["random_return"]) / (500.0 - results["dataset"]["random_return"])
    assert results["normalized_score"]["mean"] == pytest.approx(expected.mean())
