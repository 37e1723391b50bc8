"""`--tensorboard` and `--wandb`: scalars written from the runner's host side."""

import glob
import os
import struct
import sys
import types

import numpy as np
import pytest

from purerl import cli, run
from purerl.algos import ppo

SMALL = ppo.Config(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 10, num_minibatches=2, update_epochs=2,
                   hidden_sizes=(16,), eval_every=3, eval_episodes=2)


def read_events(directory: str) -> dict:
    """{tag: [(step, value)]} from the TensorBoard event files in `directory` (TFRecord framing:
    length u64, its crc u32, the Event proto, its crc u32)."""
    from tensorboardX.proto import event_pb2

    out = {}
    for path in glob.glob(os.path.join(directory, "events.out.tfevents.*")):
        data = open(path, "rb").read()
        i = 0
        while i < len(data):
            (length,) = struct.unpack("<Q", data[i:i + 8])
            event = event_pb2.Event.FromString(data[i + 12:i + 12 + length])
            i += 12 + length + 4
            for v in event.summary.value:
                out.setdefault(v.tag, []).append((event.step, v.simple_value))
    return out


class FakeWandb(types.ModuleType):
    def __init__(self):
        super().__init__("wandb")
        self.calls = []

    def init(self, **kwargs):
        self.calls.append(("init", kwargs))
        return self

    def log(self, data, **kwargs):
        self.calls.append(("log", data))

    def finish(self):
        self.calls.append(("finish", None))


def test_tensorboard_and_wandb_get_the_runs_numbers(tmp_path, monkeypatch):
    fake = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    result = run.train("ppo", SMALL, run.RunOptions(num_seeds=2, runs_dir=str(tmp_path), run_name="tb", progress=False,
                                                     plot=False, tensorboard=True, wandb="proj"))
    events = read_events(os.path.join(result.run_dir, "tensorboard"))
    per_seed = result.eval_returns.mean(axis=-1)  # [seeds, evals]
    for s in range(2):
        steps, values = zip(*events[f"eval_return/seed_{s}"])
        assert list(steps) == list(result.env_steps)
        np.testing.assert_allclose(values, per_seed[s], rtol=1e-6)
    np.testing.assert_allclose([v for _, v in events["eval_return/mean"]], per_seed.mean(axis=0), rtol=1e-6)
    assert "perf/env_steps_per_second" in events
    assert any(tag.endswith("/seed_1") and not tag.startswith("eval_return") for tag in events)  # a metric
    kinds = [c[0] for c in fake.calls]
    assert kinds[0] == "init" and kinds[-1] == "finish" and kinds.count("log") == len(result.env_steps)
    assert fake.calls[0][1]["project"] == "proj" and fake.calls[0][1]["config"]["num_envs"] == 4
    logged = [c[1] for c in fake.calls if c[0] == "log"]
    assert [d["env_steps"] for d in logged] == list(result.env_steps)
    assert logged[-1]["eval_return/seed_0"] == pytest.approx(per_seed[0, -1], rel=1e-6)


def test_wandb_missing_is_refused_before_anything_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` raises ImportError
    code = cli.main(["train", "ppo", "--env", "CartPole-v1", "--runs-dir", str(tmp_path / "runs"), "--wandb", "p"])
    err = capsys.readouterr().err
    assert code == 2 and "needs the wandb package" in err and "purerl[wandb]" in err
    assert not (tmp_path / "runs").exists()
