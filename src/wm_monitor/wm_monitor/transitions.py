"""High-error transitions, logged to MCAP on disk for retraining the world model.

`SegmentSelector` keeps the current run of consecutive evaluated steps (one payload, no gap).
When a step's world-model position error exceeds the threshold it hands out a *segment*: the
last `segment_steps` steps of the run up to and including that step (fewer at the start of a
run), so a rollout loss over 10 steps can train on it. Segments never share a step: a high
error whose segment would overlap the previous one is counted (`overlapping`), not logged
(two segments may share their boundary state). One segment, as JSON:

    {"robot": "robot1", "model_version": "worldmodel-1.0.0",
     "payload": 20.0,                      # kg, -1 = unknown
     "dt": 0.1,                            # s, the control period
     "t": [N],                             # s, stamps of the states (the command times)
     "states": [[x, y, yaw, v, w]] * N,    # localization pose (map, yaw unwrapped along the
                                           # segment), wheel-odometry twist
     "actions": [[v, w]] * N,              # the command of each t (held until the next)
     "error": [N]}                         # m, one-step world-model position error of
                                           # arriving at state i; null (NaN) where unknown

N = steps + 1 states (the first state's error is unknown unless the run went on before):
the same fields as a `wm_world_model.data.Trajectory` at the control rate.

`TransitionLog` writes one MCAP message per segment (topic `/wm/transitions`, schema
`wm_monitor/TransitionSegment`, jsonschema, message encoding json) into
`transitions-<UTC start time>-<seq>.mcap` files in a directory, each at most `max_file_bytes`
(footer included), at most `max_files` of them (the oldest deleted). Every segment ends its
own (small) chunk, and the file is flushed to the OS (and fsynced) before `write` returns:
a crash loses at most the segment being written. `read_segments` reads files whose writer
was killed too (no footer, no summary, a truncated last record).

Plain Python + mcap, no rclpy; Python 3.8.
"""
from __future__ import annotations

import json
import math
import os
import re
import time
from collections import Counter, deque
from typing import Any, Callable, Deque, Dict, Iterable, List, Optional, Tuple, Union

SCHEMA_NAME = "wm_monitor/TransitionSegment"
TOPIC = "/wm/transitions"
FILE_RE = re.compile(r"^transitions-(\d{8}T\d{6}Z)-(\d+)\.mcap$")

SEGMENT_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": SCHEMA_NAME,
    "description": "Consecutive control steps of one robot around a high world-model "
                   "prediction error, for retraining (wm_monitor.transitions).",
    "type": "object",
    "required": ["robot", "model_version", "payload", "dt", "t", "states", "actions",
                 "error"],
    "properties": {
        "robot": {"type": "string"},
        "model_version": {"type": "string"},
        "payload": {"type": "number", "description": "kg, -1 = unknown"},
        "dt": {"type": "number", "description": "control period [s]"},
        "t": {"type": "array", "items": {"type": "number"},
              "description": "stamps of the states [s]"},
        "states": {"type": "array", "items": {"type": "array", "items": {"type": "number"},
                                              "minItems": 5, "maxItems": 5},
                   "description": "[x, y, yaw, v, w]: localization pose (map), odometry "
                                  "twist"},
        "actions": {"type": "array", "items": {"type": "array", "items": {"type": "number"},
                                               "minItems": 2, "maxItems": 2},
                    "description": "[v, w] command of each t"},
        "error": {"type": "array", "items": {"type": ["number", "null"]},
                  "description": "one-step position error arriving at each state [m]; null "
                                 "= unknown"},
    },
}
_SCHEMA_BYTES = json.dumps(SEGMENT_SCHEMA, separators=(",", ":")).encode()

# Bytes a file needs besides its messages' JSON (magic, header, schema and channel in the
# first chunk and again in the summary, statistics, summary offsets, data end, footer), and
# per message (message, chunk and message-index records, its chunk index in the summary).
# Measured with mcap 1.6: a summary of ~1.5 kB plus ~90 B per chunk; a 20-step segment is
# 1.4 kB of JSON, ~320 B in the file (zstd). The uncompressed size plus these margins keeps
# every file under its limit (tested).
FILE_OVERHEAD = 2 * len(_SCHEMA_BYTES) + 1024
SEGMENT_OVERHEAD = 320


class SegmentTooLarge(ValueError):
    """A segment that does not fit into an empty file of the size limit."""


def _num(v: float) -> Optional[float]:
    return float(v) if math.isfinite(v) else None


def _unwrap(yaws: List[float]) -> List[float]:
    out = [yaws[0]]
    for y in yaws[1:]:
        d = (y - out[-1] + math.pi) % (2.0 * math.pi) - math.pi
        out.append(out[-1] + d)
    return out


class SegmentSelector:
    """The run of consecutive steps, and the segments to log out of it."""

    def __init__(self, segment_steps: int = 20, threshold: float = 0.05):
        if segment_steps < 1:
            raise ValueError("segment_steps must be >= 1")
        self.segment_steps = int(segment_steps)
        self.threshold = float(threshold)
        # (t, state, action, error arriving there) of the run's last states
        self._run: Deque[Tuple[float, Tuple[float, ...], Tuple[float, float], float]] = \
            deque(maxlen=self.segment_steps + 1)
        self._payload: Optional[float] = None
        self._last_end = -math.inf   # t of the last logged segment's last state
        self.overlapping = 0         # high-error steps inside an already logged segment
        self.selected = 0

    def add(self, r) -> Optional[Dict[str, Any]]:
        """Append a StepResult; the segment to log when its error passes the threshold."""
        if not self._run or self._run[-1][0] != r.t0:
            self._run.clear()   # a new run: the previous step did not end where this starts
            self._run.append((r.t0, tuple(r.state0), tuple(r.action0), float("nan")))
            self._payload = r.payload
        self._run.append((r.t1, tuple(r.state1), tuple(r.action1), r.position_error))
        if not (r.position_error > self.threshold):   # NaN never logs
            return None
        if self._run[0][0] < self._last_end:
            self.overlapping += 1
            return None
        self._last_end = r.t1
        self.selected += 1
        rows = list(self._run)
        yaws = _unwrap([s[2] for _, s, _, _ in rows])
        return {
            "payload": -1.0 if self._payload is None else float(self._payload),
            "t": [float(t) for t, _, _, _ in rows],
            "states": [[float(s[0]), float(s[1]), float(yaw), float(s[3]), float(s[4])]
                       for (_, s, _, _), yaw in zip(rows, yaws)],
            "actions": [[float(a[0]), float(a[1])] for _, _, a, _ in rows],
            "error": [_num(e) for _, _, _, e in rows],
        }


def _encode(segment: Dict[str, Any]) -> bytes:
    return json.dumps(segment, separators=(",", ":"), allow_nan=False).encode()


class TransitionLog:
    """Segments into size-bounded, rotated MCAP files (see the module docstring).

    `write` raises OSError (disk full, permissions) and SegmentTooLarge; the caller counts
    them and goes on."""

    def __init__(self, directory: str, max_file_bytes: int = 64 * 10 ** 6,
                 max_files: int = 20, robot: str = "", model_version: str = "",
                 dt: float = 0.1, fsync: bool = True,
                 wall_clock: Callable[[], float] = time.time):
        if max_files < 1:
            raise ValueError("max_files must be >= 1")
        if max_file_bytes < FILE_OVERHEAD + SEGMENT_OVERHEAD:
            raise ValueError("max_file_bytes must be at least %d"
                             % (FILE_OVERHEAD + SEGMENT_OVERHEAD))
        self.directory = directory
        self.max_file_bytes = int(max_file_bytes)
        self.max_files = int(max_files)
        self.robot = robot
        self.model_version = model_version
        self.dt = float(dt)
        self.fsync = fsync
        self._wall = wall_clock
        self._seq = 0
        self._file = None
        self._writer = None
        self._channel = 0
        self._messages = 0
        self.path: Optional[str] = None
        self.segments = 0            # written and flushed
        self.files_opened = 0
        self.files_deleted = 0

    # ---------------------------------------------------------------- files
    def files(self) -> List[str]:
        """Transition log files in the directory, oldest first."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        found = []
        for n in names:
            m = FILE_RE.match(n)
            if m:
                found.append((m.group(1), int(m.group(2)), n))
        return [os.path.join(self.directory, n) for _, _, n in sorted(found)]

    def _open(self) -> None:
        from mcap.writer import CompressionType, Writer

        os.makedirs(self.directory, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self._wall()))
        while True:
            path = os.path.join(self.directory, "transitions-%s-%06d.mcap" % (stamp, self._seq))
            self._seq += 1
            try:
                f = open(path, "xb")
                break
            except FileExistsError:
                continue
        try:
            import zstandard  # noqa: F401
            compression = CompressionType.ZSTD
        except ImportError:  # pragma: no cover - zstandard is in requirements.lock
            compression = CompressionType.NONE
        self._file, self.path = f, path
        # Chunks are ended by hand (Writer.flush) after every segment; chunk_size only
        # bounds a chunk should that ever not happen.
        self._writer = Writer(f, chunk_size=256 * 1024, compression=compression)
        self._writer.start(profile="", library="wm_monitor")
        schema = self._writer.register_schema(SCHEMA_NAME, "jsonschema", _SCHEMA_BYTES)
        self._channel = self._writer.register_channel(TOPIC, "json", schema)
        self._messages = 0
        self.files_opened += 1
        self._prune()

    def _prune(self) -> None:
        files = self.files()
        while len(files) > self.max_files:
            oldest = files.pop(0)
            if oldest == self.path:
                continue
            try:
                os.remove(oldest)
                self.files_deleted += 1
            except FileNotFoundError:
                pass

    def close(self) -> None:
        """Finish the current file (summary and footer) and close it."""
        if self._writer is not None:
            try:
                self._writer.finish()
                self._sync()
            finally:
                self._file.close()
                self._writer = self._file = None

    def _abandon(self) -> None:
        try:
            self._file.close()
        except OSError:
            pass
        self._writer = self._file = None

    def _sync(self) -> None:
        self._file.flush()
        if self.fsync:
            os.fsync(self._file.fileno())

    def _size(self) -> int:
        return self._file.tell()

    # ---------------------------------------------------------------- segments
    def write(self, segment: Dict[str, Any], log_time: Optional[float] = None) -> str:
        """Write one segment, end its chunk and flush it to disk; returns the file's path."""
        seg = {"robot": self.robot, "model_version": self.model_version, "dt": self.dt}
        seg.update(segment)
        data = _encode(seg)
        need = len(data) + SEGMENT_OVERHEAD
        if FILE_OVERHEAD + need > self.max_file_bytes:
            raise SegmentTooLarge("a segment of %d bytes does not fit into files of %d"
                                  % (len(data), self.max_file_bytes))
        if self._writer is not None and \
                self._size() + need + FILE_OVERHEAD + SEGMENT_OVERHEAD * self._messages \
                > self.max_file_bytes:
            self.close()
        if self._writer is None:
            self._open()
        if log_time is None:
            log_time = seg["t"][-1] if seg.get("t") else self._wall()
        ns = max(0, int(round(float(log_time) * 1e9)))
        try:
            self._writer.add_message(self._channel, log_time=ns, data=data, publish_time=ns,
                                     sequence=self.segments)
            self._writer.flush()   # ends the chunk and writes it out (mcap >= 1.6)
            self._sync()
        except OSError:
            # disk full, I/O error: this file ends here (readable up to its last complete
            # chunk); the next segment starts a new one
            self._abandon()
            raise
        self._messages += 1
        self.segments += 1
        return self.path


# -------------------------------------------------------------------- reading
def _paths(paths: Union[str, os.PathLike, Iterable[Union[str, os.PathLike]]]) -> List[str]:
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: List[str] = []
    for p in paths:
        p = os.fspath(p)
        if os.path.isdir(p):
            out += TransitionLog(p).files()
        else:
            out.append(p)
    return out


def read_file(path: str) -> Tuple[List[Dict[str, Any]], str]:
    """(segments, '') of one file, or (the segments before it, why) when the file ends
    early (a killed writer: no footer, a truncated last record) or is damaged there."""
    from mcap.records import Channel, Footer, Message, Schema
    from mcap.stream_reader import StreamReader

    out: List[Dict[str, Any]] = []
    schemas: Dict[int, str] = {}
    channels: Dict[int, Tuple[str, int]] = {}
    complete = False
    with open(path, "rb") as f:
        reader = StreamReader(f, validate_crcs=True)
        try:
            for rec in reader.records:
                if isinstance(rec, Schema):
                    schemas[rec.id] = rec.name
                elif isinstance(rec, Channel):
                    channels[rec.id] = (rec.topic, rec.schema_id)
                elif isinstance(rec, Message):
                    topic, schema_id = channels.get(rec.channel_id, ("", 0))
                    if topic == TOPIC and schemas.get(schema_id) == SCHEMA_NAME:
                        out.append(_decode(rec.data))
                elif isinstance(rec, Footer):
                    complete = True
        except Exception as e:  # any damage ends the readable part of the file
            return out, "%s: %s" % (type(e).__name__, e)
    return out, "" if complete else "no footer"


def _decode(data: bytes) -> Dict[str, Any]:
    seg = json.loads(data)
    seg["error"] = [float("nan") if e is None else float(e) for e in seg.get("error", [])]
    return seg


def read_segments(paths) -> List[Dict[str, Any]]:
    """Every segment in the files (a directory: its transition logs, oldest first), including
    files whose writer was killed: reading stops cleanly at a truncated record."""
    out: List[Dict[str, Any]] = []
    for p in _paths(paths):
        out += read_file(p)[0]
    return out


def summarize(segments: Iterable[Dict[str, Any]]) -> Dict[str, Any]:
    """Counts for a report: segments, steps, robots, payloads, worst error."""
    segs = list(segments)
    errs = [e for s in segs for e in s.get("error", []) if math.isfinite(e)]
    return {"segments": len(segs), "states": sum(len(s.get("t", [])) for s in segs),
            "robots": sorted(Counter(s.get("robot", "") for s in segs)),
            "payloads": sorted(set(float(s.get("payload", -1.0)) for s in segs)),
            "max_error": max(errs) if errs else float("nan")}
