"""The IdP's signing key and certificate: from PORTAL_SAML_KEY_FILE / PORTAL_SAML_CERT_FILE, or
generated once into the instance folder (key mode 0600) outside production."""
from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from functools import cached_property
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from portal.config import ConfigError, private_folder

KEY_NAME = "saml_signing_key.pem"
CERT_NAME = "saml_signing_cert.pem"
KEY_BITS = 2048  # what every SAML app accepts; signing cost matters at the morning bell
CERT_YEARS = 10


@dataclass(frozen=True)
class SigningKeys:
    key_pem: bytes
    cert_pem: bytes

    @cached_property
    def key(self) -> rsa.RSAPrivateKey:
        return serialization.load_pem_private_key(self.key_pem, password=None)

    @cached_property
    def cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    @cached_property
    def cert_base64(self) -> str:
        """The certificate as it goes into metadata and KeyInfo: base64 DER on one line."""
        return "".join(self.cert_pem.decode().strip().splitlines()[1:-1])


def generate_keys(common_name: str = "Student portal SAML signing") -> SigningKeys:
    """Make a fresh RSA key and a self-signed certificate for it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365 * CERT_YEARS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return SigningKeys(key_pem, cert.public_bytes(serialization.Encoding.PEM))


def _check_pair(keys: SigningKeys, key_path: Path, cert_path: Path) -> SigningKeys:
    """Both files readable, an RSA key, and the certificate its own: else ConfigError naming the file."""
    def unreadable(what: str, path: Path, e: ValueError) -> ConfigError:
        reason = str(e).split(". See ")[0]      # cryptography's words, without its FAQ link
        return ConfigError(f"the SAML signing {what} {path} can't be read: {reason}")
    try:
        key = keys.key
    except ValueError as e:
        raise unreadable("key", key_path, e) from None
    try:
        cert = keys.cert
    except ValueError as e:
        raise unreadable("certificate", cert_path, e) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError(f"the SAML signing key {key_path} must be an RSA key")
    if key.public_key().public_numbers() != cert.public_key().public_numbers():
        raise ConfigError(f"the SAML signing certificate {cert_path} is not for the key {key_path}")
    return keys


def load_keys(key_file: str, cert_file: str, instance_path: Path) -> SigningKeys:
    """Read the configured key pair, or the instance folder's (creating it the first time)."""
    if key_file or cert_file:
        if not (key_file and cert_file):
            raise ConfigError("set both PORTAL_SAML_KEY_FILE and PORTAL_SAML_CERT_FILE, or neither")
        try:
            keys = SigningKeys(Path(key_file).read_bytes(), Path(cert_file).read_bytes())
        except OSError as e:
            raise ConfigError(f"can't read the SAML signing key or certificate: {e}") from None
        return _check_pair(keys, Path(key_file), Path(cert_file))

    private_folder(instance_path)
    key_path, cert_path = instance_path / KEY_NAME, instance_path / CERT_NAME
    # Workers start together: a lock makes one of them generate and the others read its files.
    with open(instance_path / ".saml_keys.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not key_path.exists():
            keys = generate_keys()
            # The certificate first: the key's presence says the pair is whole, so a start
            # stopped between the two writes makes a new pair next time.
            cert_path.write_bytes(keys.cert_pem)
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(keys.key_pem)
            return keys
        try:
            keys = SigningKeys(key_path.read_bytes(), cert_path.read_bytes())
        except OSError as e:
            raise ConfigError(f"can't read the SAML signing key or certificate: {e.strerror} "
                              f"({e.filename}). Restore it, or move {key_path} away to have a new "
                              f"pair made (then give every SAML app the new metadata)") from None
    return _check_pair(keys, key_path, cert_path)
