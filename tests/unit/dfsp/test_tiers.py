"""Tiers: the default tier, automatic upgrades by balance and age, an auditor's choice."""

from __future__ import annotations

from typing import Any

import pytest

from dfsp.domain.limits import Limits, Usage, check_balance, check_transfer
from dfsp.domain.tiers import (
    Tier,
    TierError,
    TierTable,
    UnknownTier,
    UpgradeRule,
    demo_tier_table,
)
from ussdloop.config import ConfigError
from ussdloop.money import Money


def usd(text: str) -> Money:
    return Money.parse(text, "USD")


TIERS = TierTable(
    (
        Tier("basic", Limits(transfers_per_day=5)),
        Tier("aged", Limits(transfers_per_day=10), UpgradeRule(min_age_days=30)),
        Tier("saver", Limits(transfers_per_day=20), UpgradeRule(usd("1000"), 90)),
        Tier("vip", Limits()),  # an auditor's choice only
    )
)


def test_a_new_customer_starts_in_the_first_tier() -> None:
    assert TIERS.default.name == "basic"
    assert TIERS.next_tier("basic", usd("0"), 0).name == "basic"


def test_a_customer_moves_up_when_the_rule_is_met() -> None:
    assert TIERS.next_tier("basic", usd("0"), 29).name == "basic"
    assert TIERS.next_tier("basic", usd("0"), 30).name == "aged"


def test_a_rule_with_balance_and_age_needs_both() -> None:
    assert TIERS.next_tier("aged", usd("999.99"), 365).name == "aged"
    assert TIERS.next_tier("aged", usd("5000"), 89).name == "aged"
    assert TIERS.next_tier("aged", usd("1000"), 90).name == "saver"


def test_the_upgrade_goes_straight_to_the_highest_tier_the_customer_qualifies_for() -> None:
    assert TIERS.next_tier("basic", usd("1000"), 90).name == "saver"


def test_automatic_changes_never_go_down() -> None:
    assert TIERS.next_tier("saver", usd("0"), 0).name == "saver"


def test_a_tier_without_a_rule_is_entered_only_by_an_auditor() -> None:
    assert TIERS.next_tier("saver", usd("1000000"), 10_000).name == "saver"
    change = TIERS.auditor_change("basic", "vip")
    assert (change.before.name, change.after.name, change.holds) == ("basic", "vip", False)


def test_an_auditors_downgrade_holds_against_automatic_upgrades() -> None:
    change = TIERS.auditor_change("saver", "basic")
    assert change.holds
    assert TIERS.next_tier("basic", usd("1000"), 90, held=change.holds).name == "basic"
    assert TIERS.next_tier("basic", usd("1000"), 90, held=False).name == "saver"


def test_unknown_tiers_are_refused() -> None:
    with pytest.raises(UnknownTier):
        TIERS.auditor_change("basic", "gold")
    with pytest.raises(UnknownTier):
        TIERS.next_tier("gold", usd("0"), 0)


def test_a_table_is_refused_without_a_plain_default_tier_or_with_a_name_twice() -> None:
    with pytest.raises(TierError, match="first tier"):
        TierTable((Tier("basic", Limits(), UpgradeRule(min_age_days=1)),))
    with pytest.raises(TierError, match="twice"):
        TierTable((Tier("basic", Limits()), Tier("basic", Limits())))
    with pytest.raises(TierError, match="min_balance"):
        UpgradeRule()


def test_the_demo_tiers_are_generous() -> None:
    demo = demo_tier_table()
    basic = demo.default.limits
    opening_balance = usd("1000")
    assert check_transfer(basic, Usage.nothing("USD"), opening_balance, own_account=False) is None
    assert check_balance(basic, usd("2700"), received=usd("1500")) is None  # bulk example
    assert demo.next_tier("basic", usd("500"), 30).name == "standard"
    assert demo.tier("business").limits == Limits()


# --- configuration ------------------------------------------------------------------------

NO_LIMITS = {
    "transfers_per_day": "none",
    "amount_per_day": "none",
    "amount_per_week": "none",
    "max_transfer": "none",
    "max_balance": "none",
}


def test_tiers_are_read_from_toml() -> None:
    data = [
        {"name": "basic", "limits": NO_LIMITS},
        {"name": "gold", "upgrade": {"min_balance": "100", "min_age_days": 7}, "limits": NO_LIMITS},
    ]
    assert TierTable.from_toml(data, "USD") == TierTable(
        (Tier("basic", Limits()), Tier("gold", Limits(), UpgradeRule(usd("100"), 7)))
    )


@pytest.mark.parametrize(
    ("second", "key", "problem"),
    [
        ({"name": "basic", "limits": NO_LIMITS}, "tiers[1].name", "twice"),
        ({"name": "", "limits": NO_LIMITS}, "tiers[1].name", "characters"),
        ({"name": "gold"}, "tiers[1].limits", "missing"),
        (
            {"name": "gold", "limits": {**NO_LIMITS, "max_transfer": 2.5}},
            "tiers[1].limits.max_transfer",
            "1.50",
        ),
        ({"name": "gold", "limits": NO_LIMITS, "upgrade": {}}, "tiers[1].upgrade", "min_age_days"),
        (
            {"name": "gold", "limits": NO_LIMITS, "upgrade": {"min_age_days": "30"}},
            "tiers[1].upgrade.min_age_days",
            "days",
        ),
        (
            {"name": "gold", "limits": NO_LIMITS, "upgrade": {"min_balance": "-5"}},
            "tiers[1].upgrade.min_balance",
            "negative",
        ),
        ({"name": "gold", "limits": NO_LIMITS, "colour": "gold"}, "tiers[1].colour", "unknown key"),
    ],
)
def test_configuration_mistakes_name_the_key(
    second: dict[str, Any], key: str, problem: str
) -> None:
    data = [{"name": "basic", "limits": NO_LIMITS}, second]
    with pytest.raises(ConfigError, match=problem) as caught:
        TierTable.from_toml(data, "USD")
    assert caught.value.key == key


def test_the_first_tier_has_no_upgrade_rule_and_a_table_has_tiers() -> None:
    with pytest.raises(ConfigError) as caught:
        TierTable.from_toml(
            [{"name": "basic", "limits": NO_LIMITS, "upgrade": {"min_age_days": 1}}], "USD"
        )
    assert caught.value.key == "tiers[0].upgrade"
    with pytest.raises(ConfigError) as caught:
        TierTable.from_toml([], "USD")
    assert caught.value.key == "tiers"
