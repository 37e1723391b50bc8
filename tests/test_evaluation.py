"""`run_block`: a partial last block skips its updates, and the update is traced once."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl.evaluation import run_block


@pytest.mark.parametrize("total_updates", [6, 5])  # full blocks, and a partial last block
def test_update_traced_once_and_partial_block_skipped(total_updates):
    traces = []

    def update(state, update_index=None):
        traces.append(update_index)
        return state + 1.0, {"index": jnp.asarray(update_index, jnp.float32)}

    block = jax.jit(lambda s, b: run_block(update, lambda s: s[None], s, b, 3, total_updates))
    state, metrics, returns = block(jnp.zeros(()), jnp.int32(1))  # updates 3, 4, 5 (5 skipped when total is 5)
    assert len(traces) == 1
    expected = [3.0, 4.0, 5.0] if total_updates == 6 else [3.0, 4.0, np.nan]
    np.testing.assert_array_equal(metrics["index"], expected)
    assert float(state) == (3.0 if total_updates == 6 else 2.0) and float(returns[0]) == float(state)
