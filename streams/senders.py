"""Delivery senders: the console (JSON lines), a signed webhook POST, SMTP.

Each ``send`` delivers one message or raises :class:`DeliveryError`; ``permanent=True`` on the
error means trying again cannot help (a 4xx answer but 408 and 429, a redirect, a 5xx SMTP
reply), so the worker dead-letters at once instead of parking the message for a retry.

Webhook signing (replay protection, as Stripe does it): the header ``X-Journey-Timestamp``
carries the send time in Unix seconds and ``X-Journey-Signature`` is
``sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`` under the shared key. A receiver
recomputes it over the timestamp header, a ``.`` and the raw body, compares in constant time,
and refuses a timestamp older than its tolerance (5 minutes is usual): a captured request
cannot be replayed later, and a changed timestamp breaks the signature.

Redirects are never followed: urllib would re-send a POST answered 301/302/303 as a GET
without its body and count the 200 of that as delivered. A 3xx answer is a permanent failure
(dead-lettered with the status and the redirect's origin, never the full location), so a
moved endpoint shows up as dead letters to fix the URL and redrive, not as messages lost.

A ``webhook_url`` with ``user:password@`` is supported: the credentials are taken out of the
URL and sent as HTTP Basic auth (use https). Only :func:`redact_url` forms of a URL are logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import smtplib
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import IO, Any, Protocol

SIGNATURE_HEADER = "X-Journey-Signature"
TIMESTAMP_HEADER = "X-Journey-Timestamp"
MESSAGE_ID_HEADER = "X-Journey-Message-Id"


class DeliveryError(RuntimeError):
    """One attempt failed; the text is safe to store (no secret, no message body)."""

    def __init__(self, detail: str, permanent: bool = False) -> None:
        super().__init__(detail)
        self.permanent = permanent


class Sender(Protocol):
    adapter: str
    channels: frozenset[str] | None  # None: every channel
    #: Whether messages too old to matter are held back (external channels; the console is a local log).
    external: bool

    def send(self, message: dict[str, Any], raw: bytes) -> None:
        """Deliver one message or raise :class:`DeliveryError`."""


class ConsoleSender:
    """The embedded default: each message as one JSON line on stdout, or appended to a file."""

    adapter = "console"
    channels = None
    external = False

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._out: IO[bytes] | None = None

    def send(self, message: dict[str, Any], raw: bytes) -> None:
        if self._out is None:
            self._out = self.path.open("ab") if self.path else sys.stdout.buffer
        self._out.write(raw.rstrip() + b"\n")
        self._out.flush()


def signature(secret: bytes, body: bytes, timestamp: int | None = None) -> str:
    """The webhook signature header value: ``sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">``.

    Without a timestamp, the HMAC of the body alone (the scheme before timestamps; kept for checks).
    """
    signed = body if timestamp is None else f"{timestamp}.".encode() + body
    return "sha256=" + hmac.new(secret, signed, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, timestamp: str, header: str, tolerance: float = 300.0,
           now: float | None = None) -> bool:
    """What a receiver checks: the signature of ``timestamp.body`` and a timestamp within ``tolerance`` seconds."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance:
        return False
    return hmac.compare_digest(header, signature(secret, body, sent))


def redact_url(url: str) -> str:
    """``url`` safe for a log line: scheme, host and port only (a path or query may carry a token)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    tail = "/***" if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}{tail}"


def split_userinfo(url: str) -> tuple[str, str | None]:
    """``url`` without ``user:password@`` and the ``Authorization`` value for them (None when absent)."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.netloc.rsplit("@", 1)[1]
    user = urllib.parse.unquote(parts.username or "")
    password = urllib.parse.unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return urllib.parse.urlunsplit(parts._replace(netloc=host)), f"Basic {token}"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Never follow: a redirected POST would lose its body (301/302/303 become a GET)."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)
#: Answers worth trying again later: the receiver is overloaded or down for now.
RETRYABLE_HTTP = frozenset({408, 425, 429})


def http_error(code: int, location: str | None = None) -> DeliveryError:
    """The error for an HTTP answer that is not 2xx: retryable (5xx, 408, 425, 429) or permanent."""
    if 300 <= code < 400:
        where = f" to {redact_url(location)}" if location else ""
        return DeliveryError(f"HTTP {code} redirect{where} not followed (a redirected POST loses its body)",
                             permanent=True)
    return DeliveryError(f"HTTP {code}", permanent=not (code >= 500 or code in RETRYABLE_HTTP))


class WebhookSender:
    """JSON POST of the message, signed with HMAC-SHA256 over ``timestamp.body``; redirects not followed."""

    adapter = "webhook"
    channels = None
    external = True

    def __init__(self, url: str, secret: str | None, timeout: float = 5.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.url, self._authorization = split_userinfo(url)
        self._secret = secret.encode() if secret else None
        self.timeout = timeout
        self.clock = clock

    def __repr__(self) -> str:
        return f"WebhookSender({redact_url(self.url)})"

    def send(self, message: dict[str, Any], raw: bytes) -> None:
        timestamp = int(self.clock())
        headers = {"Content-Type": "application/json", MESSAGE_ID_HEADER: message["message_id"],
                   TIMESTAMP_HEADER: str(timestamp)}
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = signature(self._secret, raw, timestamp)
        if self._authorization is not None:
            headers["Authorization"] = self._authorization
        request = urllib.request.Request(self.url, data=raw, headers=headers, method="POST")
        try:
            with _OPENER.open(request, timeout=self.timeout) as response:
                response.read()
                status = response.status
        except urllib.error.HTTPError as exc:
            location = exc.headers.get("Location") if exc.headers else None
            raise http_error(exc.code, urllib.parse.urljoin(self.url, location) if location else None) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeliveryError(f"{type(exc).__name__}: {type(reason).__name__}") from None
        if not 200 <= status < 300:
            raise http_error(status)


class SmtpSender:
    """E-mail messages through an SMTP server (STARTTLS and login when configured)."""

    adapter = "smtp"
    channels = frozenset({"email"})
    external = True

    def __init__(self, host: str, port: int, sender: str, recipient: str = "{customer_id}@customers.invalid",
                 username: str | None = None, password: str | None = None, starttls: bool = False,
                 timeout: float = 10.0) -> None:
        self.host, self.port, self.sender, self.recipient = host, port, sender, recipient
        self.username, self._password, self.starttls, self.timeout = username, password, starttls, timeout

    def email(self, message: dict[str, Any]) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = self.recipient.format(customer_id=message["customer_id"])
        mail["Subject"] = message.get("subject") or ""
        mail[MESSAGE_ID_HEADER] = message["message_id"]
        mail.set_content(message["body"])
        return mail

    def send(self, message: dict[str, Any], raw: bytes) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.username:
                    smtp.login(self.username, self._password or "")
                smtp.send_message(self.email(message))
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise DeliveryError(f"SMTP {codes[0]}", permanent=all(c >= 500 for c in codes)) from None
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(f"SMTP {exc.smtp_code}", permanent=exc.smtp_code >= 500) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(type(exc).__name__) from None
