"""`--distributed` for real: two processes on localhost (CPU backend, one device each,
gloo collectives) train 8 seeds through the runner and match the one-process run."""

import os
import socket
import subprocess
import sys
import textwrap

import jax
import numpy as np

from purerl import run
from purerl.algos import ppo
from xla_flags import with_host_devices  # tests/xla_flags.py (tests/ is on sys.path via its conftest)

CONFIG = dict(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 4, num_minibatches=2, update_epochs=1,
              hidden_sizes=(16,), eval_every=2, eval_episodes=2)

PROCESS = textwrap.dedent("""
    import sys
    import jax
    process_id, port, runs_dir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2, process_id=process_id,
                               initialization_timeout=60)
    import numpy as np
    from purerl import run
    from purerl.algos import ppo
    r = run.train("ppo", ppo.Config(**CONFIG), run.RunOptions(
        num_seeds=8, runs_dir=runs_dir, run_name="dist", progress=False, plot=False, distributed=True))
    assert jax.process_count() == 2 and r.timing["devices"] == 2, r.timing
    np.savez(f"{runs_dir}/process{process_id}.npz", *jax.tree.leaves(r.states), returns=r.eval_returns)
    """)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_match_one_process(tmp_path):
    script = PROCESS.replace("CONFIG", repr(CONFIG))
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": with_host_devices(None)}  # one CPU device each
    port = str(_free_port())
    procs = [subprocess.Popen([sys.executable, "-c", script, str(i), port, str(tmp_path)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)]
    outputs = []
    try:
        for p in procs:
            outputs.append(p.communicate(timeout=420)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for i, (p, out) in enumerate(zip(procs, outputs)):
        assert p.returncode == 0, f"process {i} failed:\n{out[-4000:]}"
    assert "results:" in outputs[0] and "results:" not in outputs[1]  # process 0 alone reports and writes
    assert os.path.getsize(tmp_path / "dist" / "results.json") > 0

    single = run.train("ppo", ppo.Config(**CONFIG), run.RunOptions(num_seeds=8, runs_dir=str(tmp_path),
                                                                   run_name="single", progress=False, plot=False))
    leaves = jax.tree.leaves(single.states)
    for i in range(2):
        multi = np.load(tmp_path / f"process{i}.npz")
        np.testing.assert_allclose(multi["returns"], single.eval_returns, rtol=1e-5)
        for j, leaf in enumerate(leaves):
            np.testing.assert_allclose(multi[f"arr_{j}"], leaf, rtol=1e-5, atol=1e-6)
