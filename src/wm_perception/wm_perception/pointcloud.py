"""Validated, zero-copy decoding of sensor_msgs/PointCloud2 buffers into xyz (+ time).

Every malformed message raises CloudError, never IndexError/struct.error/etc., because the
node turns `.reason` into a diagnostics counter and keeps running; one bad message from a
misconfigured driver must not take the perception node down.

The coordinates are read through strided numpy views laid directly over the message buffer
(one view per field, strides = (row_step, point_step)), so any offsets, padding, extra fields,
row padding and byte order cost nothing extra and nothing is copied before the final gather.
"""
from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Any, Optional, Tuple

import numpy as np

from wm_common.point_layouts import (DATATYPE_SIZES, FLOAT_DATATYPES, FLOAT64,
                                     INTEGER_DATATYPES, LAYOUTS, Layout, numpy_dtype)

# Every reason decode_points can raise, so a node can pre-register its counters.
REASONS = (
    "bad_header",        # width/height/point_step/row_step not non-negative integers
    "bad_buffer",        # data does not expose a contiguous byte buffer
    "bad_field",         # a field entry lacks name/offset/datatype/count or has bad types
    "missing_field",     # no x, y or z (or no requested time field)
    "duplicate_field",   # x, y, z or the time field declared twice: ambiguous
    "bad_datatype",      # x/y/z not float32/float64, or time field of unknown type
    "bad_count",         # x/y/z/time with count != 1
    "bad_field_offset",  # a field starts before 0 or runs past point_step
    "empty",             # width * height == 0
    "too_large",         # width * height > max_points
    "row_step",          # row_step < width * point_step
    "size_mismatch",     # len(data) < row_step * height
)


_FLOAT32_MAX = float(np.finfo(np.float32).max)


class CloudError(ValueError):
    """A PointCloud2 that cannot be decoded; `.reason` is one of REASONS."""

    def __init__(self, reason: str, message: str):
        super().__init__("%s: %s" % (reason, message))
        self.reason = reason


@dataclass(frozen=True)
class DecodedCloud:
    xyz: np.ndarray             # (M, 3) float32, finite, not (0, 0, 0), within max_abs
    time: Optional[np.ndarray]  # (M,) float64 seconds (see point_layouts for each driver)
    n_points: int               # width * height as declared
    n_invalid: int              # dropped: non-finite or exactly (0, 0, 0), i.e. no return
    n_absurd: int = 0           # dropped: finite but some |coordinate| > max_abs

    @property
    def n_valid(self) -> int:
        return int(self.xyz.shape[0])


def _count(value: Any, what: str) -> int:
    try:
        v = operator.index(value)
    except TypeError:
        raise CloudError("bad_header", "%s is not an integer: %r" % (what, value)) from None
    if v < 0:
        raise CloudError("bad_header", "%s is negative: %d" % (what, v))
    return v


def _parse_fields(fields: Any):
    out = []
    try:
        items = list(fields)
    except TypeError:
        raise CloudError("bad_field", "fields is not a sequence") from None
    for f in items:
        try:
            name = f.name
            offset = operator.index(f.offset)
            datatype = operator.index(f.datatype)
            count = operator.index(f.count)
        except (AttributeError, TypeError):
            raise CloudError("bad_field", "malformed field entry %r" % (f,)) from None
        if not isinstance(name, str) or count < 0:
            raise CloudError("bad_field", "malformed field entry %r" % (f,))
        out.append((name, offset, datatype, count))
    return out


def _find(parsed, name: str):
    hits = [f for f in parsed if f[0] == name]
    if not hits:
        raise CloudError("missing_field", "no %r field" % name)
    if len(hits) > 1:
        raise CloudError("duplicate_field", "%r declared %d times" % (name, len(hits)))
    return hits[0]


def decode_points(fields, data, width, height, point_step, row_step, is_bigendian,
                  max_points: int = 2_000_000, time_field: Optional[str] = None,
                  time_scale: Optional[float] = None, max_abs: float = 1000.0,
                  allow_empty: bool = False) -> DecodedCloud:
    """Decode a PointCloud2's payload into finite xyz (and optional per-point time).

    `fields` is any sequence of objects with .name .offset .datatype .count (PointField or
    FieldSpec); `data` is bytes, bytearray, memoryview, array.array('B') (what rclpy hands
    out) or a contiguous numpy array. x, y and z may each be float32 or float64 at any
    offset; integer coordinates are rejected ('bad_datatype') because no driver we support
    sends them and their unit would be a guess.

    Points are dropped, not errors: NaN/inf or exactly (0, 0, 0) (how organized clouds and
    RealSense ordered_pc mark "no return") count in n_invalid; finite points with any
    |coordinate| > max_abs (metres; corrupt returns, unit mix-ups) count in n_absurd.

    time_field names a per-point time field; its value times `time_scale` is returned in
    seconds. time_scale=None means 1e-9 for integer fields (nanoseconds, as Ouster's `t`)
    and 1.0 for float fields; pass the Layout's time_scale for drivers that break that rule
    (Livox sends nanoseconds as float64).

    An empty cloud raises CloudError('empty') unless allow_empty, in which case it decodes
    to zero points: only the caller knows whether "no returns at all" is plausible.
    """
    if max_points < 1:
        raise ValueError("max_points must be positive")
    if not (max_abs > 0.0 and math.isfinite(max_abs)):
        raise ValueError("max_abs must be a positive finite number")
    if time_scale is not None and not (math.isfinite(time_scale) and time_scale != 0.0):
        raise ValueError("time_scale must be finite and non-zero")

    width = _count(width, "width")
    height = _count(height, "height")
    point_step = _count(point_step, "point_step")
    row_step = _count(row_step, "row_step")
    big = bool(is_bigendian)

    parsed = _parse_fields(fields)
    for name, offset, datatype, count in parsed:
        size = DATATYPE_SIZES.get(datatype)
        # Fields of unknown type are skipped unless we read them: a vendor extension
        # should not cost us the cloud, but a known field past the point is corruption.
        if size is not None and (offset < 0 or offset + size * count > point_step):
            raise CloudError("bad_field_offset", "field %r (offset %d, %d x %d bytes) "
                             "overruns point_step %d" % (name, offset, count, size,
                                                         point_step))
    xyz_fields = [_find(parsed, axis) for axis in ("x", "y", "z")]
    for name, _, datatype, count in xyz_fields:
        if datatype not in FLOAT_DATATYPES:
            raise CloudError("bad_datatype", "%r has datatype %d, need FLOAT32/FLOAT64"
                             % (name, datatype))
        if count != 1:
            raise CloudError("bad_count", "%r has count %d" % (name, count))
    t_spec = None
    if time_field is not None:
        t_spec = _find(parsed, time_field)
        if t_spec[2] not in DATATYPE_SIZES:
            raise CloudError("bad_datatype", "time field %r has datatype %d"
                             % (time_field, t_spec[2]))
        if t_spec[3] != 1:
            raise CloudError("bad_count", "time field %r has count %d" % (time_field, t_spec[3]))

    n = width * height
    if n == 0:
        if not allow_empty:
            raise CloudError("empty", "cloud has %d x %d points" % (height, width))
        return DecodedCloud(np.zeros((0, 3), np.float32),
                            None if t_spec is None else np.zeros(0), 0, 0, 0)
    if n > max_points:
        raise CloudError("too_large", "%d points > max_points %d" % (n, max_points))
    if row_step < width * point_step:
        raise CloudError("row_step", "row_step %d < width %d * point_step %d"
                         % (row_step, width, point_step))
    try:
        buf = np.frombuffer(data, dtype=np.uint8)
    except (TypeError, ValueError, BufferError) as exc:
        raise CloudError("bad_buffer", "data is not a contiguous byte buffer (%s)" % exc) \
            from None
    # Trailing bytes beyond row_step * height are tolerated: they cannot be misread.
    if buf.size < row_step * height:
        raise CloudError("size_mismatch", "data has %d bytes, row_step %d * height %d needs %d"
                         % (buf.size, row_step, height, row_step * height))

    shape = (height, width)
    strides = (row_step, point_step)

    def view(spec):
        return np.ndarray(shape, numpy_dtype(spec[2], big), buf, spec[1], strides)

    # Coordinates are filtered as three contiguous columns, not an (N, 3) array: numpy's
    # reductions over a length-3 axis are several times slower than elementwise &/|.
    # float64 sources are range-checked in float64 so that a value float32 cannot hold is
    # counted as absurd instead of turning into inf in the output; the zero test runs on the
    # float32 values so that a float64 denormal, which becomes 0, counts as no return.
    limit = min(max_abs, _FLOAT32_MAX)
    work_dtype = np.float64 if any(f[2] == FLOAT64 for f in xyz_fields) else np.float32
    within = np.ones(n, dtype=bool)
    nonzero = np.zeros(n, dtype=bool)
    scratch = np.empty(n, dtype=bool)
    absval = np.empty(n, dtype=work_dtype)
    cols, cols32 = [], []
    # Random payload bytes include signalling NaNs, whose conversion raises FE_INVALID.
    with np.errstate(all="ignore"):
        for spec in xyz_fields:
            col = np.empty(shape, work_dtype)
            col[...] = view(spec)
            col = col.reshape(n)
            # NaN compares False, so the range test also drops non-finite points.
            np.less_equal(np.abs(col, out=absval), limit, out=scratch)
            within &= scratch
            col32 = col.astype(np.float32, copy=False)
            nonzero |= np.not_equal(col32, 0, out=scratch)
            cols.append(col)
            cols32.append(col32)
    keep = nonzero & within
    n_keep = int(np.count_nonzero(keep))
    xyz = np.empty((n_keep, 3), dtype=np.float32)
    if n_keep == n:
        n_invalid = n_absurd = 0
        for k in range(3):
            xyz[:, k] = cols32[k]
    else:
        real = nonzero  # updated in place: nonzero is not needed any more
        for col in cols:
            real &= np.isfinite(col, out=scratch)
        n_real = int(np.count_nonzero(real))
        n_invalid = n - n_real
        n_absurd = n_real - n_keep
        sel = np.flatnonzero(keep)
        for k in range(3):
            np.take(cols32[k], sel, out=xyz[:, k])

    time = None
    if t_spec is not None:
        scale = time_scale
        if scale is None:
            scale = 1e-9 if t_spec[2] in INTEGER_DATATYPES else 1.0
        t = np.empty(shape, np.float64)
        with np.errstate(all="ignore"):
            t[...] = view(t_spec)
        t = t.reshape(n)
        if n_keep != n:
            t = t[sel]
        if scale != 1.0:
            t *= scale
        time = t
    return DecodedCloud(xyz, time, n, n_invalid, n_absurd)


def decode_message(msg, **kwargs) -> DecodedCloud:
    """decode_points on anything shaped like sensor_msgs/PointCloud2 (duck-typed)."""
    try:
        args = (msg.fields, msg.data, msg.width, msg.height, msg.point_step, msg.row_step,
                msg.is_bigendian)
    except AttributeError as exc:
        raise CloudError("bad_header", "not a PointCloud2-like message (%s)" % exc) from None
    return decode_points(*args, **kwargs)


def match_layout(fields, point_step: Optional[int] = None
                 ) -> Tuple[Optional[Layout], Optional[str], Optional[float]]:
    """(layout, time field, time scale to seconds) for a message's fields: the known driver
    layout with a time field whose fields all appear with the same offsets and types (or,
    for layouts without time, that and the same point_step), else (None, a field named
    t/time/timestamp if any, the decoder's default scale)."""
    have = {(f.name, int(f.offset), int(f.datatype)) for f in fields}
    for lay in LAYOUTS.values():
        if lay.time_field and all((f.name, f.offset, f.datatype) in have for f in lay.fields):
            return lay, lay.time_field, lay.time_scale
    for lay in LAYOUTS.values():
        if not lay.time_field and point_step in (None, lay.point_step) and all(
                (f.name, f.offset, f.datatype) in have for f in lay.fields):
            return lay, None, None
    names = {f.name for f in fields}
    for name in ("t", "time", "timestamp"):
        if name in names:
            return None, name, None
    return None, None, None


def relative_time(t: Optional[np.ndarray], stamp_s: float) -> Optional[np.ndarray]:
    """Driver time (s) -> relative to the stamp: absolute times (later than 1e6 s past the
    epoch: Hesai's UNIX seconds, Livox's nanoseconds once scaled) have the stamp subtracted;
    relative ones (Ouster's ns since the scan start, Velodyne's s) are kept."""
    if t is None or t.size == 0:
        return t
    if float(np.nanmedian(np.abs(t))) > 1e6:
        return t - stamp_s
    return t


def time_source(fields, point_step: int, preferred: str = ""
                ) -> Tuple[Optional[str], Optional[float]]:
    """(per-point time field, factor to seconds) of a cloud, by its driver's layout
    (wm_common.point_layouts: Ouster uint32 ns, Velodyne float32 s, Hesai float64 s, Livox
    float64 ns): `preferred` when the cloud has that field (scaled as its layout says, else by
    the decoder's rule: integers are ns, floats s), else the layout's own time field; (None,
    None) for a cloud without per-point time."""
    _, field, scale = match_layout(fields, point_step)
    if preferred and any(f.name == preferred for f in fields):
        return preferred, (scale if field == preferred else None)
    return field, scale
