"""`purerl` command line.

    purerl train ppo --env CartPole-v1 --num-seeds 16 --total-timesteps 500000
    purerl train ppo --resume runs/<run-name>
    purerl sweep ppo --env CartPole-v1 --learning-rate 1e-4,3e-4,1e-3 --gamma 0.98,0.99 --num-seeds 16
    purerl collect --run runs/<run> --kind expert --steps 100000 --out data/pendulum-expert
    purerl collect --kind expert --expert scripted --env Pendulum-v1 --episodes 4 --out demos/pendulum-4
    purerl train iql --dataset data/pendulum-expert --num-seeds 10
    purerl eval runs/<run> --best --episodes 20 --render cartpole.gif
    purerl export runs/<run> --seed 3 ppo-cartpole.npz
    purerl compare runs/<ppo-run> runs/<dqn-run> --out runs/ppo-vs-dqn
    purerl list

Every field of the algorithm's `Config` and of `purerl.run.RunOptions` is a flag
(`purerl train ppo --help`). Defaults come from the algorithm's preset for `--env`
where it has one (`Config.for_env`); an offline algorithm given `--dataset` and no `--env`
takes the dataset's environment.
"""


import dataclasses
import os
import sys
from typing import Annotated

USAGE = """usage: purerl train ALGORITHM [--flags]   train (see `purerl train ALGORITHM --help`)
       purerl train ALGORITHM --resume RUN_DIR  continue an interrupted run
       purerl sweep ALGORITHM --FIELD v1,v2,… [--flags]   a grid of hyperparameters × seeds (one program)
       purerl collect --kind KIND --run RUN_DIR --steps N --out PATH   an offline dataset (see --help)
       purerl collect --kind expert --expert scripted --env ENV --episodes N --out PATH   demonstrations
       purerl eval RUN_DIR [--seed i | --best] [--episodes N] [--render FILE]   evaluate a saved policy
       purerl export RUN_DIR OUT.npz [--seed i | --best]   one seed's policy as a self-contained file
       purerl compare RUN_DIR RUN_DIR … [--out DIR]   rliable aggregates, profiles, sample efficiency
       purerl list                               algorithms and environments"""


def _flag_value(argv: list[str], flag: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    if command in ("eval", "export"):
        from purerl import policy

        return (policy.eval_main if command == "eval" else policy.export_main)(rest)
    if command == "compare":
        from purerl import compare

        return compare.main(rest)
    from purerl import algos, envs

    if command == "collect":
        return collect(rest)
    if command == "list":
        print("algorithms:", ", ".join(sorted(algos.ALGORITHMS)))
        print("environments:", ", ".join(envs.available()))
        return 0
    if command not in ("train", "sweep") or not rest or rest[0].startswith("-"):
        print(USAGE, file=sys.stderr)
        return 2
    algo, flags = rest[0], rest[1:]
    try:
        module = algos.get(algo)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    from purerl import run

    if command == "sweep":
        return _sweep(algo, module, flags)
    if _flag_value(flags, "--resume"):
        return _resume(algo, flags)
    try:
        config, options = _parse_train(algo, module, flags, f"purerl train {algo}")
    except ValueError as error:  # a Config or RunOptions field failed validation
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not options.distributed:
        run.use_cpu_cores(options.num_seeds)
    try:
        run.train(algo, config, options)
    except ValueError as error:  # run directory taken, out of memory, …: no traceback
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def _parse_train(algo: str, module, flags: list[str], prog: str):
    """(Config, RunOptions) from `purerl train ALGORITHM` flags (tyro); ValueError on a bad value."""
    import tyro

    from purerl import run

    env = _flag_value(flags, "--env")
    takes_dataset = getattr(module, "OFFLINE", False) or getattr(module, "DEMONSTRATIONS", False)
    if env is None and takes_dataset and _flag_value(flags, "--dataset"):
        from purerl import datasets

        env = datasets.read_info(_flag_value(flags, "--dataset")).get("env")
    default = module.Config.for_env(env) if env else module.Config()

    def command_line(config: Annotated[module.Config, tyro.conf.arg(name="")] = default,
                     options: Annotated[run.RunOptions, tyro.conf.arg(name="")] = run.RunOptions()):
        return config, options

    return tyro.cli(command_line, args=flags, prog=prog, description=(module.__doc__ or "").split("\n\n")[0])


def _sweep(algo: str, module, flags: list[str]) -> int:
    """`purerl sweep ALGORITHM --FIELD v1,v2,… [train flags]` (or `--resume SWEEP_DIR`)."""
    import math

    from purerl import run as run_module
    from purerl import sweep

    try:
        if _flag_value(flags, "--resume"):
            extra = [f.partition("=")[0] for f in flags if f.startswith("--")
                     and f.partition("=")[0] not in ("--resume", "--stop-after", "--no-progress")]
            if extra:
                raise ValueError(f"--resume continues a sweep with its saved grid, config and options; it cannot "
                                 f"honour {', '.join(extra)} (allowed: --stop-after, --no-progress)")
            stop = _flag_value(flags, "--stop-after")
            _use_cpu_cores_for_saved_run(_flag_value(flags, "--resume"))
            sweep.resume(_flag_value(flags, "--resume"), stop_after=int(stop) if stop else None,
                         progress="--no-progress" not in flags)
            return 0
        rest, floats, statics = sweep.split_flags(module, flags)
        for field, values in statics.items():  # tyro parses and checks one value of each static field
            rest += [f"--{field.replace('_', '-')}", str(values[0])]
        if "-h" in rest or "--help" in rest:
            print(sweep.__doc__.split("\n\n")[0] + "\n\nEvery `purerl train` flag is accepted; give a Config "
                  "field several values with commas.\n" + "\n".join(
                      f"  {k}: {v}" for k, v in sorted(sweep.field_kinds(module).items()) if v != "fixed"))
            return 0
        config, options = _parse_train(algo, module, rest, f"purerl sweep {algo}")
        if not options.distributed:
            run_module.use_cpu_cores(options.num_seeds * math.prod(len(v) for v in floats.values()))
        sweep.sweep(algo, config, floats, options, statics)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


# The flags `--resume` honours; a resumed run takes everything else from its config.json.
RESUME_FLAGS = {"--resume": True, "--stop-after": True, "--progress": False, "--no-progress": False,
                "--compile-cache": False, "--no-compile-cache": False}


def _resume(algo: str, flags: list[str]) -> int:
    """`purerl train ALGORITHM --resume RUN_DIR [--stop-after N] [--no-progress] [--no-compile-cache]`: refuse
    any other flag, and an ALGORITHM that is not the run's, instead of ignoring them."""
    import json
    import os

    from purerl import run

    values, refused, i = {}, [], 0
    while i < len(flags):
        name, _, inline = flags[i].partition("=")
        if not name.startswith("-"):  # the value of a refused flag
            i += 1
            continue
        if name not in RESUME_FLAGS:
            refused.append(name)
        elif RESUME_FLAGS[name] and not inline:
            i += 1
            inline = flags[i] if i < len(flags) else ""
        values[name] = inline
        i += 1
    if refused:
        print(f"error: --resume continues a run with the config and options saved in its config.json; it cannot "
              f"honour {', '.join(refused)} (allowed with --resume: --stop-after, --progress/--no-progress, "
              "--compile-cache/--no-compile-cache)",
              file=sys.stderr)
        return 2
    try:
        stop_after = int(values["--stop-after"]) if values.get("--stop-after") else None
        path = os.path.join(values["--resume"], "config.json")
        saved = json.load(open(path))["algorithm"] if os.path.exists(path) else algo
        if saved != algo:
            raise ValueError(f"--resume {values['--resume']!r}: that run trains {saved!r}, not {algo!r}")
        cache = False if "--no-compile-cache" in values else (True if "--compile-cache" in values else None)
        _use_cpu_cores_for_saved_run(values["--resume"])
        run.resume(values["--resume"], stop_after=stop_after, progress="--no-progress" not in values,
                   compile_cache=cache)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def _use_cpu_cores_for_saved_run(run_dir: str) -> None:
    """`run.use_cpu_cores` for the seed chunks saved in a run directory's config.json (a sweep
    of several programs: its first program's); nothing when there is none or it is distributed."""
    import json

    from purerl import run

    paths = [os.path.join(run_dir, "config.json")]
    if not os.path.exists(paths[0]) and os.path.isdir(run_dir):
        paths = sorted(os.path.join(run_dir, d, "config.json") for d in os.listdir(run_dir))
    for path in paths:
        if os.path.exists(path):
            try:
                meta = json.load(open(path))
                chunk = int(meta["chunk_plan"]["chunk_size"])
            except (OSError, ValueError, KeyError, TypeError):  # the runner refuses it, naming the problem
                return
            if not meta.get("options", {}).get("distributed"):
                run.use_cpu_cores(chunk)
            return


def collect(argv: list[str]) -> int:
    """`purerl collect`: an offline dataset from trained runs (the D4RL recipe), saved in the
    Minari format."""
    import argparse

    from purerl import datasets

    parser = argparse.ArgumentParser(
        prog="purerl collect", description=datasets.__doc__.split("\n\n")[0],
        epilog="kinds: random (uniform actions), medium (--run stopped at about a third of the expert's return, "
               "e.g. with --stop-after), medium-replay (the replay buffer of --run), expert (--run fully trained), "
               "medium-expert (medium from --run + expert from --expert-run). R_expert of the normalized score is "
               "--expert-run's deterministic evaluation return (default --run for kind expert).")
    parser.add_argument("--kind", required=True, choices=datasets.KINDS)
    parser.add_argument("--steps", type=int, default=100_000, help="transitions to collect (medium-replay: the "
                        "whole buffer)")
    parser.add_argument("--out", required=True, help="dataset directory to create (Minari format)")
    parser.add_argument("--run", help="run directory of the behaviour policy")
    parser.add_argument("--expert-run", help="run directory of the expert (sets R_expert)")
    parser.add_argument("--seed", type=int, default=0, help="collection seed")
    parser.add_argument("--seed-index", type=int, default=0, help="which of the run's seeds acts")
    parser.add_argument("--num-envs", type=int, default=16, help="parallel environments of the rollout")
    parser.add_argument("--expert", help="demonstrations (kind expert) of a scripted controller ('scripted', "
                        "with --env) or of --run's policy ('run'), as whole episodes (--episodes)")
    parser.add_argument("--env", help="environment of --expert scripted")
    parser.add_argument("--episodes", type=int, help="whole expert episodes to record (with --expert)")
    args = parser.parse_args(argv)
    try:
        if os.path.exists(args.out):
            raise ValueError(f"--out {args.out!r} exists already")
        if args.expert is not None:
            dataset = _demonstrations(args)
        else:
            if args.episodes is not None or args.env is not None:
                raise ValueError("--episodes and --env go with --expert (demonstrations of whole episodes)")
            dataset = datasets.collect(args.kind, args.steps, run=args.run, expert_run=args.expert_run,
                                       seed=args.seed, seed_index=args.seed_index, num_envs=args.num_envs)
        datasets.save(dataset, args.out)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    t = dataset.transitions
    n_episodes = len(datasets.episodes(t))
    info = dataset.info
    print(f"{args.out}: {dataset.size:,} transitions, {n_episodes} episodes ({int(t.terminated.sum())} terminal) "
          f"of {info['env']}, kind {info['kind']}; reward per episode {float(t.reward.sum()) / n_episodes:.1f} "
          "(the episodes cut by the end of collection included); "
          f"R_random {info['random_return']:.1f}, R_expert {info['expert_return']:.1f}")
    return 0


def _demonstrations(args):
    """`purerl collect --kind expert --expert scripted|run …`: whole expert episodes."""
    from purerl import datasets, experts

    if args.kind != "expert":
        raise ValueError(f"--expert records demonstrations, kind expert; got --kind {args.kind}")
    if args.episodes is None:
        raise ValueError("--expert needs --episodes N (whole expert episodes to record)")
    if args.expert == "scripted":
        if args.env is None:
            raise ValueError(f"--expert scripted needs --env (one of {', '.join(experts.SCRIPTED)})")
        experts.check("scripted", args.env, field="--expert")
        return experts.demonstrations(args.env, "scripted", args.episodes, seed=args.seed)
    if args.expert == "run":
        if args.run is None:
            raise ValueError("--expert run needs --run RUN_DIR (the trained expert)")
        act = experts.from_run(args.run, args.seed_index)
        if args.env is not None and args.env != act.env:
            raise ValueError(f"--env {args.env!r} does not match the run's env {act.env!r}")
        dataset = experts.demonstrations(act.env, act, args.episodes, seed=args.seed)
        return datasets.Dataset(dataset.transitions, {**dataset.info, "expert": "run",
                                                      "expert_run": os.path.abspath(args.run)})
    raise ValueError(f"--expert {args.expert!r} is invalid; allowed: scripted, run")


if __name__ == "__main__":
    sys.exit(main())
