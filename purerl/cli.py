"""`purerl` command line.

    purerl train ppo --env CartPole-v1 --num-seeds 16 --total-timesteps 500000
    purerl train ppo --resume runs/<run-name>
    purerl list

Every field of the algorithm's `Config` and of `purerl.run.RunOptions` is a flag
(`purerl train ppo --help`). Defaults come from the algorithm's preset for `--env`
where it has one (`Config.for_env`).
"""


import dataclasses
import sys
from typing import Annotated

USAGE = """usage: purerl train ALGORITHM [--flags]   train (see `purerl train ALGORITHM --help`)
       purerl train ALGORITHM --resume RUN_DIR  continue an interrupted run
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
    from purerl import algos, envs

    command, rest = argv[0], argv[1:]
    if command == "list":
        print("algorithms:", ", ".join(sorted(algos.ALGORITHMS)))
        print("environments:", ", ".join(envs.available()))
        return 0
    if command != "train" or not rest or rest[0].startswith("-"):
        print(USAGE, file=sys.stderr)
        return 2
    algo, flags = rest[0], rest[1:]
    try:
        module = algos.get(algo)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    from purerl import run

    resume_dir = _flag_value(flags, "--resume")
    if resume_dir:
        stop_after = _flag_value(flags, "--stop-after")
        try:
            run.resume(resume_dir, stop_after=int(stop_after) if stop_after else None)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        return 0

    import tyro

    env = _flag_value(flags, "--env")
    try:
        default = module.Config.for_env(env) if env else module.Config()
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    def command_line(config: Annotated[module.Config, tyro.conf.arg(name="")] = default,
                     options: Annotated[run.RunOptions, tyro.conf.arg(name="")] = run.RunOptions()):
        return config, options

    try:
        config, options = tyro.cli(command_line, args=flags, prog=f"purerl train {algo}",
                                   description=(module.__doc__ or "").split("\n\n")[0])
    except ValueError as error:  # a Config or RunOptions field failed validation
        print(f"error: {error}", file=sys.stderr)
        return 2
    run.train(algo, config, options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
