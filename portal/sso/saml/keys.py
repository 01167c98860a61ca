"""The IdP's signing key and certificate: from PORTAL_SAML_KEY_FILE / PORTAL_SAML_CERT_FILE, or
generated once into the instance folder (key mode 0600) outside production."""
from __future__ import annotations

import base64
import fcntl
import logging
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from portal.config import ConfigError, private_folder
from portal.files import write_whole

log = logging.getLogger(__name__)

KEY_NAME = "saml_signing_key.pem"
CERT_NAME = "saml_signing_cert.pem"
KEY_BITS = 2048  # what every SAML app accepts; signing cost matters at the morning bell
CERT_YEARS = 10


@dataclass(frozen=True)
class SigningKeys:
    key_pem: bytes
    cert_pem: bytes
    # The certificate of the key that will sign next (PORTAL_SAML_NEXT_CERT_FILE): published in
    # the metadata beside the one in use, so that apps trust it before it signs anything.
    next_cert_pem: bytes | None = None

    @cached_property
    def key(self) -> rsa.RSAPrivateKey:
        return _private_key(self.key_pem)

    @cached_property
    def cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    @cached_property
    def cert_base64(self) -> str:
        """The certificate as it goes into metadata and KeyInfo: base64 DER on one line."""
        return _base64(self.cert_pem)

    @cached_property
    def published_base64(self) -> tuple[str, ...]:
        """The certificates the metadata lists for signing: the one in use, then the next one."""
        return (self.cert_base64, *([_base64(self.next_cert_pem)] if self.next_cert_pem else []))


@lru_cache(maxsize=8)
def _private_key(key_pem: bytes):
    """The key a PEM file holds. Loading one checks the RSA key's numbers, some 70 ms of CPU: an
    app built again in the same process (every test builds one) reuses the key of the same bytes.
    A file that can't be read raises each time (lru_cache keeps no exceptions)."""
    return serialization.load_pem_private_key(key_pem, password=None)


def _base64(cert_pem: bytes) -> str:
    """The first certificate of a PEM file, as base64 DER on one line. Only the first: a file
    with its issuers after it (a CA's chain) gave the whole file's lines, "-----END" and
    "-----BEGIN" among them, and metadata no app could read (found by review)."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


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


def _check_pair(keys: SigningKeys, key_path: Path, cert_path: Path,
                key_named: str = "the SAML signing key",
                cert_named: str = "the SAML signing certificate") -> SigningKeys:
    """Both files readable, an RSA key, and the certificate its own: else ConfigError naming the
    file (and the setting, as `key_named` / `cert_named`, when one names it)."""
    try:
        key = keys.key
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:   # TypeError: a key with a passphrase
        reason = ("it has a passphrase: the portal needs the key without one" if isinstance(e, TypeError)
                  else "not a PEM private key: a text file whose first line begins with five "
                       "dashes and BEGIN")
        raise ConfigError(f"{key_named} {key_path} can't be read ({reason})") from None
    try:
        cert = keys.cert
    except ValueError:
        raise ConfigError(f"{cert_named} {cert_path} can't be read (not a PEM certificate: a text "
                          f"file whose first line begins with five dashes and BEGIN)") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError(f"{key_named} {key_path} must be an RSA key")
    try:
        same = key.public_key().public_numbers() == cert.public_key().public_numbers()
    except (ValueError, UnsupportedAlgorithm, AttributeError):   # not an RSA certificate
        same = False
    if not same:
        raise ConfigError(f"{cert_named} {cert_path} is not the certificate of the key {key_path}: "
                          f"give the key and the certificate made together")
    return keys


def read_configured_pair(key_file: str, cert_file: str) -> SigningKeys:
    """The key and certificate PORTAL_SAML_KEY_FILE and PORTAL_SAML_CERT_FILE name, checked: else
    a ConfigError naming the setting, the file and why, in one line."""
    if not (key_file and cert_file):
        raise ConfigError("set both PORTAL_SAML_KEY_FILE and PORTAL_SAML_CERT_FILE, or neither")
    pems = []
    for setting, name in (("PORTAL_SAML_KEY_FILE", key_file), ("PORTAL_SAML_CERT_FILE", cert_file)):
        try:
            pems.append(Path(name).read_bytes())
        except OSError as e:
            raise ConfigError(f"{setting} {name} can't be read ({e.strerror or e}): the portal's "
                              f"user must be able to read it") from None
    return _check_pair(SigningKeys(*pems), Path(key_file), Path(cert_file),
                       "PORTAL_SAML_KEY_FILE", "PORTAL_SAML_CERT_FILE")


def _with_next(keys: SigningKeys, next_cert_file: str) -> SigningKeys:
    """The keys with the next signing certificate to publish, if one is set and usable: a
    certificate of an RSA key of at least KEY_BITS, not past its end (apps would refuse what it
    signs). One that is not is logged and left out of the metadata, and sign-ins go on with the
    key in use: a mistyped setting must not stop every SAML app at once. The key in use's own
    certificate (the setting left behind once the new key signs) is published once."""
    if not next_cert_file:
        return keys
    path = Path(next_cert_file)
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except OSError as e:
        return _without_next(keys, path, f"can't be read: {e.strerror}")
    except ValueError:
        return _without_next(keys, path, "is not a PEM certificate (-----BEGIN CERTIFICATE-----)")
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):   # a curve or algorithm cryptography cannot load
        return _without_next(keys, path, f"is not for an RSA key of at least {KEY_BITS} bits")
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < KEY_BITS:
        return _without_next(keys, path, f"is not for an RSA key of at least {KEY_BITS} bits")
    if cert.not_valid_after_utc <= datetime.now(timezone.utc):
        return _without_next(keys, path, f"ended on {cert.not_valid_after_utc:%Y-%m-%d}")
    if key.public_numbers() == keys.cert.public_key().public_numbers():
        return keys
    return replace(keys, next_cert_pem=cert.public_bytes(serialization.Encoding.PEM))


def _without_next(keys: SigningKeys, path: Path, reason: str) -> SigningKeys:
    log.error("the next SAML signing certificate %s (PORTAL_SAML_NEXT_CERT_FILE) %s: the metadata "
              "lists only the certificate in use", path, reason)
    return keys


def load_keys(key_file: str, cert_file: str, instance_path: Path, next_cert_file: str = "") -> SigningKeys:
    """Read the configured key pair, or the instance folder's (creating it the first time), and
    the next signing certificate, if one is set."""
    return _with_next(_load_pair(key_file, cert_file, instance_path), next_cert_file)


def _load_pair(key_file: str, cert_file: str, instance_path: Path) -> SigningKeys:
    if key_file or cert_file:
        return read_configured_pair(key_file, cert_file)
    key_path, cert_path = instance_path / KEY_NAME, instance_path / CERT_NAME
    try:
        private_folder(instance_path)
        # Workers start together: a lock makes one of them generate and the others read its files.
        with open(instance_path / ".saml_keys.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not _made(key_path):
                keys = generate_keys()
                # The certificate first: the key's presence says the pair is whole, so a start
                # stopped between the two writes makes a new pair next time.
                write_whole(cert_path, keys.cert_pem, 0o644)
                write_whole(key_path, keys.key_pem, 0o600)
                return keys
    except OSError as e:        # a read-only or full instance folder: "unavailable", not a 500
        raise ConfigError(f"can't make the SAML signing key in {instance_path} ({e.strerror or e}): "
                          f"the portal's user must be able to write there, or set "
                          f"PORTAL_SAML_KEY_FILE and PORTAL_SAML_CERT_FILE") from None
    try:
        keys = SigningKeys(key_path.read_bytes(), cert_path.read_bytes())
    except OSError as e:
        raise ConfigError(f"can't read the SAML signing key or certificate: {e.strerror} "
                          f"({e.filename}). Restore it, or move {key_path} away to have a new "
                          f"pair made (then give every SAML app the new metadata)") from None
    return _check_pair(keys, key_path, cert_path)


def _made(key_path: Path) -> bool:
    """Whether the pair was made: a key file of no length is one an older version began and a
    full disk stopped (it wrote in place), which a new pair replaces."""
    try:
        return key_path.stat().st_size > 0
    except FileNotFoundError:
        return False
