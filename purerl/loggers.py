"""Host-side scalar logging of a run: TensorBoard event files (tensorboardX) and Weights & Biases.

    purerl train ppo --env CartPole-v1 --tensorboard          # runs/<run>/tensorboard/, then
    tensorboard --logdir runs/<run>/tensorboard
    purerl train ppo --env CartPole-v1 --wandb my-project     # needs `pip install 'purerl[wandb]'`

After every evaluation block the runner hands `Loggers.log_block` the block's numbers (host
arrays; nothing here runs inside the compiled program). At env step t it writes

    eval_return/mean, eval_return/iqm       over the seeds with a finite return
    eval_return/seed_<i>                    each seed (mean over its evaluation episodes)
    <metric>/mean, <metric>/seed_<i>        each training metric (its mean over the block)
    perf/env_steps_per_second               of the block, all seeds together

For a sweep the per-row tags name the grid point: `eval_return/learning_rate=0.001,seed_3`.
"""

from __future__ import annotations

import numpy as np


def check_wandb(project: str | None) -> None:
    """Refuse `--wandb` before anything compiles when the package is missing."""
    if project is None:
        return
    try:
        import wandb  # noqa: F401
    except ImportError:
        raise ValueError(f"RunOptions.wandb={project!r} needs the wandb package, which is not installed: "
                         "pip install 'purerl[wandb]' (or wandb), or drop --wandb") from None


class Loggers:
    """The run's loggers (none, TensorBoard, W&B or both)."""

    def __init__(self, run_dir: str, tensorboard: bool, wandb_project: str | None, meta: dict, row_names: list):
        import os

        self.row_names = row_names
        self.tb = self.wandb = None
        if tensorboard:
            from tensorboardX import SummaryWriter

            self.tb = SummaryWriter(logdir=os.path.join(run_dir, "tensorboard"))
        if wandb_project is not None:
            import wandb

            name = os.path.basename(os.path.normpath(run_dir))
            self.wandb = wandb.init(project=wandb_project, name=name, id=name.replace("/", "_"), resume="allow",
                                    dir=run_dir, config=meta)

    @property
    def active(self) -> bool:
        return self.tb is not None or self.wandb is not None

    def log_block(self, step: int, rows, returns: np.ndarray, metrics: dict, steps_per_second: float) -> None:
        """`rows`: the seed-axis rows of this block; `returns` [rows, episodes]; `metrics` {name: [rows]}."""
        from purerl.report import iqm

        scalars = {}
        per_row = np.asarray(returns, np.float64).mean(axis=-1)
        finite = per_row[np.isfinite(per_row)]
        if finite.size:
            scalars["eval_return/mean"] = float(finite.mean())
            scalars["eval_return/iqm"] = iqm(finite)
        for name, values in [("eval_return", per_row)] + [(k, np.asarray(v, np.float64)) for k, v in metrics.items()]:
            if name != "eval_return":
                ok = values[np.isfinite(values)]
                if ok.size:
                    scalars[f"{name}/mean"] = float(ok.mean())
            for row, value in zip(rows, values):
                if np.isfinite(value):
                    scalars[f"{name}/{self.row_names[row]}"] = float(value)
        scalars["perf/env_steps_per_second"] = float(steps_per_second)
        if self.tb is not None:
            for tag, value in scalars.items():
                self.tb.add_scalar(tag, value, global_step=step)
            self.tb.flush()
        if self.wandb is not None:
            self.wandb.log({**scalars, "env_steps": step})  # env_steps is the x-axis (chunks restart it)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()
