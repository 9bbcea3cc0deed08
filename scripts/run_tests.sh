#!/usr/bin/env bash
# Lint, Python 3.8 compatibility check and tests. Run inside the environment:
#   scripts/with_env bash scripts/run_tests.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "== ruff check src tests"
ruff check src tests benchmarks

# Code that runs on the robots must stay Python 3.8 compatible (JetPack 5 / L4T R35).
py_dirs=()
for d in src/*/; do
  pkg="$(basename "$d")"
  [ -d "$d$pkg" ] && py_dirs+=("$d$pkg")
done
if [ ${#py_dirs[@]} -gt 0 ]; then
  echo "== vermin --target=3.8- ${py_dirs[*]}"
  vermin --target=3.8- --violations --no-tips \
    --exclude-regex '(^|/)__pycache__/' "${py_dirs[@]}"
fi

echo "== pytest"
python -m pytest -q "$@"
