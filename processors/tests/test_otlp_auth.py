"""The tokens file: the OTLP stage binds exactly the tokens the Collector accepts.

The Collector's ``bearertokenauth`` (contrib v0.165.1, ``updateAuthorizationValues``) trims
the file, scans it with ``bufio.Scanner`` (lines end at ``\\n``, one ``\\r`` before it
dropped) and takes ``strings.Fields(line)[0]`` of every line as a valid token: comments
included. ``collector_tokens`` below is that rule, written from its source, as the oracle;
tests/test_otlp_collector_input.py checks the real Collector.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from llmpulse.processors.otlp import TokenBindings, TokensFile, TokensFileError, header_sha256
from llmpulse.processors.otlp.command import otlp

# Go's unicode.IsSpace: these in Latin-1, Unicode White_Space above it.
_GO_LATIN1_SPACE = "\t\n\v\f\r \x85\xa0"


def _go_space(ch: str) -> bool:
    return ch in _GO_LATIN1_SPACE or (ord(ch) > 0xFF and ch.isspace())


def _go_fields(line: str) -> list[str]:
    fields, current = [], ""
    for ch in line:
        if _go_space(ch):
            if current:
                fields.append(current)
            current = ""
        else:
            current += ch
    return fields + ([current] if current else [])


def collector_tokens(text: str) -> set[str]:
    """The tokens bearertokenauth accepts from this file's text."""
    start, end = 0, len(text)  # strings.TrimSpace of the file's content first
    while start < end and _go_space(text[start]):
        start += 1
    while end > start and _go_space(text[end - 1]):
        end -= 1
    lines = [line.removesuffix("\r") for line in text[start:end].split("\n")]
    return {fields[0] for line in lines if (fields := _go_fields(line))}


def _bound_tokens(bindings: TokenBindings, candidates: set[str]) -> set[str]:
    return {t for t in candidates if header_sha256(t) in bindings.apps_by_hash}


@pytest.mark.parametrize(("text", "line"), [
    ("# <token> <app>[,<app>...]  (*: any app)\ntok-a support-bot\n", 1),  # the old doc's file
    ("tok-a support-bot\n#tok-b billing\n", 2),
    ("// tokens of the support team\ntok-a support-bot\n", 1),
    ("tok-a\n", 1),                                   # a token without apps
    ("tok-a ,,\n", 1),
    ("tok-a support-bot # the support team\n", 1),    # a comment after the apps
    ("tok-a support-bot\ntok-a billing\n", 2),        # the same token twice
    ("tok\"a support-bot\n", 1),                      # not RFC 6750 b64token characters
    ("tok-a support-bot\n\x1c billing\n", 2),         # Python splits there, Go does not
    ("tok-a\x1cx support-bot\n", 1),
    ("tok-a support-bot\vbilling\n", 1),
    ("tok-a support-bot\u2028tok-b billing\n", 1),    # a line break to Python only
    ("\ufefftok-a support-bot\n", 1),                 # a byte-order mark
    ("tok-a support-bot\n\xa0\n", 2),                 # blank-looking, not spaces and tabs
    ("tok-a support-bot\n\u200b\n", 2),               # a zero-width space: a token to Go
    ("tok-a " + "x" * 5000 + "\n", 1),                # Go's scanner stops at 64 KiB lines
])
def test_a_line_the_collector_would_read_otherwise_is_refused(text: str, line: int) -> None:
    with pytest.raises(TokensFileError) as refused:
        TokenBindings.parse(text)
    assert refused.value.line == line
    assert f"line {line}:" in str(refused.value)


def test_a_tokens_file_that_is_not_utf8_is_refused_with_its_line(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_bytes(b"tok-a support-bot\ntok-b caf\xe9\n")  # Latin-1, not UTF-8
    with pytest.raises(TokensFileError) as refused:
        TokenBindings.load(tokens)
    assert refused.value.line == 2
    assert str(refused.value) == f"{tokens}, line 2: the file is not UTF-8"


def test_blank_lines_crlf_and_tabs_mean_the_same_to_both() -> None:
    text = "\n  \ntok-a\tsupport-bot, faq-bot \r\n\t\ntok-b *\r\n\n"
    bindings = TokenBindings.parse(text)
    assert collector_tokens(text) == {"tok-a", "tok-b"}
    assert _bound_tokens(bindings, {"tok-a", "tok-b", "#", ""}) == {"tok-a", "tok-b"}
    assert bindings.allows(header_sha256("tok-a"), "faq-bot")
    assert bindings.allows(header_sha256("tok-b"), "billing")
    assert not bindings.allows(header_sha256("tok-a"), "billing")


def test_every_token_the_collector_takes_from_an_accepted_file_is_bound() -> None:
    """Random files of risky pieces: whenever the stage accepts one, the Collector's tokens
    and the bound tokens are the same set (no accepted credential without apps)."""
    pieces = ["tok-a", "tok-b", "Zr7p/+=", "#", "//", "app", "*", ",", " ", "\t", "\r", "\n",
              "\n", "\x1c", "\v", "\xa0", "\u2028", "\u200b", "é", "\"", "=x"]
    rng = random.Random(13)
    accepted = 0
    for _ in range(4000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
        try:
            bindings = TokenBindings.parse(text)
        except TokensFileError:
            continue
        accepted += 1
        tokens = collector_tokens(text)
        assert _bound_tokens(bindings, tokens) == tokens, repr(text)
        assert len(bindings) == len(tokens), repr(text)
        assert all(apps for apps in bindings.apps_by_hash.values()), repr(text)
    assert accepted > 100  # the property was exercised, not vacuous


def test_the_commands_refuse_such_a_file_naming_the_line(tmp_path: Path) -> None:
    tokens = tmp_path / "otel-tokens"
    tokens.write_text("tok-a support-bot\n# tok-b billing\n", encoding="utf-8")
    runner = CliRunner()
    checked = runner.invoke(otlp, ["check-tokens", str(tokens)])
    assert checked.exit_code == 1
    assert f"{tokens}, line 2: not '<token> <app>" in checked.output
    # The stage refuses to start on it before it connects to anything.
    ran = runner.invoke(otlp, ["run", "--bootstrap-servers", "127.0.0.1:1", "--tokens", str(tokens)])
    assert ran.exit_code == 1 and f"{tokens}, line 2:" in ran.output
    tokens.write_text("tok-a support-bot\n", encoding="utf-8")
    checked = runner.invoke(otlp, ["check-tokens", str(tokens)])
    assert checked.exit_code == 0 and "1 tokens" in checked.output


def test_a_made_token_line_is_accepted() -> None:
    line = CliRunner().invoke(otlp, ["token", "support-bot", "faq-bot"]).output
    token = line.split()[0]
    bindings = TokenBindings.parse(line)
    assert bindings.allows(header_sha256(token), "faq-bot")


class _Clock:
    """Monotonic seconds the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _followed(tmp_path: Path, text: str) -> tuple[TokensFile, Path, _Clock]:
    path = tmp_path / "otel-tokens"
    path.write_text(text)
    clock = _Clock()
    return TokensFile(path, clock=clock), path, clock


def test_a_new_tokens_file_adds_at_the_next_look_and_takes_away_at_the_second(
        tmp_path: Path) -> None:
    tokens, path, clock = _followed(tmp_path, "tok-a support-bot\n")
    path.write_text("tok-a billing\ntok-b support-bot\n")
    before = tokens.bindings()  # within the interval: the file is not looked at
    assert before.allows(header_sha256("tok-a"), "support-bot")
    assert not before.allows(header_sha256("tok-b"), "support-bot")
    clock.now += 1.0
    first = tokens.bindings()  # what it adds holds at once; what it takes away waits
    assert first.allows(header_sha256("tok-b"), "support-bot")
    assert first.allows(header_sha256("tok-a"), "billing")
    assert first.allows(header_sha256("tok-a"), "support-bot")
    clock.now += 1.0
    after = tokens.bindings()  # the same bytes again: the new version in full
    assert after.problem is None
    assert after.allows(header_sha256("tok-b"), "support-bot")
    assert after.allows(header_sha256("tok-a"), "billing")
    assert not after.allows(header_sha256("tok-a"), "support-bot")  # its binding changed


def test_a_tokens_file_caught_half_rewritten_revokes_nothing(tmp_path: Path) -> None:
    """An editor truncates the file, then writes it: a look in between reads a file that
    lacks tokens still in service, and must not refuse their spans."""
    tokens, path, clock = _followed(tmp_path, "tok-a support-bot\ntok-b billing\n")
    for partial in ("", "tok-a support-bot\ntok-b bil", "tok-a sup"):
        path.write_text(partial)
        clock.now += 1.0
        seen = tokens.bindings()
        assert seen.allows(header_sha256("tok-a"), "support-bot"), partial
        assert seen.allows(header_sha256("tok-b"), "billing"), partial
    path.write_text("tok-a support-bot\ntok-b billing\n")  # written in full, as before
    clock.now += 1.0
    assert tokens.bindings().problem is None
    clock.now += 1.0
    assert tokens.bindings().allows(header_sha256("tok-b"), "billing")


def test_a_refused_token_gets_a_look_at_the_file_at_most_ten_times_a_second(
        tmp_path: Path) -> None:
    tokens, path, clock = _followed(tmp_path, "tok-a support-bot\n")
    path.write_text("tok-a support-bot\ntok-new support-bot\n")
    assert not tokens.bindings().allows(header_sha256("tok-new"), "support-bot")
    assert tokens.refresh().allows(header_sha256("tok-new"), "support-bot")  # added: at once
    path.write_text("tok-a support-bot\ntok-new support-bot\ntok-newer billing\n")
    assert not tokens.refresh().allows(header_sha256("tok-newer"), "billing")  # too soon
    clock.now += 0.1
    assert tokens.refresh().allows(header_sha256("tok-newer"), "billing")


def test_a_revocation_needs_two_looks_a_second_apart_not_two_refused_spans(
        tmp_path: Path) -> None:
    """Refused spans look at the file ten times a second: two such looks reading the same
    half-written file must not take a token away; a look a second after the first does."""
    tokens, path, clock = _followed(tmp_path, "tok-a support-bot\ntok-b billing\n")
    path.write_text("tok-a support-bot\n")  # caught between an editor's truncate and write
    first_look = clock.now
    for _ in range(9):  # 0.0 .. 0.8 s after the first look at this version
        assert tokens.refresh().allows(header_sha256("tok-b"), "billing")
        clock.now += 0.1
    clock.now = first_look + 1.0  # a second after the first look, the same bytes: it holds
    assert not tokens.refresh().allows(header_sha256("tok-b"), "billing")
    assert tokens.refresh().allows(header_sha256("tok-a"), "support-bot")


def test_an_invalid_tokens_file_keeps_only_the_last_valid_tokens_still_in_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    tokens, path, clock = _followed(tmp_path, "tok-a support-bot\ntok-b billing\n")
    # By hand: a comment (the Collector now accepts "Bearer #"), a new token, tok-b revoked.
    path.write_text("# tok-a is the support team's\ntok-a support-bot\ntok-c billing\n")
    clock.now += 1.0
    with caplog.at_level("ERROR", logger="llmpulse.processors.otlp.auth"):
        assert tokens.bindings().allows(header_sha256("tok-b"), "billing")  # one look: kept
        clock.now += 1.0
        bindings = tokens.bindings()
        clock.now += 5.0
        assert tokens.bindings() is bindings  # the same file: no second look's error
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1
    assert "line 1" in errors[0].getMessage() and str(path) in errors[0].getMessage()
    assert bindings.allows(header_sha256("tok-a"), "support-bot")  # in service, still there
    for token, app in (("#", "support-bot"), ("tok-c", "billing"), ("tok-b", "billing")):
        assert not bindings.allows(header_sha256(token), app), token
    assert bindings.problem is not None and "invalid" in bindings.problem
    # Another change, still invalid: one more error; fixed: the file's own bindings.
    path.write_text("# notes\ntok-b billing\n")
    clock.now += 1.0
    with caplog.at_level("ERROR", logger="llmpulse.processors.otlp.auth"):
        tokens.bindings()
        clock.now += 1.0  # it takes tok-a away: the second look with the same bytes
        again = tokens.bindings()
    assert not again.allows(header_sha256("tok-a"), "support-bot")  # revoked meanwhile
    assert again.allows(header_sha256("tok-b"), "billing")  # back, as in the last valid file
    assert len([r for r in caplog.records if r.levelname == "ERROR"]) == 2
    path.write_text("tok-c billing\n")
    clock.now += 1.0
    fixed = tokens.bindings()
    assert fixed.problem is None and fixed.allows(header_sha256("tok-c"), "billing")


def test_a_tokens_file_that_goes_away_keeps_the_bindings_and_says_so_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    tokens, path, clock = _followed(tmp_path, "tok-a support-bot\n")
    path.unlink()
    with caplog.at_level("ERROR", logger="llmpulse.processors.otlp.auth"):
        for _ in range(3):
            clock.now += 1.0
            assert tokens.bindings().allows(header_sha256("tok-a"), "support-bot")
    assert len([r for r in caplog.records if r.levelname == "ERROR"]) == 1
    path.write_text("tok-b support-bot\n")
    clock.now += 1.0
    assert tokens.bindings().allows(header_sha256("tok-b"), "support-bot")


def test_a_tokens_file_invalid_at_start_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "otel-tokens"
    path.write_text("tok-a support-bot\n# notes\n")
    with pytest.raises(TokensFileError, match="line 2"):
        TokensFile(path)


def test_the_mapper_looks_at_fresh_bindings_once_before_it_refuses_a_span() -> None:
    """A span its bindings refuse is checked against ``refresh_bindings()`` first, whose
    answer is kept for the spans after; a span they allow asks for nothing."""
    from otlp_spans import traces

    from llmpulse.processors.otlp import OtlpMapper
    from llmpulse.processors.otlp.auth import TOKEN_HASH_ATTRIBUTE

    looks: list[TokenBindings] = []
    fresh = [TokenBindings.parse("tok-a support-bot\ntok-b support-bot\n")]

    def refresh() -> TokenBindings:
        looks.append(fresh[0])
        return fresh[0]

    mapper = OtlpMapper(bindings=TokenBindings.parse("tok-a support-bot\n"),
                        refresh_bindings=refresh)

    def kept(token: str) -> bool:
        resource = {"service.name": "support-bot", TOKEN_HASH_ATTRIBUTE: header_sha256(token)}
        record = mapper.map_traces(traces({"attrs": {"gen_ai.operation.name": "chat"}},
                                          resource=resource))
        letters = [d.reason for d in record.dead_letters]
        assert letters == ([] if record.prompts else ["app_not_allowed"])
        return bool(record.prompts)

    assert kept("tok-a") and looks == []
    assert kept("tok-b") and len(looks) == 1 and mapper.bindings is fresh[0]  # added: kept
    assert kept("tok-b") and len(looks) == 1  # (from the bindings it kept)
    fresh[0] = TokenBindings.parse("tok-a support-bot\n")
    assert not kept("tok-c") and len(looks) == 2
    assert not kept("tok-c") and len(looks) == 3  # each refusal asks (TokensFile.refresh paces)
    assert mapper.counts["dlq:app_not_allowed"] == 2 and mapper.counts["calls"] == 3
