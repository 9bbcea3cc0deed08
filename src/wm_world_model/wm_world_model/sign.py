"""Ed25519 signatures for world-model artifacts (optional; needs `cryptography`).

    python -m wm_world_model.sign keygen --private fleet_key.pem --public fleet_key.pub
    python -m wm_world_model.sign sign   --private fleet_key.pem ARTIFACT_DIR
    python -m wm_world_model.sign verify --public fleet_key.pub ARTIFACT_DIR

The private key stays with whoever releases models (never in the repo, never on a robot);
robots get the public key and the planner's `world_model_public_key` parameter, and with
`world_model_require_signature` they refuse any artifact this key did not sign.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from .artifact import ArtifactError, read_metadata, sign_artifact, verify_signature


def keygen(private_path: str, public_path: str) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    priv = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    pub = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    # The private key is created owner-read-only before anything is written into it.
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(priv)
    with open(public_path, "wb") as f:
        f.write(pub)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="wm_sign_world_model", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("keygen")
    k.add_argument("--private", required=True)
    k.add_argument("--public", required=True)
    s = sub.add_parser("sign")
    s.add_argument("--private", required=True)
    s.add_argument("artifact")
    v = sub.add_parser("verify")
    v.add_argument("--public", required=True)
    v.add_argument("artifact")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "keygen":
            keygen(a.private, a.public)
            print("wrote %s (keep it secret) and %s" % (a.private, a.public))
        elif a.cmd == "sign":
            read_metadata(a.artifact)   # never sign a corrupted artifact
            with open(a.private, "rb") as f:
                print("wrote %s" % sign_artifact(a.artifact, f.read()))
        else:
            read_metadata(a.artifact)
            with open(a.public, "rb") as f:
                verify_signature(a.artifact, f.read())
            print("%s: signature OK" % a.artifact)
    except (ArtifactError, OSError, ValueError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
