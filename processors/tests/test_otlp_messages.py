"""``otlp.messages`` (the prompt's and the answer's messages, split out of ``conventions``)."""

from __future__ import annotations

import doctest

from llmpulse.processors.otlp import messages


def test_module_example_runs() -> None:
    result = doctest.testmod(messages)
    assert result.attempted > 0 and result.failed == 0


def test_the_common_shape_and_the_general_walk_read_the_same_messages() -> None:
    """Message JSON of text parts only is decoded into typed structs; the same messages with
    one unknown key (the general walk) read the same."""
    plain = ('[{"role": "system", "parts": [{"type": "text", "content": "Be brief."}]}, '
             '{"role": "Human", "parts": [{"type": "text", "content": "a"}, '
             '{"type": "text", "content": "b"}]}]')
    walked = plain.replace('"role": "system"', '"role": "system", "x": 1')
    assert messages._text_messages(plain) is not None and messages._text_messages(walked) is None
    expected = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "a\nb"}]
    assert messages.input_messages({"gen_ai.input.messages": plain}, []) == expected
    assert messages.input_messages({"gen_ai.input.messages": walked}, []) == expected
