"""Grid2D: the plane's float grid, with the optional never-observed mask."""
import numpy as np
import pytest

from wm_common.grid import Grid2D


def test_a_grid_refuses_an_unknown_mask_of_another_shape():
    with pytest.raises(ValueError, match="unknown mask"):
        Grid2D(0.0, 0.0, 0.1, np.zeros((3, 4)), unknown=np.zeros((4, 3), dtype=bool))
    g = Grid2D(0.0, 0.0, 0.1, np.zeros((3, 4)), unknown=np.ones((3, 4), dtype=np.uint8))
    assert g.unknown.dtype == bool and g.unknown.all()
    assert Grid2D(0.0, 0.0, 0.1, np.zeros((3, 4))).unknown is None
