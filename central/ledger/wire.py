"""The central ledger's JSON, five-bells style: reading a prepare, writing a transfer.

A prepare (``PUT /transfers/{id}``)::

    {"id": "<uuid>", "ledger": "...",
     "debits": [{"account": "dfsp1", "amount": "10.50", "memo": {...}}],
     "credits": [{"account": "dfsp2", "amount": "10.00"},
                 {"account": "central-fees", "amount": "0.50"}],
     "execution_condition": "ni:///sha-256;...?fpt=preimage-sha-256&cost=32",
     "expires_at": "2026-11-25T10:00:00Z", "memo": {...}}

An account is the DFSP's name (or a URL ending ``/accounts/<name>``). One debit, the
payee's credit and at most one fee credit; every amount positive; debits and credits
equal. The transfer as answered (and as notified) adds ``state``, ``timeline``,
``reason`` (rejected or expired) and ``fulfillment`` (executed, the DER form).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any, Final

from central.errors import UnprocessableEntityError, ValidationError
from central.ledger.domain import (
    FEE_ACCOUNT,
    Prepare,
    TransferState,
    UnsupportedCryptoTypeError,
)
from central.ledger.store import LedgerTransferRow
from clearing.ilp.conditions import (
    ILP_FULFILLMENT_LENGTH,
    ConditionError,
    PreimageCondition,
    PreimageFulfillment,
    base64url_decode,
)
from ussdloop.money import Money, MoneyError

LEDGER: Final = "central"
MAX_FULFILMENT_CHARS: Final = 200
_CONDITION_PREFIX: Final = "ni:///sha-256;"


def parse_prepare(body: dict[str, Any], transfer_id: str, currency: str) -> Prepare:
    if body.get("id", transfer_id) not in (transfer_id, f"http://{LEDGER}/transfers/{transfer_id}"):
        raise ValidationError("the body's id is not the id in the path")
    debits = _legs(body, "debits", 1, 1)
    credits = _legs(body, "credits", 1, 2)
    payer, debit = _account(debits[0]), _amount(debits[0], currency)
    fee = [leg for leg in credits if _account(leg) == FEE_ACCOUNT]
    payee_legs = [leg for leg in credits if _account(leg) != FEE_ACCOUNT]
    if len(payee_legs) != 1 or len(fee) > 1:
        raise UnprocessableEntityError(
            f"credit the payee DFSP once, and {FEE_ACCOUNT!r} at most once"
        )
    amount = _amount(payee_legs[0], currency)
    fee_minor = _amount(fee[0], currency) if fee else 0
    if debit != amount + fee_minor:
        raise UnprocessableEntityError("the debits and the credits do not sum to the same amount")
    return Prepare(
        id=transfer_id,
        payer=payer,
        payee=_account(payee_legs[0]),
        amount_minor=amount,
        fee_minor=fee_minor,
        condition=parse_condition(body.get("execution_condition")),
        expires_at=_datetime(body.get("expires_at"), "expires_at"),
        memo=_object(body.get("memo", {}), "memo"),
        debit_memo=_object(debits[0]["memo"], "debits[0].memo") if "memo" in debits[0] else None,
    )


def request_digest(prepare: Prepare) -> str:
    """What a retry of the same prepare must repeat (SHA-256 of its canonical JSON)."""
    canonical = {
        "payer": prepare.payer,
        "payee": prepare.payee,
        "amount": prepare.amount_minor,
        "fee": prepare.fee_minor,
        "condition": prepare.condition.hex(),
        "expires_at": prepare.expires_at.astimezone(UTC).isoformat(),
        "memo": prepare.memo,
        "debit_memo": prepare.debit_memo,
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def parse_condition(value: object) -> bytes:
    """The 32-byte fingerprint of a PREIMAGE-SHA-256 condition URI of cost 32 (an ILP
    fulfilment is 32 bytes); another crypto type is ``UnsupportedCryptoTypeError``."""
    if not isinstance(value, str) or len(value) > 200:
        raise ValidationError("'execution_condition' is missing or not a condition URI")
    if not value.startswith(_CONDITION_PREFIX) or "fpt=preimage-sha-256" not in value:
        raise UnsupportedCryptoTypeError("only PREIMAGE-SHA-256 conditions (ni:///sha-256;...)")
    try:
        condition = PreimageCondition.from_uri(value)
    except ConditionError as error:
        raise ValidationError(f"'execution_condition': {error}") from None
    if condition.cost != ILP_FULFILLMENT_LENGTH:
        raise UnprocessableEntityError("the condition's cost (preimage length) must be 32")
    return condition.fingerprint


def condition_uri(fingerprint: bytes) -> str:
    return PreimageCondition(fingerprint, ILP_FULFILLMENT_LENGTH).to_uri()


def parse_fulfilment(text: str) -> bytes:
    """The 32-byte preimage from the crypto-conditions form (``oCKAI...``) or from the
    raw preimage in base64url."""
    text = text.strip()
    if not text or len(text) > MAX_FULFILMENT_CHARS:
        raise ValidationError("the body is the fulfilment (base64url, text/plain)")
    try:
        preimage = PreimageFulfillment.from_base64url(text).preimage
    except ConditionError:
        try:
            preimage = base64url_decode(text.rstrip("="))
        except ConditionError:
            raise ValidationError("the fulfilment is not base64url") from None
    if len(preimage) != ILP_FULFILLMENT_LENGTH:
        raise UnprocessableEntityError("the fulfilment's preimage must be 32 bytes")
    return preimage


def fulfilment_text(preimage: bytes) -> str:
    return PreimageFulfillment(preimage).to_base64url()


def transfer_json(row: LedgerTransferRow, currency: str) -> dict[str, Any]:
    debit: dict[str, Any] = {
        "account": row.payer,
        "amount": str(Money(currency, row.amount_minor + row.fee_minor)),
    }
    if row.debit_memo is not None:
        debit["memo"] = json.loads(row.debit_memo)
    credits = [{"account": row.payee, "amount": str(Money(currency, row.amount_minor))}]
    if row.fee_minor:
        credits.append({"account": FEE_ACCOUNT, "amount": str(Money(currency, row.fee_minor))})
    state = TransferState(row.state)
    timeline = {"prepared_at": _iso(row.prepared_at)}
    if row.executed_at is not None:
        timeline["executed_at"] = _iso(row.executed_at)
    if row.decided_at is not None:
        key = "expired_at" if state is TransferState.EXPIRED else "rejected_at"
        timeline[key] = _iso(row.decided_at)
    answer: dict[str, Any] = {
        "id": row.id,
        "ledger": LEDGER,
        "debits": [debit],
        "credits": credits,
        "execution_condition": condition_uri(row.condition),
        "expires_at": _iso(row.expires_at),
        "state": str(state),
        "memo": json.loads(row.memo),
        "timeline": timeline,
        "reason": row.reason,
        "settlement_id": row.settlement_id,
    }
    if row.fulfilment is not None:
        answer["fulfillment"] = fulfilment_text(row.fulfilment)
    return answer


def notification_body(row: LedgerTransferRow, currency: str) -> dict[str, Any]:
    """A notification without its number: the transfer and, once executed, its fulfilment."""
    body: dict[str, Any] = {"resource": transfer_json(row, currency)}
    if row.fulfilment is not None:
        body["related_resources"] = {
            "execution_condition_fulfillment": fulfilment_text(row.fulfilment)
        }
    return body


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _legs(body: dict[str, Any], name: str, least: int, most: int) -> list[dict[str, Any]]:
    legs = body.get(name)
    if not isinstance(legs, list) or not least <= len(legs) <= most:
        raise ValidationError(f"{name!r} is a list of {least} to {most} entries")
    if not all(isinstance(leg, dict) for leg in legs):
        raise ValidationError(f"each of {name!r} is an object")
    return legs


def _account(leg: dict[str, Any]) -> str:
    account = leg.get("account")
    if not isinstance(account, str) or not account or len(account) > 200:
        raise ValidationError("each debit and credit names its 'account'")
    if "/accounts/" in account:
        account = account.rsplit("/accounts/", 1)[1]
    return account


def _amount(leg: dict[str, Any], currency: str) -> int:
    value = leg.get("amount")
    if not isinstance(value, str):
        raise ValidationError("each 'amount' is a decimal string such as \"10.50\"")
    try:
        amount = Money.parse(value, currency)
    except MoneyError as error:
        raise ValidationError(f"'amount': {error}") from None
    if not amount.is_positive:
        raise UnprocessableEntityError("amounts are positive")
    return amount.minor


def _datetime(value: object, name: str) -> datetime:
    if not isinstance(value, str) or len(value) > 40:
        raise ValidationError(f"{name!r} is an ISO 8601 date and time")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{name!r} is an ISO 8601 date and time") from None
    if moment.tzinfo is None:
        raise ValidationError(f"{name!r} needs its UTC offset (e.g. Z)")
    return moment


def _object(value: object, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValidationError(f"{name!r} is a JSON object")
    return value
