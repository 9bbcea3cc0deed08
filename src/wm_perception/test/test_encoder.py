"""Scene encoder: shapes, sparse/dense equivalence, transition use, TorchScript export,
a tiny training run and the artifact round trip."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from wm_perception.encoder import (HAVE_SPCONV, ArtifactError, EncoderConfig, SceneModel,
                                   batch_coords, bev_from_cells, cells_from_voxels, features,
                                   load_artifact, save_artifact)
from wm_perception.voxel_grid import voxelize

CFG = EncoderConfig()


def _random_cells(rng, n, cfg=CFG):
    lin = rng.choice(cfg.nx * cfg.ny * cfg.nz, size=n, replace=False)
    return np.stack([lin // (cfg.nx * cfg.ny), (lin // cfg.nx) % cfg.ny, lin % cfg.nx],
                    axis=1).astype(np.int32)


def _batch(seed=0, b=2, n=600):
    rng = np.random.default_rng(seed)
    cl = [_random_cells(rng, n) for _ in range(b)]
    coords = torch.from_numpy(batch_coords(cl))
    feats = torch.from_numpy(features(rng.integers(1, 20, coords.shape[0]), CFG))
    motions = torch.from_numpy(rng.normal(0, 0.3, (b, 2, 5)).astype(np.float32))
    return coords, feats, motions


def _randomise_residual(m):
    """The residual head starts at zero (untrained model == static baseline); give it
    weights so that tests see the latent's (and the motion's) influence."""
    torch.nn.init.normal_(m.dec_out[2].weight, 0.0, 0.5)
    torch.nn.init.normal_(m.dec_out[2].bias, 0.0, 0.5)
    return m


def test_forward_shapes_dense():
    torch.manual_seed(0)
    m = SceneModel(CFG, backend="dense").eval()
    coords, feats, motions = _batch()
    with torch.no_grad():
        z = m.encode(coords, feats, 2)
        assert z.shape == (2, CFG.latent_channels, CFG.ny // 2, CFG.nx // 2)
        z1 = m.next(z, motions[:, 0])
        assert z1.shape == z.shape
        assert m.decode(z1).shape == (2, CFG.ny, CFG.nx)
        occ = m.bev_occupancy(coords, 2)
        assert occ.shape == (2, CFG.ny, CFG.nx)
        assert m.decode(z1, occ).shape == (2, CFG.ny, CFG.nx)
        assert m.predict(coords, feats, motions).shape == (2, 2, CFG.ny, CFG.nx)
        assert m.summary(z).shape == (2, CFG.latent_channels * 16)
        # SimNorm: every group of 8 channels sums to 1 at every site.
        g = z.view(2, -1, CFG.simnorm_group, CFG.ny // 2, CFG.nx // 2).sum(2)
        assert torch.allclose(g, torch.ones_like(g), atol=1e-5)


def test_untrained_model_is_the_static_baseline():
    torch.manual_seed(6)
    m = SceneModel(CFG, backend="dense").eval()
    rng = np.random.default_rng(1)
    cl = [_random_cells(rng, 300), _random_cells(rng, 50)]
    coords = torch.from_numpy(batch_coords(cl))
    feats = torch.from_numpy(features(np.ones(coords.shape[0]), CFG))
    motions = torch.from_numpy(rng.normal(0, 0.3, (2, 2, 5)).astype(np.float32))
    with torch.no_grad():
        occ = m.bev_occupancy(coords, 2)
        pred = torch.sigmoid(m.predict(coords, feats, motions)) > 0.5
    for b in range(2):
        ref = torch.from_numpy(bev_from_cells(cl[b], CFG))
        assert torch.equal(occ[b] > 0.5, ref)
        for k in range(2):
            assert torch.equal(pred[b, k], ref)


def test_backend_auto_selection():
    m = SceneModel(CFG, backend="auto")
    assert m.backend == ("sparse" if HAVE_SPCONV else "dense")
    with pytest.raises(ValueError):
        SceneModel(CFG, backend="cuda-magic")


def test_dense_equals_sparse_at_active_sites():
    torch.manual_seed(1)
    dense = _randomise_residual(SceneModel(CFG, backend="dense").eval())
    coords, feats, motions = _batch(seed=3, n=900)
    with torch.no_grad():
        g_dense = dense.encoder3d(coords, feats, 2)
        # The dense path itself must be zero away from the sites a sparse conv computes.
        assert g_dense.shape == (2, CFG.channels[-1], CFG.nz // 2, CFG.ny // 2, CFG.nx // 2)
    if not HAVE_SPCONV:
        pytest.skip("spconv not importable: dense path checked, comparison skipped")
    sparse = SceneModel(CFG, backend="sparse").eval()
    sparse.load_state_dict(dense.state_dict())  # same state_dict, no conversion
    with torch.no_grad():
        g_sparse = sparse.encoder3d(coords, feats, 2)
        active = g_sparse.abs().sum(1) > 0
        assert active.any()
        torch.testing.assert_close(g_dense, g_sparse, rtol=1e-4, atol=1e-5)
        # outside the sparse active set the dense backend is zero as well
        assert float(g_dense.abs().sum(1)[~active].max()) == 0.0
        torch.testing.assert_close(dense.predict(coords, feats, motions),
                                   sparse.predict(coords, feats, motions),
                                   rtol=1e-4, atol=1e-4)


def test_transition_uses_motion():
    torch.manual_seed(2)
    m = _randomise_residual(SceneModel(CFG, backend="dense").eval())
    coords, feats, motions = _batch(b=1)
    other = motions.clone()
    other[:, :, 0] += 0.5
    other[:, :, 2] -= 0.5
    with torch.no_grad():
        a = m.predict(coords, feats, motions)
        b = m.predict(coords, feats, other)
    assert float((a - b).abs().max()) > 1e-4


def test_torchscript_export_dense(tmp_path):
    torch.manual_seed(3)
    m = _randomise_residual(SceneModel(CFG, backend="dense").eval())
    path = str(tmp_path / "encoder.ts")
    m.export_torchscript(path)
    loaded = torch.jit.load(path)
    coords, feats, motions = _batch(seed=5)
    with torch.no_grad():
        torch.testing.assert_close(loaded(coords, feats, motions), m(coords, feats, motions))


def test_cells_from_pipeline_voxels_are_robot_centred():
    cfg = CFG
    # A wall 2 m ahead of a robot at (10, 5) facing +y: in the base frame it is at x = +2.
    ys = np.linspace(-1.0, 1.0, 41)
    pts = np.stack([10.0 + ys, np.full_like(ys, 7.0), np.full_like(ys, 0.5)], axis=1)
    vox = voxelize(pts, (2.0, -3.0, 0.05), 0.1, (160, 160, 18))
    coords, counts = cells_from_voxels(vox, (10.0, 5.0, np.pi / 2), cfg)
    assert counts.sum() == pytest.approx(41)
    occ = bev_from_cells(coords, cfg)
    iy, ix = np.nonzero(occ)
    x = cfg.origin[0] + (ix + 0.5) * cfg.resolution
    y = cfg.origin[1] + (iy + 0.5) * cfg.resolution
    assert np.all(np.abs(x - 2.0) < 0.25) and np.all(np.abs(y) <= 1.25)


def _synthetic_dataset(n=6):
    """Tiny synthetic samples: an object that moves one cell column per step."""
    from wm_perception.encoder_data import SceneDataset

    rng = np.random.default_rng(0)
    parts = []
    for i in range(n):
        occ = np.zeros((3, CFG.ny, CFG.nx), bool)
        cells = []
        x0 = 20 + i
        for k in range(3):
            occ[k, 30:34, x0 + 2 * k:x0 + 2 * k + 2] = True
        iy, ix = np.nonzero(occ[0])
        for z in range(3):
            cells.append(np.stack([np.full_like(iy, z), iy, ix], 1))
        coords = np.concatenate(cells).astype(np.int16)
        parts.append({"coords": coords,
                      "counts": rng.integers(1, 9, coords.shape[0]).astype(np.float32),
                      "n_cells": np.array([coords.shape[0]]),
                      "motions": np.zeros((1, 2, 5), np.float32),
                      "occ": np.packbits(occ, axis=-1)[None],
                      "moving": np.packbits(occ, axis=-1)[None],
                      "episode": np.array([i])})
    return SceneDataset(parts, CFG.nx)


def test_tensor_batcher_matches_make_batch():
    from wm_perception.train_encoder import TensorBatcher, make_batch

    ds = _synthetic_dataset()
    idx = np.array([3, 0, 5, 3])
    ref = make_batch(ds, idx, CFG)
    got = TensorBatcher(ds, CFG, "cpu").batch(idx)
    for r, g in zip(ref, got):
        assert r.shape == g.shape
        torch.testing.assert_close(g.to(r.dtype), r)


def test_tiny_training_reduces_loss():
    from wm_perception.train_encoder import evaluate, loss_fn, make_batch, train

    torch.manual_seed(4)
    ds = _synthetic_dataset()
    m = SceneModel(CFG, backend="dense")
    batch = make_batch(ds, np.arange(len(ds)), CFG)
    with torch.no_grad():
        before = float(loss_fn(m, batch))
    info = train(m, ds, minutes=1.0, batch=len(ds), lr=5e-3, max_steps=25, verbose=False)
    assert info["steps"] == 25
    with torch.no_grad():
        after = float(loss_fn(m, batch))
    assert after < 0.7 * before
    metrics = evaluate(m, ds)
    assert set(metrics) >= {"model/all/0.5s", "static/moving/1.0s"}
    # the object moved two columns per step: the static world keeps half of it at 0.5 s
    assert metrics["static/all/0.5s"] == pytest.approx(0.0)


def test_artifact_round_trip_and_corruption(tmp_path):
    torch.manual_seed(5)
    cfg = EncoderConfig(count_mean=1.25, count_std=0.5)
    m = _randomise_residual(SceneModel(cfg, backend="dense").eval())
    out = str(tmp_path / "art")
    meta = save_artifact(m, out, {"note": "test"})
    assert len(meta["sha256"]) == 64
    loaded, meta2 = load_artifact(out, backend="dense")
    assert loaded.config == cfg and meta2["note"] == "test"
    coords, feats, motions = _batch(seed=7)
    with torch.no_grad():
        torch.testing.assert_close(loaded(coords, feats, motions), m(coords, feats, motions))
    probs = loaded.predict_occupancy(_random_cells(np.random.default_rng(0), 100),
                                     np.ones(100), np.zeros((2, 5)))
    assert probs.shape == (2, CFG.ny, CFG.nx) and probs.min() >= 0.0 and probs.max() <= 1.0

    wpath = os.path.join(out, "encoder.pt")
    with open(wpath, "r+b") as f:
        f.seek(100)
        f.write(b"\x00corrupt")
    with pytest.raises(ArtifactError, match="corrupted"):
        load_artifact(out)
    os.remove(wpath)
    with pytest.raises(ArtifactError, match="missing"):
        load_artifact(out)
    with open(os.path.join(out, "encoder.json"), "w") as f:
        json.dump({"artifact_version": 999}, f)
    with pytest.raises(ArtifactError, match="version"):
        load_artifact(out)
