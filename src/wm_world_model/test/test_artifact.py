"""World-model artifacts: save/load, the shipped artifact, every integrity check of the loader
(each corruption made so that only the check under test can catch it) and signatures."""
from __future__ import annotations

import json
import os
import shutil
import stat

import numpy as np
import pytest
import torch

from wm_world_model import sign
from wm_world_model.artifact import (METADATA, SIGNATURE, WEIGHTS, ArtifactError, load_artifact,
                                     save_artifact, sha256_file)
from wm_world_model.model import WorldModelConfig

SHIPPED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models",
                       "worldmodel-1.0.0")


def _inputs(batch=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    state = torch.rand(batch, 5, generator=g) * torch.tensor([4.0, 4.0, 6.0, 1.0, 2.0]) - \
        torch.tensor([2.0, 2.0, 3.0, 0.2, 1.0])
    actions = torch.rand(batch, 10, 2, generator=g) * torch.tensor([1.2, 3.0]) - \
        torch.tensor([0.2, 1.5])
    ctx = torch.zeros(batch, 2)
    ctx[::2] = torch.tensor([80.0, 1.0])
    return state, actions, ctx


@pytest.fixture
def artifact(trained_like, tmp_path):
    """A fresh artifact of a trained-looking model (no ONNX, for speed): (path, model)."""
    m = trained_like(WorldModelConfig(hidden=16), seed=2)
    path = save_artifact(m, str(tmp_path / "models"), "1.2.3", train_config_yaml="seed: 1\n",
                         metrics={"test": {"x": 1.0}}, data_fingerprint="abc",
                         limits={"v": [0, 1]}, onnx=False)
    return path, m


def _meta(path):
    with open(os.path.join(path, METADATA)) as f:
        return json.load(f)


def _write_meta(path, meta, recompute=True):
    """Rewrite metadata.json; with `recompute`, the checksums match the files again (so a
    check other than the checksum has to catch what was changed)."""
    if recompute:
        meta["files"] = {n: sha256_file(os.path.join(path, n)) for n in meta["files"]}
    with open(os.path.join(path, METADATA), "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)


def _rewrite_weights(path, change):
    """weights.npz with change(arrays) applied; the metadata's checksum recomputed."""
    wp = os.path.join(path, WEIGHTS)
    with np.load(wp) as z:
        arrays = {k: z[k] for k in z.files}
    change(arrays)
    np.savez(wp, **arrays)
    _write_meta(path, _meta(path))


def test_save_load_roundtrip_gives_the_same_predictions(artifact):
    path, m = artifact
    assert os.path.basename(path) == "worldmodel-1.2.3"
    loaded, meta = load_artifact(path)
    assert not loaded.training
    assert loaded.config == m.config
    state, actions, ctx = _inputs()
    with torch.no_grad():
        assert torch.equal(loaded.rollout(state, actions, ctx), m.rollout(state, actions, ctx))
    assert meta["version"] == "1.2.3" and meta["data_fingerprint"] == "abc"
    assert meta["calibration"] == pytest.approx(m.calibration_dict())
    assert meta["metrics"] == {"test": {"x": 1.0}}


def test_shipped_artifact_loads_with_complete_metadata():
    model, meta = load_artifact(SHIPPED)
    for key in ("schema", "version", "files", "config", "calibration", "normalisation",
                "limits", "metrics", "data_fingerprint", "torch_version"):
        assert key in meta, key
    assert meta["version"] == "1.0.0"
    for name in ("config.json", "weights.npz", "model.onnx", "train_config.yaml"):
        assert len(meta["files"][name]) == 64
        assert meta["files"][name] == sha256_file(os.path.join(SHIPPED, name))
    assert WorldModelConfig.from_dict(meta["config"]) == model.config
    assert meta["calibration"] == pytest.approx(model.calibration_dict())
    np.testing.assert_allclose(meta["normalisation"]["mean"], model.feature_mean.numpy(),
                               rtol=1e-6)
    assert len(meta["data_fingerprint"]) == 64
    for split in ("test", "unseen_payload"):
        for kind in ("naive", "calibrated", "residual"):
            assert meta["metrics"][split][kind]["rollout_pos_cm_median"] > 0
    # A trained model: the residual is not the zero-initialised one.
    assert float(model.residual[-1].weight.abs().max()) > 0


def test_shipped_onnx_matches_the_rebuilt_model():
    ort = pytest.importorskip("onnxruntime")
    model, _ = load_artifact(SHIPPED)
    sess = ort.InferenceSession(os.path.join(SHIPPED, "model.onnx"),
                                providers=["CPUExecutionProvider"])
    state, actions, ctx = _inputs(33)
    (got,) = sess.run(None, {"state": state.numpy(), "actions": actions.numpy(),
                             "context": ctx.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(got, model.rollout(state, actions, ctx).numpy(), atol=1e-4)


def test_one_flipped_byte_in_the_weights_is_a_checksum_error(artifact):
    path, _ = artifact
    wp = os.path.join(path, WEIGHTS)
    data = bytearray(open(wp, "rb").read())
    data[len(data) // 2] ^= 0x01
    with open(wp, "wb") as f:
        f.write(bytes(data))
    with pytest.raises(ArtifactError, match="checksum"):
        load_artifact(path)


@pytest.mark.parametrize("edit, message", [
    (lambda m: m.update(schema="wm_world_model/artifact/2"), "schema"),
    (lambda m: m.update(version="1.2"), "bad version"),
    (lambda m: m.update(version=123), "bad version"),
    (lambda m: m.update(version="1.2.4"), "directory name"),
    (lambda m: m["files"].pop("weights.npz"), "no checksums"),
])
def test_bad_metadata_is_refused(artifact, edit, message):
    path, _ = artifact
    meta = _meta(path)
    edit(meta)
    _write_meta(path, meta, recompute=False)
    with pytest.raises(ArtifactError, match=message):
        load_artifact(path)


def test_a_file_name_outside_the_artifact_is_refused(artifact, tmp_path):
    path, _ = artifact
    # A real file next to the artifact with the right checksum: only the name check can
    # refuse it.
    outside = tmp_path / "models" / "evil.bin"
    outside.write_bytes(b"not part of the artifact")
    meta = _meta(path)
    meta["files"]["../evil.bin"] = sha256_file(str(outside))
    _write_meta(path, meta, recompute=False)
    with pytest.raises(ArtifactError, match="leaves the artifact directory"):
        load_artifact(path)


def test_a_weight_of_the_wrong_shape_is_refused(artifact):
    path, _ = artifact
    _rewrite_weights(path, lambda a: a.update({"residual.0.bias": np.zeros(7, np.float32)}))
    with pytest.raises(ArtifactError, match="residual.0.bias has shape"):
        load_artifact(path)


def test_a_nan_weight_is_refused(artifact):
    path, _ = artifact

    def poison(a):
        a["residual.2.weight"] = a["residual.2.weight"].copy()
        a["residual.2.weight"][1, 3] = np.nan
    _rewrite_weights(path, poison)
    with pytest.raises(ArtifactError, match="not finite"):
        load_artifact(path)


def test_a_missing_weight_is_refused(artifact):
    path, _ = artifact
    _rewrite_weights(path, lambda a: a.pop("feature_std"))
    with pytest.raises(ArtifactError, match="missing"):
        load_artifact(path)


class _Trap:
    """Unpickling this creates a file: proof that something was unpickled."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_a_pickled_object_array_is_refused_not_unpickled(artifact, tmp_path):
    path, _ = artifact
    marker = str(tmp_path / "unpickled")
    trap = np.empty(1, dtype=object)
    trap[0] = _Trap(marker)
    _rewrite_weights(path, lambda a: a.update({"feature_std": trap}))
    with pytest.raises(ArtifactError, match="cannot read weights"):
        load_artifact(path)
    assert not os.path.exists(marker)
    # The trap is live: loading it the unsafe way does run it.
    with np.load(os.path.join(path, WEIGHTS), allow_pickle=True) as z:
        z["feature_std"]
    assert os.path.isdir(marker)


def _keys(tmp_path, name="fleet"):
    priv, pub = str(tmp_path / (name + ".pem")), str(tmp_path / (name + ".pub"))
    assert sign.main(["keygen", "--private", priv, "--public", pub]) == 0
    return priv, pub


def test_signed_artifact_roundtrip_and_tampering(artifact, tmp_path, capsys):
    pytest.importorskip("cryptography")
    path, _ = artifact
    priv, pub = _keys(tmp_path)
    assert stat.S_IMODE(os.stat(priv).st_mode) == 0o600
    assert sign.main(["sign", "--private", priv, path]) == 0
    assert os.path.isfile(os.path.join(path, SIGNATURE))
    assert sign.main(["verify", "--public", pub, path]) == 0
    pub_pem = open(pub, "rb").read()
    load_artifact(path, public_key_pem=pub_pem, require_signature=True)

    # Another fleet's key.
    _, other_pub = _keys(tmp_path, "other")
    with pytest.raises(ArtifactError, match="signature"):
        load_artifact(path, public_key_pem=open(other_pub, "rb").read())
    # A signature is required but no key given.
    with pytest.raises(ArtifactError, match="no public key"):
        load_artifact(path, require_signature=True)

    # Metadata edited after signing, checksums untouched (they still match the files).
    signed = shutil.copytree(path, str(tmp_path / "copy" / "worldmodel-1.2.3"))
    meta = _meta(signed)
    meta["metrics"]["test"]["x"] = 0.5
    _write_meta(signed, meta, recompute=False)
    load_artifact(signed)                               # unsigned loading cannot tell
    with pytest.raises(ArtifactError, match="signature does not match"):
        load_artifact(signed, public_key_pem=pub_pem)
    capsys.readouterr()
    assert sign.main(["verify", "--public", pub, signed]) == 1
    assert "signature does not match" in capsys.readouterr().err


def test_sign_cli_refuses_a_tampered_artifact(artifact, tmp_path, capsys):
    pytest.importorskip("cryptography")
    path, _ = artifact
    priv, pub = _keys(tmp_path)
    with open(os.path.join(path, "config.json"), "a") as f:
        f.write(" ")
    capsys.readouterr()
    assert sign.main(["sign", "--private", priv, path]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "checksum mismatch for config.json" in err
    assert not os.path.exists(os.path.join(path, SIGNATURE))
    assert sign.main(["verify", "--public", pub, path]) == 1
    assert "checksum" in capsys.readouterr().err


def test_keygen_never_overwrites_a_key(tmp_path, capsys):
    pytest.importorskip("cryptography")
    priv, pub = _keys(tmp_path)
    before = open(priv, "rb").read()
    assert sign.main(["keygen", "--private", priv, "--public", pub]) == 1
    assert "error:" in capsys.readouterr().err
    assert open(priv, "rb").read() == before


def test_resaving_removes_a_stale_signature(artifact, tmp_path):
    pytest.importorskip("cryptography")
    path, m = artifact
    priv, pub = _keys(tmp_path)
    assert sign.main(["sign", "--private", priv, path]) == 0
    save_artifact(m, os.path.dirname(path), "1.2.3", onnx=False)
    assert not os.path.exists(os.path.join(path, SIGNATURE))
    with pytest.raises(ArtifactError, match="not signed"):
        load_artifact(path, public_key_pem=open(pub, "rb").read())
