"""The external checkers the deployment-file tests run (hadolint, shellcheck, promtool,
ansible, systemd-analyze...): found in the venv or on PATH, run with captured output."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def tool(name: str) -> str:
    """Path of a checker; fails (does not skip) when it is missing."""
    venv_bin = Path(sys.executable).parent / name
    found = str(venv_bin) if venv_bin.exists() else shutil.which(name)
    if not found:
        pytest.fail("%s is not installed: run `make test` (scripts/setup.sh installs it)" % name)
    return found


def run(cmd, timeout=60, **kw):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                          timeout=timeout, **kw)
