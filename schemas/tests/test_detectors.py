"""PII and secret detectors: what they find, what they leave alone, what they show."""

from __future__ import annotations

import pytest

from llmpulse.schemas.detectors import find_pii, find_secrets, iban_valid, luhn_valid


def kinds(text: str, **kwargs: object) -> list[tuple[str, str]]:
    return [(f.subtype or f.kind, text[f.start:f.end]) for f in find_pii(text, **kwargs)]  # type: ignore[arg-type]


def test_a_card_number_passing_luhn_is_found_and_one_failing_is_not():
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert kinds("pay with 4111 1111 1111 1111 today") == [("credit_card", "4111 1111 1111 1111")]
    assert kinds("pay with 4111 1111 1111 1112 today") == []
    assert kinds("card 5555-5555-5555-4444.") == [("credit_card", "5555-5555-5555-4444")]


def test_card_preview_keeps_only_the_last_four_digits():
    [found] = find_pii("card 4111 1111 1111 1111")
    assert found.preview == "**** **** **** 1111"


def test_ibans_are_checked_with_mod_97():
    assert iban_valid("DE89 3704 0044 0532 0130 00") and iban_valid("GB82WEST12345698765432")
    assert not iban_valid("DE89 3704 0044 0532 0130 01")
    assert kinds("to DE89 3704 0044 0532 0130 00 please") == [("iban", "DE89 3704 0044 0532 0130 00")]
    assert kinds("to DE89 3704 0044 0532 0130 01 please") == []


@pytest.mark.parametrize(("text", "expected"), [
    ("my ssn is 123-45-6789", [("us_ssn", "123-45-6789")]),
    ("ssn 000-45-6789 is not valid", []),
    ("NINO AB 12 34 56 C", [("uk_nino", "AB 12 34 56 C")]),
    ("DNI 12345678Z", [("es_dni", "12345678Z")]),
    ("DNI 12345678A has the wrong letter", []),
])
def test_national_ids(text, expected):
    assert kinds(text) == expected


def test_phones_but_not_dates_or_amounts():
    assert kinds("call +44 20 7946 0958 or (415) 555-2671") == [
        ("phone", "+44 20 7946 0958"), ("phone", "(415) 555-2671")]
    assert kinds("shipped 2024-06-01, total 1,299.00 EUR, order 48213") == []
    assert kinds("order number 1234567890") == []
    assert kinds("phone: 4155552671") == [("phone", "4155552671")]


def test_public_ips_only_unless_asked():
    text = "dns 8.8.8.8, router 192.168.1.1, v6 2001:4860:4860::8888, std::vector<int>"
    assert kinds(text) == [("ipv4", "8.8.8.8"), ("ipv6", "2001:4860:4860::8888")]
    assert ("ipv4", "192.168.1.1") in kinds(text, private_ips=True)


def test_email_preview_masks_the_address():
    [found] = find_pii("write to ada.lovelace@example.co.uk")
    assert found.kind == "email" and found.preview == "a***@***.uk"


SECRETS = {
    "aws_access_key": "AKIAIOSFODNN7EXAMPLE",
    "github_token": "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
    "openai_key": "sk-proj-Zx81kdPq02LmNa7Ty5RbWc3Ve9Ju",
    "anthropic_key": "sk-ant-api03-Qw8eRt7yUi6oPa5sDf4gHj3k",
    "slack_token": "xoxb-2048-9182736450-AbCdEfGhIj",
    "google_api_key": "AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW",
    "stripe_key": "sk_live_51HcXyZaBcDeFgHiJkLmN",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
}


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_vendor_keys_are_found_and_never_shown(kind):
    secret = SECRETS[kind]
    [found] = find_secrets(f"here it is: {secret} ok")
    assert found.kind == kind
    assert found.preview.endswith(f"[{len(secret)} chars]")
    body = secret[len(found.preview.split("…")[0]):]
    assert body[:6] not in found.preview


def test_credentials_in_assignments_urls_and_headers():
    text = ("password = hunter2hunter2\nDATABASE_URL=postgres://bob:s3cr3tpw@db:5432/app\n"
            "Authorization: Bearer abcdefghijklmnop1234\napi_key: <your-api-key>")
    found = {(f.kind, text[f.start:f.end]) for f in find_secrets(text)}
    assert found == {("credential_assignment", "hunter2hunter2"), ("password_in_url", "s3cr3tpw"),
                     ("bearer_token", "abcdefghijklmnop1234")}


def test_private_key_block():
    text = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----"
    [found] = find_secrets(text)
    assert found.kind == "private_key" and (found.start, found.end) == (0, len(text))
    assert "MIIE" not in found.preview


def test_plain_text_finds_nothing():
    text = ("The key point: keep your token budget small and the secret to good prompts is clarity. "
            "Orders ship in 3 days; call us any time.")
    assert find_pii(text) == [] and find_secrets(text) == []
