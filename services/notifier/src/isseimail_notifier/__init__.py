"""isseimail notifier: System mails and the bounce listener."""
