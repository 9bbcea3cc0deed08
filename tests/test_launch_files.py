"""Static checks of the launch files (the launch library is not installable here): every
package, executable, parameter file and launch argument they name exists."""
from __future__ import annotations

import ast
import configparser
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LAUNCH = REPO / "launch"


def entry_points(package: str):
    setup_py = (REPO / "src" / package / "setup.py").read_text()
    return set(re.findall(r"['\"](\w+)\s*=\s*[\w.]+:\w+['\"]", setup_py))


def calls(tree, name):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            fname = f.id if isinstance(f, ast.Name) else getattr(f, "attr", None)
            if fname == name:
                yield node


def kwarg(call, key):
    for kw in call.keywords:
        if kw.arg == key:
            return kw.value
    return None


def launch_files():
    return sorted(LAUNCH.glob("*.launch.py"))


def test_robot_launch_exists():
    assert (LAUNCH / "robot.launch.py").exists()


@pytest.mark.parametrize("path", launch_files(), ids=lambda p: p.name)
def test_launch_file_references_exist(path):
    src = path.read_text()
    tree = ast.parse(src)
    compile(src, str(path), "exec")  # syntax
    assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description"
               for n in tree.body)
    nodes = list(calls(tree, "Node")) + list(calls(tree, "LifecycleNode"))
    assert nodes, "no nodes in %s" % path.name
    for call in nodes:
        pkg = kwarg(call, "package").value
        exe = kwarg(call, "executable").value
        if pkg == "rviz2":  # external tool, installed with ROS 2 desktop
            continue
        assert (REPO / "src" / pkg / "package.xml").exists(), "unknown package %s" % pkg
        assert exe in entry_points(pkg), "%s has no executable %s" % (pkg, exe)
        cfg = configparser.ConfigParser()
        cfg.read(REPO / "src" / pkg / "setup.cfg")
        assert cfg.get("install", "install_scripts") == "$base/lib/" + pkg
    # every LaunchConfiguration is declared
    declared = {c.args[0].value for c in calls(tree, "DeclareLaunchArgument")}
    used = {c.args[0].value for c in calls(tree, "LaunchConfiguration")}
    assert used <= declared, "undeclared launch arguments: %s" % (used - declared)
    # every file named next to FindPackageShare('wm_bringup') exists in the installed folders
    for call in calls(tree, "PathJoinSubstitution"):
        parts = call.args[0].elts
        consts = [p.value for p in parts if isinstance(p, ast.Constant)]
        if consts and consts[0] in ("config", "launch"):
            target = REPO.joinpath(*consts)
            assert target.exists(), "%s names missing %s" % (path.name, target)
    for inc in calls(tree, "PythonLaunchDescriptionSource"):
        for c in ast.walk(inc):
            if isinstance(c, ast.Constant) and str(c.value).endswith(".launch.py"):
                assert (LAUNCH / c.value).exists()


def test_bringup_installs_launch_and_config():
    for name in ("launch", "config"):
        link = REPO / "src" / "wm_bringup" / name
        assert link.is_symlink() and link.resolve() == (REPO / name).resolve()
    installed = REPO / "ros2_ws" / "install" / "wm_bringup" / "share" / "wm_bringup"
    for path in launch_files():
        assert (installed / "launch" / path.name).exists()
    assert (installed / "config" / "robot.yaml").exists()
