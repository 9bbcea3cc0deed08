"""World-model artifacts: a versioned directory the robot can load without unpickling anything.

A TorchScript file written by the training machine's torch (2.13 here) may not load on a
Jetson's torch 2.0, so the artifact keeps the architecture and the weights in version-neutral
files, and the loader rebuilds the module (and scripts it, on the target, if asked):

    worldmodel-1.0.0/
      config.json        architecture (WorldModelConfig)
      weights.npz        float32 arrays by state_dict key; read with allow_pickle=False
      model.onnx         rollout(state, actions, context) at ONNX opset 13 (TensorRT 8.5
                         parses opsets 7-17), dynamic batch; fixed horizon
      train_config.yaml  the training run's configuration, as run
      metadata.json      schema, name, version, sha256 of every file above, calibration,
                         normalisation, limits, metrics, data fingerprint, torch version
      metadata.json.sig  optional Ed25519 signature of metadata.json's bytes

metadata.json pins every other file by its sha256, so signing it signs the artifact. The
loader checks the schema, the version, every checksum, the weights' names, shapes and
finiteness against the architecture, and (when given a public key) the signature, and raises
ArtifactError with the reason on any mismatch. Python 3.8, torch >= 1.13, numpy >= 1.21.
"""
from __future__ import annotations

import json
import os
import re
import warnings
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np
import torch

from wm_common.files import sha256_file  # noqa: F401 (re-exported for callers)
from wm_world_model.model import WorldModel, WorldModelConfig

SCHEMA = "wm_world_model/artifact/1"
NAME = "worldmodel"
VERSION_RE = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
CONFIG, WEIGHTS, ONNX, TRAIN_CONFIG, METADATA = (
    "config.json", "weights.npz", "model.onnx", "train_config.yaml", "metadata.json")
SIGNATURE = METADATA + ".sig"
REQUIRED_FILES = (CONFIG, WEIGHTS)
ONNX_OPSET = 13
MAX_JSON_BYTES = 4 << 20     # a metadata file larger than this is not ours


class ArtifactError(RuntimeError):
    """An artifact that must not be loaded, with the reason."""


def resolve_artifact(name: str) -> str:
    """A path as given, else the artifact of that name shipped with wm_world_model."""
    if os.path.isdir(name) or os.path.isabs(name):
        return name
    try:
        from ament_index_python.packages import get_package_share_directory

        shipped = os.path.join(get_package_share_directory("wm_world_model"), "models", name)
    except (ImportError, LookupError, ValueError, OSError):
        return name
    return shipped if os.path.isdir(shipped) else name


def artifact_dirname(version: str) -> str:
    return "%s-%s" % (NAME, version)


def _read_json(path: str) -> Dict[str, Any]:
    try:
        if os.path.getsize(path) > MAX_JSON_BYTES:
            raise ArtifactError("%s is larger than %d bytes" % (path, MAX_JSON_BYTES))
        with open(path, "rb") as f:
            data = json.loads(f.read().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ArtifactError("cannot read %s: %s" % (path, e)) from e
    if not isinstance(data, dict):
        raise ArtifactError("%s is not a JSON object" % path)
    return data


# -- saving ---------------------------------------------------------------------------------

def export_onnx(model, path: str, batch: int = 64) -> None:
    """Write model.rollout as ONNX (legacy TorchScript exporter: no onnxscript needed)."""
    cfg = model.config
    args = (torch.zeros(batch, 5), torch.zeros(batch, cfg.horizon, 2),
            torch.zeros(batch, cfg.context_dim))
    kwargs = {}
    if "dynamo" in torch.onnx.export.__code__.co_varnames:
        kwargs["dynamo"] = False   # torch >= 2.5 would otherwise need onnxscript
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), args, path, opset_version=ONNX_OPSET,
                          input_names=["state", "actions", "context"],
                          output_names=["states"],
                          dynamic_axes={"state": {0: "batch"}, "actions": {0: "batch"},
                                        "context": {0: "batch"}, "states": {0: "batch"}},
                          **kwargs)


def save_artifact(model, out_dir: str, version: str, *, train_config_yaml: str = "",
                  metrics: Optional[Mapping[str, Any]] = None,
                  data_fingerprint: str = "", limits: Optional[Mapping[str, Any]] = None,
                  onnx: bool = True, extra: Optional[Mapping[str, Any]] = None) -> str:
    """Write `model` as artifact `<out_dir>/worldmodel-<version>/`; returns that path."""
    if not VERSION_RE.match(version):
        raise ArtifactError("version must be MAJOR.MINOR.PATCH, got %r" % version)
    path = os.path.join(out_dir, artifact_dirname(version))
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, CONFIG), "w") as f:
        json.dump(model.config.to_dict(), f, indent=2, sort_keys=True)
    arrays = {k: v.detach().cpu().numpy().astype(np.float32)
              for k, v in model.state_dict().items()}
    np.savez(os.path.join(path, WEIGHTS), **arrays)
    files = [CONFIG, WEIGHTS]
    if onnx:
        export_onnx(model, os.path.join(path, ONNX))
        files.append(ONNX)
    if train_config_yaml:
        with open(os.path.join(path, TRAIN_CONFIG), "w") as f:
            f.write(train_config_yaml)
        files.append(TRAIN_CONFIG)
    meta = {
        "schema": SCHEMA, "name": NAME, "version": version,
        "files": {n: sha256_file(os.path.join(path, n)) for n in files},
        "config": model.config.to_dict(),
        "calibration": model.calibration_dict(),
        "normalisation": {"mean": model.feature_mean.tolist(),
                          "std": model.feature_std.tolist()},
        "limits": dict(limits or {}),
        "metrics": dict(metrics or {}),
        "data_fingerprint": data_fingerprint,
        "torch_version": torch.__version__.split("+")[0],
        "onnx_opset": ONNX_OPSET if onnx else None,
    }
    meta.update(extra or {})
    with open(os.path.join(path, METADATA), "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
    stale = os.path.join(path, SIGNATURE)
    if os.path.exists(stale):
        os.remove(stale)   # it signed the previous metadata
    return path


# -- signatures (optional: `cryptography`) --------------------------------------------------

def sign_artifact(path: str, private_key_pem: bytes) -> str:
    """Write metadata.json.sig (Ed25519, raw 64 bytes) with a PEM private key."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(private_key_pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ArtifactError("the signing key is not an Ed25519 private key")
    with open(os.path.join(path, METADATA), "rb") as f:
        sig = key.sign(f.read())
    out = os.path.join(path, SIGNATURE)
    with open(out, "wb") as f:
        f.write(sig)
    return out


def verify_signature(path: str, public_key_pem: bytes) -> None:
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        from cryptography.hazmat.primitives.serialization import load_pem_public_key
    except ImportError as e:
        raise ArtifactError("a signature is required but `cryptography` is missing: %s" % e) from e
    sig_path = os.path.join(path, SIGNATURE)
    if not os.path.isfile(sig_path):
        raise ArtifactError("%s is not signed (no %s)" % (path, SIGNATURE))
    try:
        key = load_pem_public_key(public_key_pem)
    except ValueError as e:
        raise ArtifactError("bad public key: %s" % e) from e
    if not isinstance(key, Ed25519PublicKey):
        raise ArtifactError("the public key is not an Ed25519 key")
    with open(os.path.join(path, METADATA), "rb") as f:
        data = f.read()
    with open(sig_path, "rb") as f:
        sig = f.read()
    try:
        key.verify(sig, data)
    except InvalidSignature:
        raise ArtifactError("%s: the signature does not match metadata.json "
                            "(not signed by this fleet's key, or modified)" % path) from None


# -- loading --------------------------------------------------------------------------------

def read_metadata(path: str) -> Dict[str, Any]:
    """metadata.json after the schema, version and checksum checks."""
    if not os.path.isdir(path):
        raise ArtifactError("no artifact directory %r" % path)
    meta = _read_json(os.path.join(path, METADATA))
    if meta.get("schema") != SCHEMA:
        raise ArtifactError("%s: schema %r, this loader reads %r"
                            % (path, meta.get("schema"), SCHEMA))
    version = meta.get("version")
    if not isinstance(version, str) or not VERSION_RE.match(version):
        raise ArtifactError("%s: bad version %r" % (path, version))
    base = os.path.basename(os.path.normpath(path))
    if base.startswith(NAME + "-") and base != artifact_dirname(version):
        raise ArtifactError("%s: directory name says %s but metadata says version %s"
                            % (path, base, version))
    files = meta.get("files")
    if not isinstance(files, dict) or any(f not in files for f in REQUIRED_FILES):
        raise ArtifactError("%s: metadata lists no checksums for %s" % (path, REQUIRED_FILES))
    for name, digest in sorted(files.items()):
        if os.path.basename(name) != name:
            raise ArtifactError("%s: file name %r leaves the artifact directory" % (path, name))
        fp = os.path.join(path, name)
        if not os.path.isfile(fp):
            raise ArtifactError("%s: missing file %s" % (path, name))
        if sha256_file(fp) != digest:
            raise ArtifactError("%s: checksum mismatch for %s (corrupted or modified)"
                                % (path, name))
    return meta


def load_artifact(path: str, public_key_pem: Optional[bytes] = None,
                  require_signature: bool = False) -> Tuple[Any, Dict[str, Any]]:
    """(WorldModel in eval mode, metadata) of the artifact at `path`, after every check."""
    meta = read_metadata(path)
    if require_signature and public_key_pem is None:
        raise ArtifactError("a signature is required but no public key was given")
    if public_key_pem is not None:
        verify_signature(path, public_key_pem)
    cfg_dict = _read_json(os.path.join(path, CONFIG))
    try:
        cfg = WorldModelConfig.from_dict(cfg_dict)
    except (TypeError, ValueError) as e:
        raise ArtifactError("%s: bad config.json: %s" % (path, e)) from e
    model = WorldModel(cfg)
    expected = model.state_dict()
    try:
        with np.load(os.path.join(path, WEIGHTS), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise ArtifactError("%s: cannot read weights: %s" % (path, e)) from e
    missing = sorted(set(expected) - set(arrays))
    unexpected = sorted(set(arrays) - set(expected))
    if missing or unexpected:
        raise ArtifactError("%s: weights do not match the architecture (missing %s, "
                            "unexpected %s)" % (path, missing, unexpected))
    state = {}
    for k, ref in expected.items():
        a = arrays[k]
        if tuple(a.shape) != tuple(ref.shape) or a.dtype.kind != "f":
            raise ArtifactError("%s: weight %s has shape %s %s, expected %s float"
                                % (path, k, a.shape, a.dtype, tuple(ref.shape)))
        if not np.all(np.isfinite(a)):
            raise ArtifactError("%s: weight %s is not finite" % (path, k))
        state[k] = torch.from_numpy(a.astype(np.float32))
    model.load_state_dict(state)
    return model.eval(), meta


def load_verified(path: str, public_key_file: str = "", require_signature: bool = False
                  ) -> Tuple[Any, Dict[str, Any]]:
    """load_artifact with the public key read from `public_key_file` ('' = none): what the
    planner's motion models and the NMPC's CasADi form load."""
    key = None
    if public_key_file:
        with open(public_key_file, "rb") as f:
            key = f.read()
    return load_artifact(path, public_key_pem=key, require_signature=require_signature)


def to_torchscript(model):
    """Script the module on the machine that runs it (the robot's own torch version).

    torch >= 2.10 deprecates TorchScript in favour of torch.export; the robot's torch 2.0 has
    no usable alternative for a Python-free planner loop, so the warning is silenced here.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.script(model.eval())
