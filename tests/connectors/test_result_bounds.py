"""The first cell as the API returns it: at most 1024 characters, truncation flagged."""

from __future__ import annotations

from rivergen.connectors._support import MAX_CELL_BYTES, MAX_RESULT_CHARS, first_cell


def test_short_values_are_whole_and_not_flagged() -> None:
    assert first_cell(None) == (None, False)
    assert first_cell("x" * MAX_RESULT_CHARS) == ("x" * MAX_RESULT_CHARS, False)
    assert first_cell(b"\xff") == ("\\xff", False)


def test_long_text_is_cut_at_the_limit_and_flagged() -> None:
    assert first_cell("é" * 5000) == ("é" * MAX_RESULT_CHARS, True)


def test_long_binary_is_cut_before_it_is_printed() -> None:
    text, truncated = first_cell(b"\xff" * (MAX_CELL_BYTES * 100))
    assert truncated is True
    assert text == "\\x" + "ff" * ((MAX_RESULT_CHARS - 2) // 2)


def test_a_prefix_read_by_the_engine_is_flagged_even_when_short() -> None:
    assert first_cell("abc", cut=True) == ("abc", True)
    assert first_cell(None, cut=True) == (None, True)
