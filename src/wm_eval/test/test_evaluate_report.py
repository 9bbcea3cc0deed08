"""EVALUATION.md is written part by part: a run of some parts keeps the others' sections and
headline lines (wm_eval.evaluate.read_report and main)."""
from __future__ import annotations

from wm_eval import evaluate

REPORT = """# Evaluation

Written by `make eval`.

- Date: 2026-01-01

## Headline

- In process, world_model: **9 of 10** episodes as they should (90.0 %).
- In process, kinematic: **10 of 10** episodes as they should (100.0 %).
- Full stack over DDS, 4 robots sharing the fleet: **7 of 8** goals (87.5 %).

## 1. Seeded episodes in process (20 episodes, 1 min)

| family | success |
|---|---:|
| single | 95 % |

## 2. The full stack over DDS: 4 robots, 8 goals (2 min)

fleet table

## 3. Named scenarios through the full stack (3 min)

### Against the case study

scenario table
"""


def test_read_report_finds_each_parts_section_and_headline():
    sections, headline = evaluate.read_report(REPORT)
    assert set(sections) == {"episodes", "fleet", "scenarios"}
    assert sections["episodes"].startswith("## 1. Seeded") and "| single | 95 % |" in \
        sections["episodes"] and "## 2." not in sections["episodes"]
    assert sections["scenarios"].rstrip().endswith("scenario table")
    assert [x.split(":")[0] for x in headline["episodes"]] == [
        "- In process, world_model", "- In process, kinematic"]
    assert headline["fleet"][0].startswith("- Full stack over DDS")
    assert evaluate.read_report("") == ({}, {})


def test_a_run_of_no_part_keeps_every_section(tmp_path):
    report = tmp_path / "EVALUATION.md"
    report.write_text(REPORT)
    assert evaluate.main(["--parts", "", "--report", str(report),
                          "--out", str(tmp_path / "out")]) == 0
    text = report.read_text()
    for kept in ("**9 of 10**", "**7 of 8**", "| single | 95 % |", "fleet table",
                 "scenario table"):
        assert text.count(kept) == 1, kept
    assert text.index("## 1.") < text.index("## 2.") < text.index("## 3.")
