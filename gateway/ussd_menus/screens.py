"""Menus as data: screens, options, navigation items, and the dialogue they act on.

A menu is a set of named screens and a start screen. A screen declares its text (a
message id, a ``Msg`` with format arguments, or a function of the dialogue returning a
``Msg``) and what it accepts:

- ``OptionsScreen``: numbered options, each leading to a screen or to an async handler;
- ``InputScreen``: free input, checked by a validator (returns the parsed value, or
  ``Invalid(message id)`` for the re-prompt), then given to an async handler;
- ``FinalScreen``: the dialogue ends on it.

Handlers are ``async def handler(dialogue, value) -> Next``: they may call services,
store JSON values in ``dialogue.state``, and return the next screen's name, ``Go`` (a
screen that also becomes the new home, e.g. the home menu once a phone has registered),
``Invalid`` (the same screen again under an error line, as a validator would: a wrong
PIN the service refused) or a final ``Reply``. Everything a menu cannot get wrong at
run time is checked when the ``Menu`` is built, with an error that names the screen.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Final, TypeAlias

from gateway.ussd_menus.texts import has_text

MORE_KEY: Final = 98  # "98. More" shows the next page of a screen that does not fit


@dataclass
class Dialogue:
    """One subscriber's USSD dialogue, as the session layer keeps it between screens."""

    msisdn: str
    service_code: str  # the dial string, e.g. "*123#" (may carry extra: "*123*1#")
    language: str = "en"  # "en" or "fr"; anything else reads English
    # The engine's state (under "_engine") and the handlers' values; must stay
    # JSON-serialisable, as it is stored in Redis between screens.
    state: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Reply:
    """One screen for the subscriber."""

    text: str  # always within the screen limit
    end: bool  # True: the dialogue ends with this screen (no input expected)


@dataclass(frozen=True)
class Msg:
    """A message id and its format arguments, translated when the screen is drawn."""

    id: str
    args: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Invalid:
    """What a validator returns for input it refuses: the re-prompt's error line."""

    message: str | Msg


@dataclass(frozen=True)
class Go:
    """Go to ``screen`` and make ``home`` (default: ``screen``) what ``0. Home`` returns to."""

    screen: str
    home: str | None = None


Next: TypeAlias = str | Go | Invalid | Reply  # the next screen, a re-prompt, or a final reply
Handler: TypeAlias = Callable[[Dialogue, Any], Awaitable[Next]]
Opening: TypeAlias = Callable[[Dialogue], Awaitable[str | Reply]]
Validator: TypeAlias = Callable[[str], Any]  # the parsed value, or Invalid
TextSource: TypeAlias = str | Msg | Callable[[Dialogue], Msg]  # a str is a message id
Label: TypeAlias = str | Msg


class NavAction(Enum):
    HOME = "home"  # back to the screen the dialogue began on
    BACK = "back"  # back to the previous screen


@dataclass(frozen=True)
class NavItem:
    key: int
    label: Label
    action: NavAction


HOME: Final = NavItem(0, "engine.home", NavAction.HOME)
BACK: Final = NavItem(1, "engine.back", NavAction.BACK)
BACK_AT_0: Final = NavItem(0, "engine.back", NavAction.BACK)  # data entry, as the reference
HOME_BACK: Final = (HOME, BACK)


@dataclass(frozen=True)
class Option:
    number: int
    label: Label
    target: str | Handler  # a screen name, or a handler given ``value``
    value: Any = None  # JSON value for the handler (e.g. which account was picked)


def yes_no(yes: str | Handler, no: str | Handler) -> tuple[Option, Option]:
    """The reference's yes/no question: ``2. Yes`` / ``3. No`` (0 and 1 are navigation)."""
    return Option(2, "engine.yes", yes), Option(3, "engine.no", no)


OptionSource: TypeAlias = Sequence[Option] | Callable[[Dialogue], Sequence[Option]]


@dataclass(frozen=True)
class OptionsScreen:
    text: TextSource
    options: OptionSource = ()  # none: an information screen left by navigation only
    nav: tuple[NavItem, ...] = ()


@dataclass(frozen=True)
class InputScreen:
    text: TextSource
    validate: Validator
    handle: Handler
    nav: tuple[NavItem, ...] = ()


@dataclass(frozen=True)
class FinalScreen:
    text: TextSource
    nav: tuple[NavItem, ...] = field(default=(), init=False)  # nothing to answer


Screen: TypeAlias = OptionsScreen | InputScreen | FinalScreen


class MenuError(ValueError):
    """A menu that cannot work as declared (raised when it is built or drawn)."""


@dataclass(frozen=True)
class Menu:
    """Named screens, the start screen, and optionally an ``opening`` handler.

    ``opening(dialogue)`` runs when a dialogue begins (e.g. to look the phone up) and
    returns the first screen's name, or a final Reply; without it, ``start`` is first.
    ``0. Home`` returns to whichever screen the dialogue began on.
    """

    start: str
    screens: Mapping[str, Screen]
    opening: Opening | None = None

    def __post_init__(self) -> None:
        if self.start not in self.screens:
            raise MenuError(f"start screen {self.start!r} is not one of the menu's screens")
        for name, screen in self.screens.items():
            self._check_screen(name, screen)

    def _check_screen(self, name: str, screen: Screen) -> None:
        ids = [screen.text] if isinstance(screen.text, str | Msg) else []
        ids += [item.label for item in screen.nav]
        if isinstance(screen, OptionsScreen) and not callable(screen.options):
            check_options(name, screen.options, screen.nav)
            ids += [option.label for option in screen.options]
            for option in screen.options:
                if isinstance(option.target, str) and option.target not in self.screens:
                    raise MenuError(
                        f"screen {name!r}: option {option.number} leads to unknown screen"
                        f" {option.target!r}"
                    )
        for text in ids:
            message_id = text if isinstance(text, str) else text.id
            if not has_text(message_id):
                raise MenuError(f"screen {name!r}: no text for message id {message_id!r}")
        keys = [item.key for item in screen.nav]
        if len(set(keys)) != len(keys) or MORE_KEY in keys:
            raise MenuError(f"screen {name!r}: navigation keys {keys} repeat or use {MORE_KEY}")


def check_options(name: str, options: Sequence[Option], nav: Sequence[NavItem]) -> None:
    """Option numbers are unique, not negative, and clash with neither navigation nor More."""
    numbers = [option.number for option in options]
    taken = {item.key for item in nav} | {MORE_KEY}
    if len(set(numbers)) != len(numbers) or min(numbers, default=0) < 0 or taken & set(numbers):
        raise MenuError(
            f"screen {name!r}: option numbers {numbers} repeat, are negative, or clash with"
            f" navigation keys {sorted(taken)}"
        )
