"""Where the evaluation tools find the stack's files.

REPO: the source tree (reports such as EVALUATION.md, the shipped models); with colcon's
symlink install this module resolves into it. share_dir(): wm_bringup's installed share
directory (config/, launch/) when installed, else the source tree, whose top-level config/ and
launch/ are the same folders.
"""
from __future__ import annotations

from pathlib import Path

from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

REPO = Path(__file__).resolve().parents[3]


def share_dir() -> Path:
    """config/ and launch/ as installed (share/wm_bringup), else the repo's folders."""
    try:
        return Path(get_package_share_directory("wm_bringup"))
    except (PackageNotFoundError, LookupError, OSError, ValueError):   # not installed
        return REPO
