"""notifier settings: the shared ISSEIMAIL_* settings plus this service's own."""

from __future__ import annotations

from pydantic import AliasChoices, EmailStr, Field, SecretStr

from isseimail_shared.settings import PublicUrlSettings, ServiceSettings


class NotifierSettings(ServiceSettings, PublicUrlSettings):
    port: int = Field(
        default=8085,
        ge=1,
        le=65535,
        validation_alias=AliasChoices("ISSEIMAIL_NOTIFIER_PORT", "port"),
        description="HTTP port of the notifier.",
    )
    system_from: EmailStr = Field(
        default="isseimail@localhost.localdomain", description="From address of every system mail."
    )
    mail_retry_seconds: float = Field(
        default=30.0, gt=0, description="Wait before the first retry of a system mail; doubles per attempt up to 1 h."
    )
    mail_max_attempts: int = Field(
        default=40, ge=1, le=1000, description="Attempts to send one system mail before it is left for an operator."
    )
    credentials_key: SecretStr = Field(
        description="Fernet key shared with the pass service: decrypts pass.issued passwords, encrypts stored "
        "credential mails. Required."
    )
    failure_digest_seconds: float = Field(
        default=600.0,
        gt=0,
        le=86_400,
        description="Failure reports for one campaign within this window are gathered into one digest mail.",
    )
    completion_csv_threshold: int = Field(
        default=50,
        ge=1,
        le=100_000,
        description="Completion mails list failures inline up to this many; "
        "beyond it the full list is attached as CSV.",
    )
    completion_wait_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="How long a completion mail waits for failures (deliveries.settled) it overtook.",
    )
    bounce_listen_host: str = Field(default="127.0.0.1", description="Address the bounce SMTP listener binds to.")
    bounce_listen_port: int = Field(
        default=2525, ge=0, le=65535, description="Port of the bounce SMTP listener (0 = any free port)."
    )
    bounce_max_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=1024,
        le=100 * 1024 * 1024,
        description="Largest bounce message the listener accepts; bigger ones are refused with 552.",
    )
    bounce_max_recipients: int = Field(
        default=100, ge=1, le=10_000, description="RCPT TO commands the bounce listener accepts per message."
    )
    soft_bounce_limit: int = Field(
        default=3,
        ge=1,
        le=1000,
        description="Soft failures (mailbox full, policy refusals) of one address before it is suppressed for that "
        "sender organisation; a nonexistent address is suppressed for everyone at once.",
    )
