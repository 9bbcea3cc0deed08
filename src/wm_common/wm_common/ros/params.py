"""Declare a node's parameters from wm_common.params.Param specs, with descriptors and ranges."""
from __future__ import annotations

from typing import Any, Dict, Iterable

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

from wm_common.params import Param


def declare_params(node, specs: Iterable[Param]) -> Dict[str, Any]:
    """Declare every spec on `node` and return the current values by name."""
    values = {}
    for p in specs:
        desc = ParameterDescriptor(description=p.description)
        if isinstance(p.default, float) and (p.min is not None or p.max is not None):
            desc.floating_point_range = [FloatingPointRange(
                from_value=float(-1e300 if p.min is None else p.min),
                to_value=float(1e300 if p.max is None else p.max), step=0.0)]
        elif (isinstance(p.default, int) and not isinstance(p.default, bool)
              and (p.min is not None or p.max is not None)):
            desc.integer_range = [IntegerRange(
                from_value=int(-(2 ** 62) if p.min is None else p.min),
                to_value=int(2 ** 62 if p.max is None else p.max), step=1)]
        default = list(p.default) if isinstance(p.default, tuple) else p.default
        values[p.name] = node.declare_parameter(p.name, default, desc).value
    return values


def read_params(node, specs: Iterable[Param]) -> Dict[str, Any]:
    """Current values of already-declared parameters (re-read on every configure)."""
    return {p.name: node.get_parameter(p.name).value for p in specs}
