"""Outbound channels: one folder per channel with one transport class (email over SMTP, SMS and
webhooks over HTTP), registered by name, and the sandboxed message templates they carry."""
