"""Warehouse maps in the ROS map_server format: a YAML file plus an 8-bit PGM image.

    image: warehouse_small.pgm     # relative to the YAML file's directory
    resolution: 0.05               # metres per pixel
    origin: [0.0, 0.0, 0.0]        # map-frame pose of the lower-left pixel's corner
    negate: 0
    occupied_thresh: 0.65
    free_thresh: 0.25
    mode: trinary                  # trinary (default), scale or raw

Pixel -> cell value follows nav2's map_server (nav2_map_server/src/map_io.cpp):
shade = pixel / maxval; occ = shade if negate else 1 - shade; then
  * trinary: occ > occupied_thresh -> 100, occ < free_thresh -> 0, else -1 (unknown);
  * scale:   the same, except in between -> round(100 * (occ - free) / (occupied - free));
  * raw:     round(255 * shade) if it is within 0..100, else -1.
So with negate 0, black (0) is occupied and white (254/255) free.

The result is an OccupancyMap: int8 `values` laid out like nav_msgs/OccupancyGrid
(data[iy, ix], row 0 at the origin's y, i.e. the image flipped vertically; -1 unknown,
0..100 occupancy), with Grid2D-style geometry (origin_x, origin_y, resolution,
world_to_cell, cell_centers) in the map frame. `occupied` is value > 50 (for trinary maps
exactly the 100 cells); `unknown` is value < 0. Unknown is neither occupied nor free: a
consumer decides (the global planner treats it as an obstacle by default).

Only PGM images (binary P5 and ascii P2, maxval <= 255) and origins with zero yaw are
supported; anything else raises MapError with the reason. Plain Python + numpy + PyYAML,
no rclpy. The simulator's worlds are exported as such maps by wm_sim.map_export (a tool).
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import yaml

from wm_common.grid import Grid2D

MODES = ("trinary", "scale", "raw")
UNKNOWN = -1
FREE = 0
OCCUPIED = 100
# nav2 map_saver's default thresholds.
DEFAULT_OCCUPIED_THRESH = 0.65
DEFAULT_FREE_THRESH = 0.25


class MapError(ValueError):
    """A map file that cannot be read (or a map that cannot be written), with the reason."""


@dataclass
class OccupancyMap:
    """A static occupancy map in the map frame, nav_msgs/OccupancyGrid semantics.

    values: (H, W) int8, data[iy, ix], row 0 at origin_y (the bottom of the image);
    -1 unknown, 0 free .. 100 occupied. Cell (0, 0)'s lower-left corner is at
    (origin_x, origin_y).
    """

    values: np.ndarray
    resolution: float
    origin_x: float = 0.0
    origin_y: float = 0.0
    frame_id: str = "map"

    def __post_init__(self) -> None:
        v = np.asarray(self.values)
        if v.ndim != 2 or v.shape[0] < 1 or v.shape[1] < 1:
            raise MapError("map values must be a non-empty 2D array, got shape %s"
                           % (v.shape,))
        if np.any((v < UNKNOWN) | (v > OCCUPIED)):
            raise MapError("map values must be -1 (unknown) or 0..100")
        self.values = v.astype(np.int8)
        self.resolution = float(self.resolution)
        if not (self.resolution > 0.0 and math.isfinite(self.resolution)):
            raise MapError("map resolution must be a positive finite number, got %r"
                           % self.resolution)
        self.origin_x = float(self.origin_x)
        self.origin_y = float(self.origin_y)
        if not (math.isfinite(self.origin_x) and math.isfinite(self.origin_y)):
            raise MapError("map origin must be finite")

    @classmethod
    def from_occupied(cls, occupied: np.ndarray, resolution: float, origin_x: float = 0.0,
                      origin_y: float = 0.0, unknown: Optional[np.ndarray] = None,
                      frame_id: str = "map") -> "OccupancyMap":
        """Build from a boolean occupied grid (and optionally an unknown mask)."""
        occ = np.asarray(occupied, dtype=bool)
        values = np.where(occ, OCCUPIED, FREE).astype(np.int8)
        if unknown is not None:
            values[np.asarray(unknown, dtype=bool)] = UNKNOWN
        return cls(values, resolution, origin_x, origin_y, frame_id)

    @property
    def height(self) -> int:
        return int(self.values.shape[0])

    @property
    def width(self) -> int:
        return int(self.values.shape[1])

    @property
    def occupied(self) -> np.ndarray:
        """(H, W) bool: value > 50 (the 100 cells of a trinary map)."""
        return self.values > 50

    @property
    def unknown(self) -> np.ndarray:
        """(H, W) bool: value -1."""
        return self.values < 0

    @property
    def free(self) -> np.ndarray:
        """(H, W) bool: known and not occupied."""
        return (self.values >= 0) & (self.values <= 50)

    def cell_centers(self) -> Tuple[np.ndarray, np.ndarray]:
        """(xs, ys) 1D arrays of cell-centre coordinates along x and y (map frame)."""
        xs = self.origin_x + (np.arange(self.width) + 0.5) * self.resolution
        ys = self.origin_y + (np.arange(self.height) + 0.5) * self.resolution
        return xs, ys

    def world_to_cell(self, xy: np.ndarray):
        """Integer (ix, iy) of the cells containing (..., 2) map points, and an in-bounds
        mask (same convention as Grid2D.world_to_cell)."""
        xy = np.asarray(xy, dtype=np.float64)
        ix = np.floor((xy[..., 0] - self.origin_x) / self.resolution).astype(np.int64)
        iy = np.floor((xy[..., 1] - self.origin_y) / self.resolution).astype(np.int64)
        inside = (ix >= 0) & (ix < self.width) & (iy >= 0) & (iy < self.height)
        return ix, iy, inside

    def to_grid(self, unknown_is_occupied: bool = True) -> Grid2D:
        """A Grid2D of 1.0 (occupied) / 0.0 (free); unknown reads as occupied unless told
        otherwise; outside the map reads 1.0. Grid2D needs at least 2 x 2 cells."""
        occ = self.occupied | (self.unknown if unknown_is_occupied else False)
        return Grid2D(self.origin_x, self.origin_y, self.resolution, occ.astype(np.float32),
                      outside=1.0, frame_id=self.frame_id)


# --------------------------------------------------------------------------- PGM


_PGM_TOKEN = re.compile(rb"\s*(?:#[^\n]*\n\s*)*(\S+)")


def _pgm_tokens(buf: bytes, count: int, pos: int, path: str) -> Tuple[List[bytes], int]:
    """`count` whitespace-separated header tokens from `pos` (comments skipped)."""
    out = []
    for _ in range(count):
        m = _PGM_TOKEN.match(buf, pos)
        if m is None:
            raise MapError("%s: truncated PGM header" % path)
        out.append(m.group(1))
        pos = m.end()
    return out, pos


def read_pgm(path: str) -> Tuple[np.ndarray, int]:
    """(image (H, W) uint8 with row 0 at the top, maxval) of an 8-bit P5 or P2 file."""
    try:
        with open(path, "rb") as f:
            buf = f.read()
    except OSError as e:
        raise MapError("cannot read map image %s: %s" % (path, e.strerror or e)) from e
    if len(buf) < 2 or buf[:1] != b"P":
        raise MapError("%s: not a PGM file (expected magic P5 or P2; only PGM images are "
                       "supported)" % path)
    magic = buf[:2]
    if magic not in (b"P5", b"P2"):
        raise MapError("%s: unsupported image type %r (only PGM P5 binary and P2 ascii)"
                       % (path, magic.decode("ascii", "replace")))
    tokens, pos = _pgm_tokens(buf, 3, 2, path)
    try:
        width, height, maxval = (int(t) for t in tokens)
    except ValueError:
        raise MapError("%s: bad PGM header (width, height, maxval must be integers): %r"
                       % (path, [t.decode("ascii", "replace") for t in tokens])) from None
    if width <= 0 or height <= 0:
        raise MapError("%s: bad PGM size %d x %d" % (path, width, height))
    if not 0 < maxval < 65536:
        raise MapError("%s: bad PGM maxval %d" % (path, maxval))
    if maxval > 255:
        raise MapError("%s: 16-bit PGM (maxval %d) is not supported; use 8-bit"
                       % (path, maxval))
    n = width * height
    if magic == b"P5":
        # Exactly one whitespace byte separates maxval from the raster.
        if pos >= len(buf) or not buf[pos:pos + 1].isspace():
            raise MapError("%s: bad PGM header (no whitespace before the raster)" % path)
        raster = buf[pos + 1:]
        if len(raster) < n:
            raise MapError("%s: truncated PGM raster: %d of %d bytes"
                           % (path, len(raster), n))
        img = np.frombuffer(raster[:n], dtype=np.uint8).reshape(height, width)
    else:
        body = re.sub(rb"#[^\n]*", b" ", buf[pos:])
        try:
            vals = np.array([int(t) for t in body.split()], dtype=np.int64)
        except ValueError:
            raise MapError("%s: bad P2 raster (non-integer value)" % path) from None
        if vals.size < n:
            raise MapError("%s: truncated PGM raster: %d of %d values"
                           % (path, vals.size, n))
        vals = vals[:n]
        if vals.size and (vals.min() < 0 or vals.max() > maxval):
            raise MapError("%s: P2 raster value outside 0..%d" % (path, maxval))
        img = vals.astype(np.uint8).reshape(height, width)
    if img.size and int(img.max()) > maxval:
        raise MapError("%s: raster value above maxval %d" % (path, maxval))
    return img.copy(), maxval


def write_pgm(path: str, img: np.ndarray, binary: bool = True, comment: str = "") -> None:
    """Write an (H, W) uint8 image (row 0 at the top) as P5 (binary) or P2 (ascii)."""
    img = np.asarray(img)
    if img.ndim != 2 or img.dtype != np.uint8:
        raise MapError("write_pgm needs a 2D uint8 image")
    h, w = img.shape
    header = b"P5\n" if binary else b"P2\n"
    for line in comment.splitlines():
        header += b"# " + line.encode("ascii", "replace") + b"\n"
    header += b"%d %d\n255\n" % (w, h)
    try:
        with open(path, "wb") as f:
            f.write(header)
            if binary:
                f.write(np.ascontiguousarray(img).tobytes())
            else:
                for r in img:
                    f.write(b" ".join(b"%d" % v for v in r.tolist()) + b"\n")
    except OSError as e:
        raise MapError("cannot write %s: %s" % (path, e.strerror or e)) from e


# --------------------------------------------------------------------------- YAML


def _number(doc: Dict[str, Any], key: str, path: str, default: Any = None) -> float:
    if key not in doc:
        if default is None:
            raise MapError("%s: missing required key %r" % (path, key))
        return float(default)
    v = doc[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise MapError("%s: %s must be a finite number, got %r" % (path, key, v))
    return float(v)


def pixel_to_value(img: np.ndarray, maxval: int, negate: bool, occupied_thresh: float,
                   free_thresh: float, mode: str = "trinary") -> np.ndarray:
    """nav2 map_server's pixel -> OccupancyGrid value conversion (see the module doc)."""
    shade = img.astype(np.float64) / float(maxval)
    if mode == "raw":
        pct = np.rint(shade * 255.0)
        return np.where((pct >= 0) & (pct <= 100), pct, UNKNOWN).astype(np.int8)
    occ = shade if negate else 1.0 - shade
    if mode == "scale":
        between = np.rint((occ - free_thresh) / (occupied_thresh - free_thresh) * 100.0)
    else:
        between = np.full(occ.shape, float(UNKNOWN))
    out = np.where(occ > occupied_thresh, OCCUPIED, np.where(occ < free_thresh, FREE, between))
    return out.astype(np.int8)


def read_map(yaml_path: str) -> OccupancyMap:
    """Read a map_server YAML + PGM pair into an OccupancyMap (map frame)."""
    try:
        with open(yaml_path) as f:
            doc = yaml.safe_load(f)
    except OSError as e:
        raise MapError("cannot read map file %s: %s" % (yaml_path, e.strerror or e)) from e
    except yaml.YAMLError as e:
        raise MapError("%s: not valid YAML: %s" % (yaml_path, e)) from e
    if not isinstance(doc, dict):
        raise MapError("%s: a map file is a YAML mapping (image, resolution, origin, ...)"
                       % yaml_path)
    image = doc.get("image")
    if not isinstance(image, str) or not image:
        raise MapError("%s: missing required key 'image' (the PGM file)" % yaml_path)
    resolution = _number(doc, "resolution", yaml_path)
    if resolution <= 0.0:
        raise MapError("%s: resolution must be positive, got %r" % (yaml_path, resolution))
    origin = doc.get("origin")
    if (not isinstance(origin, (list, tuple)) or len(origin) != 3
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                       and math.isfinite(v) for v in origin)):
        raise MapError("%s: origin must be [x, y, yaw] (three finite numbers), got %r"
                       % (yaml_path, origin))
    if abs(float(origin[2])) > 1e-9:
        raise MapError("%s: origin yaw %r is unsupported (only maps aligned with the map "
                       "frame, yaw 0)" % (yaml_path, origin[2]))
    negate = doc.get("negate", 0)
    if negate not in (0, 1, True, False):
        raise MapError("%s: negate must be 0 or 1, got %r" % (yaml_path, negate))
    occ_t = _number(doc, "occupied_thresh", yaml_path, DEFAULT_OCCUPIED_THRESH)
    free_t = _number(doc, "free_thresh", yaml_path, DEFAULT_FREE_THRESH)
    if not 0.0 <= free_t < occ_t <= 1.0:
        raise MapError("%s: need 0 <= free_thresh < occupied_thresh <= 1, got %r and %r"
                       % (yaml_path, free_t, occ_t))
    mode = doc.get("mode", "trinary")
    if mode not in MODES:
        raise MapError("%s: unknown mode %r (one of %s)" % (yaml_path, mode, ", ".join(MODES)))
    img_path = image if os.path.isabs(image) else os.path.join(
        os.path.dirname(os.path.abspath(yaml_path)), image)
    if not os.path.isfile(img_path):
        raise MapError("%s: map image %s does not exist" % (yaml_path, img_path))
    img, maxval = read_pgm(img_path)
    values = pixel_to_value(img, maxval, bool(negate), occ_t, free_t, mode)
    # The image's top row is the map's largest y.
    return OccupancyMap(values[::-1].copy(), resolution, float(origin[0]), float(origin[1]))


def value_to_pixel(values: np.ndarray, negate: bool, occupied_thresh: float,
                   free_thresh: float, mode: str = "trinary") -> np.ndarray:
    """OccupancyGrid values -> uint8 pixels that read back as the same values.

    trinary: occupied (> 50) -> occ 1, free -> occ 0 (254, not 255, as map_saver does);
    unknown -> the middle of the thresholds' band. map_saver writes 205 for unknown, which
    reads back as free with the default free_thresh 0.25, so it is not used here.
    raw: the value itself, unknown 255.
    """
    v = np.asarray(values)
    if mode == "raw":
        return np.where(v < 0, 255, v).astype(np.uint8)
    if mode != "trinary":
        raise MapError("writing supports modes trinary and raw, not %r" % (mode,))
    mid_occ = 0.5 * (occupied_thresh + free_thresh)
    shade = np.where(v > 50, 0.0, np.where(v < 0, 1.0 - mid_occ, 254.0 / 255.0))
    if negate:
        shade = np.where(v > 50, 1.0, np.where(v < 0, mid_occ, 1.0 / 255.0))
    return np.rint(shade * 255.0).astype(np.uint8)


def write_map(yaml_path: str, occ_map: OccupancyMap, image: Optional[str] = None, *,
              mode: str = "trinary", negate: bool = False,
              occupied_thresh: float = DEFAULT_OCCUPIED_THRESH,
              free_thresh: float = DEFAULT_FREE_THRESH, binary: bool = True,
              comment: str = "") -> Tuple[str, str]:
    """Write `occ_map` as `yaml_path` + its PGM (default: same name, .pgm); returns both
    paths. The YAML names the image relative to itself so the pair can move together.
    Occupancy values in between (scale maps) are written as occupied (> 50) or free."""
    if not 0.0 <= free_thresh < occupied_thresh <= 1.0:
        raise MapError("need 0 <= free_thresh < occupied_thresh <= 1")
    if image is None:
        image = os.path.splitext(os.path.basename(yaml_path))[0] + ".pgm"
    img_path = image if os.path.isabs(image) else os.path.join(os.path.dirname(yaml_path),
                                                               image)
    os.makedirs(os.path.dirname(os.path.abspath(img_path)), exist_ok=True)
    img = value_to_pixel(occ_map.values[::-1], negate, occupied_thresh, free_thresh, mode)
    back = pixel_to_value(img, 255, negate, occupied_thresh, free_thresh, mode)[::-1]
    want = occ_map.values if mode == "raw" else np.where(
        occ_map.values > 50, OCCUPIED, np.where(occ_map.values < 0, UNKNOWN, FREE))
    if not np.array_equal(back, want):
        raise MapError("thresholds %r / %r leave no pixel value for unknown cells"
                       % (free_thresh, occupied_thresh))
    write_pgm(img_path, img, binary=binary, comment=comment)
    doc = ("image: %s\nmode: %s\nresolution: %r\norigin: [%r, %r, 0.0]\nnegate: %d\n"
           "occupied_thresh: %r\nfree_thresh: %r\n"
           % (image, mode, occ_map.resolution, occ_map.origin_x, occ_map.origin_y,
              int(bool(negate)), float(occupied_thresh), float(free_thresh)))
    try:
        with open(yaml_path, "w") as f:
            f.write(doc)
    except OSError as e:
        raise MapError("cannot write %s: %s" % (yaml_path, e.strerror or e)) from e
    return yaml_path, img_path


# --------------------------------------------------------------------------- simulator
