"""The USSD menu engine: runs a ``Menu`` (screens as data) one subscriber input at a time.

Sans-I/O: no Twisted, socket or database here. The session layer keeps a ``Dialogue``
(its ``state`` is JSON, stored between screens), calls ``begin`` for the dial string,
``answer`` for each input and ``expired`` on timeout, and sends the ``Reply`` back.

The engine does, once for all screens:

- navigation: ``0. Home`` and ``1. Back`` (or ``0. Back``) where a screen shows them,
  with a back-stack of at most ``MAX_BACK_STACK`` screens;
- wrong input: the same page again under an error line ("Wrong Input" or the validator's
  message); ``MAX_WRONG_INPUTS`` wrong inputs in a row end the dialogue politely;
- paging: a screen too long for one USSD screen is cut into pages, every page but the
  last ending with ``98. More`` and the screen's navigation items; option numbers stay
  as declared, and any option can be picked from any page;
- language: every text is translated into the dialogue's language (English fallback);
- limits: every reply fits ``fits_screen(text, limits)`` (asserted); characters that no
  accepted coding can write are shown as "?";
- failures: an exception in a handler (or a menu mistake) gives the "service not
  available" screen, ends the dialogue, and is logged with the MSISDN masked;
- dial-string shortcuts: ``*123*1*Zoe#`` begins at the start screen and answers ``1``
  then ``Zoe`` (stopping at the first wrong input or final screen).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Coroutine, Sequence
from functools import lru_cache
from typing import Any, Final

from gateway.smpp.gsm0338 import ScreenLimits, UnencodableText, choose_coding, fits_screen
from gateway.ussd_menus.paging import compose, page_at
from gateway.ussd_menus.screens import (
    MORE_KEY,
    Dialogue,
    FinalScreen,
    Go,
    InputScreen,
    Invalid,
    Label,
    Menu,
    MenuError,
    Msg,
    NavAction,
    Next,
    Option,
    OptionsScreen,
    Reply,
    Screen,
    TextSource,
    check_options,
)
from gateway.ussd_menus.texts import LANGUAGES, translate

__all__ = ["Dialogue", "MenuEngine", "Reply", "dial_extras", "mask_msisdn"]

log = logging.getLogger(__name__)

MAX_WRONG_INPUTS: Final = 3  # consecutive wrong inputs that end the dialogue
MAX_BACK_STACK: Final = 10  # screens remembered for "Back"
MAX_INPUT_CHARS: Final = 182  # the longest USSD string; longer input is wrong input
MAX_BODY_CHARS: Final = 4000  # one screen's text before paging (about 25 pages)
MAX_DIAL_EXTRAS: Final = 8  # answers carried in a dial string such as *123*1*2#

DEFAULT_LIMITS: Final = ScreenLimits()  # 182 GSM 7-bit / 80 UCS-2, as carriers commonly set
STATE_KEY: Final = "_engine"  # the engine's part of Dialogue.state
_SYSTEM_TEXTS: Final = (
    "engine.session_expired",
    "engine.busy",
    "engine.unavailable",
    "engine.too_many_wrong_inputs",
)


class MenuEngine:
    def __init__(self, menu: Menu, *, limits: ScreenLimits = DEFAULT_LIMITS) -> None:
        self.menu = menu
        self.limits = limits
        self._check_room()

    async def begin(self, dialogue: Dialogue) -> Reply:
        """The first screen after the dial string (the dialogue's state starts afresh)."""
        return await self._guarded(dialogue, self._begin(dialogue))

    async def answer(self, dialogue: Dialogue, text: str) -> Reply:
        """The next screen for the subscriber's input ``text`` on the current screen."""
        return await self._guarded(dialogue, self._answer(dialogue, text))

    def expired(self, dialogue: Dialogue) -> Reply:
        """The "Session expired" screen (end=True) for a dialogue that timed out."""
        dialogue.state.pop(STATE_KEY, None)
        return self._system_reply(dialogue, "engine.session_expired")

    def busy(self, dialogue: Dialogue) -> Reply:
        """The "Service busy" screen (end=True), for a session layer out of capacity."""
        return self._system_reply(dialogue, "engine.busy")

    # --- one step -----------------------------------------------------------------------

    async def _guarded(self, dialogue: Dialogue, step: Coroutine[Any, Any, Reply]) -> Reply:
        screen = _current_screen_name(dialogue)
        try:
            reply = await step
            json.dumps(dialogue.state)  # stored in Redis between screens
        except Exception:
            masked = mask_msisdn(dialogue.msisdn)
            log.exception(
                "ussd_menu_failed msisdn=%s screen=%s",
                masked,
                screen,
                extra={"event": "ussd_menu_failed", "msisdn": masked, "screen": screen},
            )
            dialogue.state.pop(STATE_KEY, None)
            return self._system_reply(dialogue, "engine.unavailable")
        if reply.end:
            dialogue.state.pop(STATE_KEY, None)
        return reply

    async def _begin(self, dialogue: Dialogue) -> Reply:
        dialogue.state.clear()
        opening = self.menu.opening
        first = await opening(dialogue) if opening is not None else self.menu.start
        if isinstance(first, Reply):
            return self._handler_reply(first)
        self._screen(first)
        dialogue.state[STATE_KEY] = {
            "home": first,
            "screen": first,
            "stack": [],
            "start": 0,
            "next": None,
            "wrong": 0,
        }
        reply = self._draw(dialogue, start=0)
        for extra in dial_extras(dialogue.service_code):
            if reply.end or dialogue.state[STATE_KEY]["wrong"]:
                break
            reply = await self._answer(dialogue, extra)
        return reply

    async def _answer(self, dialogue: Dialogue, text: str) -> Reply:
        nav = self._nav(dialogue)
        if nav is None:  # nothing under way (ended, or state from another menu): start
            return await self._begin(dialogue)
        screen = self._screen(nav["screen"])
        entry = text.strip()
        if nav["next"] is not None and entry == str(MORE_KEY):
            return self._draw(dialogue, start=nav["next"])
        item = next((item for item in screen.nav if str(item.key) == entry), None)
        if item is not None:
            return self._navigate(dialogue, item.action)
        if len(entry) > MAX_INPUT_CHARS:
            return self._wrong(dialogue)
        if isinstance(screen, OptionsScreen):
            options = self._options(dialogue, nav["screen"], screen)
            option = next((o for o in options if str(o.number) == entry), None)
            if option is None:
                return self._wrong(dialogue)
            if isinstance(option.target, str):
                return self._go(dialogue, option.target)
            return self._go(dialogue, await option.target(dialogue, option.value))
        if isinstance(screen, InputScreen):
            value = screen.validate(entry)
            if isinstance(value, Invalid):
                return self._wrong(dialogue, value.message)
            return self._go(dialogue, await screen.handle(dialogue, value))
        return self._wrong(dialogue)  # a final screen's page: only "98" answers it

    # --- moving between screens -------------------------------------------------------

    def _go(self, dialogue: Dialogue, target: Next) -> Reply:
        if isinstance(target, Reply):
            return self._handler_reply(target)
        if isinstance(target, Invalid):
            return self._wrong(dialogue, target.message)
        nav = dialogue.state[STATE_KEY]
        if isinstance(target, Go):
            home = target.home or target.screen
            self._screen(home)
            self._screen(target.screen)
            nav["home"], nav["screen"] = home, target.screen
            nav["stack"] = [] if target.screen == home else [home]
            return self._draw(dialogue, start=0)
        self._screen(target)
        if target == nav["home"]:
            nav["stack"] = []
        elif target != nav["screen"]:
            nav["stack"] = [*nav["stack"], nav["screen"]][-MAX_BACK_STACK:]
        nav["screen"] = target
        return self._draw(dialogue, start=0)

    def _navigate(self, dialogue: Dialogue, action: NavAction) -> Reply:
        nav = dialogue.state[STATE_KEY]
        if action is NavAction.HOME or not nav["stack"]:
            nav["stack"] = []
            nav["screen"] = nav["home"]
        else:
            nav["screen"] = nav["stack"].pop()
        return self._draw(dialogue, start=0)

    def _wrong(self, dialogue: Dialogue, message: Label | None = None) -> Reply:
        nav = dialogue.state[STATE_KEY]
        nav["wrong"] += 1
        if nav["wrong"] >= MAX_WRONG_INPUTS:
            return self._system_reply(dialogue, "engine.too_many_wrong_inputs")
        error_line = self._text(dialogue, message or "engine.wrong_input")
        return self._draw(dialogue, start=nav["start"], error_line=error_line)

    # --- drawing ---------------------------------------------------------------------

    def _draw(self, dialogue: Dialogue, *, start: int, error_line: str = "") -> Reply:
        """Draw the current screen's page at ``start``; an error line keeps the count."""
        nav = dialogue.state[STATE_KEY]
        screen = self._screen(nav["screen"])
        page = page_at(
            self._body(dialogue, nav["screen"], screen),
            start,
            error_line=self._showable(error_line.replace("\n", " ")),
            nav_lines=[self._item(dialogue, item.key, item.label) for item in screen.nav],
            more_line=self._item(dialogue, MORE_KEY, "engine.more"),
            limits=self.limits,
        )
        nav.update(start=start, next=page.next_start)
        if not error_line:
            nav["wrong"] = 0
        return self._reply(page.text, isinstance(screen, FinalScreen) and page.next_start is None)

    def _body(self, dialogue: Dialogue, name: str, screen: Screen) -> str:
        lines = [self._text(dialogue, screen.text)]
        if isinstance(screen, OptionsScreen):
            options = self._options(dialogue, name, screen)
            lines += [self._item(dialogue, o.number, o.label) for o in options]
        body = self._showable("\n".join(line for line in lines if line))
        if len(body) > MAX_BODY_CHARS:
            raise MenuError(f"screen {name!r}: {len(body)} characters, over {MAX_BODY_CHARS}")
        return body

    def _options(self, dialogue: Dialogue, name: str, screen: OptionsScreen) -> Sequence[Option]:
        if not callable(screen.options):
            return screen.options
        options = screen.options(dialogue)
        check_options(name, options, screen.nav)
        return options

    def _item(self, dialogue: Dialogue, key: int, label: Label) -> str:
        return f"{key}. {self._text(dialogue, label)}"

    @staticmethod
    def _text(dialogue: Dialogue, source: TextSource) -> str:
        message = source(dialogue) if callable(source) else source
        if isinstance(message, str):
            message = Msg(message)
        return translate(message.id, dialogue.language, message.args)

    def _showable(self, text: str) -> str:
        """``text`` with the characters no accepted coding can write replaced by "?"."""
        try:
            choose_coding(text, self.limits)
        except UnencodableText:
            return "".join(char if _writable(char, self.limits) else "?" for char in text)
        return text

    def _reply(self, text: str, end: bool) -> Reply:
        assert fits_screen(text, self.limits), f"screen over the limit: {text!r}"
        return Reply(text, end)

    def _handler_reply(self, reply: Reply) -> Reply:
        """A handler's own Reply ends the dialogue (to go on, it returns a screen name)."""
        if not reply.end:
            raise MenuError(f"a handler's reply must end the dialogue: {reply.text!r}")
        if not fits_screen(reply.text, self.limits):
            raise MenuError(f"a handler's reply does not fit one screen: {reply.text!r}")
        return reply

    def _system_reply(self, dialogue: Dialogue, message_id: str) -> Reply:
        return self._reply(translate(message_id, dialogue.language), end=True)

    # --- checks ----------------------------------------------------------------------

    def _screen(self, name: str) -> Screen:
        screen = self.menu.screens.get(name)
        if screen is None:
            raise MenuError(f"no screen named {name!r}")
        return screen

    def _nav(self, dialogue: Dialogue) -> dict[str, Any] | None:
        """The engine's state if it is whole and names this menu's screens, else None."""
        nav = dialogue.state.get(STATE_KEY)
        if not isinstance(nav, dict):
            return None
        screens = self.menu.screens
        whole = (
            nav.get("screen") in screens
            and nav.get("home") in screens
            and isinstance(nav.get("stack"), list)
            and all(name in screens for name in nav["stack"])
            and isinstance(nav.get("start"), int)
            and (nav.get("next") is None or isinstance(nav.get("next"), int))
            and isinstance(nav.get("wrong"), int)
        )
        return nav if whole else None

    def _check_room(self) -> None:
        """Refuse limits too small for the engine's texts or for a screen's footer."""
        probe = "ê" if _writable("ê", self.limits) else "X"  # a body that may need UCS-2
        for language in LANGUAGES:
            dialogue = Dialogue(msisdn="", service_code="", language=language)
            for message_id in _SYSTEM_TEXTS:
                if not fits_screen(translate(message_id, language), self.limits):
                    raise MenuError(f"{self.limits} too small for {message_id!r} in {language}")
            more = self._item(dialogue, MORE_KEY, "engine.more")
            for name, screen in self.menu.screens.items():
                footer = [more, *(self._item(dialogue, i.key, i.label) for i in screen.nav)]
                if not fits_screen(compose("", probe, footer), self.limits):
                    raise MenuError(f"{self.limits} too small for screen {name!r} in {language}")


def dial_extras(service_code: str) -> list[str]:
    """The answers carried in a dial string: ``*123*1*Zoe#`` -> ``["1", "Zoe"]``."""
    code = service_code.strip()
    if len(code) < 2 or not (code.startswith("*") and code.endswith("#")):
        return []
    return [part for part in code[1:-1].split("*")[1:] if part][:MAX_DIAL_EXTRAS]


def mask_msisdn(msisdn: str) -> str:
    """An MSISDN for logs: all but the last three characters hidden."""
    shown = msisdn[-3:] if len(msisdn) > 6 else ""
    return "*" * (len(msisdn) - len(shown)) + shown


def _current_screen_name(dialogue: Dialogue) -> str | None:
    nav = dialogue.state.get(STATE_KEY)
    screen = nav.get("screen") if isinstance(nav, dict) else None
    return screen if isinstance(screen, str) else None


@lru_cache(maxsize=4096)
def _writable(char: str, limits: ScreenLimits) -> bool:
    return fits_screen(char, limits)
