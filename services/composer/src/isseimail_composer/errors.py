"""The composer's own Japanese error messages (the error shape and its handlers: isseimail_shared.errors)."""

from __future__ import annotations

NOT_FOUND = "指定された一斉メールが見つかりません。"
FROZEN = "この一斉メールは送信を受け付け済みのため、変更できません。"
NO_PASS = "ログインしてください。"  # noqa: S105 - a message, not a secret
