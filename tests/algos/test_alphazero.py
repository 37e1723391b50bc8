"""AlphaZero: PUCT on hand-built trees (visit sequence by hand and by an independent NumPy
PUCT), the two-player sign convention, value targets against hand values, the true-model
recurrent functions (CartPole termination, tic-tac-toe rewards and masks), Config validation,
and learning on tic-tac-toe (against a random player) and CartPole-v1.

Timings in the learning tests' docstrings were measured on the 2-core CPU while other jobs
shared it, so they read high."""

import functools

import jax
import jax.numpy as jnp
import mctx
import numpy as np
import pytest

from purerl.algos import alphazero as az

PRIORS = np.array([0.5, 0.3, 0.2])
REWARDS = np.array([0.0, 1.0, 0.5])  # one-step tree: action a ends the episode with reward r_a
ROOT_VALUE = 0.5


def bandit_recurrent_fn(params, key, action, embedding):
    """Children of the root are terminal (discount 0, value 0) with reward REWARDS[action]."""
    batch = action.shape[0]
    return mctx.RecurrentFnOutput(reward=jnp.asarray(REWARDS, jnp.float32)[action],
                                  discount=jnp.zeros(batch), prior_logits=jnp.zeros((batch, 3)),
                                  value=jnp.zeros(batch)), embedding


def bandit_visits(num_simulations, search="puct"):
    config = az.Config(search=search, num_simulations=num_simulations)
    root = mctx.RootFnOutput(prior_logits=jnp.log(jnp.asarray(PRIORS, jnp.float32))[None],
                             value=jnp.full((1,), ROOT_VALUE), embedding=jnp.zeros((1,), jnp.int32))
    out = jax.jit(lambda r: az.run_search(config, None, jax.random.PRNGKey(0), r, bandit_recurrent_fn,
                                          explore=False))(root)
    return np.asarray(out.search_tree.summary().visit_counts[0]), out


def root_action_sequence(tree):
    """The root action each simulation took: simulation k created node k (node 0 is the root);
    walk each new node up to its ancestor below the root."""
    parents, actions = np.asarray(tree.parents[0]), np.asarray(tree.action_from_parent[0])
    sequence = []
    for node in range(1, parents.shape[0]):
        while parents[node] != 0:
            node = parents[node]
        sequence.append(int(actions[node]))
    return sequence


def numpy_puct_sequence(num_simulations, c1=1.25, c2=19652.0):
    """Independent PUCT (MuZero eq. 2) on the one-step tree: Q min-max normalized over the node
    value and its visited children, unvisited children completed by the minimum."""
    n = np.zeros(3)
    q = np.zeros(3)
    total, visits, sequence = ROOT_VALUE, 1, []
    for _ in range(num_simulations):
        node_value = total / visits
        safe = np.where(n > 0, q, node_value)
        low, high = min(node_value, safe.min()), max(node_value, safe.max())
        q_hat = (np.where(n > 0, q, low) - low) / max(high - low, 1e-8)
        pb_c = c1 + np.log((visits + c2 + 1) / c2)
        score = q_hat + np.sqrt(visits) * pb_c * PRIORS / (n + 1)
        a = int(np.argmax(score))
        sequence.append(a)
        n[a] += 1
        q[a] = REWARDS[a]
        total += REWARDS[a]
        visits += 1
    return sequence


# ----------------------------------------------------------------------------- search on hand-built trees
def test_puct_visit_sequence_matches_hand_computation():
    # By hand (c₁ = 1.25, c₂ = 19652, so pb_c ≈ 1.2502):
    # sim 1: no child visited, Q̂ = 0 everywhere → largest prior, a = 0 (Q = 0); root value (0.5+0)/2 = 0.25.
    # sim 2: Q̂(0) = 0 is the minimum, so Q̂ = 0 everywhere; prior term ∝ P/(1+n) = [0.25, 0.3, 0.2] → a = 1 (Q = 1).
    # sim 3: Q̂ = [0, 1, 0]; prior term √3·1.2502·[0.25, 0.3, 0.2] = [0.54, 0.32+… (n=0 → 0.65), 0.43];
    #        scores [0.54, 1.65, 0.43] → a = 1.
    # sim 4: N = 4, Q̂ = [0, 1, 0], prior term 2.5·[0.25, 0.1, 0.2] → scores [0.63, 1.25, 0.50] → a = 1.
    expected = [0, 1, 1, 1]
    visits, out = bandit_visits(4)
    assert root_action_sequence(out.search_tree) == expected
    np.testing.assert_array_equal(visits, [1, 3, 0])
    assert numpy_puct_sequence(4) == expected


def test_puct_visits_match_numpy_reference_over_many_simulations():
    k = 50
    visits, out = bandit_visits(k)
    assert root_action_sequence(out.search_tree) == numpy_puct_sequence(k)
    expected = np.bincount(numpy_puct_sequence(k), minlength=3)
    np.testing.assert_array_equal(visits, expected)
    assert 0 < expected[2] < expected[0] < expected[1]  # every action tried, the best one most
    # the root value is the mean of the backed-up values, v₀ included
    assert float(out.search_tree.node_values[0, 0]) == pytest.approx(
        (ROOT_VALUE + (expected * REWARDS).sum()) / (k + 1), rel=1e-5)


def test_gumbel_search_picks_the_best_action_of_the_tree():
    _, out = bandit_visits(16, search="gumbel")
    assert int(out.action[0]) == 1
    # the improved policy puts most weight on the best action
    assert int(np.argmax(np.asarray(out.action_weights[0]))) == 1


# Two-player tree: the root player picks 0 or 1; then the opponent replies 0 or 1 and the game
# ends. After root action 0 the opponent's reply 0 wins for the opponent (+1 to the mover),
# reply 1 loses; after root action 1 both replies draw. Minimax: root action 0 loses against a
# best reply, root action 1 draws → action 1. A search that ignored the sign flip (discount +1)
# would add the opponent's +1 to the root player's value and prefer action 0.
def two_player_recurrent_fn(discount):
    def fn(params, key, action, embedding):
        depth, first = embedding
        at_root = depth == 0
        reply_reward = jnp.where(first == 0, jnp.where(action == 0, 1.0, -1.0), 0.0)
        reward = jnp.where(at_root, 0.0, reply_reward)
        disc = jnp.where(at_root, discount, 0.0)
        new_first = jnp.where(at_root, action, first)
        prior = jnp.tile(jnp.array([[2.0, 0.0]]), (action.shape[0], 1))  # favours action 0 at every node
        return mctx.RecurrentFnOutput(reward=reward, discount=disc, prior_logits=prior,
                                      value=jnp.zeros(action.shape[0])), (depth + 1, new_first)
    return fn


def test_two_player_search_uses_the_alternating_sign():
    config = az.Config(num_simulations=64)
    root = mctx.RootFnOutput(prior_logits=jnp.array([[2.0, 0.0]]), value=jnp.zeros(1),
                             embedding=(jnp.zeros(1, jnp.int32), jnp.zeros(1, jnp.int32)))
    search = jax.jit(lambda d: az.run_search(config, None, jax.random.PRNGKey(1), root, two_player_recurrent_fn(d),
                                             explore=False))
    out = search(-1.0)
    visits = np.asarray(out.search_tree.summary().visit_counts[0])
    assert visits[1] > visits[0]  # against the prior, which favours the losing action 0
    assert int(az.choose_action(config, jax.random.PRNGKey(0), out, explore=False)[0]) == 1
    assert float(out.search_tree.summary().qvalues[0, 0]) < -0.5  # the opponent's winning reply was found
    wrong = search(1.0)
    assert np.argmax(np.asarray(wrong.search_tree.summary().visit_counts[0])) == 0  # the assertion can fail


def test_invalid_actions_are_never_visited():
    config = az.Config(num_simulations=20)
    root = mctx.RootFnOutput(prior_logits=jnp.log(jnp.asarray(PRIORS, jnp.float32))[None],
                             value=jnp.full((1,), ROOT_VALUE), embedding=jnp.zeros((1,), jnp.int32))
    invalid = jnp.array([[False, True, False]])  # the best action is illegal
    for search in ("puct", "gumbel"):
        config = az.Config(search=search, num_simulations=20)
        out = jax.jit(lambda r: az.run_search(config, None, jax.random.PRNGKey(0), r, bandit_recurrent_fn, invalid,
                                              explore=True))(root)
        assert int(out.search_tree.summary().visit_counts[0, 1]) == 0
        assert float(out.action_weights[0, 1]) == 0.0
        assert int(az.choose_action(config, jax.random.PRNGKey(2), out, explore=True)[0]) != 1


# ----------------------------------------------------------------------------- targets and models
def test_value_targets_match_hand_values():
    gamma = 0.9
    # one environment, T = 4: rewards 1, 1, 1, 1; terminal at t = 1 (an auto-reset follows),
    # the episode after it is cut off at the end of the fragment with bootstrap V = 10.
    rewards = jnp.ones((4, 1))
    terminated = jnp.array([[False], [True], [False], [False]])
    discounts = jnp.where(terminated, 0.0, gamma)
    truncated = jnp.zeros((4, 1), bool)
    g = np.asarray(az.value_targets(rewards, discounts, truncated, jnp.zeros((4, 1)), jnp.full((1,), 10.0)))[:, 0]
    np.testing.assert_allclose(g, [1 + 0.9, 1.0, 1 + 0.9 * (1 + 0.9 * 10), 1 + 0.9 * 10], rtol=1e-6)
    # a time-limit cut at t = 2 bootstraps from V(s′_2) = 5, not from the next episode
    truncated = jnp.array([[False], [False], [True], [False]])
    g = np.asarray(az.value_targets(rewards, discounts, truncated, jnp.full((4, 1), 5.0), jnp.full((1,), 10.0)))[:, 0]
    np.testing.assert_allclose(g[2], 1 + 0.9 * 5, rtol=1e-6)
    # two players (d = −1): the winner's last move gets +1, the position before it −1, then +1
    g = np.asarray(az.value_targets(jnp.array([[0.0], [0.0], [1.0]]), jnp.array([[-1.0], [-1.0], [0.0]]),
                                    jnp.zeros((3, 1), bool), jnp.zeros((3, 1)), jnp.zeros(1)))[:, 0]
    np.testing.assert_allclose(g, [1.0, -1.0, 1.0])


def test_cartpole_recurrent_fn_discount_is_zero_after_termination():
    config = az.Config.for_env("CartPole-v1")
    game = az.make_game("CartPole-v1")
    params = az.init(config, jax.random.PRNGKey(0)).params
    state = game.reset(jax.random.PRNGKey(1), 2)
    emb = game.embedding(state)
    # push the pole far past the threshold in environment 0: theta = 0.5 rad > 12°
    emb = emb.replace(theta=emb.theta.at[0].set(0.5))
    out, new_emb = az.make_recurrent_fn(config)(params, jax.random.PRNGKey(2), jnp.array([1, 1]), emb)
    assert float(out.reward[1]) == 1.0  # (gymnax gives 0 reward for a step from an already-terminal state)
    np.testing.assert_allclose(out.discount, [0.0, config.gamma], rtol=1e-6)
    assert float(out.value[0]) == 0.0
    # the real state was not changed: the search stepped a copy
    assert float(game.embedding(state).theta[0]) != 0.5


def test_tic_tac_toe_recurrent_fn_rewards_sign_and_masks():
    config = az.Config.for_env("pgx/tic_tac_toe")
    game = az.make_game("pgx/tic_tac_toe")
    params = az.init(config, jax.random.PRNGKey(0)).params
    state = game.reset(jax.random.PRNGKey(0), 1)
    # X plays 0, 3 and O plays 1, 4; X to move completes the column 0-3-6
    for a in (0, 1, 3, 4):
        state, _ = game.step(jax.random.PRNGKey(0), state, jnp.array([a]))
    fn = az.make_recurrent_fn(config)
    out, after = fn(params, jax.random.PRNGKey(0), jnp.array([6]), state)
    assert float(out.reward[0]) == 1.0 and float(out.discount[0]) == 0.0 and float(out.value[0]) == 0.0
    out, after = fn(params, jax.random.PRNGKey(0), jnp.array([8]), state)  # not a winning move
    assert float(out.reward[0]) == 0.0 and float(out.discount[0]) == -1.0
    logits = np.asarray(out.prior_logits[0])
    occupied = [0, 1, 3, 4, 8]
    assert np.all(logits[occupied] < -1e30) and np.all(logits[[2, 5, 6, 7]] > -1e30)


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="Config.search"):
        az.Config(search="uct")
    with pytest.raises(ValueError, match="Config.env"):
        az.Config(env="pgx/chess")
    with pytest.raises(ValueError, match="Config.env"):
        az.Config(env="Pendulum-v1")  # continuous actions
    with pytest.raises(ValueError, match="Config.buffer_size"):
        az.Config(buffer_size=8)
    with pytest.raises(ValueError, match="Config.gamma"):
        az.Config(gamma=1.0)
    config = az.Config.for_env("pgx/tic_tac_toe")
    assert config.env_steps_per_update == config.num_envs * config.rollout_steps
    assert config.num_updates == config.total_timesteps // config.env_steps_per_update


# ----------------------------------------------------------------------------- learning
def train_seeds(config, seeds, base):
    keys = jax.random.split(jax.random.PRNGKey(base), seeds)
    _, metrics, returns = jax.jit(jax.vmap(az.train, in_axes=(None, 0)))(config, keys)
    return np.asarray(returns)


@pytest.mark.learning
def test_alphazero_beats_a_random_player_at_tic_tac_toe():
    """Gumbel search (32 simulations, Gumbel noise ×2 in self-play), 80 updates of 16 self-play
    games × 9 steps, a 4096-position replay; 2 seeds × 64 games against a uniformly random legal
    player (the agent moves first in 32 of them). Measured with this call (first player: wins,
    losses; second player: not lost): PRNGKey 0: 98.4 %, 0, 100 %; PRNGKey 1: 98.4 %, 0, 100 %;
    PRNGKey 2: 100 %, 0, 100 %; PRNGKey 42: 100 %, 0, 100 % (as second player 84–94 % wins).
    The same 2-seed sets for PRNGKey 3–12 (trained in one vmapped batch) pass too: first player
    96.9–100 %, no loss; second player 98.4–100 % not lost. With the former preset (Gumbel noise
    ×1, 1152-position replay) key sets 2 and 42 failed (92.2 %; 85.9 % with 7 losses): one seed's
    self-play settled on a single drawn line, its value targets all 0, and the search then
    misjudged the positions a random player makes. The test runs key set 1 (not the best one).
    43–45 s (two runs) with compilation on the shared 2-core CPU at load 2–3; the
    former preset took 42 s under the same load."""
    config = az.Config.for_env("pgx/tic_tac_toe")
    outcomes = train_seeds(config, 2, 1)[:, -1]  # [seeds, games] at the final evaluation
    first, second = outcomes[:, 0::2], outcomes[:, 1::2]
    assert (first == 1).mean() >= 0.95, first  # PRNGKey(1): 98.4 % measured
    assert (first == -1).sum() == 0, first  # never loses when it starts
    assert (second != -1).mean() >= 0.85, second  # 100 % measured


@pytest.mark.learning
def test_alphazero_balances_cartpole():
    """PUCT search (8 simulations, the true CartPole dynamics as the model), 65 536 steps, 4
    seeds × 8 greedy evaluation episodes. Measured final mean return: 486.6 (PRNGKey 0; per seed
    500 / 500 / 500 / 446) and 386.9 (PRNGKey 42; 489 / 500 / 442 / 116: one seed stuck). 60–85 s
    with compilation on the shared 2-core CPU."""
    config = az.Config.for_env("CartPole-v1", total_timesteps=65_536, eval_every=256, eval_episodes=8)
    returns = train_seeds(config, 4, 0)
    assert returns[:, -1].mean() >= 300.0, returns[:, -1].mean(-1)
    assert np.median(returns[:, -1].mean(-1)) >= 400.0, returns[:, -1].mean(-1)
