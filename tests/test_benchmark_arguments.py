"""Benchmark scripts reject bad arguments with a message naming them, before any training (the
JSON of earlier rows is left as it is): benchmarks/ppo_ablation.py's variant numbers,
benchmarks/skills.py's brax/ant part."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import ppo_ablation, skills  # noqa: E402


@pytest.mark.parametrize("bad", [str(len(ppo_ablation.VARIANTS)), "-1", "x"])
def test_a_bad_variant_number_lists_the_variants(bad):
    last = len(ppo_ablation.VARIANTS) - 1
    with pytest.raises(SystemExit, match=f"variant {bad}: expected numbers from 0 to {last}") as error:
        ppo_ablation.main(["0", bad])
    assert "preset + clipped value loss" in str(error.value)  # the list of variants


def test_skills_ant_steps_are_checked_by_the_config_and_need_the_ant_part():
    with pytest.raises(SystemExit, match="--ant-steps 0: .*total_timesteps"):
        skills.main(["--parts", "diayn-ant", "--ant-steps", "0"])
    with pytest.raises(SystemExit, match="--ant-steps is for the part diayn-ant"):
        skills.main(["--parts", "pcgrad", "--ant-steps", "100000"])
