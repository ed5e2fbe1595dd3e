"""Secrets handed out once (API keys, survey and unsubscribe links) are stored only as their
SHA-256: the database can check a token but cannot produce one."""

from __future__ import annotations

import hashlib


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
