"""demo_server.text: the one clipping, preview and host:port helper of the package."""

from __future__ import annotations

import pytest

from demo_server.text import clip, host_port, preview, printable_text


@pytest.mark.parametrize(("text", "width", "expected"), [
    ("", 3, ""),
    ("abc", 3, "abc"),  # fits exactly: nothing cut
    ("abcd", 3, "ab…"),  # cut: the ellipsis counts in the width
    ("abcdef", 1, "…"),
])
def test_clip_keeps_the_width_and_marks_a_cut(text, width, expected):
    assert clip(text, width) == expected
    assert len(clip(text, width)) <= width


@pytest.mark.parametrize(("data", "expected"), [
    (b"hi there", "hi there"),
    (b"", ""),
    ("café".encode(), "café"),
    (b"line\nbreak", None),  # a control character is not printable
    (b"\xff\xfe", None),  # not UTF-8
])
def test_printable_text_is_text_only_when_every_character_prints(data, expected):
    assert printable_text(data) == expected


def test_preview_quotes_text_and_shows_anything_else_as_hex():
    assert preview(b"hi", 10) == "'hi'"
    assert preview(b"hi", 10, quote=False) == "hi"
    assert preview(b"\x03\xe8bye", 20) == "03 e8 62 79 65"
    assert preview(b"x" * 100, 8) == "'xxxxxx…"
    assert preview(bytes(range(10)), 8) == "00 01 0…"


@pytest.mark.parametrize(("host", "expected"), [
    ("127.0.0.1", "127.0.0.1:8001"),
    ("localhost", "localhost:8001"),
    ("::1", "[::1]:8001"),
    ("fe80::1%lo", "[fe80::1%lo]:8001"),
])
def test_host_port_brackets_ipv6_only(host, expected):
    assert host_port(host, 8001) == expected
