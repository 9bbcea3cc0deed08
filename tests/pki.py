"""Test secrets made on the fly: files readable by their owner only, and a small PKI (a CA, a
server and a client certificate, an unrelated second CA) for the TLS and mTLS tests."""
from __future__ import annotations

import datetime
import ipaddress
import os


def write_private(path, data) -> str:
    """Write a file readable by its owner only (mode 0600), like secrets on a robot."""
    path = str(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
    return path


def make_pki(d):
    """A CA, a server certificate (127.0.0.1, localhost), a client certificate, and a second
    CA unrelated to the first; keys written with mode 0600."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def key_file(key, fname):
        return write_private(os.path.join(d, fname), key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))

    def cert_file(cert, fname):
        path = os.path.join(d, fname)
        with open(path, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        return path

    def build(subject, key, issuer, issuer_key, ca, eku=None, san=None):
        b = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(minutes=5))
             .not_valid_after(now + datetime.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
             .add_extension(x509.KeyUsage(
                 digital_signature=not ca, content_commitment=False, key_encipherment=False,
                 data_encipherment=False, key_agreement=not ca, key_cert_sign=ca,
                 crl_sign=ca, encipher_only=False, decipher_only=False), critical=True)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                            critical=False))
        if not ca:
            b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                issuer_key.public_key()), critical=False)
            b = b.add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
        if san:
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return b.sign(issuer_key, hashes.SHA256())

    out = {}
    for ca_name in ("ca", "other_ca"):
        k = ec.generate_private_key(ec.SECP256R1())
        out[ca_name + "_key"] = k
        out[ca_name] = cert_file(build("wm test " + ca_name, k, "wm test " + ca_name, k, True),
                                 ca_name + ".crt")
    ca_key = out.pop("ca_key")
    out.pop("other_ca_key")
    for who, eku, san in (
            ("server", ExtendedKeyUsageOID.SERVER_AUTH,
             [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            ("client", ExtendedKeyUsageOID.CLIENT_AUTH, None)):
        k = ec.generate_private_key(ec.SECP256R1())
        out[who + "_key"] = key_file(k, who + ".key")
        out[who + "_cert"] = cert_file(build("wm " + who, k, "wm test ca", ca_key, False, eku,
                                             san), who + ".crt")
    return out
