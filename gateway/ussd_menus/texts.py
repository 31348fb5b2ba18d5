"""Translatable screen texts, keyed by message id, in English and French.

Screens never hold literal text: they name a message id (``"engine.wrong_input"``) and
its format arguments, and the engine translates it into the dialogue's language. A text
missing in a language falls back to English, and so does an unknown language.

Option and navigation labels are bare (``"Home"``, ``"Yes"``); the engine writes the key
in front (``"0. Home"``, ``"2. Yes"``, ``"98. More"``), so one label serves every key.

French texts are written as French is written: ``ç``, ``ê`` and friends are not in the
GSM 03.38 alphabet, so such screens go out in UCS-2 at 80 units and page sooner.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from gateway.ussd_menus.dfsp_texts import DFSP_ENGLISH, DFSP_FRENCH

DEFAULT_LANGUAGE: Final = "en"

_ENGLISH: Final[Mapping[str, str]] = {
    # The engine's own texts.
    "engine.wrong_input": "Wrong Input",
    "engine.home": "Home",
    "engine.back": "Back",
    "engine.more": "More",
    "engine.yes": "Yes",
    "engine.no": "No",
    "engine.session_expired": "Session expired",
    "engine.busy": "Service busy, please try again later",
    "engine.unavailable": "Sorry, the service is not available. Please try again later.",
    "engine.too_many_wrong_inputs": "Too many wrong inputs. Please dial again.",
    # The demo menu (gateway.ussd_menus.demo).
    "demo.welcome": "Welcome to ussdloop demo",
    "demo.echo": "Echo",
    "demo.count": "Count to 40",
    "demo.language": "Language",
    "demo.quit": "Quit",
    "demo.ask_name": "Enter your name:",
    "demo.bad_name": "Name: 1 to 20 characters",
    "demo.ask_number": "Enter a number from 1 to 99:",
    "demo.bad_number": "Not a number from 1 to 99",
    "demo.confirm": "Send {number} to {name}?",
    "demo.done": "Done: {name} {number}",
    "demo.count_title": "Counting to 40, pick a square:",
    "demo.count_item": "{n} x {n}",
    "demo.square": "{n} x {n} = {square}",
    "demo.choose_language": "Choose a language:",
    "demo.english": "English",
    "demo.french": "Français",
    "demo.goodbye": "Goodbye",
}

_FRENCH: Final[Mapping[str, str]] = {
    "engine.wrong_input": "Saisie incorrecte",
    "engine.home": "Accueil",
    "engine.back": "Retour",
    "engine.more": "Suite",
    "engine.yes": "Oui",
    "engine.no": "Non",
    "engine.session_expired": "Session expirée",
    "engine.busy": "Service occupé, veuillez réessayer plus tard",
    "engine.unavailable": "Désolé, le service n'est pas disponible. Réessayez plus tard.",
    "engine.too_many_wrong_inputs": "Trop de saisies incorrectes. Recomposez le code.",
    "demo.welcome": "Bienvenue dans la démo ussdloop",
    "demo.echo": "Écho",
    "demo.count": "Compter jusqu'à 40",
    "demo.language": "Langue",
    "demo.quit": "Quitter",
    "demo.ask_name": "Entrez votre prénom :",
    "demo.bad_name": "Prénom : 1 à 20 caractères",
    "demo.ask_number": "Entrez un nombre de 1 à 99 :",
    "demo.bad_number": "Ce n'est pas un nombre de 1 à 99",
    "demo.confirm": "Envoyer {number} à {name} ?",
    "demo.done": "Reçu : {name} {number}",
    "demo.count_title": "Comptons jusqu'à 40, choisissez :",
    "demo.count_item": "{n} × {n}",  # noqa: RUF001 (the multiplication sign is meant)
    "demo.square": "{n} × {n} = {square}",  # noqa: RUF001
    "demo.choose_language": "Choisissez une langue :",
    "demo.english": "English",
    "demo.french": "Français",
    "demo.goodbye": "Au revoir",
}

TEXTS: Final[Mapping[str, Mapping[str, str]]] = {
    "en": {**_ENGLISH, **DFSP_ENGLISH},
    "fr": {**_FRENCH, **DFSP_FRENCH},
}
LANGUAGES: Final = tuple(TEXTS)


def has_text(message_id: str) -> bool:
    """Whether ``message_id`` exists (every id exists in English, the fallback)."""
    return message_id in TEXTS[DEFAULT_LANGUAGE]


def translate(message_id: str, language: str, args: Mapping[str, object] | None = None) -> str:
    """The text of ``message_id`` in ``language`` (English when missing), formatted.

    Raises KeyError for an id that does not exist or a format argument that is missing:
    both are mistakes in a menu, which the engine turns into the "not available" screen.
    """
    template = TEXTS.get(language, TEXTS[DEFAULT_LANGUAGE]).get(message_id)
    if template is None:
        template = TEXTS[DEFAULT_LANGUAGE][message_id]
    return template.format_map(args or {})
