"""High-error segments: which steps a segment holds (no overlap, runs cut at gaps), the MCAP
files (size bound, rotation, oldest deleted), reading files whose writer died (truncated at
every byte), and a real crash: a writer process SIGKILLed mid-stream loses nothing it reported
as flushed."""
from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from wm_monitor.prediction_error import StepResult
from wm_monitor.transitions import (FILE_RE, SCHEMA_NAME, TOPIC, SegmentSelector,
                                    SegmentTooLarge, TransitionLog, read_file, read_segments,
                                    summarize)

DT = 0.1


def step(k, err, payload=None, t0=100.0, yaw0=3.0):
    """StepResult of step k (t0 + k dt -> t0 + (k+1) dt) with a given error."""
    def state(i):
        return (0.05 * i, 1.0, yaw0 + 0.1 * i, 0.5, 1.0)   # yaw crosses +pi at i ~ 2
    return StepResult(t0=t0 + k * DT, t1=t0 + (k + 1) * DT, state0=state(k),
                      action0=(0.5, 1.0), state1=state(k + 1), action1=(0.5, 1.0),
                      payload=payload, predicted=(0.0, 0.0, 0.0), position_error=err,
                      heading_error=0.0, kinematic_position_error=err,
                      kinematic_heading_error=0.0, inference_s=1e-4)


def segment(i, n=20):
    return {"payload": 10.0, "t": [i + 0.1 * k for k in range(n + 1)],
            "states": [[1.0, 2.0, 0.1, 0.5, 0.0]] * (n + 1),
            "actions": [[0.5, 0.0]] * (n + 1), "error": [None] + [0.01] * n}


def test_segments_end_at_the_high_error_step_and_never_overlap():
    sel = SegmentSelector(segment_steps=20, threshold=0.05)
    out = {}
    for k in range(60):
        err = 0.2 if k in (5, 12, 30, 31, 52) else 0.01
        seg = sel.add(step(k, err, payload=20.0))
        if seg is not None:
            out[k] = seg
    # k=5: the run so far (6 steps); 12 overlaps it; 30: 20 steps ending at 31 (states
    # 11..31); 31 and 52 overlap (52's would start at state 33 > 31: it is logged)
    assert sorted(out) == [5, 30, 52]
    assert sel.overlapping == 2
    s5 = out[5]
    assert len(s5["t"]) == 7 and len(s5["states"]) == 7 and len(s5["actions"]) == 7
    assert s5["t"][-1] == pytest.approx(100.0 + 6 * DT)
    assert s5["error"][0] is None and s5["error"][-1] == 0.2
    assert s5["payload"] == 20.0
    s30 = out[30]
    assert len(s30["t"]) == 21                                  # 20 steps, 21 states
    assert s30["t"][0] == pytest.approx(100.0 + 11 * DT)
    # error[i]: of the step arriving at state 11 + i (step 12's 0.2 is in it, not logged)
    assert s30["error"] == pytest.approx([0.01, 0.01, 0.2] + [0.01] * 17 + [0.2])
    # yaw unwrapped along the segment (it crossed +pi)
    yaws = [s[2] for s in s30["states"]]
    assert all(b - a == pytest.approx(0.1) for a, b in zip(yaws, yaws[1:]))
    assert out[52]["t"][0] >= s30["t"][-1]


def test_a_gap_starts_a_new_run_and_nan_never_logs():
    sel = SegmentSelector(segment_steps=20, threshold=0.05)
    for k in range(10):
        assert sel.add(step(k, 0.01)) is None
    assert sel.add(step(11, float("nan"))) is None            # after a gap (step 10 skipped)
    seg = sel.add(step(12, 0.3))
    assert seg is not None and len(seg["t"]) == 3             # states 11, 12, 13
    assert seg["payload"] == -1.0 and seg["error"][0] is None and seg["error"][1] is None


def test_files_are_bounded_rotated_and_read_back(tmp_path):
    max_bytes = 12_000
    log = TransitionLog(str(tmp_path), max_file_bytes=max_bytes, max_files=3, robot="r1",
                        model_version="worldmodel-1.0.0", dt=DT, fsync=False)
    for i in range(40):
        log.write(segment(i))
        assert os.path.getsize(log.path) <= max_bytes
    log.close()
    files = log.files()
    assert len(files) == 3 and log.files_deleted == log.files_opened - 3
    assert all(FILE_RE.match(os.path.basename(f)) for f in files)
    for f in files:
        assert os.path.getsize(f) <= max_bytes
        segs, why = read_file(f)
        assert why == "" and segs                               # complete, with a footer
    segs = read_segments(str(tmp_path))                         # oldest file first
    starts = [s["t"][0] for s in segs]
    assert starts == sorted(starts) and starts[-1] == 39.0
    assert starts == [float(i) for i in range(40 - len(segs), 40)]   # the newest kept
    s = segs[-1]
    assert s["robot"] == "r1" and s["model_version"] == "worldmodel-1.0.0" and s["dt"] == DT
    assert math.isnan(s["error"][0]) and s["error"][1] == 0.01
    assert summarize(segs)["robots"] == ["r1"]
    # a seeking reader (mcap's own) sees the schema and topic too
    from mcap.reader import make_reader
    with open(files[-1], "rb") as f:
        reader = make_reader(f)
        schema, channel, _ = next(iter(reader.iter_messages()))
        assert schema.name == SCHEMA_NAME and channel.topic == TOPIC
        assert channel.message_encoding == "json" and schema.encoding == "jsonschema"


def test_too_large_segment_is_refused(tmp_path):
    log = TransitionLog(str(tmp_path), max_file_bytes=10_000, max_files=2, fsync=False)
    with pytest.raises(SegmentTooLarge):
        log.write(segment(0, n=400))
    assert log.files() == []
    with pytest.raises(ValueError):
        TransitionLog(str(tmp_path), max_file_bytes=100)


def test_a_file_cut_anywhere_reads_up_to_the_cut(tmp_path):
    """What a writer that died leaves: the file as flushed, then cut at every byte."""
    log = TransitionLog(str(tmp_path / "w"), max_file_bytes=10 ** 6, max_files=2,
                        fsync=False)
    ends = []
    for i in range(5):
        log.write(segment(i, n=3))
        ends.append(os.path.getsize(log.path))   # flushed to the OS when write returns
    data = open(log.path, "rb").read()
    assert len(data) == ends[-1]
    cut = tmp_path / "cut.mcap"
    last = 0
    for n in range(0, len(data) + 1):
        cut.write_bytes(data[:n])
        segs, why = read_file(str(cut))
        assert why                                   # never complete: no footer
        expected = sum(1 for e in ends if e <= n)
        # every segment whose write returned; the next one too once its chunk is complete
        # (its message index record follows the chunk)
        assert expected <= len(segs) <= expected + 1, (n, len(segs), expected)
        assert [s["t"][0] for s in segs] == [float(i) for i in range(len(segs))]
        assert len(segs) >= last
        last = len(segs)
    log.close()


WRITER = textwrap.dedent("""
    import sys
    from wm_monitor.transitions import TransitionLog
    log = TransitionLog(sys.argv[1], max_file_bytes=400_000, max_files=100, robot="crash",
                        model_version="test", dt=0.1)
    i = 0
    while True:
        n = 20
        seg = {"payload": -1.0, "t": [float(i)] + [i + 0.1 * k for k in range(1, n + 1)],
               "states": [[float(i), 2.0, 0.1, 0.5, 0.0]] * (n + 1),
               "actions": [[0.5, 0.0]] * (n + 1), "error": [None] + [0.2] * n}
        log.write(seg)
        print("flushed", i, flush=True)
        i += 1
""")


def test_a_killed_writer_loses_nothing_it_reported_flushed(tmp_path):
    out = tmp_path / "logs"
    p = subprocess.Popen([sys.executable, "-c", WRITER, str(out)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    flushed = []
    try:
        t_end = time.monotonic() + 60.0
        while len(flushed) < 60 and time.monotonic() < t_end:
            line = p.stdout.readline()
            if not line:
                break
            flushed.append(int(line.split()[1]))
        os.kill(p.pid, signal.SIGKILL)                 # mid-stream: it keeps writing
        p.wait(10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert len(flushed) >= 60, p.stderr.read()[-2000:]
    files = sorted(out.iterdir())
    assert files and all(read_file(str(f))[1] for f in files[-1:])   # no footer: killed
    segs = read_segments(str(out))
    got = [int(s["t"][0]) for s in segs]
    assert set(flushed) <= set(got)
    assert got == list(range(len(got)))                # in order, no hole, no duplicate
    assert all(s["robot"] == "crash" and len(s["t"]) == 21 for s in segs)


def test_a_write_error_abandons_the_file_and_the_next_segment_starts_another(tmp_path):
    log = TransitionLog(str(tmp_path), max_file_bytes=10 ** 6, max_files=5, fsync=False)
    log.write(segment(0))
    first = log.path

    def broken():
        raise OSError(28, "No space left on device")
    log._sync = broken
    with pytest.raises(OSError):
        log.write(segment(1))
    del log._sync
    log.write(segment(2))
    assert log.path != first
    log.close()
    assert [s["t"][0] for s in read_segments(str(tmp_path))] == [0.0, 1.0, 2.0]
