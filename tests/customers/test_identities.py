"""Identity normalisation: one spelling per person whatever the input looks like."""

import pytest

from clm.core.errors import InvalidInput
from clm.customers.identities import normalize_email, normalize_identity, normalize_phone


def test_email_is_trimmed_and_lower_cased():
    assert normalize_email("  Ann.Lee@Example.COM ") == "ann.lee@example.com"


@pytest.mark.parametrize("bad", ["", "ann", "ann@", "a b@c.com", "ann@example"])
def test_bad_emails_are_refused(bad):
    with pytest.raises(InvalidInput, match="email"):
        normalize_email(bad)


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("+86 138 1234 5678", None, "+8613812345678"),
        ("138-1234-5678", "CN", "+8613812345678"),
        ("(415) 555-2671", "US", "+14155552671"),
        ("+1 415 555 2671", "CN", "+14155552671"),
    ],
)
def test_phones_become_e164(raw, region, e164):
    assert normalize_phone(raw, region) == e164


def test_impossible_phone_is_refused():
    with pytest.raises(InvalidInput, match="phone"):
        normalize_phone("12", "CN")
    with pytest.raises(InvalidInput, match="phone"):
        normalize_phone("call me", "CN")


def test_plain_ids_are_trimmed_and_unknown_kinds_refused():
    assert normalize_identity("external_id", "  U-1 ") == "U-1"
    with pytest.raises(InvalidInput):
        normalize_identity("external_id", "   ")
    with pytest.raises(InvalidInput, match="unknown identity kind"):
        normalize_identity("passport", "X")
