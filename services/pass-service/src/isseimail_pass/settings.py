"""pass-service settings: the shared ISSEIMAIL_* settings plus this service's own."""

from __future__ import annotations

from cryptography.fernet import Fernet
from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from isseimail_shared.settings import ServiceSettings


class PassSettings(ServiceSettings):
    # Merged with the shared config; a rejected value may be a secret, so errors never echo input.
    model_config = SettingsConfigDict(hide_input_in_errors=True)

    port: int = Field(
        default=8081,
        ge=1,
        le=65535,
        validation_alias=AliasChoices("ISSEIMAIL_PASS_PORT", "port"),
        description="HTTP port of the pass-service.",
    )
    admin_email: str | None = Field(
        default=None,
        description="With ISSEIMAIL_ADMIN_PASSWORD: the first administrator, created if none exists.",
    )
    admin_password: SecretStr | None = Field(default=None, description="The first administrator's password.")
    credentials_key: SecretStr = Field(
        description="Fernet key that encrypts one-time passwords for the notifier (shared with it only); required.",
    )
    login_url: str = Field(
        default="http://127.0.0.1:8080/login",
        max_length=500,
        description="Login page URL written into the credential mail.",
    )
    password_length: int = Field(default=12, ge=10, le=64, description="Length of a 1DayPass one-time password.")
    max_days_ahead: int = Field(
        default=90, ge=0, le=366, description="How many days ahead of today a day of use may be applied for."
    )
    admin_session_hours: float = Field(
        default=8, gt=0, le=24, description="How long an administrator's session lasts after login."
    )
    lockout_window_seconds: int = Field(
        default=900, ge=1, le=86_400, description="Window in which failed logins are counted for the lockout."
    )
    lockout_per_user: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="Failed logins of one user ID (or admin e-mail) from one client address before that client "
        "is slowed down (other clients are not).",
    )
    lockout_per_client: int = Field(
        default=20,
        ge=1,
        le=100_000,
        description="Failed logins from one client address (any account) before that client is slowed down.",
    )
    lockout_base_delay_seconds: float = Field(
        default=1.0, gt=0, le=3600, description="First delay past a threshold; it doubles with every failure."
    )
    lockout_max_delay_seconds: float = Field(
        default=900.0, gt=0, le=86_400, description="Longest delay a throttled client must wait between attempts."
    )

    @field_validator("credentials_key")
    @classmethod
    def _check_fernet_key(cls, value: SecretStr) -> SecretStr:
        try:
            Fernet(value.get_secret_value().encode())
        except (ValueError, TypeError):
            # Never echo the value: it is a secret.
            raise ValueError("credentials_key is not a valid Fernet key (32 url-safe base64 bytes)") from None
        return value
