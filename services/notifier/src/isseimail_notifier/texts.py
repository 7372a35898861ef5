"""The pass mails (credentials, rejection, a new administrator): the values each template of
templates/mail/ needs, taken from the event."""

from __future__ import annotations

from isseimail_notifier.mail_texts import MailText, render
from isseimail_shared.events import AdminCreated, ApplicationRejected, PassIssued


def credentials(event: PassIssued, password: str, *, for_admin: bool, rules_url: str) -> MailText:
    return render(
        "credentials.txt",
        for_admin=for_admin,
        applicant_name=event.applicant_name,
        applicant_email=str(event.applicant_email),
        login_url=event.login_url,
        use_date=event.use_date,
        user_id=event.user_id,
        password=password,
        rules_url=rules_url,
    )


def rejection(event: ApplicationRejected) -> MailText:
    return render(
        "rejection.txt",
        applicant_name=event.applicant_name,
        use_date=event.use_date,
        reason=event.reason,
        admin_email=str(event.admin_email),
    )


def admin_created(event: AdminCreated, console_url: str) -> MailText:
    return render("admin_created.txt", email=str(event.email), console_url=console_url)
