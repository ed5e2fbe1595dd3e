"""Email over SMTP: one connection reused for a whole batch, STARTTLS and login from the
settings, the outbox key as Message-ID, and the unsubscribe headers the message carries."""

from __future__ import annotations

import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from clm.channels.base import OutboundMessage, SendResult
from clm.core.settings import settings


class EmailTransport:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        starttls: bool = False,
        user: str | None = None,
        password: str | None = None,
        sender: str = "CLM <no-reply@localhost>",
        timeout: float = 30,
    ) -> None:
        self.host, self.port, self.starttls = host, port, starttls
        self.user, self.password, self.sender, self.timeout = user, password, sender, timeout
        self._smtp: smtplib.SMTP | None = None

    @classmethod
    def from_settings(cls) -> EmailTransport:
        s = settings()
        return cls(
            s.smtp_host,
            s.smtp_port,
            starttls=s.smtp_starttls,
            user=s.smtp_user,
            password=s.smtp_password,
            sender=s.mail_from,
        )

    def open(self) -> None:
        if self._smtp is not None:
            return
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        smtp.ehlo()
        if self.starttls:
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if self.user:
            smtp.login(self.user, self.password or "")
        self._smtp = smtp

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except smtplib.SMTPException:
                self._smtp.close()
            self._smtp = None

    def build(self, message: OutboundMessage) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.to
        mail["Subject"] = message.subject
        mail["Date"] = formatdate(localtime=False)
        # the outbox key, in the characters a Message-ID's left part allows
        mail["Message-ID"] = "<" + re.sub(r"[^A-Za-z0-9.-]", ".", message.key) + "@clm>"
        for name, value in message.headers.items():
            mail[name] = value
        mail.set_content(message.text)
        if message.html:
            mail.add_alternative(message.html, subtype="html")
        return mail

    def send(self, message: OutboundMessage) -> SendResult:
        """Hand one message to the server. A 5xx refusal is permanent (a hard bounce); a 4xx
        or a dropped connection is temporary (the outbox retries)."""
        try:
            self.open()
            assert self._smtp is not None
            self._smtp.send_message(self.build(message))
            return SendResult(True)
        except smtplib.SMTPRecipientsRefused as exc:
            code, why = next(iter(exc.recipients.values()))
            return SendResult(False, permanent=code >= 500, detail=f"{code} {why.decode(errors='replace')}")
        except smtplib.SMTPResponseException as exc:
            self.close()
            return SendResult(
                False, permanent=exc.smtp_code >= 500, detail=f"{exc.smtp_code} {exc.smtp_error!r}"
            )
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            return SendResult(False, detail=f"SMTP server unreachable: {exc}")
