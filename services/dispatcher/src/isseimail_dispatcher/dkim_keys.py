"""DKIM key material: generation (RSA 2048, Ed25519 per RFC 8463), the DNS TXT record, and the box that
encrypts private keys at rest. Pure: no database, no network.

Private keys leave this module only as Fernet tokens or inside a `KeyPair` whose repr hides them, so a
log line or a traceback that prints one shows no key.
"""

from __future__ import annotations

import base64
import functools
import re
from dataclasses import dataclass, field
from typing import Literal

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from isseimail_shared.errors import ApiError

Algorithm = Literal["rsa-sha256", "ed25519-sha256"]
ALGORITHMS: dict[str, Algorithm] = {"rsa": "rsa-sha256", "ed25519": "ed25519-sha256"}
KEY_TAG: dict[Algorithm, str] = {"rsa-sha256": "rsa", "ed25519-sha256": "ed25519"}
RSA_BITS = 2048

# One DNS label: the selector is the first label of SELECTOR._domainkey.DOMAIN.
_SELECTOR = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class DkimKeyError(ApiError, ValueError):
    """A request about DKIM keys that cannot be carried out; the message is Japanese, for the operator.

    An ApiError, so the API answers it as it is; a ValueError, so a pydantic validator may raise it."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(status, message)


def parse_algorithm(value: str) -> Algorithm:
    """'rsa' / 'ed25519' (as the CLI and API take them) or the DKIM a= names."""
    name = value.strip().lower()
    if name in ALGORITHMS:
        return ALGORITHMS[name]
    if name in KEY_TAG:
        return name
    raise DkimKeyError("algorithm は rsa か ed25519 を指定してください。")


def normalize_domain(value: str) -> str:
    """The signing domain as DNS and the d= tag carry it: lower case, IDN as A-labels, no trailing dot."""
    text = value.strip().rstrip(".").lower()
    if not text or len(text) > 253 or any(c.isspace() for c in text):
        raise DkimKeyError("ドメイン名が正しくありません。")
    try:
        ascii_name = text.encode("idna").decode("ascii") if not text.isascii() else text
    except UnicodeError:
        raise DkimKeyError("ドメイン名が正しくありません。") from None
    labels = ascii_name.split(".")
    if len(labels) < 2 or len(ascii_name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise DkimKeyError("ドメイン名が正しくありません。")
    return ascii_name


def check_selector(value: str) -> str:
    selector = value.strip().lower()
    if not _SELECTOR.match(selector):
        raise DkimKeyError("セレクタは英小文字・数字・ハイフンで、63文字以内にしてください。")
    return selector


@dataclass(frozen=True)
class KeyPair:
    algorithm: Algorithm
    public_key: str  # the p= value: base64 of SubjectPublicKeyInfo (RSA) or of the raw 32 bytes (Ed25519)
    private_key: bytes = field(repr=False)  # what dkimpy signs with: PEM (RSA) or base64 seed (Ed25519)


def generate(algorithm: Algorithm) -> KeyPair:
    if algorithm == "rsa-sha256":
        rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
        private = rsa_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return KeyPair(algorithm, rsa_public_key(rsa_key.public_key()), private)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    seed = ed_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    raw_public = ed_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return KeyPair(algorithm, base64.b64encode(raw_public).decode(), base64.b64encode(seed))


def rsa_public_key(key: rsa.RSAPublicKey) -> str:
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


@functools.lru_cache(maxsize=4)  # loading checks the key (70 ms); the configured key does not change
def public_key_of_pem(pem: bytes) -> str:
    """The p= value of an RSA private key in PEM (the key configured in ISSEIMAIL_DKIM_PRIVATE_KEY)."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise DkimKeyError("ISSEIMAIL_DKIM_PRIVATE_KEY は PEM 形式の RSA 秘密鍵ではありません。", 503) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise DkimKeyError("ISSEIMAIL_DKIM_PRIVATE_KEY は RSA 秘密鍵ではありません。", 503)
    return rsa_public_key(key.public_key())


def txt_name(selector: str, domain: str) -> str:
    return f"{selector}._domainkey.{domain}"


def txt_value(algorithm: Algorithm, public_key: str) -> str:
    return f"v=DKIM1; k={KEY_TAG[algorithm]}; p={public_key}"


class KeyBox:
    """Fernet with ISSEIMAIL_DKIM_KEY_SECRET: private keys are stored only as its tokens.

    The setting may hold several keys separated by commas (MultiFernet): the first encrypts, every one
    decrypts, so a new secret can be put in front of the old one, the stored keys re-encrypted with
    `isseimail-dispatcher dkim reencrypt`, and the old one dropped afterwards.
    """

    def __init__(self, secret: str) -> None:
        try:
            keys = [Fernet(part.strip().encode()) for part in secret.split(",") if part.strip()]
        except (ValueError, TypeError):
            keys = []
        if not keys:
            raise DkimKeyError(
                "ISSEIMAIL_DKIM_KEY_SECRET は Fernet 鍵（URL-safe base64 の32バイト）またはそのカンマ区切りの並びでは"
                "ありません。",
                503,
            )
        self._fernet = MultiFernet(keys)
        self.secrets = len(keys)

    def encrypt(self, private_key: bytes) -> str:
        return self._fernet.encrypt(private_key).decode()

    def decrypt(self, token: str) -> bytes:
        """Raises DkimKeyError (naming neither token nor key) when no configured secret made the token."""
        try:
            return self._fernet.decrypt(token.encode())
        except (InvalidToken, ValueError):
            raise DkimKeyError(
                "保存されている DKIM 秘密鍵を ISSEIMAIL_DKIM_KEY_SECRET で復号できません（設定の鍵が違います）。", 503
            ) from None

    def reencrypt(self, token: str) -> str:
        """The token made again with the first secret (whichever configured secret made it)."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except (InvalidToken, ValueError):
            raise DkimKeyError(
                "保存されている DKIM 秘密鍵を ISSEIMAIL_DKIM_KEY_SECRET で復号できません（設定の鍵が違います）。", 503
            ) from None
