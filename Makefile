# Entry points of the wm navigation stack. `make setup` is idempotent and fast when nothing changed.
.PHONY: setup test demo bench clean

setup:
	bash scripts/setup.sh

test: setup
	scripts/with_env bash scripts/run_tests.sh

demo: setup
	scripts/with_env python -m wm_bringup.demo

bench: setup
	scripts/with_env python benchmarks/run_all.py

# Removes build products and caches; keeps .venv (rm -rf .venv to reinstall it).
clean:
	rm -rf ros2_ws/build ros2_ws/install ros2_ws/log out .pytest_cache .ruff_cache .hypothesis
	find src tests -name __pycache__ -type d -prune -exec rm -rf {} +
