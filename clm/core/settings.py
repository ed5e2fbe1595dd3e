"""Settings read from the environment (CLM_*), with defaults that work with zero set-up."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_DATABASE_URL = "sqlite:///./clm.db"


@dataclass(frozen=True)
class Settings:
    database_url: str
    # Region assumed for phone numbers written without a country code (ISO 3166 alpha-2).
    default_phone_region: str
    # Where people reach this server from outside: survey links (and later tracking links) start with it.
    public_url: str

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            database_url=os.environ.get("CLM_DATABASE_URL", DEFAULT_DATABASE_URL),
            default_phone_region=os.environ.get("CLM_DEFAULT_PHONE_REGION", "CN").upper(),
            public_url=os.environ.get("CLM_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/"),
        )


def settings() -> Settings:
    return Settings.from_env()
