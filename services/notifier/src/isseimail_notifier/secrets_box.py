"""Fernet with the key shared with the pass service: passwords arrive encrypted, credential mails are
stored encrypted, and the plaintext exists only in memory while a mail is rendered or sent."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr


class CredentialsBox:
    def __init__(self, key: SecretStr) -> None:
        self._fernet = Fernet(key.get_secret_value().encode())

    def encrypt(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode()

    def decrypt(self, token: str) -> str:
        """Raises ValueError (never the token or plaintext in the message) when the token is not ours."""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except (InvalidToken, UnicodeDecodeError, ValueError):
            raise ValueError("encrypted value does not decrypt with ISSEIMAIL_CREDENTIALS_KEY") from None
