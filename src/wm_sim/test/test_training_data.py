"""The tool that records what a training config asks for: missing data sets only."""
import yaml

from wm_sim.training_data import finetune_spec, main
from wm_world_model.data import bag_dirs
from wm_monitor.finetune import load_config as load_finetune_config


def test_train_records_each_missing_data_set_once(tmp_path, capsys):
    out = tmp_path / "wm_data" / "train"
    cfg = tmp_path / "train.yaml"
    cfg.write_text(yaml.safe_dump({"data": {"roots": [str(out)], "generate": [
        {"out": str(out), "engine": "kinematic", "robots": 1, "episodes": 1,
         "episode_seconds": 3, "seed": 5}]}}))
    assert main(["train", str(cfg)]) == 0
    assert len(bag_dirs([str(out)])) == 1
    assert "1 data set(s) recorded" in capsys.readouterr().err
    assert main(["train", str(cfg)]) == 0                 # there already: nothing recorded
    assert "0 data set(s) recorded" in capsys.readouterr().err


def test_finetune_spec_is_the_monitors_simulate_section():
    spec = finetune_spec(load_finetune_config(""), "bags")
    assert spec["out"] == "bags" and spec["engine"] == "mujoco"
    assert spec["payloads"] == [250.0] and spec["frictions"] == [0.4]
