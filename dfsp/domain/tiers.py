"""Tiers: named sets of limits, automatic upgrades by balance and age, an auditor's choice.

Tiers are listed lowest first; the first is the default tier every new customer starts
in (SPEC section 3, "Limits and tiers"). A tier may have an upgrade rule, a minimum
balance and/or a minimum account age in days (all given conditions must hold); a
customer moves up automatically to the highest tier above their own whose rule they
meet, never down. A tier without a rule (other than the first) is entered only by an
auditor's choice. An auditor may put a customer in any tier; the caller records the
change (forensic log). An auditor's downgrade holds: automatic upgrades stop for that
customer until an auditor changes their tier again (``TierChange.holds``), or the next
automatic check would undo it.

The DFSP (``dfsp.customers``) stores each customer's tier and measures, for the rule, the
balance as the available money of every open account the customer owns (held funds
left out) and the age in whole days since they registered.

Configuration, TOML ``[[tiers]]`` tables, lowest first:

    [[tiers]]
    name = "basic"
    limits = { transfers_per_day = 25, amount_per_day = "1000", amount_per_week = "5000",
               max_transfer = "500", max_balance = "2000" }

    [[tiers]]
    name = "standard"
    upgrade = { min_balance = "100", min_age_days = 30 }
    limits = { ... }
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dfsp.domain.fees import amount_setting
from dfsp.domain.limits import Limits
from ussdloop.config import ConfigError
from ussdloop.money import Money

MAX_TIERS = 16
MAX_NAME_LENGTH = 32
MAX_ACTOR_LENGTH = 64
MAX_NOTE_LENGTH = 200


class TierError(ValueError):
    """A tier table that cannot be built, or a tier name it does not have."""


class UnknownTier(TierError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown tier {name!r}")
        self.name = name


class InvalidTierChange(TierError):
    """An auditor's change without an actor or a reason, or with one too long."""


class TierChangeReason(enum.StrEnum):
    AUTOMATIC = "automatic"  # the upgrade rule was met
    AUDITOR = "auditor"  # an auditor's choice


@dataclass(frozen=True, slots=True)
class RecordedTierChange:
    """One line of a customer's tier history, as stored: what the forensic log reads.

    ``actor`` is the auditor (None for an automatic upgrade); ``note`` is the auditor's
    reason, or for an automatic upgrade the balance and age that met the rule; ``held``
    whether automatic upgrades stop after it (an auditor's downgrade)."""

    customer_id: str
    from_tier: str
    to_tier: str
    reason: TierChangeReason
    actor: str | None
    note: str
    held: bool
    at: datetime


def auditor_words(actor: str, reason: str) -> tuple[str, str]:
    """The actor and the reason of an auditor's change, checked and stripped."""
    actor, reason = actor.strip(), reason.strip()
    if not 0 < len(actor) <= MAX_ACTOR_LENGTH:
        raise InvalidTierChange(f"the auditor is named in 1 to {MAX_ACTOR_LENGTH} characters")
    if not 0 < len(reason) <= MAX_NOTE_LENGTH:
        raise InvalidTierChange(f"the reason is 1 to {MAX_NOTE_LENGTH} characters")
    return actor, reason


@dataclass(frozen=True, slots=True)
class UpgradeRule:
    """Met when every given condition holds; at least one is given."""

    min_balance: Money | None = None
    min_age_days: int | None = None

    def __post_init__(self) -> None:
        if self.min_balance is None and self.min_age_days is None:
            raise TierError("an upgrade rule has a min_balance, a min_age_days or both")
        if self.min_balance is not None and self.min_balance.minor < 0:
            raise TierError("min_balance must not be negative")
        if self.min_age_days is not None and self.min_age_days < 0:
            raise TierError("min_age_days must not be negative")

    def met_by(self, balance: Money, age_days: int) -> bool:
        if self.min_balance is not None and balance < self.min_balance:
            return False
        return self.min_age_days is None or age_days >= self.min_age_days


@dataclass(frozen=True, slots=True)
class Tier:
    name: str
    limits: Limits
    upgrade: UpgradeRule | None = None  # None: only the default tier or an auditor's choice

    def __post_init__(self) -> None:
        if not 0 < len(self.name) <= MAX_NAME_LENGTH or self.name != self.name.strip():
            raise TierError(f"a tier name is 1 to {MAX_NAME_LENGTH} characters, not {self.name!r}")


@dataclass(frozen=True, slots=True)
class TierChange:
    """An auditor's change of a customer's tier, for the caller to record.

    ``holds`` (a downgrade) is what the caller stores and passes to ``next_tier`` as
    ``held``, so the automatic upgrade does not undo the auditor's decision."""

    before: Tier
    after: Tier
    holds: bool


@dataclass(frozen=True)
class TierTable:
    """The tiers of a DFSP, lowest first; the first is the default tier."""

    tiers: tuple[Tier, ...]

    def __post_init__(self) -> None:
        if not 0 < len(self.tiers) <= MAX_TIERS:
            raise TierError(f"a DFSP has 1 to {MAX_TIERS} tiers")
        names = [tier.name for tier in self.tiers]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise TierError(f"tier name {name!r} is used twice")
        if self.tiers[0].upgrade is not None:
            raise TierError("the first tier is where every customer starts: it has no upgrade")

    @property
    def default(self) -> Tier:
        return self.tiers[0]

    def tier(self, name: str) -> Tier:
        return self.tiers[self.rank(name)]

    def rank(self, name: str) -> int:
        """0 for the default tier, higher for higher tiers."""
        for index, tier in enumerate(self.tiers):
            if tier.name == name:
                return index
        raise UnknownTier(name)

    def next_tier(self, current: str, balance: Money, age_days: int, *, held: bool = False) -> Tier:
        """The tier a customer in ``current`` belongs in now: the highest tier above it
        whose upgrade rule ``balance`` and ``age_days`` meet, else ``current`` (never a
        lower one, and ``current`` while an auditor's downgrade holds)."""
        rank = self.rank(current)
        if held:
            return self.tiers[rank]
        for tier in reversed(self.tiers[rank + 1 :]):
            if tier.upgrade is not None and tier.upgrade.met_by(balance, age_days):
                return tier
        return self.tiers[rank]

    def auditor_change(self, current: str, to: str) -> TierChange:
        """An auditor puts a customer in any tier; a downgrade holds (see ``TierChange``)."""
        return TierChange(self.tier(current), self.tier(to), self.rank(to) < self.rank(current))

    @classmethod
    def from_toml(cls, data: Any, currency: str, key: str = "tiers") -> TierTable:
        """Build from the ``[[tiers]]`` list; every mistake is a ``ConfigError`` naming its key."""
        if not isinstance(data, list) or not 0 < len(data) <= MAX_TIERS:
            raise ConfigError(key, f"expected a list of 1 to {MAX_TIERS} tiers, got {data!r}")
        tiers = [_tier(item, currency, f"{key}[{i}]") for i, item in enumerate(data)]
        for index, tier in enumerate(tiers):
            if tier.name in (t.name for t in tiers[:index]):
                raise ConfigError(f"{key}[{index}].name", f"{tier.name!r} is used twice")
        if tiers[0].upgrade is not None:
            raise ConfigError(
                f"{key}[0].upgrade", "the first tier, where everyone starts, has none"
            )
        return cls(tuple(tiers))


def _tier(data: Any, currency: str, key: str) -> Tier:
    table = _table(data, key, {"name", "limits", "upgrade"})
    name = table.get("name")
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_LENGTH:
        raise ConfigError(f"{key}.name", f"expected 1 to {MAX_NAME_LENGTH} characters")
    if "limits" not in table:
        raise ConfigError(f"{key}.limits", "missing")
    limits = Limits.from_toml(table["limits"], currency, f"{key}.limits")
    upgrade = table.get("upgrade")
    rule = None if upgrade is None else _upgrade(upgrade, currency, f"{key}.upgrade")
    try:
        return Tier(name, limits, rule)
    except TierError as error:
        raise ConfigError(f"{key}.name", str(error)) from None


def _upgrade(data: Any, currency: str, key: str) -> UpgradeRule:
    table = _table(data, key, {"min_balance", "min_age_days"})
    if not table:
        hint = "give min_balance and/or min_age_days; leave upgrade out for an auditor-only tier"
        raise ConfigError(key, hint)
    balance = table.get("min_balance")
    age = table.get("min_age_days")
    if age is not None and (isinstance(age, bool) or not isinstance(age, int) or age < 0):
        raise ConfigError(f"{key}.min_age_days", f"expected a whole number of days, got {age!r}")
    return UpgradeRule(
        min_balance=None
        if balance is None
        else amount_setting(balance, currency, f"{key}.min_balance"),
        min_age_days=age,
    )


def _table(data: Any, key: str, known: set[str]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ConfigError(key, f"expected a table, got {data!r}")
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{key}.{unknown[0]}", f"unknown key (known: {', '.join(sorted(known))})")
    return data


# The demo network's tiers (SPEC section 7: generous limits), amounts in whole currency units.
# A new customer's 1000 opening balance, and the bulk-payment examples, fit in the first.
DEMO_TIERS: tuple[Mapping[str, Any], ...] = (
    {
        "name": "basic",
        "limits": {
            "transfers_per_day": 100,
            "amount_per_day": "10000",
            "amount_per_week": "50000",
            "max_transfer": "5000",
            "max_balance": "100000",
        },
    },
    {
        "name": "standard",
        "upgrade": {"min_balance": "500", "min_age_days": 30},
        "limits": {
            "transfers_per_day": 200,
            "amount_per_day": "50000",
            "amount_per_week": "200000",
            "max_transfer": "20000",
            "max_balance": "500000",
        },
    },
    {
        "name": "premium",
        "upgrade": {"min_balance": "5000", "min_age_days": 180},
        "limits": {
            "transfers_per_day": 500,
            "amount_per_day": "none",
            "amount_per_week": "none",
            "max_transfer": "100000",
            "max_balance": "none",
        },
    },
    {
        # Businesses an auditor vouches for (bulk payers, large merchants): no limits.
        "name": "business",
        "limits": {
            "transfers_per_day": "none",
            "amount_per_day": "none",
            "amount_per_week": "none",
            "max_transfer": "none",
            "max_balance": "none",
        },
    },
)


def demo_tier_table(currency: str = "USD") -> TierTable:
    return TierTable.from_toml([dict(tier) for tier in DEMO_TIERS], currency)
