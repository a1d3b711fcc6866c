"""Tell the admins: e-mail (SMTP) and Slack (incoming webhook), on failure or low disk space.

Each channel is tried on its own and its failure is reported back rather than
raised: a cron job that cannot mail must still say so on stderr and still try
Slack. The webhook URL is a credential (whoever has it can post), so it is
registered with the command log's masking and never printed.
"""

from __future__ import annotations

import json
import smtplib
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from email.message import EmailMessage

from djtui.config import NotifySettings
from djtui.services import commandlog


@dataclass
class NotifyResult:
    sent: list[str] = field(default_factory=list)  # channel names
    errors: list[str] = field(default_factory=list)


def send_email(settings: NotifySettings, subject: str, body: str, *, timeout: float = 20) -> None:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = settings.smtp_from or f"djtui@{socket.getfqdn()}"
    msg["To"] = ", ".join(settings.smtp_to)
    msg.set_content(body)
    with smtplib.SMTP(settings.smtp_host or "localhost", settings.smtp_port, timeout=timeout) as smtp:
        smtp.send_message(msg)


def send_slack(webhook: str, text: str, *, timeout: float = 20) -> None:
    commandlog.add_secret(webhook)
    req = urllib.request.Request(webhook, data=json.dumps({"text": text}).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        if resp.status >= 300:
            raise OSError(f"Slack answered HTTP {resp.status}")


def notify(settings: NotifySettings, subject: str, body: str) -> NotifyResult:
    """Send to every configured channel; collect errors instead of raising."""
    res = NotifyResult()
    if settings.smtp_host and settings.smtp_to:
        try:
            send_email(settings, subject, body)
            res.sent.append("email")
        except (OSError, smtplib.SMTPException) as exc:
            res.errors.append(f"email via {settings.smtp_host}:{settings.smtp_port} failed: {exc}")
    if settings.slack_webhook:
        try:
            send_slack(settings.slack_webhook.reveal(), f"*{subject}*\n{body}")
            res.sent.append("slack")
        except (OSError, urllib.error.URLError) as exc:
            res.errors.append(commandlog.mask(f"Slack webhook failed: {exc}"))
    return res
