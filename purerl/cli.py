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

    if _flag_value(flags, "--resume"):
        return _resume(algo, flags)

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
    try:
        run.train(algo, config, options)
    except ValueError as error:  # run directory taken, out of memory, …: no traceback
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
        run.resume(values["--resume"], stop_after=stop_after, progress="--no-progress" not in values,
                   compile_cache=cache)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
