"""Contact details shown to roles that may not see them in full: enough to recognise a person
(a****@example.com, 138****5678), not enough to contact them."""

from __future__ import annotations


def mask_email(email: str | None) -> str | None:
    if not email or "@" not in email:
        return email
    local, _, domain = email.partition("@")
    return f"{local[:1]}****@{domain}"


def mask_phone(phone: str | None) -> str | None:
    """The first three and the last four digits of the national number: +86 138****5678."""
    if not phone:
        return phone
    national = phone[-11:] if phone.startswith("+86") else phone.lstrip("+")
    if len(national) < 8:
        return "****"
    prefix = phone[: len(phone) - len(national)]
    return f"{prefix}{' ' if prefix else ''}{national[:3]}****{national[-4:]}"
