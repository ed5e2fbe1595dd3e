"""The HTTP API: mounts each domain's router, turns errors into JSON, publishes OpenAPI."""

from clm.api.app import create_app

__all__ = ["create_app"]
