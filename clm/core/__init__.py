"""Shared building blocks with no knowledge of any domain: errors, settings, time, files."""
