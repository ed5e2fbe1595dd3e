"""Email over SMTP: one connection reused for a whole batch, STARTTLS and login from the
settings, the outbox key as Message-ID, and the unsubscribe headers the message carries."""

from __future__ import annotations

import base64
import hashlib
import re
import smtplib
import ssl
from email.utils import formataddr, formatdate, parseaddr

from clm.channels.base import OutboundMessage, SendResult
from clm.core.settings import settings


def _one_line(value: str) -> str:
    return value.replace("\r", " ").replace("\n", " ")


def _base64(text: str) -> bytes:
    """UTF-8 text in base64, lines of 76 characters (RFC 2045)."""
    return base64.encodebytes(text.encode("utf-8")).replace(b"\n", b"\r\n")


def _encoded_words(text: str) -> str:
    """A non-ASCII header value as RFC 2047 encoded words (`=?utf-8?b?…?=`), each of at most 45
    bytes of UTF-8 (a 75-character word) and never splitting a character; the email package's
    Header did the same at a tenth of a millisecond a message."""
    raw = text.encode("utf-8")
    words, start = [], 0
    while start < len(raw):
        end = min(start + 45, len(raw))
        while end < len(raw) and (raw[end] & 0xC0) == 0x80:  # not inside a character
            end -= 1
        words.append("=?utf-8?b?" + base64.b64encode(raw[start:end]).decode("ascii") + "?=")
        start = end
    return " ".join(words)


def _part(content_type: str, text: str) -> bytes:
    """One UTF-8 MIME part of a multipart body."""
    head = f'Content-Type: {content_type}; charset="utf-8"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
    return head.encode() + _base64(text)


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
        name, address = parseaddr(sender)
        self._envelope_from = address or sender
        self._from_header = formataddr((name, address), charset="utf-8") if address else sender

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

    def build(self, message: OutboundMessage) -> bytes:
        """The message as it goes on the wire: UTF-8 parts in base64, CRLF line ends. Written
        here rather than by the email package, whose header folding cost more than everything
        else in sending a message (RFC 5322 headers, RFC 2045/2046 MIME parts)."""
        subject = message.subject if message.subject.isascii() else _encoded_words(message.subject)
        headers = {
            "From": self._from_header,
            "To": message.to,
            "Subject": subject,
            "Date": formatdate(localtime=False),
            # the outbox key, in the characters a Message-ID's left part allows
            "Message-ID": "<" + re.sub(r"[^A-Za-z0-9.-]", ".", message.key) + "@clm>",
            "MIME-Version": "1.0",
            **message.headers,
        }
        if message.html:
            boundary = "=_clm_" + hashlib.sha256(message.key.encode()).hexdigest()[:24]
            headers["Content-Type"] = f'multipart/alternative; boundary="{boundary}"'
            body = (
                f"--{boundary}\r\n".encode() + _part("text/plain", message.text)
                + f"\r\n--{boundary}\r\n".encode() + _part("text/html", message.html)
                + f"\r\n--{boundary}--\r\n".encode()
            )  # fmt: skip
        else:
            headers["Content-Type"] = 'text/plain; charset="utf-8"'
            headers["Content-Transfer-Encoding"] = "base64"
            body = _base64(message.text)
        # no CR or LF inside a value: a header cannot smuggle in another header
        top = "".join(f"{name}: {_one_line(value)}\r\n" for name, value in headers.items())
        return top.encode("utf-8") + b"\r\n" + body

    def send(self, message: OutboundMessage) -> SendResult:
        """Hand one message to the server. A 5xx refusal is permanent (a hard bounce); a 4xx
        or a dropped connection is temporary (the outbox retries)."""
        try:
            self.open()
            assert self._smtp is not None
            self._smtp.sendmail(self._envelope_from, [message.to], self.build(message))
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
