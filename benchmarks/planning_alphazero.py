"""AlphaZero part of benchmarks/planning.py: the CartPole-v1 learning curve (PUCT search with the
true environment as the model) and tic-tac-toe win/draw/loss rates against a uniformly random
legal player while self-play trains (Gumbel search), both over vmapped seeds.

    python benchmarks/planning_alphazero.py [--quick] [--out DIR]

`run(out_dir, quick)` returns a JSON-able dict and writes alphazero_cartpole.png and
alphazero_tic_tac_toe.png into `out_dir`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _train(config, seeds: int, base: int = 0):
    import jax

    from purerl.algos import alphazero

    keys = jax.random.split(jax.random.PRNGKey(base), seeds)
    start = time.time()
    _, metrics, returns = jax.jit(jax.vmap(alphazero.train, in_axes=(None, 0)))(config, keys)
    returns = np.asarray(returns)  # [seeds, evals, episodes]
    return returns, jax.tree.map(np.asarray, metrics), time.time() - start


def _eval_steps(config, num_evals: int):
    return [min((i + 1) * config.eval_every, config.num_updates) * config.env_steps_per_update
            for i in range(num_evals)]


def cartpole(quick: bool, seeds: int) -> dict:
    from purerl.algos import alphazero

    total = 16_384 if quick else 65_536
    config = alphazero.Config.for_env("CartPole-v1", total_timesteps=total, eval_every=total // 256 // 4,
                                      eval_episodes=8)
    returns, _, seconds = _train(config, seeds)
    curve = returns.mean(axis=2)  # [seeds, evals]
    return {"env": "CartPole-v1", "search": config.search, "num_simulations": config.num_simulations,
            "seeds": seeds, "env_steps": _eval_steps(config, curve.shape[1]),
            "eval_return_mean": curve.mean(0).tolist(), "eval_return_per_seed": curve.tolist(),
            "final_return_mean": float(curve[:, -1].mean()), "seconds_with_compile": seconds}


def tic_tac_toe(quick: bool, seeds: int) -> dict:
    from purerl.algos import alphazero

    updates = 40 if quick else 80
    config = alphazero.Config.for_env("pgx/tic_tac_toe", total_timesteps=16 * 9 * updates, eval_every=10,
                                      eval_episodes=64)
    returns, _, seconds = _train(config, seeds)
    first, second = returns[:, :, 0::2], returns[:, :, 1::2]  # the agent moves first in even games

    def rates(outcomes):
        return {"win": (outcomes == 1).mean(axis=(0, 2)).tolist(), "draw": (outcomes == 0).mean(axis=(0, 2)).tolist(),
                "loss": (outcomes == -1).mean(axis=(0, 2)).tolist()}

    return {"env": "pgx/tic_tac_toe", "search": config.search, "num_simulations": config.num_simulations,
            "seeds": seeds, "games_per_eval_per_seed": config.eval_episodes, "opponent": "uniform random legal",
            "env_steps": _eval_steps(config, returns.shape[1]), "as_first_player": rates(first),
            "as_second_player": rates(second), "overall": rates(returns), "seconds_with_compile": seconds}


def _plot(result: dict, out_dir: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    cp = result["cartpole"]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for curve in cp["eval_return_per_seed"]:
        ax.plot(cp["env_steps"], curve, color="C0", alpha=0.3)
    ax.plot(cp["env_steps"], cp["eval_return_mean"], color="C0", lw=2, label=f"mean of {cp['seeds']} seeds")
    ax.set(xlabel="environment steps", ylabel="evaluation return (search, greedy)",
           title=f"AlphaZero ({cp['search']}, {cp['num_simulations']} sims) on CartPole-v1")
    ax.legend()
    fig.tight_layout()
    paths.append(os.path.join(out_dir, "alphazero_cartpole.png"))
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    tt = result["tic_tac_toe"]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, style in (("as_first_player", "-"), ("as_second_player", "--")):
        ax.plot(tt["env_steps"], tt[name]["win"], style, color="C2", label=f"win, {name.replace('_', ' ')}")
        ax.plot(tt["env_steps"], tt[name]["loss"], style, color="C3", label=f"loss, {name.replace('_', ' ')}")
    ax.set(xlabel="self-play positions", ylabel="rate vs random player", ylim=(0, 1),
           title=f"AlphaZero ({tt['search']}, {tt['num_simulations']} sims) tic-tac-toe")
    ax.legend(fontsize=7)
    fig.tight_layout()
    paths.append(os.path.join(out_dir, "alphazero_tic_tac_toe.png"))
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    return paths


def run(out_dir: str, quick: bool = False) -> dict:
    import jax

    os.makedirs(out_dir, exist_ok=True)
    result = {"hardware": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
                          f"jax {jax.__version__} on {jax.devices()[0].platform}",
              "cartpole": cartpole(quick, seeds=2 if quick else 4),
              "tic_tac_toe": tic_tac_toe(quick, seeds=2)}
    result["pictures"] = [os.path.basename(p) for p in _plot(result, out_dir)]
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    args = parser.parse_args()
    print(json.dumps(run(args.out, args.quick), indent=1))
