"""benchmarks/imitation.py's Brax setting (BC against DAgger from a trained PPO expert, the
seed-004 homework) needs an accelerator; its dry run, here on a 10-step Pendulum-v1, runs every
step of the pipeline (expert trained through the runner, read back from its run directory,
demonstrations, BC, DAgger labelling with that expert) so that it cannot rot meanwhile."""

import math
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import imitation  # noqa: E402


def test_brax_settings_are_valid_and_match_the_references():
    from purerl import experts
    from purerl.algos import bc, dagger, ppo

    experts.register("test-brax-expert", experts.SCRIPTED["Pendulum-v1"])  # any expert: DAgger's Config checks the name
    for env in imitation.BRAX_ENVS:
        expert = ppo.Config(env=env, **imitation.BRAX_EXPERT_PPO)
        minibatch = expert.num_envs * expert.num_steps // expert.num_minibatches
        assert minibatch == 2048 * 20  # Brax's minibatch: 2048 unrolls of 20 steps
        # Brax's 4 epochs × 32 minibatches per 16 rounds of 4096 × 20 steps
        per_update = expert.update_epochs * expert.num_minibatches / (expert.num_envs * expert.num_steps)
        assert per_update == 128 / (16 * 4096 * 20)
        assert not expert.clip_value_loss  # as Brax's PPO (benchmarks/ppo_ablation.py)
        b = bc.Config.for_env(env, **imitation.BRAX_IMITATION["bc"])
        d = dagger.Config.for_env(env, **imitation.BRAX_IMITATION["dagger"], expert="test-brax-expert")
        assert b.num_gradient_steps == d.num_rounds * d.steps_per_update == 10_000  # the same learner budget
        assert d.labels_per_round == 1_000 and b.hidden_sizes == d.hidden_sizes


def test_brax_option_takes_brax_environments_only(capsys):
    with pytest.raises(SystemExit):
        imitation.main(["--brax", "Pendulum-v1", "--dry-run"])
    assert "invalid choice" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # one run's expert cannot demonstrate two environments
        imitation.main(["--brax", "brax/walker2d", "brax/hopper", "--expert-run", "runs/x", "--dry-run"])
    assert "--expert-run" in capsys.readouterr().err


def test_dry_run_trains_an_expert_and_imitates_it(tmp_path):
    rows = list(imitation.run_brax("Pendulum-v1", ["bc", "dagger"], [1], 2, None, None, 2, str(tmp_path), dry=True))
    assert [r["algorithm"] for r in rows] == ["bc", "dagger"]
    expert = rows[0]["expert"]
    assert os.path.isdir(os.path.join(expert["run_dir"], "checkpoints"))
    assert len(expert["final_return_per_seed"]) == 2
    assert expert["best_seed"] == max(range(2), key=lambda s: expert["final_return_per_seed"][s])
    for r in rows:
        assert r["env"] == "Pendulum-v1" and r["dry_run"] and r["num_seeds"] == 2
        assert r["demonstration_steps"] == imitation.DRY_EPISODE_LENGTH  # one whole (10-step) episode
        assert all(math.isfinite(x) for x in r["final_return_per_seed"])
    assert rows[1]["overrides"]["expert"].startswith("ppo-expert-")
    # the expert read back from its run directory gives the same demonstrations, so the same BC row
    again = list(imitation.run_brax("Pendulum-v1", ["bc"], [1], 2, expert["run_dir"], None, 2, str(tmp_path),
                                    dry=True))
    assert again[0]["final_return_per_seed"] == rows[0]["final_return_per_seed"]
    with pytest.raises(ValueError, match="trained on 'Pendulum-v1-dry'"):  # another environment's expert
        next(imitation.run_brax("MountainCarContinuous-v0", ["bc"], [1], 2, expert["run_dir"], None, 2,
                                str(tmp_path), dry=True))


def test_set_overrides_are_checked_before_anything_runs(capsys):
    with pytest.raises(SystemExit, match="no_such_field"):
        imitation.main(["--algos", "bc", "airl", "--envs", "CartPole-v1", "--set", "no_such_field=1"])
    with pytest.raises(SystemExit, match="disc_steps"):  # a field of AIRL, not of BC: named with BC's fields
        imitation.main(["--algos", "bc", "airl", "--envs", "CartPole-v1", "--set", "disc_steps=2"])
    assert "saved" not in capsys.readouterr().out
