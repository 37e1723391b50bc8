"""XLA_FLAGS for a child process that must compute what this process computes.

A test that compares a subprocess's numbers with this process's must give the child the same
XLA flags (an optimization level changes fusions and so the last bits), changing only the number
of host devices. `make test` runs the unit tests with `--xla_backend_optimization_level=0`."""

import os

_DEVICES = "--xla_force_host_platform_device_count"


def with_host_devices(count: int | None) -> str:
    """This process's XLA_FLAGS with the forced host device count set to `count` (None: removed)."""
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if not f.startswith(_DEVICES)]
    if count is not None:
        flags.append(f"{_DEVICES}={count}")
    return " ".join(flags)
