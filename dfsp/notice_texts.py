"""The texts of the notices (``dfsp.domain.notices``) in each language, and rendering.

Every text is written in the GSM 03.38 default alphabet (no ``ç``, ``ê``, ``ô``: a
character outside it would turn the whole SMS into UCS-2 and cut it to 70 characters)
and, with names of up to ``MAX_NAME_CHARS`` and usual amounts, fits one SMS of
``MAX_SMS_CHARS``. ``invoice_received`` is also the pushed USSD screen, so it fits one
screen too. ``short_code`` (e.g. ``*123#``) is given by the DFSP's settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from dfsp.domain.notices import MESSAGE_IDS

MAX_SMS_CHARS: Final = 160
MAX_NAME_CHARS: Final = 24  # a longer name is shortened with "." to keep one SMS
DEFAULT_LANGUAGE: Final = "en"
NAME_ARGS: Final = frozenset({"receiver", "sender", "merchant", "buyer", "agent", "payer"})

TEXTS: Final[Mapping[str, Mapping[str, str]]] = {
    "en": {
        "sent": "You sent {amount} to {receiver}. Fee {fee}. Balance {balance}.",
        "received": "You received {amount} from {sender}. Balance {balance}.",
        "invoice_received": (
            "Invoice from {merchant} for {amount}."
            " Dial {short_code} and choose Pending transactions to pay."
        ),
        "invoice_paid": "{buyer} paid your invoice {reference} of {amount}.",
        "invoice_rejected": "{buyer} declined your invoice {reference} of {amount}.",
        "cash_in": "You deposited {amount} with agent {agent}. Balance {balance}.",
        "cash_out": "You withdrew {amount} with agent {agent}. Fee {fee}. Balance {balance}.",
        "send_failed": (
            "Your payment of {amount} to {receiver} did not go through. Nothing was taken."
        ),
        "bulk_invite": (
            "{payer} wants to pay you {amount}. Dial {short_code} to open an account before {date}."
        ),
    },
    "fr": {
        "sent": "Vous avez envoyé {amount} à {receiver}. Frais {fee}. Solde {balance}.",
        "received": "{sender} vous a envoyé {amount}. Solde {balance}.",
        "invoice_received": (
            "Facture de {merchant} pour {amount}."
            " Composez {short_code} et choisissez Transactions en attente pour payer."
        ),
        "invoice_paid": "{buyer} a payé votre facture {reference} de {amount}.",
        "invoice_rejected": "{buyer} a refusé votre facture {reference} de {amount}.",
        "cash_in": "Vous avez déposé {amount} chez l'agent {agent}. Solde {balance}.",
        "cash_out": "Retrait de {amount} chez l'agent {agent}. Frais {fee}. Solde {balance}.",
        "send_failed": (
            "Votre paiement de {amount} à {receiver} n'a pas abouti. Rien n'a été prélevé."
        ),
        "bulk_invite": (
            "{payer} veut vous payer {amount}. Composez {short_code} pour ouvrir un compte"
            " avant le {date}."
        ),
    },
}
LANGUAGES: Final = tuple(TEXTS)

for _language, _texts in TEXTS.items():
    assert set(_texts) == MESSAGE_IDS, f"notice texts in {_language!r} do not match MESSAGE_IDS"


class RenderError(ValueError):
    """A notice's arguments do not fill its text (a missing argument)."""


def render_notice(message: str, args: Mapping[str, str], *, language: str, short_code: str) -> str:
    """The text of ``message`` in ``language`` (English when it has no texts)."""
    texts = TEXTS.get(language, TEXTS[DEFAULT_LANGUAGE])
    values = {
        name: _shortened(value) if name in NAME_ARGS else value for name, value in args.items()
    }
    try:
        return texts[message].format_map({**values, "short_code": short_code})
    except KeyError as error:
        raise RenderError(f"notice {message!r} needs argument {error.args[0]!r}") from None


def _shortened(name: str) -> str:
    name = " ".join(name.split())
    return name if len(name) <= MAX_NAME_CHARS else name[: MAX_NAME_CHARS - 1] + "."
