"""Parameter specifications as plain data, so nodes, YAML checks and the README table share one
source of truth (and tests can read them without rclpy)."""
from __future__ import annotations

from typing import Any, Dict, Iterable, Mapping, NamedTuple, Optional


class Param(NamedTuple):
    name: str
    default: Any
    description: str
    min: Optional[float] = None
    max: Optional[float] = None
    # a numeric list of any length (a polygon), not a fixed-size vector like an extrinsic
    any_length: bool = False


def check_value(spec: Param, value) -> Optional[str]:
    """Why `value` is not acceptable for `spec`, or None if it is."""
    d = spec.default
    if isinstance(d, bool):
        return None if isinstance(value, bool) else "expected a bool"
    if isinstance(d, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "expected a number"
        if isinstance(d, int) and not isinstance(d, bool) and not isinstance(value, int):
            return "expected an integer"
        if isinstance(d, float) and isinstance(value, int):
            # rclpy refuses an integer for a double parameter: the node would not start
            return "expected a floating-point number (write %s.0)" % value
        if spec.min is not None and value < spec.min:
            return "below the minimum %s" % spec.min
        if spec.max is not None and value > spec.max:
            return "above the maximum %s" % spec.max
        return None
    if isinstance(d, str):
        return None if isinstance(value, str) else "expected a string"
    if isinstance(d, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            return "expected a list"
        # numeric vectors (an extrinsic [x, y, z, yaw]) have a fixed length
        vector = len(d) >= 2 and all(isinstance(v, (int, float)) for v in d) \
            and not spec.any_length
        if vector and len(value) != len(d):
            return "expected %d elements" % len(d)
        doubles = bool(d) and all(isinstance(v, float) for v in d)
        if doubles and not all(isinstance(v, float) for v in value):
            return "expected floating-point numbers only (rclpy refuses a mixed array)"
        return None
    return None


def flatten(d: Mapping[str, Any], prefix: str = "") -> Dict[str, Any]:
    """Nested YAML maps as ROS parameter names (obstacle: {weight: 2.0} -> obstacle.weight)."""
    out: Dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, prefix + str(k) + "."))
        else:
            out[prefix + str(k)] = v
    return out


def defaults(specs: Iterable[Param]) -> Dict[str, Any]:
    return {p.name: p.default for p in specs}


def markdown_table(specs: Iterable[Param]) -> str:
    """Rows of the README parameter table."""
    rows = ["| parameter | default | range | description |", "|---|---|---|---|"]
    for p in specs:
        rng = ""
        if p.min is not None or p.max is not None:
            rng = "[%s, %s]" % ("" if p.min is None else p.min, "" if p.max is None else p.max)
        rows.append("| `%s` | `%s` | %s | %s |" % (p.name, p.default, rng, p.description))
    return "\n".join(rows)
