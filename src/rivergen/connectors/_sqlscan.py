"""Identifiers of a SQL text as the server's own lexer would see them, outside strings and comments.

Hand-written because the check is only as good as its agreement with the server, and general
tokenizers differ from it where it matters: sqlparse reads every backslash as an escape;
Pygments' PostgreSQL lexer takes `AS a$x$` for a dollar quote, does not keep an E string's
escapes across a continuation line and does not decode `U&"..."` names. Each such difference
lets a function call hide in what the tokenizer takes for a string. Each scanner here follows
its server's lexer (PostgreSQL's scan.l, MySQL's sql_lex.cc) wherever it decides where strings,
quoted identifiers and comments begin and end; the server settings that change that
(standard_conforming_strings, NO_BACKSLASH_ESCAPES, ANSI_QUOTES) are parameters, and callers
scan once per setting. tests/connectors/test_sqlscan.py checks the scanners against the servers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Literal, NamedTuple

TokenKind = Literal["word", "quoted", "string", "special"]


class Token(NamedTuple):
    """`word`: an unquoted identifier or keyword; `quoted`: a quoted identifier's name;
    `string`: a string constant's body; `special`: a comment whose text the server may run."""

    kind: TokenKind
    text: str


_HIGH = "\x80-\U0010ffff"  # both servers take any non-ASCII character as an identifier letter

# ----- PostgreSQL ------------------------------------------------------------------------------

_PG_WORD = re.compile(rf"[A-Za-z_{_HIGH}][A-Za-z0-9_${_HIGH}]*")
# PostgreSQL 14 and older end a number before trailing letters (`1e'x'` is 1 then an E string);
# 15 and later refuse such a query outright, so following 14 is right for both.
_PG_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_PG_PARAMETER = re.compile(r"\$[0-9]+")
_PG_DOLLAR_TAG = re.compile(rf"\$(?:[A-Za-z_{_HIGH}][A-Za-z0-9_{_HIGH}]*)?\$")
# scan.l's {quotecontinue}: a string goes on after a closing quote when a newline, with only
# blanks and -- comments around it, separates it from the next opening quote.
# Possessive quantifiers: a long run of blanks or dashes must not make the match backtrack.
_PG_CONTINUE = re.compile(
    r"(?:[ \t\f\v]|--[^\n\r]*+)*+[\n\r](?:[ \t\n\r\f\v]++|--[^\n\r]*+[\n\r])*+'"
)
_PG_SPACE = re.compile(r"[ \t\n\r\f\v]+")
_PG_UNICODE_ESCAPE = re.compile(r"(?:[0-9A-Fa-f]{4}|\+[0-9A-Fa-f]{6})")
_PG_NEWLINE = re.compile(r"[\n\r]")
_PG_UESCAPE = re.compile(r"(?i)uescape(?![A-Za-z0-9_$])")


def _pg_comment_end(sql: str, pos: int) -> int:
    """The end of the block comment opening at `pos`; PostgreSQL nests block comments."""
    depth = 0
    while pos < len(sql):
        pair = sql[pos : pos + 2]
        if pair == "/*":
            depth += 1
            pos += 2
        elif pair == "*/":
            depth -= 1
            pos += 2
            if depth == 0:
                return pos
        else:
            pos += 1
    return pos  # unterminated: the server refuses the query


def _pg_skip_blank(sql: str, pos: int) -> int:
    """The position after any blanks and comments."""
    while pos < len(sql):
        if match := _PG_SPACE.match(sql, pos):
            pos = match.end()
        elif sql.startswith("--", pos):
            newline = _PG_NEWLINE.search(sql, pos)
            pos = newline.end() if newline else len(sql)
        elif sql.startswith("/*", pos):
            pos = _pg_comment_end(sql, pos)
        else:
            break
    return pos


def _quoted_end(sql: str, pos: int, quote: str, backslash: bool) -> tuple[str, int]:
    """The body of the quoted text opening at `pos` (doubled quotes undone) and its end."""
    body: list[str] = []
    pos += 1
    while pos < len(sql):
        char = sql[pos]
        if backslash and char == "\\":
            body.append(sql[pos : pos + 2])
            pos += 2
        elif char == quote:
            if sql.startswith(quote, pos + 1):
                body.append(quote)
                pos += 2
            else:
                return "".join(body), pos + 1
        else:
            body.append(char)
            pos += 1
    return "".join(body), pos  # unterminated: the server refuses the query


def _pg_string_end(sql: str, pos: int, backslash: bool) -> tuple[str, int]:
    """A string constant from its opening quote, through continuations in the same style."""
    parts: list[str] = []
    while True:
        body, pos = _quoted_end(sql, pos, "'", backslash)
        parts.append(body)
        match = _PG_CONTINUE.match(sql, pos)
        if match is None:
            return "".join(parts), pos
        pos = match.end() - 1


def postgres_tokens(sql: str, *, plain_escapes: bool) -> Iterator[Token]:
    """PostgreSQL's identifiers, keywords and string constants in `sql`, in order.

    `plain_escapes` reads backslashes in plain '...' strings as escapes, as a server with
    standard_conforming_strings = off does.
    """
    pos = 0
    while pos < len(sql):
        char = sql[pos]
        lower = char.lower()
        if sql.startswith(("--", "/*"), pos) or _PG_SPACE.match(sql, pos):
            pos = _pg_skip_blank(sql, pos)
        elif lower == "u" and sql.startswith(("&'", '&"'), pos + 1):
            if sql[pos + 2] == '"':
                body, pos = _quoted_end(sql, pos + 2, '"', backslash=False)
                yield Token("quoted", _pg_unicode_name(body, sql, pos))
            else:  # U&'' never takes backslash escapes
                body, pos = _pg_string_end(sql, pos + 2, backslash=False)
                yield Token("string", body)
        elif lower in "ebxn" and sql.startswith("'", pos + 1):
            # E'' always takes backslash escapes, B'' and X'' never, N'' as a plain string.
            backslash = lower == "e" or (lower == "n" and plain_escapes)
            body, pos = _pg_string_end(sql, pos + 1, backslash)
            yield Token("string", body)
        elif char == "'":
            body, pos = _pg_string_end(sql, pos, plain_escapes)
            yield Token("string", body)
        elif char == '"':
            body, pos = _quoted_end(sql, pos, '"', backslash=False)
            yield Token("quoted", body)
        elif word := _PG_WORD.match(sql, pos):
            yield Token("word", word.group())
            pos = word.end()
        elif number := _PG_NUMBER.match(sql, pos):
            pos = number.end()
        elif parameter := _PG_PARAMETER.match(sql, pos):
            pos = parameter.end()
        elif tag := _PG_DOLLAR_TAG.match(sql, pos):
            close = sql.find(tag.group(), tag.end())
            end = len(sql) if close < 0 else close
            yield Token("string", sql[tag.end() : end])
            pos = len(sql) if close < 0 else close + len(tag.group())
        else:
            pos += 1  # an operator or punctuation character (a lone `$` included)


def _pg_unicode_name(body: str, sql: str, pos: int) -> str:
    """The name a `U&"..."` identifier spells, with the escape character of a UESCAPE after it."""
    escape = "\\"
    after = _pg_skip_blank(sql, pos)
    if _PG_UESCAPE.match(sql, after):
        quote = _pg_skip_blank(sql, after + len("uescape"))
        if len(sql) > quote + 2 and sql[quote] == "'" and sql[quote + 2] == "'":
            escape = sql[quote + 1]
    decoded: list[str] = []
    index = 0
    while index < len(body):
        char = body[index]
        if char != escape:
            decoded.append(char)
            index += 1
        elif body.startswith(escape, index + 1):
            decoded.append(escape)
            index += 2
        elif code := _PG_UNICODE_ESCAPE.match(body, index + 1):
            decoded.append(chr(int(code.group().lstrip("+"), 16)))
            index = code.end()
        else:  # an invalid escape: the server refuses the query
            decoded.append(char)
            index += 1
    return "".join(decoded)


# ----- MySQL and MariaDB -----------------------------------------------------------------------

_MY_WORD = re.compile(rf"[A-Za-z0-9_${_HIGH}]+")
_MY_SPACE = re.compile(r"[ \t\n\r\f\v]+")
# `--` opens a comment only before a blank or control character (sql_lex.cc); `--x` is minus
# minus x. `#` and `-- ` comments end at a line feed only.
_MY_LINE_COMMENT = re.compile(r"(?:#|--(?:[\x00-\x20\x7f]|$))[^\n]*")
# /*! ... */ and /*M! ... */ (run when the server is recent enough) and /*+ ... */ (optimizer
# hints, with a lexer of their own): whether the server reads them as code depends on its
# version, so a scan cannot know where strings in them begin.
_MY_SPECIAL_COMMENT = ("/*!", "/*M!", "/*m!", "/*+")


def mysql_tokens(sql: str, *, backslash_escapes: bool, ansi_quotes: bool) -> Iterator[Token]:
    """MySQL's and MariaDB's identifiers, keywords and string constants in `sql`, in order.

    `backslash_escapes` is the default sql_mode (no NO_BACKSLASH_ESCAPES); `ansi_quotes` makes
    "..." an identifier instead of a string. A versioned or hint comment is one `special` token.
    """
    pos = 0
    while pos < len(sql):
        char = sql[pos]
        if space := _MY_SPACE.match(sql, pos):
            pos = space.end()
        elif line := _MY_LINE_COMMENT.match(sql, pos):
            pos = line.end()
        elif sql.startswith(_MY_SPECIAL_COMMENT, pos):
            close = sql.find("*/", pos + 2)
            end = len(sql) if close < 0 else close + 2
            yield Token("special", sql[pos:end])
            pos = end
        elif sql.startswith("/*", pos):
            close = sql.find("*/", pos + 2)  # MySQL does not nest plain comments
            pos = len(sql) if close < 0 else close + 2
        elif char == "`":
            body, pos = _quoted_end(sql, pos, "`", backslash=False)
            yield Token("quoted", body)
        elif char == '"' and ansi_quotes:
            body, pos = _quoted_end(sql, pos, '"', backslash=False)
            yield Token("quoted", body)
        elif char in "'\"":
            body, pos = _quoted_end(sql, pos, char, backslash=backslash_escapes)
            yield Token("string", body)
        elif word := _MY_WORD.match(sql, pos):
            yield Token("word", word.group())
            pos = word.end()
        else:
            pos += 1
