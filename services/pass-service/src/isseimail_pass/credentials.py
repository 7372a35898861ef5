"""One-time credentials: a 6-digit user ID, a random password, its Argon2 hash, its Fernet token.

The plaintext password leaves this module only as a Fernet token for the notifier; it is never logged.
"""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet

# No look-alikes: 0/O/o, 1/l/I, and 5/S, 2/Z, 8/B which blur in some fonts of printed mail.
PASSWORD_ALPHABET = "ACDEFGHJKLMNPQRTUVWXYabcdefghijkmnpqrstuvwxyz34679"  # noqa: S105 - an alphabet, not a secret

# One-time passwords are random (12 of 50 symbols, about 68 bits), so the hash cost adds little against
# guessing; OWASP's minimum Argon2id profile (19 MiB, 2 passes, 1 lane) keeps a login near 50 ms instead
# of ~0.5 s with argon2-cffi's default on a busy 2-core machine. Administrators' chosen passwords keep the
# stronger default (admins.HASHER). Each hash records its parameters, so either verifies with either.
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
ADMIN_HASHER = PasswordHasher()
# Verified against when the user ID (or admin e-mail) is unknown, so the answer takes as long as for a known one.
_DUMMY_HASH = HASHER.hash(secrets.token_urlsafe(16))
_DUMMY_ADMIN_HASH = ADMIN_HASHER.hash(secrets.token_urlsafe(16))


def new_user_id() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


def new_password(length: int) -> str:
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def verify_password(password_hash: str | None, password: str, *, admin: bool = False) -> bool:
    """True when the password matches; with no hash it still spends the time of one verification."""
    dummy = _DUMMY_ADMIN_HASH if admin else _DUMMY_HASH
    try:
        return HASHER.verify(password_hash or dummy, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def encrypt_for_notifier(key: str, password: str) -> str:
    return Fernet(key.encode()).encrypt(password.encode()).decode()
