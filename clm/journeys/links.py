"""Tracked links that cannot be turned into an open redirect.

A click link is `{public_url}/t/c/{token}?u={destination}&s={signature}`: the signature is an
HMAC-SHA256 of the message's token and the destination, keyed with a secret this server keeps in
its store (`server_secrets`, made on first use, shared by the worker that writes links and the
server that follows them). `/t/c/` redirects only when the signature matches and the token
belongs to a message; anything else (another address, a made-up token, a link of the old
unsigned form) is answered 404 without redirecting.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote

from sqlalchemy import Engine

from clm.auth.users import server_secret

SECRET_NAME = "tracked-links"


def link_key(engine: Engine) -> bytes:
    """The signing key of tracked links (read once per batch of messages)."""
    return server_secret(engine, SECRET_NAME).encode()


def signature(key: bytes, token: str, url: str) -> str:
    """128 bits of HMAC-SHA256 over the token and the destination, URL-safe base64 (22 chars)."""
    digest = hmac.new(key, f"{token}\n{url}".encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def tracked_url(base: str, key: bytes, token: str, url: str) -> str:
    return f"{base}/t/c/{token}?u={quote(url, safe='')}&s={signature(key, token, url)}"


def is_genuine(key: bytes, token: str, url: str, given: str) -> bool:
    """Whether `given` is the signature this server issued for (token, url)."""
    return hmac.compare_digest(signature(key, token, url), given)
