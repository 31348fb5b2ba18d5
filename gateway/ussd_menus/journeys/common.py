"""What the DFSP journeys share: the menu's context, the dialogue's customer and current
account, input validators, and the one screen that explains a refusal.

The customer and their current account live in ``dialogue.state`` as JSON (the session
layer stores it between screens): ``state["me"]`` and ``state["account"]``. Every DFSP
refusal becomes one translated message (``refusal``), shown on the ``problem`` screen
with ``0. Home`` / ``1. Back``, or as a re-prompt where the person can simply try again
(a wrong PIN, a weak PIN).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final, Protocol

from dfsp.client import (
    AccountInfo,
    CustomerInfo,
    DfspClient,
    DfspError,
    InsufficientFundsError,
    LimitExceededError,
    WeakPinError,
    WrongPinError,
)
from gateway.ussd_menus.screens import (
    HOME_BACK,
    Dialogue,
    Handler,
    Invalid,
    Msg,
    Next,
    OptionsScreen,
    Screen,
)
from ussdloop.money import Money, MoneyError

MAX_NAME_CHARS: Final = 30
MAX_NATIONAL_ID_CHARS: Final = 20
MAX_ACCOUNT_NAME_CHARS: Final = 20
USER_NUMBER: Final = re.compile(r"\d{8}")
PIN_DIGITS: Final = re.compile(r"\d{1,12}")
AMOUNT_TEXT: Final = re.compile(r"\d{1,15}(?:\.\d{1,4})?")
PROBLEM: Final = "problem"  # the screen that shows state["problem"]


class Named(Protocol):
    """What a user-number look-up answers with (a customer here, or a receiver)."""

    @property
    def name(self) -> str: ...


@dataclass(frozen=True)
class MenuContext:
    """What every journey's handlers need: the DFSP's client and its identity."""

    client: DfspClient
    dfsp_name: str
    short_code: str
    new_id: Callable[[], str] = field(default=lambda: str(uuid.uuid4()))  # the centre wants UUIDs


# --- the dialogue's customer and account --------------------------------------------------


def remember_customer(dialogue: Dialogue, customer: CustomerInfo) -> None:
    dialogue.state["me"] = {
        "id": customer.customer_id,
        "first": customer.first_name,
        "last": customer.last_name,
        "role": customer.role,
        "user_number": customer.user_number,
        "currency": customer.currency,
    }


def me(dialogue: Dialogue) -> dict[str, Any]:
    value: dict[str, Any] = dialogue.state["me"]
    return value


def remember_account(dialogue: Dialogue, account: AccountInfo) -> None:
    dialogue.state["account"] = {
        "id": account.account_id,
        "name": account.name,
        "currency": account.currency,
        "primary": account.primary,
        "view": account.permissions.view,
        "invoice": account.permissions.invoice,
        "send": account.permissions.send,
        "manage": account.permissions.manage,
    }


def current_account(dialogue: Dialogue) -> dict[str, Any] | None:
    value: dict[str, Any] | None = dialogue.state.get("account")
    return value


def account_id(dialogue: Dialogue) -> str:
    account = current_account(dialogue)
    if account is None:
        raise LookupError("the customer holds no account")
    return str(account["id"])


def currency(dialogue: Dialogue) -> str:
    account = current_account(dialogue)
    return str(account["currency"] if account else me(dialogue)["currency"])


async def refresh_account(ctx: MenuContext, dialogue: Dialogue) -> tuple[AccountInfo, ...]:
    """The customer's accounts; the current one kept if still held, else the primary."""
    accounts = await ctx.client.accounts(me(dialogue)["id"])
    current = current_account(dialogue)
    chosen = next((a for a in accounts if current and a.account_id == current["id"]), None)
    chosen = chosen or next((a for a in accounts if a.primary), None)
    chosen = chosen or (accounts[0] if accounts else None)
    if chosen is None:
        dialogue.state.pop("account", None)
    else:
        remember_account(dialogue, chosen)
    return accounts


# --- validators ---------------------------------------------------------------------------


def valid_user_number(text: str) -> str | Invalid:
    return text if USER_NUMBER.fullmatch(text) else Invalid("dfsp.bad_user_number")


def valid_name(text: str) -> str | Invalid:
    if 1 <= len(text) <= MAX_NAME_CHARS and text.isprintable() and not text.isdigit():
        return text
    return Invalid(Msg("dfsp.bad_name", {"max": MAX_NAME_CHARS}))


def valid_account_name(text: str) -> str | Invalid:
    if 1 <= len(text) <= MAX_ACCOUNT_NAME_CHARS and text.isprintable():
        return text
    return Invalid(Msg("dfsp.bad_account_name", {"max": MAX_ACCOUNT_NAME_CHARS}))


def valid_national_id(text: str) -> str | Invalid:
    if 1 <= len(text) <= MAX_NATIONAL_ID_CHARS and text.isalnum() and text.isascii():
        return text
    return Invalid(Msg("dfsp.bad_national_id", {"max": MAX_NATIONAL_ID_CHARS}))


def valid_birth_date(text: str) -> str | Invalid:
    try:
        born = date.fromisoformat(text)
    except ValueError:
        return Invalid("dfsp.bad_date")
    if len(text) != 10 or not date(1900, 1, 1) <= born <= date.today():
        return Invalid("dfsp.bad_date")
    return born.isoformat()


def valid_pin(text: str) -> str | Invalid:
    """Digits only; the DFSP judges the PIN itself (right, wrong, weak)."""
    return text if PIN_DIGITS.fullmatch(text) else Invalid("dfsp.bad_pin")


def valid_amount_text(text: str) -> str | Invalid:
    """Something shaped like an amount; ``parse_amount`` checks it in the currency."""
    return text if AMOUNT_TEXT.fullmatch(text) else Invalid("dfsp.bad_amount")


def parse_amount(text: str, currency: str) -> Money | Invalid:
    """A positive amount with at most the currency's decimals."""
    try:
        amount = Money.parse(text, currency)
    except MoneyError:
        return Invalid("dfsp.bad_amount")
    return amount if amount.minor > 0 else Invalid("dfsp.bad_amount")


def screen_amount(value: Money) -> str:
    """``25 USD``, ``12.50 USD``: the amount as SPEC section 2 writes it on a screen."""
    return f"{value.screen_text()} {value.currency}"


# --- refusals -----------------------------------------------------------------------------

_LIMIT_TEXTS: Final = {
    "transfers_per_day": "dfsp.limit.transfers_per_day",
    "amount_per_day": "dfsp.limit.amount_per_day",
    "amount_per_week": "dfsp.limit.amount_per_week",
    "max_transfer": "dfsp.limit.max_transfer",
    "max_balance": "dfsp.limit.max_balance",
}
_WEAK_PIN_TEXTS: Final = {
    "not_digits": "dfsp.weak_pin.not_digits",
    "too_short": "dfsp.weak_pin.too_short",
    "too_long": "dfsp.weak_pin.too_long",
    "one_digit": "dfsp.weak_pin.one_digit",
    "straight_run": "dfsp.weak_pin.straight_run",
    "common": "dfsp.weak_pin.common",
}
# Refusals whose message needs nothing but the id (the DFSP's error id -> message id).
_PLAIN_REFUSALS: Final = {
    "PinLocked": "dfsp.error.pin_locked",
    "UnknownCustomer": "dfsp.error.unknown_user",
    "UnknownReceiver": "dfsp.error.unknown_user",
    "AlreadyRegistered": "dfsp.error.phone_registered",
    "PersonAlreadyRegistered": "dfsp.error.person_registered",
    "UserNumberTaken": "dfsp.error.user_number_taken",
    "InvalidAmount": "dfsp.bad_amount",
    "QuoteChanged": "dfsp.error.quote_changed",
    "SendNotAllowed": "dfsp.error.send_not_allowed",
    "StatementNotAllowed": "dfsp.error.view_not_allowed",
    "CurrencyMismatch": "dfsp.error.currency",
    "PrimaryAccountCannotClose": "dfsp.error.primary_cannot_close",
    "AccountNotEmpty": "dfsp.error.account_not_empty",
    "NotSignatory": "dfsp.error.not_signatory",
    "NotAccountHolder": "dfsp.error.not_holder",
    "CommissionAccountRestricted": "dfsp.error.commission_account",
    "NoOtherAccount": "dfsp.switch.none",
    "TooManyAccounts": "dfsp.error.too_many_accounts",
    "AlreadyHolder": "dfsp.error.already_holder",
    "TooManyHolders": "dfsp.error.too_many_holders",
    "LastSignatoryCannotBeRemoved": "dfsp.error.last_signatory",
    "OwnerCannotBeRemoved": "dfsp.error.owner_cannot_be_removed",
    "OwnerAlwaysSignatory": "dfsp.error.owner_always_signatory",
    "UnknownAccount": "dfsp.error.unknown_account",
    "UnknownHolder": "dfsp.error.unknown_holder",
    "InvalidAccountRequest": "dfsp.error.invalid_account_request",
    "NotMerchant": "dfsp.error.not_merchant",
    "NotAgent": "dfsp.error.not_agent",
    "InvoiceNotPending": "dfsp.error.invoice_not_pending",
    "RegistrationRefused": "dfsp.error.registration_refused",
    "TransferNotAllowed": "dfsp.error.not_allowed",
    "SenderBlocked": "dfsp.error.sender_blocked",
    "ReceiverBlocked": "dfsp.error.receiver_blocked",
    "ClearingUnavailable": "dfsp.error.clearing_unavailable",
    "NetDebitCapReached": "dfsp.error.cap_reached",
    "CentralRefused": "dfsp.error.central_refused",
    "ForensicLogUnavailable": "dfsp.error.forensic_unavailable",
}


def refusal(ctx: MenuContext, error: DfspError) -> Msg:
    """The message a person can act on for a refusal of the DFSP."""
    if isinstance(error, WrongPinError):
        return Msg("dfsp.error.wrong_pin", {"attempts": error.attempts_left})
    if isinstance(error, InsufficientFundsError):
        return Msg("dfsp.error.insufficient_funds", {"available": screen_amount(error.available)})
    if isinstance(error, LimitExceededError):
        return Msg(_LIMIT_TEXTS.get(error.limit, "dfsp.limit.other"))
    if isinstance(error, WeakPinError):
        return Msg(_WEAK_PIN_TEXTS.get(error.reason, "dfsp.weak_pin.common"))
    message_id = _PLAIN_REFUSALS.get(error.id)
    if message_id is not None:
        return Msg(message_id, {"dfsp": ctx.dfsp_name})
    return Msg("dfsp.error.other", {"id": error.id})


def only_for(role: str, refused: str, first_screen: str) -> Handler:
    """A journey's entry that only customers of ``role`` pass; others are told
    ``refused`` before they type anything."""

    async def start(dialogue: Dialogue, _: Any) -> Next:
        if me(dialogue)["role"] != role:
            return show_problem(dialogue, Msg(refused))
        return first_screen

    return start


def counterparty_step(
    ctx: MenuContext,
    key: str,
    next_screen: str,
    lookup: Callable[[str], Awaitable[Named]],
) -> Handler:
    """An input handler for the other party's user number: ``lookup`` names them, and
    ``state[key]`` keeps ``{"user_number", "name", "currency"}`` for the next screens."""

    async def step(dialogue: Dialogue, user_number: Any) -> Next:
        try:
            person = await lookup(user_number)
        except DfspError as error:
            return show_problem(dialogue, refusal(ctx, error))
        dialogue.state[key] = {
            "user_number": user_number,
            "name": person.name,
            "currency": currency(dialogue),
        }
        return next_screen

    return step


def show_problem(dialogue: Dialogue, message: Msg) -> str:
    """Put ``message`` on the ``problem`` screen; its name (``1. Back`` tries again)."""
    dialogue.state["problem"] = {"id": message.id, "args": dict(message.args)}
    return PROBLEM


def _problem_text(dialogue: Dialogue) -> Msg:
    problem = dialogue.state.get("problem") or {"id": "dfsp.error.other", "args": {"id": "?"}}
    return Msg(problem["id"], problem["args"])


def problem_screens() -> dict[str, Screen]:
    return {PROBLEM: OptionsScreen(_problem_text, nav=HOME_BACK)}


def retry_or_problem(ctx: MenuContext, dialogue: Dialogue, error: DfspError) -> Invalid | str:
    """A wrong PIN re-prompts on the same screen; other refusals show the problem screen."""
    if isinstance(error, WrongPinError):
        return Invalid(refusal(ctx, error))
    return show_problem(dialogue, refusal(ctx, error))
