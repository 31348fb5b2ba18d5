"""``ussdloop demo`` (what ``make demo`` runs): every story ends as expected and the books
it prints at the end hold the exact figures, in every ledger and at the centre."""

from __future__ import annotations

import io
import re

from tests.support import asyncio_test
from ussdloop.config import load_network
from ussdloop.demo import play_demo


def figure(text: str, pattern: str) -> str:
    found = re.search(pattern, text)
    assert found is not None, f"{pattern!r} not in the demo's output"
    return found.group(1)


@asyncio_test
async def test_the_demo_plays_every_story_and_prints_books_that_agree() -> None:
    out = io.StringIO()
    assert await play_demo(load_network(environ={}), out) == 0, out.getvalue()[-3000:]
    text = out.getvalue()
    assert "Demo: all stories ended as expected." in text
    assert "Amina Ruiz (signatory)" in text
    assert "Scheme fee: 0.50 USD" in text
    assert figure(text, r"customer\s+Hamim Ali\s+(\S+)") == "973.50"
    assert figure(text, r"customer\s+Kani Moe\s+(\S+)") == "1014.00"  # +25, -10, -1 fee
    assert figure(text, r"customer\s+Shop One\s+(\S+)") == "1025.00"
    assert figure(text, r"customer\s+Venya Ndoro\s+(\S+)") == "973.50"
    assert figure(text, r"customer\s+Jahari Odhiambo\s+(\S+)") == "1010.00"
    assert figure(text, r"clearing\s+dfsp1\s+(\S+)") == "0.50"  # +25.50 out, -25 in
    assert figure(text, r"clearing\s+dfsp2\s+(\S+)") == "0.50"
    assert "SMS from 456: Invoice from Shop One for 25 USD." in text
    assert text.count("(every ledger sums to zero)") == 2
    assert all(total == "0.00" for total in re.findall(r"total\s+(\S+)\s+\(every", text))
    assert figure(text, r"dfsp1\s+payments\s+\S+\s+receipts\s+\S+\s+net\s+(\S+)") == "-0.50"
    assert figure(text, r"central-fees\s+payments\s+\S+\s+receipts\s+\S+\s+net\s+(\S+)") == ("1.00")
    assert figure(text, r"sum\s+net\s+(\S+)") == "0.00"
