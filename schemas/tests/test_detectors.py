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


@pytest.mark.parametrize("text", [
    "git remote add origin git@github.com:acme/payments.git",
    "clone ssh://git@gitlab.example.com/team/repo.git",
    "ISBN 978-3-16-148410-0 and ISBN 0-306-40615-2",
    "running version 10.0.2.15 of the agent, Chrome 120.0.6099.109",
    "order 555-123-4567-89 shipped; invoice no. 0034 5567 8812",
    "request 550e8400-e29b-41d4-a716-446655440000 at 2024-06-01 12:30:45",
    "commit 3f786850e387550fdab836ed7e6dc881de23001b, sha256 9f86d081884c7d659a2feaa0c55ad015",
    "the population grew to 1 234 567 890 people",
])
def test_what_engineers_paste_every_day_is_not_personal_data(text):
    assert kinds(text) == []


@pytest.mark.parametrize(("text", "expected"), [
    ("appelle-moi au 06 12 34 56 78", "phone"),
    ("ruf mich an: 030 12345678", "phone"),
    ("llámame al 612 34 56 78", "phone"),
    ("telemóvel 912 345 678", "phone"),
    ("bel me op 06-12345678", "phone"),
    ("chiamami al 333 123 4567", "phone"),
    ("WhatsApp (11) 91234-5678", "phone"),
    ("numéro de sécurité sociale 2 69 05 49 588 157 80", "fr_nir"),
    ("Steuer-ID 86095742719", "de_steuer_id"),
    ("mijn BSN is 111222333", "nl_bsn"),
    ("NIF 123456789", "pt_nif"),
    ("CPF 529.982.247-25", "br_cpf"),
    ("codice fiscale RSSMRA85T10A562S", "it_codice_fiscale"),
    ("NIE X1234567L", "es_nie"),
])
def test_phones_and_national_ids_of_more_countries(text, expected):
    assert [kind for kind, _ in kinds(text)] == [expected]


def test_national_ids_with_a_wrong_check_digit_are_not_found():
    assert kinds("CPF 529.982.247-24, BSN 111222334, codice fiscale RSSMRA85T10A562T, NIE X1234567A") == []


MORE_SECRETS = {
    "gitlab_token": "glpat-Vq3xR8mT2kLp9sWz4YbN",
    "npm_token": "npm_Q8vR2mXk7LpT3sWz9YbN4cFh6JdG1aEo5uKi",
    "azure_storage_key": ("DefaultEndpointsProtocol=https;AccountName=acmelogs;AccountKey="
                          "q8V2mXk7LpT3sWz9YbN4cFh6JdG1aEo5uKiR0tHy3QnB7wZ1xCv5Ls8Dj2Mf6Gp4Hr9Tk1Ne3Ua7Wq0Yb5Zc8Xd2Ve6Ag==;"
                          "EndpointSuffix=core.windows.net"),
    "slack_token": "https://hooks.slack.com/services/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",
}


@pytest.mark.parametrize("kind", sorted(MORE_SECRETS))
def test_more_vendor_formats(kind):
    assert [f.kind for f in find_secrets(f"config: {MORE_SECRETS[kind]}")] == [kind]


@pytest.mark.parametrize("text", [
    "OPENAI_API_KEY=YOUR_API_KEY",
    "api_key: <your-api-key>",
    "password = changeme",
    'token: "${GITHUB_TOKEN}"',
    "Authorization: Bearer YOUR_TOKEN_HERE",
    "export AWS_ACCESS_KEY_ID=AKIAXXXXXXXXXXXXXXXX",
    "sk-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "postgres://postgres:postgres@localhost:5432/app",
    "DATABASE_URL=postgres://user:${DB_PASSWORD}@db/app",
])
def test_placeholders_are_not_secrets(text):
    assert find_secrets(text) == []


def test_database_urls_and_connection_strings_with_passwords():
    text = ("redis://:Zq81mVx02pLk@cache:6379/0\n"
            "Server=tcp:sql.example.net;Database=app;User Id=app;Password=Tr0ub4dor&3x;")
    assert [f.kind for f in find_secrets(text)] == ["password_in_url", "credential_assignment"]
