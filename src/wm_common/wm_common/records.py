"""Typed records filled from parameters: YAML and ROS values coerced to the declared types,
unknown keys refused.

Parameters reach the plain data classes (the robot's limits and state, the optimizer's
settings, critics) from ROS parameters or YAML through `from_dict`, which raises on unknown
keys: a misspelt parameter silently falling back to its default is a classic source of "the
tuning does nothing" bugs on a real robot.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, Mapping, Optional

import numpy as np


def coerce(name: str, value: Any, default: Any) -> Any:
    # YAML writes `v_max: 1` as an int and ROS may hand back numpy scalars; coerce to the
    # default's type so that arithmetic and validation see what the dataclass declares.
    if isinstance(default, bool):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError("%s must be a bool, got %r" % (name, value))
        return bool(value)
    if isinstance(default, int):
        if isinstance(value, (bool, np.bool_)) or float(value) != int(float(value)):
            raise TypeError("%s must be an integer, got %r" % (name, value))
        return int(float(value))
    if isinstance(default, float):
        if isinstance(value, (bool, np.bool_)):
            raise TypeError("%s must be a number, got %r" % (name, value))
        return float(value)
    return value


class FromDict:
    """Mixin: `from_dict` that rejects unknown keys and coerces to the defaults' types."""

    @classmethod
    def from_dict(cls, d: Optional[Mapping[str, Any]] = None):
        d = dict(d or {})
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(d) - set(fields))
        if unknown:
            raise ValueError("unknown %s parameter(s) %s; valid: %s"
                             % (cls.__name__, unknown, sorted(fields)))
        kwargs = {}
        for name, value in d.items():
            f = fields[name]
            default = f.default if f.default is not dataclasses.MISSING else None
            kwargs[name] = value if value is None else coerce(name, value, default)
        return cls(**kwargs)

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]


def check_finite(obj, *names: str) -> None:
    for n in names:
        v = getattr(obj, n)
        if not math.isfinite(v):
            raise ValueError("%s.%s must be finite, got %r" % (type(obj).__name__, n, v))
