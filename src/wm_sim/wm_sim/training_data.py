"""Record the simulated driving data a training run asks for (a tool beside the stack: the
trainers in wm_world_model and wm_monitor read bags and never import the simulator).

    python -m wm_sim.training_data train config/world_model/train.yaml
        every `data.generate` entry of the world model's training config whose directory has
        no bags yet (deterministic for its seed), as `make train` does first
    python -m wm_sim.training_data finetune --out out/finetune_bags [--config FINETUNE_YAML]
        the `simulate` section of wm_monitor.finetune's config: driving with a payload beyond
        the trained range and low friction, for `wm_monitor.finetune --simulated-bags`
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, Dict, Mapping, Optional, Sequence

from wm_monitor.finetune import load_config as load_finetune_config
from wm_sim import datagen
from wm_world_model.data import bag_dirs
from wm_world_model.train import load_config as load_train_config


def record(spec: Mapping[str, Any], log=print) -> None:
    """Record driving data with wm_sim.datagen: `spec` is {out, <datagen option>: value}
    (option names with '_', lists as lists), as in the training config's data.generate."""
    out = spec["out"]
    argv = ["--out", out, "--quiet"]
    for key, value in spec.items():
        if key == "out":
            continue
        if isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        argv += ["--" + key.replace("_", "-"), str(value)]
    log("recording %s (wm_sim.datagen %s)" % (out, " ".join(argv)))
    t0 = time.time()
    if datagen.main(argv) != 0:
        raise RuntimeError("wm_sim.datagen failed for %s" % out)
    log("recorded %s in %.0f s" % (out, time.time() - t0))


def ensure_train_data(cfg: Mapping[str, Any], log=print) -> int:
    """Record the configured data sets that are not there yet; how many were recorded."""
    n = 0
    for spec in cfg["data"]["generate"]:
        if not (os.path.isdir(spec["out"]) and bag_dirs([spec["out"]])):
            record(spec, log)
            n += 1
    return n


def finetune_spec(cfg: Dict[str, Any], out: str) -> Dict[str, Any]:
    """The datagen spec of wm_monitor.finetune's `simulate` section."""
    sim = cfg["simulate"]
    return {"out": out, "engine": "mujoco", "robots": sim["robots"],
            "episodes": sim["episodes"], "episode_seconds": sim["episode_seconds"],
            "seed": sim["seed"], "payloads": sim["payloads"], "frictions": sim["frictions"]}


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="wm_training_data", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    tr = sub.add_parser("train", help="the world model's training data (data.generate)")
    tr.add_argument("config")
    ft = sub.add_parser("finetune", help="simulated driving for wm_monitor.finetune")
    ft.add_argument("--out", required=True)
    ft.add_argument("--config", default="", help="wm_monitor.finetune's YAML overrides")
    a = ap.parse_args(argv)

    def log(s):
        print(s, file=sys.stderr, flush=True)

    if a.cmd == "train":
        n = ensure_train_data(load_train_config(a.config), log)
        log("%d data set(s) recorded" % n)
    elif os.path.isdir(a.out) and bag_dirs([a.out]):
        log("%s has bags already" % a.out)
    else:
        record(finetune_spec(load_finetune_config(a.config), a.out), log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
