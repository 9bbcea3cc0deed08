"""The house's layers (ARCHITECTURE.md), read from the code's imports.

    floor -1 wm_msgs                                    the interfaces (messages, actions)
    floor 0  wm_common                                  the ground: geometry, grids, ROS glue
    floor 1  wm_perception, wm_world_model, wm_fleet    what the robot sees, predicts, shares
    floor 2  wm_planner                                 plans with the three below
    floor 3  wm_safety, wm_monitor                      guard the wheels, watch the model
    floor 4  wm_bringup, wm_service                     start it all, serve it
    beside   wm_sim, wm_gazebo, wm_eval                 tools: they import the stack, nothing
                                                        on a floor imports them

Every module of every package (tests excepted) is parsed with `ast`:

* a module on a floor imports project packages only from lower floors or its own package
  (siblings on one floor do not import each other: that is how loops start);
* no module on a floor imports a tool package;
* no module on a floor places a project import inside a function, where it would hide a
  dependency (or a loop) from the reader and from this test; development tools inside a
  package (TOOL_MODULES of tests/test_package_deps.py: trainers, offline inspection) may.

Plain Python: nothing is imported from the packages.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from test_package_deps import TOOL_MODULES

SRC = Path(__file__).resolve().parents[1] / "src"

FLOORS = {
    "wm_msgs": -1, "wm_common": 0,
    "wm_perception": 1, "wm_world_model": 1, "wm_fleet": 1,
    "wm_planner": 2,
    "wm_safety": 3, "wm_monitor": 3,
    "wm_bringup": 4, "wm_service": 4,
}
TOOLS = {"wm_sim", "wm_gazebo", "wm_eval"}


def python_packages():
    return sorted(d.name for d in SRC.glob("wm_*") if (d / d.name).is_dir())


def module_imports(path: Path, package: str):
    """[(imported module, line, inside a function)] of the project's packages (wm_*);
    relative imports resolve to `package`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                      ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((a.name, child.lineno, in_function) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                name = package if child.level else (child.module or "")
                found.append((name, child.lineno, in_function))
            visit(child, inner)

    visit(tree, False)
    return [(m, line, fn) for m, line, fn in found if m.split(".")[0].startswith("wm_")]


def problems_of(package: str, src: Path = SRC, floors=None, tools=None, tool_modules=None):
    floors = FLOORS if floors is None else floors
    tools = TOOLS if tools is None else tools
    tool_modules = TOOL_MODULES if tool_modules is None else tool_modules
    out = []
    if package in tools:
        return out
    if package not in floors:
        return ["%s is on no floor: add it to FLOORS or TOOLS in tests/test_layers.py and to "
                "ARCHITECTURE.md" % package]
    root = src / package
    for path in sorted((root / package).rglob("*.py")):
        rel = path.relative_to(src).as_posix()
        if {"test", "tests"} & set(path.relative_to(root).parts):
            continue
        for module, line, in_function in module_imports(path, package):
            top = module.split(".")[0]
            where = "src/%s:%d imports %s" % (rel, line, module)
            if top in tools:
                out.append("%s, a tool beside the stack: nothing on a floor imports a tool"
                           % where)
            elif top != package and top not in floors:
                out.append("%s, which is on no floor" % where)
            elif top != package and floors[top] >= floors[package]:
                out.append("%s (floor %d) from floor %d: imports go down only"
                           % (where, floors[top], floors[package]))
            elif in_function and rel not in tool_modules:
                out.append("%s inside a function: import it at the top of the module" % where)
    return out


@pytest.mark.parametrize("package", python_packages())
def test_imports_go_down_the_floors_and_never_to_a_tool(package):
    problems = problems_of(package)
    assert not problems, "\n".join(problems)


def test_every_package_is_placed():
    placed = set(FLOORS) | TOOLS
    on_disk = {d.name for d in SRC.glob("wm_*") if (d / "package.xml").is_file()}
    assert on_disk == placed, (sorted(on_disk - placed), sorted(placed - on_disk))
    assert not set(FLOORS) & TOOLS


def test_the_rules_catch_what_they_describe(tmp_path):
    """The checker itself, on a made-up workspace: an upward import, a sibling import, a tool
    import and an import hidden in a function are each reported; a tool may import anything."""
    def write(pkg, name, text):
        d = tmp_path / pkg / pkg
        d.mkdir(parents=True, exist_ok=True)
        (d / name).write_text(text)

    floors = {"wm_low": 0, "wm_a": 1, "wm_b": 1, "wm_high": 2}
    write("wm_low", "up.py", "from wm_high import thing\n")
    write("wm_a", "sib.py", "import wm_b.x\n")
    write("wm_a", "tool.py", "from wm_t.sim import run\n")
    write("wm_high", "hidden.py", "def f():\n    from wm_low import g\n    return g\n")
    write("wm_high", "ok.py", "from wm_low import g\nfrom . import ok2\n\ndef f():\n"
                              "    import json\n    return json\n")
    write("wm_t", "sim.py", "def f():\n    from wm_high import x\n    return x\n")

    def check(pkg):
        return problems_of(pkg, tmp_path, floors, {"wm_t"}, {})

    assert "imports go down only" in check("wm_low")[0]
    assert "imports go down only" in check("wm_a")[0] and len(check("wm_a")) == 2
    assert any("a tool beside the stack" in p for p in check("wm_a"))
    assert check("wm_high") == ["src/wm_high/wm_high/hidden.py:2 imports wm_low inside a "
                                "function: import it at the top of the module"]
    assert check("wm_t") == []
