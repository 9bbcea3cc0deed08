"""PointCloud2 field tables of the drivers our robots carry, and a packer for building clouds.

Plain numpy, no rclpy: FieldSpec has the same attributes as sensor_msgs/PointField, so the
decoder accepts either, and the simulator and the tests can build messages without ROS.

Time fields differ per driver, so every Layout records which field carries per-point time and
the factor that turns its raw value into seconds (`time_scale`):

=================  ===========  ======  =====================================================
layout             field        type    meaning (factor to seconds)
=================  ===========  ======  =====================================================
OUSTER             t            uint32  ns since the scan start, i.e. header.stamp (1e-9)
VELODYNE           time         f32     s relative to header.stamp; the sign convention
                                        differs between driver versions (1.0)
HESAI              timestamp    f64     absolute UNIX time in s (1.0)
HESAI_GENERAL      timestamp    f64     absolute UNIX time in s (1.0)
LIVOX              timestamp    f64     absolute time in ns, stored as a double (1e-9)
REALSENSE_*, XYZ   --           --      no per-point time
=================  ===========  ======  =====================================================
"""
from __future__ import annotations

from typing import Dict, Mapping, NamedTuple, Optional, Tuple

import numpy as np

INT8 = 1
UINT8 = 2
INT16 = 3
UINT16 = 4
INT32 = 5
UINT32 = 6
FLOAT32 = 7
FLOAT64 = 8

# Keyed by the PointField datatype code; the byte order is chosen per message.
_DTYPE_CODES: Dict[int, str] = {
    INT8: "i1", UINT8: "u1", INT16: "i2", UINT16: "u2",
    INT32: "i4", UINT32: "u4", FLOAT32: "f4", FLOAT64: "f8",
}
DATATYPE_SIZES: Dict[int, int] = {k: int(v[1]) for k, v in _DTYPE_CODES.items()}
INTEGER_DATATYPES = frozenset((INT8, UINT8, INT16, UINT16, INT32, UINT32))
FLOAT_DATATYPES = frozenset((FLOAT32, FLOAT64))


def numpy_dtype(datatype: int, is_bigendian: bool = False) -> np.dtype:
    """numpy dtype of one element of a PointField datatype; KeyError if the code is unknown."""
    return np.dtype((">" if is_bigendian else "<") + _DTYPE_CODES[datatype])


class FieldSpec(NamedTuple):
    """Same attribute names as sensor_msgs/PointField so code can take either."""
    name: str
    offset: int
    datatype: int
    count: int = 1


class Layout(NamedTuple):
    name: str
    fields: Tuple[FieldSpec, ...]
    point_step: int
    time_field: Optional[str] = None
    # None lets the decoder pick: integer fields are taken as ns, float fields as s.
    time_scale: Optional[float] = None

    def field(self, name: str) -> FieldSpec:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


def _f(name: str, offset: int, datatype: int, count: int = 1) -> FieldSpec:
    return FieldSpec(name, offset, datatype, count)


# ouster-ros "original"/legacy PointOS: PCL_ADD_POINT4D leaves 4 bytes after z, and
# EIGEN_ALIGN16 pads the 36-byte struct to 48.
OUSTER = Layout("ouster", (
    _f("x", 0, FLOAT32), _f("y", 4, FLOAT32), _f("z", 8, FLOAT32),
    _f("intensity", 16, FLOAT32), _f("t", 20, UINT32), _f("reflectivity", 24, UINT16),
    _f("ring", 26, UINT16), _f("ambient", 28, UINT16), _f("range", 32, UINT32),
), 48, time_field="t", time_scale=1e-9)

# velodyne_pointcloud PointcloudXYZIRT: fields added back to back, no alignment, so `time`
# is an unaligned float at 18.
VELODYNE = Layout("velodyne", (
    _f("x", 0, FLOAT32), _f("y", 4, FLOAT32), _f("z", 8, FLOAT32),
    _f("intensity", 12, FLOAT32), _f("ring", 16, UINT16), _f("time", 18, FLOAT32),
), 22, time_field="time", time_scale=1.0)

# HesaiLidar_ROS_2.0 (source_driver_ros2.hpp) builds its fields back to back with
# addPointField: ring at 16, an unaligned double at 18, 26-byte points.
HESAI = Layout("hesai", (
    _f("x", 0, FLOAT32), _f("y", 4, FLOAT32), _f("z", 8, FLOAT32),
    _f("intensity", 12, FLOAT32), _f("ring", 16, UINT16), _f("timestamp", 18, FLOAT64),
), 26, time_field="timestamp", time_scale=1.0)

# The older HesaiLidar_General_ROS publishes PCL's PointXYZIT (PCL_ADD_POINT4D, float
# intensity, double timestamp, uint16 ring, EIGEN_ALIGN16), hence the gaps and 48 bytes.
HESAI_GENERAL = Layout("hesai_general", (
    _f("x", 0, FLOAT32), _f("y", 4, FLOAT32), _f("z", 8, FLOAT32),
    _f("intensity", 16, FLOAT32), _f("timestamp", 24, FLOAT64), _f("ring", 32, UINT16),
), 48, time_field="timestamp", time_scale=1.0)

# livox_ros_driver2 PointCloud2 output (xfer_format 0): a #pragma pack(1) struct.
LIVOX = Layout("livox", (
    _f("x", 0, FLOAT32), _f("y", 4, FLOAT32), _f("z", 8, FLOAT32),
    _f("intensity", 12, FLOAT32), _f("tag", 16, UINT8), _f("line", 17, UINT8),
    _f("timestamp", 18, FLOAT64),
), 26, time_field="timestamp", time_scale=1e-9)

# realsense-ros PointcloudFilter: setPointCloud2FieldsByString(1, "xyz") reserves 16 bytes,
# then a texture adds one float at 16 ("rgb" packed as BGR bytes, or "intensity" for Y8).
# With ordered_pc the cloud is organized and pixels without depth are (0, 0, 0).
REALSENSE_XYZ = Layout("realsense_xyz", (
    _f("x", 0, FLOAT32), _f("y", 4, FLOAT32), _f("z", 8, FLOAT32),
), 16)
REALSENSE_XYZRGB = Layout("realsense_xyzrgb", (
    _f("x", 0, FLOAT32), _f("y", 4, FLOAT32), _f("z", 8, FLOAT32), _f("rgb", 16, FLOAT32),
), 20)

XYZ = Layout("xyz", (_f("x", 0, FLOAT32), _f("y", 4, FLOAT32), _f("z", 8, FLOAT32)), 12)

LAYOUTS: Dict[str, Layout] = {lay.name: lay for lay in (
    OUSTER, VELODYNE, HESAI, HESAI_GENERAL, LIVOX, REALSENSE_XYZ, REALSENSE_XYZRGB, XYZ)}


def pack_points(layout: Layout, columns: Mapping[str, np.ndarray], is_bigendian: bool = False,
                height: int = 1, row_step: Optional[int] = None, fill: int = 0) -> bytes:
    """Build a PointCloud2 `data` buffer for `layout` from per-field columns.

    Columns are (N,) arrays (or (N, count) for count > 1); fields without a column are zero.
    The cloud is `height` rows of N // height points; rows are padded to `row_step` bytes
    (default: width * point_step). Padding bytes and gaps between fields hold `fill`, so a
    test can make them look like NaN (0xFF) and catch a decoder that reads them.
    Values are cast to the field type with numpy's unsafe casting (floats truncate).
    """
    names = {f.name for f in layout.fields}
    unknown = set(columns) - names
    if unknown:
        raise ValueError("columns not in layout %r: %s" % (layout.name, sorted(unknown)))
    lengths = {len(np.asarray(c)) for c in columns.values()}
    if len(lengths) > 1:
        raise ValueError("columns differ in length: %s" % sorted(lengths))
    n = lengths.pop() if lengths else 0
    if height < 1 or n % height:
        raise ValueError("%d points do not split into %d rows" % (n, height))
    width = n // height
    step = layout.point_step
    if row_step is None:
        row_step = width * step
    if row_step < width * step:
        raise ValueError("row_step %d < width * point_step %d" % (row_step, width * step))
    buf = np.full(row_step * height, fill, dtype=np.uint8)
    if width == 0:
        return buf.tobytes()   # a cloud without points (a driver with nothing to send)
    for f in layout.fields:
        elem = numpy_dtype(f.datatype, is_bigendian)
        if f.offset < 0 or f.offset + elem.itemsize * f.count > step:
            raise ValueError("field %r overruns point_step %d" % (f.name, step))
        # Strided views straight into the buffer: one vectorised write per field.
        view = np.ndarray((height, width, f.count), elem, buf, f.offset,
                          (row_step, step, elem.itemsize))
        col = columns.get(f.name)
        if col is None:
            view[...] = 0
        else:
            view[...] = np.asarray(col).reshape(height, width, f.count)
    return buf.tobytes()
