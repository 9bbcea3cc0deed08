"""The simulator's worlds as map_server maps: the shipped config/maps are exactly what
sim_node publishes on /map."""
import os
from pathlib import Path

import numpy as np
import pytest

from wm_common.map_io import read_map, read_pgm
from wm_sim.map_export import export_world, main, world_map
from wm_sim.scenario import WORLDS, load_world

REPO = Path(__file__).resolve().parents[3]
MAPS = REPO / "config" / "maps"


@pytest.mark.parametrize("name", sorted(WORLDS))
def test_shipped_maps_match_the_simulator(name):
    """config/maps/<world>.yaml is exactly what sim_node publishes on /map (a drift
    fails: regenerate with `python -m wm_sim.map_export export config/maps`)."""
    shipped = read_map(str(MAPS / (name + ".yaml")))
    world = load_world(name)
    occ, origin = world.rasterize(0.05)
    assert shipped.resolution == 0.05
    assert (shipped.origin_x, shipped.origin_y) == (origin.x, origin.y)
    np.testing.assert_array_equal(shipped.occupied, occ > 0)
    assert not shipped.unknown.any()
    # Where the boxes are: every box centre occupied, every spawn and goal free.
    for box in world.boxes:
        ix, iy, inside = shipped.world_to_cell(np.array([box.cx, box.cy]))
        assert inside and shipped.occupied[iy, ix], box.name
    for pose in list(world.spawns.values()) + list(world.goals.values()):
        ix, iy, inside = shipped.world_to_cell(np.array([pose.x, pose.y]))
        assert inside and shipped.free[iy, ix]
    # And the same bytes as the simulator's own map_server writer.
    assert read_pgm(str(MAPS / (name + ".pgm")))[0].tolist() == \
        np.where(occ[::-1] >= 50, 0, 254).tolist()


def test_export_world_writes_a_readable_pair(tmp_path):
    yaml_path, pgm_path = export_world("test_scene", str(tmp_path), 0.1)
    assert os.path.basename(pgm_path) == "test_scene.pgm"
    m = read_map(yaml_path)
    np.testing.assert_array_equal(m.values, world_map(load_world("test_scene"), 0.1).values)


def test_the_command_line_exports_the_named_world(tmp_path, capsys):
    assert main(["export", str(tmp_path), "--world", "gap_room", "--resolution", "0.1"]) == 0
    assert sorted(os.listdir(tmp_path)) == ["gap_room.pgm", "gap_room.yaml"]
    assert "gap_room.yaml" in capsys.readouterr().out
