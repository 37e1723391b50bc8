"""benchmarks/ppo_ablation.py: a bad variant number exits naming the allowed ones before any
training (the JSON of earlier rows is left as it is)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import ppo_ablation  # noqa: E402


@pytest.mark.parametrize("bad", [str(len(ppo_ablation.VARIANTS)), "-1", "x"])
def test_a_bad_variant_number_lists_the_variants(bad):
    last = len(ppo_ablation.VARIANTS) - 1
    with pytest.raises(SystemExit, match=f"variant {bad}: expected numbers from 0 to {last}") as error:
        ppo_ablation.main(["0", bad])
    assert "preset + clipped value loss" in str(error.value)  # the list of variants
