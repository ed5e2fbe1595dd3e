"""WEBHOOK over HTTP."""
