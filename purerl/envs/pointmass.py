"""A 2-D point mass: the small environment in which skills can be seen (DIAYN, ASE, PCGrad).

The point lives in the square [−1, 1]²; it starts at `start` (default the centre, plus
uniform noise of ±`start_noise`); the action a ∈ [−1, 1]² is a velocity, and one step moves
the point by `dt`·a (clipped to the square). The observation is the position (x, y).
Episodes end only by the time limit `max_steps` (truncated, never terminal).

| name               | walls | reward                                              |
|--------------------|-------|-----------------------------------------------------|
| point/open         | none  | 0 (skills are learned without a task reward)        |
| point/walls        | yes   | 0                                                   |
| point/goal         | none  | 1 on every step that ends within `goal_radius` of `goal`, else 0; with `reward="dense"`: −‖p − goal‖ |
| point/goal-walls   | yes   | the same, with walls                                |

Walls are axis-aligned rectangles (x_lo, y_lo, x_hi, y_hi), `WALLS` by default: a move that
would end inside one is not made (the point stays where it was). Options of `make` (all
variants): `max_steps`, `dt`, `start`, `start_noise`, `goal`, `goal_radius`, `reward` ("sparse" or
"dense"), `walls`.

`render_trajectories(positions, path)` draws trajectories (one colour each) to a PNG.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from purerl.envs.names import POINT_ENVS
from purerl.envs.spaces import Box

# two walls leaving a gap through the middle: x ∈ [−0.05, 0.05], y ≥ 0.3 or y ≤ −0.3
WALLS = ((-0.05, 0.3, 0.05, 1.0), (-0.05, -1.0, 0.05, -0.3))
DEFAULTS = dict(max_steps=50, dt=0.1, start=(0.0, 0.0), start_noise=0.05, goal=(0.7, 0.7), goal_radius=0.2,
                reward="sparse")


@struct.dataclass
class PointState:
    position: jax.Array  # [2]
    time: jax.Array  # int32


def inside(position: jax.Array, walls) -> jax.Array:
    """Whether `position` ([..., 2]) lies inside any of the rectangles `walls`."""
    if not walls:
        return jnp.zeros(position.shape[:-1], bool)
    w = jnp.asarray(walls, jnp.float32)  # [W, 4]
    x, y = position[..., None, 0], position[..., None, 1]
    hit = (x >= w[:, 0]) & (y >= w[:, 1]) & (x <= w[:, 2]) & (y <= w[:, 3])
    return jnp.any(hit, axis=-1)


class PointMassBackend:
    def __init__(self, kind: str, **options):
        if kind not in POINT_ENVS:
            raise ValueError(f"point/{kind} is not a point-mass environment; available: "
                             f"{', '.join('point/' + k for k in POINT_ENVS)}")
        unknown = sorted(set(options) - set(DEFAULTS) - {"walls"})
        if unknown:
            raise ValueError(f"make('point/{kind}'): unknown option(s) {unknown}; options are "
                             f"{sorted(DEFAULTS) + ['walls']} (plus normalize_obs, rescale_actions, obs_clip)")
        values = {**DEFAULTS, **options}
        self.kind = kind
        self.name = f"point/{kind}"
        self.task = kind.startswith("goal")
        self.walls = tuple(tuple(float(v) for v in w) for w in options.get("walls", WALLS if "walls" in kind else ()))
        self.max_episode_steps = int(values["max_steps"])
        self.dt = float(values["dt"])
        self.start = tuple(float(v) for v in values["start"])
        self.start_noise = float(values["start_noise"])
        self.goal = tuple(float(v) for v in values["goal"])
        self.goal_radius = float(values["goal_radius"])
        self.reward_kind = values["reward"]
        if self.reward_kind not in ("sparse", "dense"):
            raise ValueError(f"make({self.name!r}): reward={self.reward_kind!r} is invalid; allowed: 'sparse', 'dense'")
        if self.max_episode_steps < 1 or self.dt <= 0 or self.start_noise < 0 or self.goal_radius <= 0:
            raise ValueError(f"make({self.name!r}): max_steps ≥ 1, dt > 0, start_noise ≥ 0 and goal_radius > 0 "
                             f"are required, got {values}")
        self.observation_space = Box.make(-1.0, 1.0, (2,))
        self.action_space = Box.make(-1.0, 1.0, (2,))

    def reset(self, key):
        noise = jax.random.uniform(key, (2,), minval=-self.start_noise, maxval=self.start_noise)
        position = jnp.clip(jnp.asarray(self.start, jnp.float32) + noise, -1.0, 1.0)
        return PointState(position=position, time=jnp.zeros((), jnp.int32)), position

    def reward(self, position: jax.Array) -> jax.Array:
        """The task reward of arriving at `position` (goal variants): 1 within `goal_radius` of the goal,
        or −‖position − goal‖ with `reward="dense"`."""
        if not self.task:
            return jnp.zeros(position.shape[:-1], jnp.float32)
        distance = jnp.linalg.norm(position - jnp.asarray(self.goal, jnp.float32), axis=-1)
        if self.reward_kind == "dense":
            return -distance
        return (distance < self.goal_radius).astype(jnp.float32)

    def step(self, key, state: PointState, action):
        velocity = jnp.clip(jnp.asarray(action, jnp.float32).reshape(2), -1.0, 1.0)
        moved = jnp.clip(state.position + self.dt * velocity, -1.0, 1.0)
        position = jnp.where(inside(moved, self.walls), state.position, moved)
        time = state.time + 1
        truncated = time >= self.max_episode_steps
        reset_state, _ = self.reset(key)
        new = jax.tree.map(lambda r, n: jnp.where(truncated, r, n), reset_state, PointState(position, time))
        return new, new.position, self.reward(position), jnp.asarray(False), truncated, position


def render_trajectories(positions, path, walls=(), goal=None, goal_radius=None, labels=None, title=None):
    """Draw trajectories `positions` [K, T, 2] (one colour each, a dot at the end) in the square
    [−1, 1]² with `walls` and an optional goal disc; save a PNG at `path`. Returns `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    positions = np.asarray(positions)
    fig, ax = plt.subplots(figsize=(4, 4))
    colours = plt.get_cmap("tab10" if len(positions) <= 10 else "tab20")
    for x0, y0, x1, y1 in walls:
        ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, color="0.3"))
    if goal is not None:
        ax.add_patch(plt.Circle(goal, goal_radius or 0.05, color="gold", alpha=0.5))
    for k, trajectory in enumerate(positions):
        colour = colours(k % colours.N)
        ax.plot(trajectory[:, 0], trajectory[:, 1], color=colour, lw=1.2,
                label=None if labels is None else labels[k])
        ax.plot(trajectory[-1, 0], trajectory[-1, 1], "o", color=colour, ms=4)
    ax.set_xlim(-1, 1)
    ax.set_ylim(-1, 1)
    ax.set_aspect("equal")
    if title:
        ax.set_title(title, fontsize=9)
    if labels is not None:
        ax.legend(fontsize=6, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
