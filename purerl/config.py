"""Helpers every algorithm's `Config` uses: static fields, validation, sweeps.

A `Config` is a frozen `flax.struct.dataclass`. Fields that fix shapes or program
structure (environment name, number of environments, network sizes, flags) are
`static` — part of the compiled program. Float hyperparameters (learning rate,
discount, coefficients) are pytree leaves, so `jax.vmap` can sweep them inside one
compiled program:

    config = ppo.Config(learning_rate=jnp.array([1e-4, 3e-4, 1e-3]))
    train = jax.jit(jax.vmap(ppo.train, in_axes=(sweep_axes(config, "learning_rate"), None)))

Validation runs on construction and skips values that are traced (inside `jit` or
`vmap`) or `None` (axis specifications), so it costs nothing in compiled code.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
from flax import struct


def static(default):
    """A Config field that is part of the compiled program (not sweepable)."""
    return struct.field(pytree_node=False, default=default)


def _concrete(value):
    if value is None or isinstance(value, jax.core.Tracer):
        return None
    try:
        arr = np.asarray(value)
    except Exception:  # noqa: BLE001 - not array-like: an abstract placeholder
        return None
    return None if arr.dtype == object else arr  # object: jit's abstract argument placeholders


def _fail(name, value, allowed):
    raise ValueError(f"Config.{name}={value!r} is invalid: must be {allowed}")


def check_range(config, name, low=None, high=None, *, low_inclusive=True, high_inclusive=True):
    """`name` (a scalar or a vector of sweep values) must lie in the stated interval."""
    value = getattr(config, name)
    arr = _concrete(value)
    if arr is None:
        return
    if arr.dtype.kind not in "iuf" or not np.all(np.isfinite(arr)):
        _fail(name, value, f"a finite number{_interval(low, high, low_inclusive, high_inclusive)}")
    ok = np.ones(arr.shape, bool)
    if low is not None:
        ok &= arr >= low if low_inclusive else arr > low
    if high is not None:
        ok &= arr <= high if high_inclusive else arr < high
    if not np.all(ok):
        _fail(name, value, f"a number{_interval(low, high, low_inclusive, high_inclusive)}")


def _interval(low, high, low_inclusive, high_inclusive):
    if low is not None and high is not None:
        return f" in {'[' if low_inclusive else '('}{low}, {high}{']' if high_inclusive else ')'}"
    if low is not None:
        return f" {'≥' if low_inclusive else '>'} {low}"
    if high is not None:
        return f" {'≤' if high_inclusive else '<'} {high}"
    return ""


def check_int(config, name, low=1):
    """`name` must be a Python int ≥ `low` (a static, shape-defining field)."""
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        _fail(name, value, f"an integer ≥ {low}")


def check_choice(config, name, allowed):
    value = getattr(config, name)
    if value not in allowed:
        _fail(name, value, f"one of {list(allowed)}")


def check_bool(config, name):
    value = getattr(config, name)
    if not isinstance(value, (bool, np.bool_)):
        _fail(name, value, "True or False")


def check_sizes(config, name):
    """A tuple of positive layer widths."""
    value = getattr(config, name)
    if not isinstance(value, (tuple, list)) or not all(isinstance(v, int) and v > 0 for v in value):
        _fail(name, value, "a tuple of positive integers, e.g. (64, 64)")


def check_divisible(config, name, divisor_name):
    value, divisor = getattr(config, name), getattr(config, divisor_name)
    if value % divisor:
        _fail(name, value, f"divisible by {divisor_name}={divisor}")


def sweep_axes(config, *fields: str):
    """`in_axes` for `jax.vmap` that maps axis 0 of the named float fields and
    broadcasts every other field."""
    names = {f.name for f in dataclasses.fields(config) if f.metadata.get("pytree_node", True)}
    unknown = sorted(set(fields) - names)
    if unknown:
        raise ValueError(f"cannot sweep {unknown}: sweepable fields of {type(config).__name__} are {sorted(names)}")
    axes = object.__new__(type(config))  # an axis spec, not a config: bypass validation
    for f in dataclasses.fields(config):
        value = (0 if f.name in fields else None) if f.name in names else getattr(config, f.name)
        object.__setattr__(axes, f.name, value)
    return axes


def to_dict(config) -> dict:
    """A JSON-friendly dict of every field."""
    out = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        arr = _concrete(value) if not isinstance(value, (str, tuple, bool)) else None
        out[f.name] = arr.tolist() if arr is not None else (list(value) if isinstance(value, tuple) else value)
    return out


def from_dict(config_cls, values: dict):
    """Inverse of `to_dict` (lists back to tuples for static tuple fields)."""
    kwargs = {}
    for f in dataclasses.fields(config_cls):
        if f.name in values:
            v = values[f.name]
            kwargs[f.name] = tuple(v) if isinstance(v, list) and not f.metadata.get("pytree_node", True) else v
    return config_cls(**kwargs)
