"""The README stays true: its parameter tables are the ones the code declares, and it shows
the two commands."""
from __future__ import annotations

import importlib.util

import yaml
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def load_param_tables():
    spec = importlib.util.spec_from_file_location("param_tables",
                                                  REPO / "scripts" / "param_tables.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_readme_parameter_tables_match_declarations():
    mod = load_param_tables()
    text = (REPO / "README.md").read_text()
    assert mod.section() in text, ("README parameter tables are out of date: run "
                                   "scripts/with_env python scripts/param_tables.py --write")
    # ... and so is the file of every parameter at its documented default
    assert mod.DEFAULTS.read_text() == mod.defaults_yaml(), (
        "config/defaults/all_parameters.yaml is out of date: run param_tables.py --write")
    documented = set()
    for body in yaml.safe_load(mod.DEFAULTS.read_text()).values():
        documented |= set(body["ros__parameters"])
    declared = {p.name for _, specs in mod.NODES for p in specs}
    assert documented == declared


def test_readme_shows_the_two_commands_and_benchmarks():
    text = (REPO / "README.md").read_text()
    for needle in ("make demo", "make test", "make bench", "BENCHMARKS.md",
                   "ros2 launch wm_bringup robot.launch.py"):
        assert needle in text
