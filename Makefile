# Entry points of the wm navigation stack. `make setup` is idempotent and fast when nothing changed.
.PHONY: setup test demo bench eval sweep service data train finetune compat clean

setup:
	bash scripts/setup.sh

test: setup
	scripts/with_env bash scripts/run_tests.sh

demo: setup
	scripts/with_env python -m wm_eval.demo

bench: setup
	scripts/with_env python benchmarks/run_all.py

# Interoperability with upstream ROS 2 code (not part of make test): the tests in tests/compat/
# with launch/launch_ros/ros2launch, tf2_ros, nav2_msgs and nav2_simple_commander from
# ROS_OVERLAY, a bash file to source (a ROS 2 install's setup.bash, or a colcon overlay of the
# upstream sources built against this environment; README: Compatibility).
ROS_OVERLAY ?=
compat: setup
	ROS_OVERLAY="$(ROS_OVERLAY)" scripts/with_env bash scripts/run_compat.sh

# Closed-loop scenario suite (config/scenarios/*.yaml) -> EVALUATION.md and out/eval/
eval: setup
	scripts/with_env python -m wm_eval.evaluate

# Seeded in-process episodes x planner configurations (config/sweeps/*.yaml) as Dask tasks
# -> out/sweep/ (results.csv, SWEEP.md, plots): a LocalCluster of WORKERS processes, or the
# running Dask scheduler at SCHEDULER (e.g. tcp://host:8786); SCENARIOS: seeds per config.
SWEEP_CONFIG ?= config/sweeps/default.yaml
WORKERS ?= 2
SCHEDULER ?=
SCENARIOS ?=
sweep: setup
	scripts/with_env python -m wm_eval.sweep --config $(SWEEP_CONFIG) --workers $(WORKERS) \
		$(if $(SCHEDULER),--scheduler $(SCHEDULER)) $(if $(SCENARIOS),--scenarios $(SCENARIOS)) \
		--out out/sweep

# The world-model service (wm_service) on http://127.0.0.1:8080 with the shipped models and no
# auth (loopback only); SERVICE_CONFIG: a service.yaml (deploy/service/service.yaml shows all).
SERVICE_CONFIG ?=
service: setup
	scripts/with_env python -m wm_service $(if $(SERVICE_CONFIG),--config $(SERVICE_CONFIG))

# Driving data for the world model (rosbag2/MCAP bags) -> out/data/
data: setup
	scripts/with_env python -m wm_sim.datagen --out out/data --engine mujoco --robots 2 \
		--episodes 12 --episode-seconds 60 --seed 1 --overwrite

# Retraining loop: fine-tune the deployed world model on the high-error transitions the
# monitor logged (its transitions_dir, copied from the robots into TRANSITIONS); with none
# there, simulated ones (a payload beyond the trained range) -> out/world_model/<next version>
FINETUNE_FROM ?= worldmodel-1.0.0
TRANSITIONS ?= out/transitions
finetune: setup
	scripts/with_env python -m wm_sim.training_data finetune --out out/finetune_bags
	scripts/with_env python -m wm_monitor.finetune --artifact $(FINETUNE_FROM) \
		--transitions $(TRANSITIONS) --out out/world_model --simulated-bags out/finetune_bags

# World model: records its driving data if missing (out/wm_data/, by the tool
# wm_sim.training_data), trains, evaluates and compares the result with the shipped artifact (see config/world_model/train.yaml).
WM_SHIPPED := src/wm_world_model/models/worldmodel-1.0.0
train: setup
	scripts/with_env python -m wm_sim.training_data train config/world_model/train.yaml
	scripts/with_env python -m wm_world_model.train --config config/world_model/train.yaml \
		--out out/world_model --compare $(WM_SHIPPED)
	scripts/with_env python -m wm_world_model.evaluate --artifact out/world_model/worldmodel-1.0.0 \
		--config config/world_model/train.yaml --out out/world_model/eval

# Removes build products and caches; keeps .venv (rm -rf .venv to reinstall it).
clean:
	rm -rf ros2_ws/build ros2_ws/install ros2_ws/log out .pytest_cache .ruff_cache .hypothesis
	find src tests -name __pycache__ -type d -prune -exec rm -rf {} +
