"""Offline datasets: made by purerl with the D4RL recipe, stored in the Minari format.

A dataset in memory is a `buffers.Transition` whose leaves have a leading axis of N
transitions (`obs, action, reward, terminated, truncated, next_obs`), plus host-side
metadata (`Dataset.info`). Transitions are stored episode after episode: within an
episode `next_obs[t] == obs[t + 1]`, and an episode's last transition is terminated
(a true terminal: no bootstrap) or truncated (a time limit, or the end of collection:
bootstrap from `next_obs`). Actions are in the agent's space: integers for discrete
actions, [−1, 1]^|A| for continuous ones (purerl's environments rescale them).

Kinds (Fu et al. 2020, "D4RL", arXiv:2004.07219, §4):

    random          uniformly random actions
    medium          a policy stopped at about a third of the expert's return (a run's checkpoint
                    after `--stop-after`), acting stochastically
    expert          a fully trained policy, acting stochastically
    medium-replay   the replay buffer of the medium run: everything it collected up to then
    medium-expert   medium and expert concatenated

Normalized score (D4RL eq.): 100 · (R − R_random) / (R_expert − R_random), with R_random the
mean return of uniformly random actions and R_expert the expert's mean (deterministic)
evaluation return, both measured at collection and stored as Minari's `ref_min_score` and
`ref_max_score`.

On disk a dataset is a Minari dataset directory (`minari.MinariDataset(path)` reads it;
`path/data/main_data.hdf5` and `path/data/metadata.json`). purerl's own metadata (env, kind,
source run and config, seed, package versions, content hash) is the JSON string under the
metadata key `purerl`; `load` checks the hash. Any Minari dataset with flat Box observations
and a Discrete or Box action space loads the same way (pass `env`; its hash is not checked).

    purerl collect --run runs/sac-full --kind expert --steps 100000 --out data/pendulum-expert
    dataset = datasets.load("data/pendulum-expert")
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from purerl import buffers, envs
from purerl.report import default_mode

KINDS = ("random", "medium", "medium-replay", "expert", "medium-expert")
FIELDS = ("obs", "action", "reward", "terminated", "truncated", "next_obs")


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Transitions (leaves [N, ...], numpy) and their metadata (a JSON-able dict with at least
    `env`, `kind`, `random_return`, `expert_return`)."""

    transitions: buffers.Transition
    info: dict

    @property
    def size(self) -> int:
        return int(self.transitions.reward.shape[0])

    @property
    def env(self) -> str | None:
        return self.info.get("env")

    def normalized_score(self, returns):
        """100 · (R − R_random) / (R_expert − R_random) (D4RL)."""
        return normalized_score(returns, self.info["random_return"], self.info["expert_return"])


def normalized_score(returns, random_return: float, expert_return: float):
    """100 · (R − R_random) / (R_expert − R_random) (D4RL)."""
    return 100.0 * (np.asarray(returns, np.float64) - random_return) / (expert_return - random_return)


# ----------------------------------------------------------------------------- in the compiled program
OBS_STD_EPS = 1e-3  # added to the dataset's observation std (CORL, TD3+BC)


def observation_stats(obs: jax.Array, normalize: bool = True) -> tuple[jax.Array, jax.Array]:
    """(mean, std + 1e-3) per dimension of a dataset's observations [N, *obs_shape], the state
    normalization of TD3+BC (Fujimoto & Gu 2021, §5) and CORL; (0, 1) when not `normalize`."""
    if not normalize:
        return jnp.zeros(obs.shape[1:], jnp.float32), jnp.ones(obs.shape[1:], jnp.float32)
    obs = jnp.asarray(obs, jnp.float32)
    return obs.mean(axis=0), obs.std(axis=0) + OBS_STD_EPS


def normalize_obs(obs: jax.Array, mean: jax.Array, std: jax.Array) -> jax.Array:
    """(o − mean) / std with `observation_stats`' mean and std."""
    return (obs - mean) / std


def sample(transitions: buffers.Transition, key: jax.Array, batch_size: int) -> buffers.Transition:
    """`batch_size` transitions drawn uniformly with replacement (jittable; the dataset is read,
    never copied)."""
    size = transitions.reward.shape[0]
    index = jax.random.randint(key, (batch_size,), 0, size)
    return jax.tree.map(lambda x: jnp.asarray(x)[index], transitions)


def rollout(env: envs.Environment, policy: Callable, key: jax.Array, num_envs: int, steps_per_env: int,
            obs_stats=None) -> buffers.Transition:
    """`num_envs × steps_per_env` transitions of `policy(obs, key) -> actions` (batched), with raw
    observations, ordered environment after environment (so episodes are contiguous); each
    environment's last transition is marked truncated unless it is terminal (the collection
    stopped there). `obs_stats`: the policy's frozen observation-normalization statistics."""
    reset_key, run_key = jax.random.split(key)
    state, obs = env.reset(reset_key, num_envs, obs_stats)

    def step(carry, step_key):
        state, obs = carry
        act_key, env_key = jax.random.split(step_key)
        action = policy(obs, act_key)
        raw_obs = state.raw_obs
        state, ts = env.step(env_key, state, action, update_stats=False)
        return (state, ts.obs), buffers.Transition(raw_obs, action, ts.reward, ts.terminated, ts.truncated,
                                                   ts.raw_final_obs)

    _, data = jax.lax.scan(step, (state, obs), jax.random.split(run_key, steps_per_env))
    return end_streams(data)


def end_streams(data: buffers.Transition) -> buffers.Transition:
    """Time-major transitions `[T, num_envs, ...]` → `[num_envs · T, ...]`, environment after
    environment, each environment's last transition truncated unless terminal."""
    last = jnp.arange(data.reward.shape[0])[:, None] == data.reward.shape[0] - 1
    data = data.replace(truncated=data.truncated | (last & ~data.terminated))
    data = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1).reshape((-1,) + x.shape[2:]), data)
    # Within an episode s′ is the next transition's s exactly (an environment may compute the two
    # with different roundings): the Minari format stores one observation sequence per episode.
    ends = (data.terminated | data.truncated).reshape((-1,) + (1,) * (data.obs.ndim - 1))
    return data.replace(next_obs=jnp.where(ends, data.next_obs, jnp.roll(data.obs, -1, axis=0)))


def random_policy(env: envs.Environment) -> Callable:
    """Uniformly random actions for `env` (the agent's action space)."""
    space = env.action_space

    def policy(obs, key):
        if isinstance(space, envs.Discrete):
            return jax.random.randint(key, obs.shape[:1], 0, space.n)
        return jax.random.uniform(key, obs.shape[:1] + space.shape, minval=space.low, maxval=space.high)

    return policy


def mean_return(env: envs.Environment, policy: Callable, key: jax.Array, episodes: int, obs_stats=None) -> float:
    """Mean undiscounted return of `episodes` episodes of `policy` (the evaluation protocol)."""
    from purerl.evaluation import evaluate

    returns = jax.jit(lambda k: evaluate(env, policy, k, episodes, obs_stats))(key)
    return float(np.mean(np.asarray(returns)))


# ----------------------------------------------------------------------------- checks
def to_host(transitions: buffers.Transition) -> buffers.Transition:
    """Canonical numpy dtypes: float32 observations, rewards and continuous actions, int32
    discrete actions, bool flags."""
    def cast(name, x):
        x = np.asarray(x)
        if name in ("terminated", "truncated"):
            return x.astype(bool)
        if name == "action" and np.issubdtype(x.dtype, np.integer):
            return x.astype(np.int32)
        return x.astype(np.float32)

    return buffers.Transition(**{name: cast(name, getattr(transitions, name)) for name in FIELDS})


def content_hash(transitions: buffers.Transition) -> str:
    """sha256 over every field's dtype, shape and bytes (canonical dtypes), in `FIELDS` order."""
    digest = hashlib.sha256()
    host = to_host(transitions)
    for name in FIELDS:
        x = np.ascontiguousarray(getattr(host, name))
        digest.update(f"{name}:{x.dtype.str}:{x.shape};".encode())
        digest.update(x.tobytes())
    return digest.hexdigest()


def check_shapes(transitions: buffers.Transition, env: envs.Environment) -> None:
    """Raise a ValueError when the observation or action shapes of `transitions` (a dataset
    or its abstract shapes, at trace time) do not match `env`'s."""
    if tuple(transitions.obs.shape[1:]) != tuple(env.obs_shape):
        raise ValueError(f"dataset observations of shape {tuple(transitions.obs.shape[1:])} do not match "
                         f"Config.env={env.name!r}'s {tuple(env.obs_shape)}")
    expected = () if env.discrete else tuple(env.action_space.shape)
    if tuple(transitions.action.shape[1:]) != expected:
        raise ValueError(f"dataset actions of shape {tuple(transitions.action.shape[1:])} do not match "
                         f"Config.env={env.name!r}'s action space {env.action_space}")


def check_dataset(dataset: Dataset, env: envs.Environment, batch_size: int | None = None,
                  where: str = "dataset") -> None:
    """Raise a ValueError, naming `where`, when the dataset does not fit `env` (observation
    shape, action space) or holds fewer transitions than `batch_size`."""
    t = dataset.transitions
    n = t.reward.shape[0]
    if dataset.env and dataset.env != env.name:
        raise ValueError(f"{where}: collected on {dataset.env!r}, but the config's env is {env.name!r}")
    for name in FIELDS:
        if getattr(t, name).shape[:1] != (n,):
            raise ValueError(f"{where}: field {name!r} has {getattr(t, name).shape[0]} rows, reward has {n}")
    for name in ("obs", "next_obs"):
        if tuple(getattr(t, name).shape[1:]) != tuple(env.obs_shape):
            raise ValueError(f"{where}: observations of shape {tuple(getattr(t, name).shape[1:])} do not match "
                             f"{env.name}'s {tuple(env.obs_shape)}")
    space = env.action_space
    action = np.asarray(t.action)
    if isinstance(space, envs.Discrete):
        if action.shape[1:] != () or not np.issubdtype(action.dtype, np.integer):
            raise ValueError(f"{where}: actions of shape {action.shape[1:]} and dtype {action.dtype} do not match "
                             f"{env.name}'s discrete action space ({space.n} actions: integer scalars)")
        if n and (action.min() < 0 or action.max() >= space.n):
            raise ValueError(f"{where}: actions outside 0…{space.n - 1}, {env.name}'s discrete action space")
    elif tuple(action.shape[1:]) != tuple(space.shape) or not np.issubdtype(action.dtype, np.floating):
        raise ValueError(f"{where}: actions of shape {action.shape[1:]} and dtype {action.dtype} do not match "
                         f"{env.name}'s continuous action space {space}")
    if batch_size is not None and n < batch_size:
        raise ValueError(f"{where}: {n} transitions are fewer than batch_size={batch_size}")


# ----------------------------------------------------------------------------- Minari format
def _gym_space(space):
    import gymnasium as gym

    if isinstance(space, envs.Discrete):
        return gym.spaces.Discrete(space.n)
    if isinstance(space, envs.Box):
        return gym.spaces.Box(space.low, space.high, space.shape, np.float32)
    return gym.spaces.Box(-np.inf, np.inf, tuple(space), np.float32)  # an observation shape


def episodes(transitions: buffers.Transition) -> list[slice]:
    """The episodes of episode-ordered transitions: a slice ending at every terminated or
    truncated transition (and one at the end, if the last transition is neither)."""
    ends = np.flatnonzero(np.asarray(transitions.terminated) | np.asarray(transitions.truncated)) + 1
    n = int(np.asarray(transitions.reward).shape[0])
    if not len(ends) or ends[-1] != n:
        ends = np.append(ends, n)
    starts = np.concatenate([[0], ends[:-1]])
    return [slice(int(s), int(e)) for s, e in zip(starts, ends)]


def save(dataset: Dataset, path: str) -> str:
    """Write `dataset` as a Minari dataset directory at `path` (refused if one is there).
    Written to a temporary directory first and renamed: a failure leaves no partial dataset."""
    import shutil
    import tempfile

    import minari
    from minari.data_collector.episode_buffer import EpisodeBuffer
    from minari.dataset.minari_storage import MinariStorage

    if os.path.exists(path):
        raise ValueError(f"dataset path {path!r} exists already; choose another --out")
    env = envs.make(dataset.env)
    check_dataset(dataset, env)
    host = to_host(dataset.transitions)
    info = {**dataset.info, "content_hash": content_hash(host)}
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".partial-", dir=parent)
    try:
        default_mode(tmp)
        os.makedirs(os.path.join(tmp, "data"))
        storage = MinariStorage.new(os.path.join(tmp, "data"), observation_space=_gym_space(env.obs_shape),
                                    action_space=_gym_space(env.action_space))
        storage.update_metadata({
            "dataset_id": f"purerl/{dataset.env.replace('/', '_')}-{info['kind']}-v0",
            "minari_version": minari.__version__,
            "ref_min_score": float(info["random_return"]),
            "ref_max_score": float(info["expert_return"]),
            "algorithm_name": info.get("algorithm") or "random",
            "author": {"purerl"},
            "description": f"purerl {info['kind']} dataset on {dataset.env} (D4RL recipe); see the 'purerl' key",
            "purerl": json.dumps(info),
        })
        buffer = []
        for i, ep in enumerate(episodes(host)):
            observations = np.concatenate([host.obs[ep], host.next_obs[ep][-1:]])
            buffer.append(EpisodeBuffer(id=i, observations=observations, actions=host.action[ep],
                                        rewards=host.reward[ep], terminations=host.terminated[ep],
                                        truncations=host.truncated[ep]))
        storage.update_episodes(buffer)
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def load(path: str, env: str | None = None) -> Dataset:
    """Load a Minari dataset directory (`path`, or `path/data`) into a `Dataset`. A purerl
    dataset's content hash is checked; another Minari dataset needs `env` (purerl's name of
    the environment it was collected on) and its `ref_min_score`/`ref_max_score` for normalized
    scores."""
    import minari

    data_dir = os.path.join(path, "data") if os.path.isdir(os.path.join(path, "data")) else path
    if not os.path.exists(os.path.join(data_dir, "metadata.json")):
        raise ValueError(f"dataset {path!r}: no Minari dataset there (expected {path}/data/metadata.json)")
    try:
        data = minari.MinariDataset(data_dir)
        metadata = data.storage.metadata
        parts = {name: [] for name in FIELDS}
        for ep in data.iterate_episodes():
            obs = np.asarray(ep.observations)
            if not isinstance(obs, np.ndarray) or obs.dtype == object:
                raise ValueError("observations are not a flat array (dict or tuple spaces are not supported)")
            parts["obs"].append(obs[:-1])
            parts["next_obs"].append(obs[1:])
            parts["action"].append(np.asarray(ep.actions))
            parts["reward"].append(np.asarray(ep.rewards))
            parts["terminated"].append(np.asarray(ep.terminations))
            parts["truncated"].append(np.asarray(ep.truncations))
    except ValueError as error:
        raise ValueError(f"dataset {path!r} cannot be read: {error}") from error
    except Exception as error:  # h5py/OS errors of a corrupt file
        raise ValueError(f"dataset {path!r} cannot be read ({type(error).__name__}: {error})") from error
    if not parts["reward"]:
        raise ValueError(f"dataset {path!r} holds no episodes")
    transitions = to_host(buffers.Transition(**{k: np.concatenate(v) for k, v in parts.items()}))
    info = json.loads(metadata["purerl"]) if "purerl" in metadata else {
        "kind": "external", "dataset_id": metadata.get("dataset_id"),
        "random_return": metadata.get("ref_min_score"), "expert_return": metadata.get("ref_max_score")}
    digest = content_hash(transitions)
    if "content_hash" in info and digest != info["content_hash"]:
        raise ValueError(f"dataset {path!r} is corrupt: its content hash does not match the one recorded at "
                         "collection")
    info["content_hash"] = digest
    if env is not None:
        if info.get("env") not in (None, env):
            raise ValueError(f"dataset {path!r} was collected on {info['env']!r}, not {env!r}")
        info = {**info, "env": env}
    if not info.get("env"):
        raise ValueError(f"dataset {path!r} names no purerl environment: pass env=")
    dataset = Dataset(transitions, info)
    check_dataset(dataset, envs.make(info["env"]), where=f"dataset {path!r}")
    return dataset


def read_info(path: str) -> dict:
    """purerl's metadata of the dataset at `path` without loading its transitions ({} when it
    has none)."""
    data_dir = os.path.join(path, "data") if os.path.isdir(os.path.join(path, "data")) else path
    try:
        with open(os.path.join(data_dir, "metadata.json")) as f:
            metadata = json.load(f)
    except (OSError, ValueError):
        return {}
    return json.loads(metadata["purerl"]) if "purerl" in metadata else {}


def concatenate(*parts: Dataset, kind: str | None = None) -> Dataset:
    """Datasets of one environment, one after another (medium-expert = medium + expert)."""
    env_names = {p.env for p in parts}
    if len(env_names) != 1:
        raise ValueError(f"cannot concatenate datasets of different environments: {sorted(env_names)}")
    transitions = jax.tree.map(lambda *xs: np.concatenate(xs), *[to_host(p.transitions) for p in parts])
    info = {**parts[-1].info, "kind": kind or "+".join(p.info["kind"] for p in parts),
            "sources": [p.info for p in parts]}
    return Dataset(transitions, info)


# ----------------------------------------------------------------------------- from runs
def policy_params(state):
    """The acting parameters in an online algorithm's train state (what its `act` takes)."""
    for path in (("agent", "actor_params"), ("actor_params",), ("policy_params",), ("params",)):
        node = state
        try:
            for name in path:
                node = getattr(node, name)
            return node
        except AttributeError:
            continue
    raise ValueError(f"{type(state).__name__} has no policy parameters purerl knows")


def takes_dataset(module) -> bool:
    """Whether `module.init`/`update` take a dataset: an offline algorithm's transitions
    (`OFFLINE`) or an imitation algorithm's demonstrations (`DEMONSTRATIONS`)."""
    return bool(getattr(module, "OFFLINE", False) or getattr(module, "DEMONSTRATIONS", False))


def abstract_transitions(env: envs.Environment, size: int) -> buffers.Transition:
    """The shapes and canonical dtypes (`to_host`) of a dataset of `size` transitions in `env`."""
    obs = jax.ShapeDtypeStruct((size,) + tuple(env.obs_shape), jnp.float32)
    action = jax.ShapeDtypeStruct((size,), jnp.int32) if env.discrete else \
        jax.ShapeDtypeStruct((size,) + tuple(env.action_space.shape), jnp.float32)
    flag = jax.ShapeDtypeStruct((size,), jnp.bool_)
    return buffers.Transition(obs=obs, action=action, reward=jax.ShapeDtypeStruct((size,), jnp.float32),
                              terminated=flag, truncated=flag, next_obs=obs)


def abstract_init(module, config, num_seeds: int | None = None, dataset_size: int = 1):
    """`jax.eval_shape` of `module.init(config, key)` (vmapped over `num_seeds` keys when given).
    An algorithm that takes a dataset (`takes_dataset`) gets the shapes of one of `dataset_size`
    transitions: a train state's shapes may depend on it (DAgger's aggregate), its parameters' do not."""
    extra = (abstract_transitions(envs.make(config.env), dataset_size),) if takes_dataset(module) else ()
    init = functools.partial(module.init, config)
    key = jax.ShapeDtypeStruct((2,), jnp.uint32)
    if num_seeds is None:
        return jax.eval_shape(init, key, *extra)
    batched = jax.vmap(init, in_axes=(0,) + (None,) * len(extra))
    return jax.eval_shape(batched, jax.ShapeDtypeStruct((num_seeds, 2), jnp.uint32), *extra)


def acting(module, config, state):
    """(the parameters `module.act` takes, the observation statistics the environment must
    normalize with before `act`, or None). An offline algorithm's `policy(state)` (or
    `policy(config, state)`) and DAgger's learner carry their dataset's statistics and normalize
    inside `act`; an online policy with `normalize_obs` acts on observations normalized with the
    running statistics of its environments (GAIL, AIRL and apprenticeship: those of the PPO inside)."""
    import inspect

    policy = getattr(module, "policy", None)
    if getattr(module, "OFFLINE", False) and callable(policy):
        params = policy(state) if len(inspect.signature(policy).parameters) == 1 else policy(config, state)
    else:
        params = policy_params(state)
    if hasattr(params, "obs_mean") or not getattr(config, "normalize_obs", False):
        return params, None
    env_state = getattr(state, "env_state", None)
    if env_state is None:
        env_state = state.policy.env_state
    return params, env_state.obs_stats


def load_run(run_dir: str, seed_index: int = 0):
    """(algorithm module, config, the train state of seed `seed_index`) from the latest
    checkpoint of the purerl run in `run_dir` (an offline or imitation run's dataset is not
    loaded: its size, in config.json, fixes the state's shapes)."""
    import orbax.checkpoint as ocp

    from purerl import algos
    from purerl.config import from_dict
    from purerl.run import checkpoint_tree, from_checkpoint_tree

    path = os.path.join(run_dir, "config.json")
    if not os.path.exists(path):
        raise ValueError(f"--run {run_dir!r}: no config.json there; not a purerl run directory")
    with open(path) as f:
        meta = json.load(f)
    module = algos.get(meta["algorithm"])
    config = from_dict(module.Config, meta["config"])
    num_seeds = int(meta["options"]["num_seeds"])
    if not 0 <= seed_index < num_seeds:
        raise ValueError(f"seed_index={seed_index} is invalid: the run has seeds 0…{num_seeds - 1}")
    size = int(meta.get("dataset", {}).get("transitions") or 0)
    if takes_dataset(module) and size < 1:
        raise ValueError(f"--run {run_dir!r}: its config.json records no dataset size (meta['dataset']"
                         "['transitions']), which the train state's shapes need")
    manager = ocp.CheckpointManager(os.path.abspath(os.path.join(run_dir, "checkpoints")))
    step = manager.latest_step()
    if step is None:
        raise ValueError(f"--run {run_dir!r} has no checkpoint yet")
    abstract = abstract_init(module, config, num_seeds, max(size, 1))
    target = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), abstract)
    restored = manager.restore(step, args=ocp.args.PyTreeRestore({"state": checkpoint_tree(target)},
                                                                  partial_restore=True))
    states = from_checkpoint_tree(restored["state"], target)
    state = jax.tree.map(lambda x: np.asarray(x)[seed_index], states)
    return module, config, state


def replay_transitions(state) -> buffers.Transition:
    """The transitions in a train state's replay buffer, oldest first, episode-ordered."""
    buffer = getattr(state, "buffer", None)
    if not isinstance(buffer, buffers.ReplayBuffer):
        raise ValueError("medium-replay needs an off-policy run (one with a replay buffer: dqn, sac, td3, ddpg)")
    filled, row = int(buffer.rows_filled), int(buffer.row)
    data = jax.tree.map(np.asarray, buffer.data)
    if filled < buffer.rows:
        data = jax.tree.map(lambda x: x[:filled], data)
    else:  # wrapped: oldest row first
        data = jax.tree.map(lambda x: np.concatenate([x[row:], x[:row]]), data)
    data = data.replace(obs=np.asarray(data.obs, np.float32),  # stored narrower for some environments
                        next_obs=np.asarray(data.next_obs, np.float32))
    return jax.tree.map(np.asarray, end_streams(data))


def collect(kind: str, steps: int, run: str | None = None, expert_run: str | None = None, env: str | None = None,
            seed: int = 0, seed_index: int = 0, num_envs: int = 16, reference_episodes: int = 100) -> Dataset:
    """A dataset of `kind` (see `KINDS`) with about `steps` transitions (exactly `steps` unless
    `medium-replay`, which is the whole buffer of `run`).

    `run`: the behaviour policy's run (medium, medium-replay; expert when `expert_run` is not
    given; medium-expert takes medium from `run` and expert from `expert_run`). `expert_run`:
    the run whose deterministic evaluation return is R_expert (default: `run`, for kind expert).
    `env` names the environment for `random` when no run is given."""
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is invalid; allowed: {', '.join(KINDS)}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps={steps!r} is invalid: must be an integer ≥ 1")
    if kind == "expert" and expert_run is None:
        expert_run = run
    if expert_run is None:
        raise ValueError(f"kind={kind!r} needs expert_run (--expert-run): the run that sets R_expert of the "
                         "normalized score")
    if kind not in ("random",) and run is None and kind != "expert":
        raise ValueError(f"kind={kind!r} needs run (--run): the behaviour policy's run")
    expert_module, expert_config, expert_state = load_run(expert_run, seed_index)
    env_name = expert_config.env
    if env is not None and env != env_name:
        raise ValueError(f"env={env!r} does not match the expert run's env {env_name!r}")
    environment = envs.make(env_name)
    key = jax.random.PRNGKey(seed)
    ref_key, rand_key, data_key = jax.random.split(key, 3)

    def run_policy(module, config, state, deterministic):
        params, obs_stats = acting(module, config, state)
        act = functools.partial(module.act, config, params, deterministic=deterministic)
        return (lambda obs, k: act(obs, k)), obs_stats

    expert_policy, expert_stats = run_policy(expert_module, expert_config, expert_state, True)
    run_env = envs.make(env_name, normalize_obs=expert_stats is not None)
    expert_return = mean_return(run_env, expert_policy, ref_key, reference_episodes, expert_stats)
    random_return = mean_return(environment, random_policy(environment), rand_key, reference_episodes)

    def from_run(run_dir, k):
        module, config, state = load_run(run_dir, seed_index)
        if config.env != env_name:
            raise ValueError(f"--run {run_dir!r} trains on {config.env!r}, the expert run on {env_name!r}")
        policy, stats = run_policy(module, config, state, False)
        behaviour_env = envs.make(env_name, normalize_obs=stats is not None)
        per_env = -(-steps // num_envs)
        data = jax.jit(lambda kk: rollout(behaviour_env, policy, kk, num_envs, per_env, stats))(k)
        return jax.tree.map(lambda x: np.asarray(x)[:steps], data), module, config

    source = {}
    if kind == "random":
        per_env = -(-steps // num_envs)
        data = jax.jit(lambda k: rollout(environment, random_policy(environment), k, num_envs, per_env))(data_key)
        transitions = jax.tree.map(lambda x: np.asarray(x)[:steps], data)
    elif kind == "medium-replay":
        module, config, state = load_run(run, seed_index)
        transitions = replay_transitions(state)
        source = {"run": os.path.abspath(run), "algorithm": module.__name__.rsplit(".", 1)[-1]}
    elif kind == "medium-expert":
        medium, module, config = from_run(run, data_key)
        expert, _, _ = from_run(expert_run, jax.random.fold_in(data_key, 1))
        transitions = jax.tree.map(lambda a, b: np.concatenate([a, b]), medium, expert)
        source = {"run": os.path.abspath(run), "expert_run": os.path.abspath(expert_run)}
    else:
        transitions, module, config = from_run(run if kind == "medium" else (run or expert_run), data_key)
        source = {"run": os.path.abspath(run or expert_run), "algorithm": module.__name__.rsplit(".", 1)[-1]}
    from purerl.config import to_dict
    from purerl.run import package_versions

    info = {"env": env_name, "kind": kind, "steps": int(np.asarray(transitions.reward).shape[0]), "seed": seed,
            "seed_index": seed_index, "random_return": random_return, "expert_return": expert_return,
            "expert_run": os.path.abspath(expert_run), "expert_config": to_dict(expert_config),
            "versions": package_versions(), **source}
    return Dataset(to_host(transitions), info)


def from_training(module, config, medium_updates: int, steps: int, key: jax.Array, params: Callable | None = None,
                  num_envs: int = 16, reference_episodes: int = 50, collect_key: jax.Array | None = None
                  ) -> dict[str, Dataset]:
    """Every kind of dataset from one training of an online algorithm (the D4RL recipe in one
    process): `module.update` `config.num_updates` times from `module.init(config, key)`; the
    state after `medium_updates` updates is the medium policy (and its replay buffer, if it has
    one, the medium-replay data), the final state the expert. `steps` transitions per kind
    (medium-expert: 2 × steps). R_random, R_expert (and R_medium, for the record) are mean
    deterministic returns over `reference_episodes` episodes."""
    if not 0 < medium_updates < config.num_updates:
        raise ValueError(f"medium_updates={medium_updates} is invalid: must be in 1…{config.num_updates - 1}")
    params = params or policy_params
    state = jax.jit(functools.partial(module.init, config))(key)

    @functools.partial(jax.jit, static_argnums=1)
    def updates(state, n):
        return jax.lax.scan(lambda s, _: (module.update(config, s)[0], None), state, None, length=n)[0]

    medium = updates(state, medium_updates)
    expert = updates(medium, config.num_updates - medium_updates)
    env = envs.make(config.env)
    if getattr(config, "normalize_obs", False):
        raise ValueError("from_training: the online run must not normalize observations (the dataset stores raw ones "
                         "and the offline learner would not know the run's statistics)")
    keys = jax.random.split(jax.random.PRNGKey(7) if collect_key is None else collect_key, 6)
    act = lambda state, deterministic: functools.partial(  # noqa: E731
        module.act, config, params(state), deterministic=deterministic)
    random_return = mean_return(env, random_policy(env), keys[0], reference_episodes)
    expert_return = mean_return(env, act(expert, True), keys[1], reference_episodes)
    medium_return = mean_return(env, act(medium, True), keys[2], reference_episodes)
    from purerl.config import to_dict
    from purerl.run import package_versions

    info = dict(env=config.env, random_return=random_return, expert_return=expert_return,
                medium_return=medium_return, algorithm=module.__name__.rsplit(".", 1)[-1],
                config=to_dict(config), medium_updates=medium_updates,
                key=np.asarray(jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
                               else key).tolist(), versions=package_versions())

    def gather(policy, k, kind):
        data = jax.jit(lambda kk: rollout(env, policy, kk, num_envs, -(-steps // num_envs)))(k)
        return Dataset(to_host(jax.tree.map(lambda x: np.asarray(x)[:steps], data)), {**info, "kind": kind})

    out = {"random": gather(random_policy(env), keys[3], "random"),
           "medium": gather(act(medium, False), keys[4], "medium"),
           "expert": gather(act(expert, False), keys[5], "expert")}
    out["medium-expert"] = concatenate(out["medium"], out["expert"], kind="medium-expert")
    if isinstance(getattr(medium, "buffer", None), buffers.ReplayBuffer):
        out["medium-replay"] = Dataset(to_host(replay_transitions(jax.tree.map(np.asarray, medium))),
                                       {**info, "kind": "medium-replay"})
    return out
