#!/usr/bin/env bash
# Power mode of the robot's Jetson AGX Xavier for the navigation stack: nvpmodel mode 0 (MAXN on
# the AGX Xavier) and jetson_clocks (CPU/GPU/EMC clocks locked at the mode's maximum).
#
# Why: the planner has a 20 ms budget per cycle (config/robot.yaml time_budget_ms) and the
# perception -> cmd_vel latency matters for the safety margins; with dynamic frequency scaling
# the clocks ramp up only after load appears, which shows up as latency spikes. The nvpmodel
# mode persists across reboots, jetson_clocks does not: wm-robot.service runs this script
# before every start (ExecStartPre, allowed to fail).
#
# Never run on a Jetson: written from NVIDIA's documentation of nvpmodel / jetson_clocks
# (L4T R35); see jetson/README.md.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: power_mode.sh [--check] [--mode N] [--no-clocks]
  (no option)  set nvpmodel mode 0 (MAXN on a Jetson AGX Xavier) and run jetson_clocks (root)
  --check      only report the current nvpmodel mode (and clocks when root); change nothing.
               exit 0 when the current mode is the wanted one (--mode, default 0), 1 when not
  --mode N     the wanted nvpmodel mode ID (IDs differ per module: see /etc/nvpmodel.conf)
  --no-clocks  do not run jetson_clocks
exit status: 0 ok, 1 mode differs / setting failed, 2 usage error, 3 not a Jetson (no
nvpmodel), 4 not root (setting needs root)
EOF
}

die() { echo "power_mode.sh: $1" >&2; exit "$2"; }

mode=0
check=0
clocks=1
while [ $# -gt 0 ]; do
  case "$1" in
    --check) check=1 ;;
    --mode)
      [ $# -ge 2 ] || die "--mode needs a number" 2
      mode="$2"; shift ;;
    --mode=*) mode="${1#--mode=}" ;;
    --no-clocks) clocks=0 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" 2 ;;
  esac
  shift
done
case "$mode" in ''|*[!0-9]*) die "--mode must be a non-negative integer, got '$mode'" 2 ;; esac

if ! command -v nvpmodel >/dev/null 2>&1; then
  die "nvpmodel not found: this is not a Jetson (or JetPack's nvpmodel is not installed); nothing changed" 3
fi

model="unknown module"
if [ -r /proc/device-tree/model ]; then
  model="$(tr -d '\0' </proc/device-tree/model)"
fi
echo "module: $model"
if [ -r /etc/nv_tegra_release ]; then
  echo "L4T: $(head -n 1 /etc/nv_tegra_release)"
fi
case "$model" in
  *AGX\ Xavier*) ;;
  *) [ "$mode" != 0 ] || echo "power_mode.sh: warning: mode 0 is MAXN on the AGX Xavier; this module may number its modes differently" >&2 ;;
esac

# `nvpmodel -q` prints "NV Power Mode: <name>" and then the mode ID on a line of its own.
query_mode() {
  local out
  out="$(nvpmodel -q 2>&1)" || { echo "power_mode.sh: nvpmodel -q failed: $out" >&2; return 1; }
  current_name="$(printf '%s\n' "$out" | sed -n 's/^NV Power Mode: *//p' | head -n 1)"
  current_id="$(printf '%s\n' "$out" | grep -E '^[0-9]+$' | tail -n 1 || true)"
  if [ -z "$current_id" ]; then
    echo "power_mode.sh: cannot read the mode ID from nvpmodel -q output:" >&2
    printf '%s\n' "$out" >&2
    return 1
  fi
}

current_name=""
current_id=""
query_mode || exit 1
echo "nvpmodel: mode $current_id (${current_name:-unnamed}); wanted: mode $mode"

if [ "$check" = 1 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v jetson_clocks >/dev/null 2>&1; then
    jetson_clocks --show || echo "power_mode.sh: jetson_clocks --show failed" >&2
  else
    echo "clocks: not shown (jetson_clocks --show needs root and jetson_clocks)"
  fi
  [ "$current_id" = "$mode" ] || { echo "power_mode.sh: mode $current_id is not the wanted mode $mode" >&2; exit 1; }
  exit 0
fi

[ "$(id -u)" -eq 0 ] || die "setting the power mode needs root (sudo $0, or systemd's ExecStartPre=+...)" 4

if [ "$current_id" != "$mode" ]; then
  echo "setting nvpmodel mode $mode"
  # stdin from /dev/null: nvpmodel may ask whether to reboot; nobody answers under systemd.
  nvpmodel -m "$mode" </dev/null || die "nvpmodel -m $mode failed" 1
  query_mode || exit 1
  if [ "$current_id" != "$mode" ]; then
    die "nvpmodel still reports mode $current_id after setting $mode (does the change need a reboot?)" 1
  fi
  echo "nvpmodel: now mode $current_id (${current_name:-unnamed})"
fi

if [ "$clocks" = 1 ]; then
  command -v jetson_clocks >/dev/null 2>&1 || die "jetson_clocks not found (part of JetPack's nvidia-l4t-tools)" 1
  jetson_clocks || die "jetson_clocks failed" 1
  echo "jetson_clocks: clocks locked at the maximum of mode $mode"
fi
