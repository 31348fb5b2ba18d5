"""Splitting a screen's body into pages that each fit one USSD screen. Pure functions.

A page is ``[error line]``, a slice of the body, a blank line, then the footer: the
screen's navigation items, preceded by ``98. More`` on every page but the last. The
body is cut at line boundaries; a single line too long for a page is cut between words,
and a single word too long for a page between characters. Pages are addressed by where
they start in the body, so a page drawn with an error line (which leaves less room) is
followed by exactly the text it did not show.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gateway.smpp.gsm0338 import ScreenLimits, fits_screen

_SEPARATORS = " \n"


class PageTooSmall(ValueError):
    """Not even one character of the body fits beside the footer."""


@dataclass(frozen=True)
class Page:
    text: str
    next_start: int | None  # where the next page starts in the body; None: the last page


def compose(error_line: str, chunk: str, footer: Sequence[str]) -> str:
    """One screen's text: error line and body, a blank line, then the footer lines."""
    top = "\n".join(part for part in (error_line, chunk.rstrip()) if part)
    bottom = "\n".join(footer)
    return f"{top}\n\n{bottom}" if top and bottom else top or bottom


def page_at(
    body: str,
    start: int,
    *,
    error_line: str,
    nav_lines: Sequence[str],
    more_line: str,
    limits: ScreenLimits,
) -> Page:
    """The page of ``body`` beginning at ``start``; the error line is dropped if it must be."""
    start = skip_separators(body, start if 0 <= start <= len(body) else 0)
    footer = (more_line, *nav_lines)
    for header in dict.fromkeys((error_line, "")):
        whole = compose(header, body[start:], nav_lines)
        if fits_screen(whole, limits):
            return Page(whole, None)

        def fits_with_more(chunk: str, header: str = header) -> bool:
            return fits_screen(compose(header, chunk, footer), limits)

        end = _fitting_end(body, start, fits_with_more)
        if end is not None:
            next_start = skip_separators(body, end)
            if next_start >= len(body):  # only separators were left
                return Page(compose(header, body[start:end], nav_lines), None)
            return Page(compose(header, body[start:end], footer), next_start)
    raise PageTooSmall(f"no room for any text beside the footer {footer!r} within {limits}")


def skip_separators(body: str, index: int) -> int:
    while index < len(body) and body[index] in _SEPARATORS:
        index += 1
    return index


def _fitting_end(body: str, start: int, fits: Callable[[str], bool]) -> int | None:
    """The furthest end of a page from ``start``: whole lines, else words, else characters.

    Candidates are tried in increasing length and the search stops at the first that does
    not fit, so the answer always fits whatever the coding switches in between.
    """
    line_end = _line_end(body, start)
    best = None
    end = line_end
    while fits(body[start:end]):
        best = end
        if end >= len(body):
            break
        end = _line_end(body, end + 1)
    if best is not None:
        return best
    for candidates in (_spaces(body, start, line_end), range(start + 1, line_end)):
        for end in candidates:
            if not fits(body[start:end]):
                break
            best = end
        if best is not None:
            return best
    return None


def _line_end(body: str, index: int) -> int:
    newline = body.find("\n", index)
    return len(body) if newline == -1 else newline


def _spaces(body: str, start: int, stop: int) -> list[int]:
    return [index for index in range(start + 1, stop) if body[index] == " "]
