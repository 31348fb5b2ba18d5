"""Identity: weak PINs, PIN hashing and lock-out, identifiers, the person key (SPEC 3, 8; CUS)."""

from __future__ import annotations

import random
import re
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dfsp.domain.identifiers import (
    InvalidIdentifier,
    InvalidPersonDetails,
    PersonKey,
    UserNumber,
    UserNumbersExhausted,
    allocate_user_number,
    msisdn_uri,
    normalise_msisdn,
)
from dfsp.domain.pins import (
    DEFAULT_SCRYPT,
    Pin,
    PinAttempts,
    PinLocked,
    PinPolicy,
    ScryptParams,
    WeakPin,
    WeakPinReason,
    WrongPin,
    check_pin,
    hash_pin,
    needs_rehash,
    verify_pin,
)

TODAY = date(2024, 6, 15)
FAST = ScryptParams(n=2**4, r=1, p=1)  # cheap parameters for property tests only


# -- weak PINs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pin", "reason"),
    [
        ("12a4", WeakPinReason.NOT_DIGITS),
        (" 5831", WeakPinReason.NOT_DIGITS),
        ("\u0665\u0668\u0663\u0661", WeakPinReason.NOT_DIGITS),  # Arabic-Indic digits
        ("", WeakPinReason.NOT_DIGITS),
        ("583", WeakPinReason.TOO_SHORT),
        ("5831905", WeakPinReason.TOO_LONG),
        ("1111", WeakPinReason.ONE_DIGIT),
        ("000000", WeakPinReason.ONE_DIGIT),
        ("1234", WeakPinReason.STRAIGHT_RUN),
        ("4321", WeakPinReason.STRAIGHT_RUN),
        ("0123", WeakPinReason.STRAIGHT_RUN),
        ("9876", WeakPinReason.STRAIGHT_RUN),
        ("456789", WeakPinReason.STRAIGHT_RUN),
        ("8901", WeakPinReason.STRAIGHT_RUN),
        ("7890", WeakPinReason.STRAIGHT_RUN),
        ("1098", WeakPinReason.STRAIGHT_RUN),
        ("1212", WeakPinReason.COMMON),
        ("2580", WeakPinReason.COMMON),
        ("1004", WeakPinReason.COMMON),
        ("2000", WeakPinReason.COMMON),
        ("6969", WeakPinReason.COMMON),
        ("1122", WeakPinReason.COMMON),
        ("112233", WeakPinReason.COMMON),
    ],
)
def test_weak_pins_are_refused_with_their_reason(pin: str, reason: WeakPinReason) -> None:
    with pytest.raises(WeakPin) as refused:
        check_pin(pin)
    assert refused.value.reason is reason
    assert str(refused.value)  # a message the person can act on


@pytest.mark.parametrize("pin", ["5831", "2468", "1357", "90210", "583190", "1235", "0912"])
def test_strong_pins_are_accepted(pin: str) -> None:
    check_pin(pin)


def test_weak_pin_messages_say_what_to_do() -> None:
    messages = {}
    for pin in ["12a4", "583", "5831905", "1111", "1234", "1212"]:
        with pytest.raises(WeakPin) as refused:
            check_pin(pin)
        messages[refused.value.reason] = str(refused.value)
    assert "digits" in messages[WeakPinReason.NOT_DIGITS]
    assert "at least 4" in messages[WeakPinReason.TOO_SHORT]
    assert "at most 6" in messages[WeakPinReason.TOO_LONG]
    assert "1234" in messages[WeakPinReason.STRAIGHT_RUN]
    assert len(set(messages.values())) == 6


def test_pin_length_is_configurable() -> None:
    policy = PinPolicy(min_length=6, max_length=8)
    with pytest.raises(WeakPin, match="at least 6"):
        check_pin("5831", policy)
    check_pin("58319057", policy)


def test_a_pin_policy_with_impossible_lengths_is_refused_at_start_up() -> None:
    with pytest.raises(ValueError, match="min_length"):
        PinPolicy(min_length=6, max_length=4)
    with pytest.raises(ValueError, match="min_length"):
        PinPolicy(min_length=0)


def test_the_blocklist_is_configurable() -> None:
    check_pin("1212", PinPolicy(blocklist=frozenset()))
    with pytest.raises(WeakPin, match="easy to guess"):
        check_pin("5831", PinPolicy(blocklist=frozenset({"5831"})))


def test_check_pin_accepts_the_pin_wrapper() -> None:
    check_pin(Pin("5831"))
    with pytest.raises(WeakPin):
        check_pin(Pin("1111"))


# -- PIN in memory and at rest -------------------------------------------------------------


def test_a_pin_never_shows_its_digits_in_repr_or_str() -> None:
    pin = Pin("5831")
    assert repr(pin) == "Pin(****)"
    assert str(pin) == "Pin(****)"
    assert f"{pin}" == "Pin(****)"
    assert "5831" not in repr([pin, {"pin": pin}])
    assert pin.reveal() == "5831"


def test_pins_compare_by_value_but_cannot_be_hashed() -> None:
    assert Pin("5831") == Pin("5831")
    assert Pin("5831") != Pin("5832")
    with pytest.raises(TypeError):
        hash(Pin("5831"))


def test_a_hashed_pin_stores_its_scrypt_parameters_and_never_the_pin() -> None:
    stored = hash_pin(Pin("5831"))
    assert re.fullmatch(r"scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+", stored)
    assert "5831" not in stored
    assert verify_pin("5831", stored)
    assert verify_pin(Pin("5831"), stored)
    assert not verify_pin("5832", stored)


def test_the_same_pin_hashes_differently_each_time() -> None:
    assert hash_pin("5831", FAST) != hash_pin("5831", FAST)


def test_pins_hashed_with_other_parameters_still_verify_and_need_a_rehash() -> None:
    old = hash_pin("5831", FAST)
    assert verify_pin("5831", old)
    assert needs_rehash(old, DEFAULT_SCRYPT)
    assert not needs_rehash(old, FAST)
    assert needs_rehash("not a hash")


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "5831",
        "scrypt$16384$8$1$",
        "scrypt$16384$8$1$AAAA$",
        "scrypt$16384$8$1$!!!!$AAAA",
        "bcrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "scrypt$1000$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "scrypt$1073741824$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "scrypt$1048576$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "scrypt$16384$8$99$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "scrypt$16384$8$1$AAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA=$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
    ],
)
def test_a_malformed_or_too_costly_stored_pin_never_verifies(stored: str) -> None:
    assert verify_pin("5831", stored) is False


@settings(max_examples=25, deadline=None)
@given(pin=st.text(alphabet="0123456789", min_size=4, max_size=6))
def test_any_hashed_pin_verifies_and_no_other_does(pin: str) -> None:
    stored = hash_pin(pin, FAST)
    assert verify_pin(pin, stored)
    assert not verify_pin(pin + "0", stored)


@settings(deadline=None)
@given(stored=st.text(max_size=200) | st.from_regex(r"scrypt\$[0-9]{1,9}\$[0-9]\$[0-9]\$.*"))
def test_verify_never_raises_on_an_arbitrary_stored_value(stored: str) -> None:
    assert verify_pin("5831", stored) in (True, False)


# -- lock-out ------------------------------------------------------------------------------


def test_three_wrong_pins_lock_the_customer_out_with_attempts_counting_down() -> None:
    attempts = PinAttempts()
    assert attempts.attempts_left() == 3
    attempts = attempts.after_failure()
    refusal = attempts.refusal()
    assert isinstance(refusal, WrongPin)
    assert refusal.attempts_left == 2
    attempts = attempts.after_failure()
    assert attempts.attempts_left() == 1
    assert "1 attempt left" in str(attempts.refusal())
    attempts = attempts.after_failure()
    assert attempts == PinAttempts(failures=3, locked=True)
    assert attempts.attempts_left() == 0
    assert isinstance(attempts.refusal(), PinLocked)


def test_a_locked_customer_gets_pin_locked_even_for_the_right_pin() -> None:
    locked = PinAttempts(failures=3, locked=True)
    with pytest.raises(PinLocked):
        locked.ensure_unlocked()
    with pytest.raises(PinLocked):
        locked.after_success()
    with pytest.raises(PinLocked):
        locked.after_failure()


def test_only_the_dfsp_reset_unlocks() -> None:
    unlocked = PinAttempts(failures=3, locked=True).reset()
    assert unlocked == PinAttempts(failures=0, locked=False)
    unlocked.ensure_unlocked()


def test_a_right_pin_starts_the_count_again() -> None:
    attempts = PinAttempts().after_failure().after_failure().after_success()
    assert attempts == PinAttempts()
    assert attempts.after_failure().attempts_left() == 2


def test_the_number_of_wrong_pins_allowed_is_configurable() -> None:
    attempts = PinAttempts()
    for _ in range(4):
        attempts = attempts.after_failure(max_failures=5)
    assert not attempts.locked
    assert attempts.attempts_left(5) == 1
    assert attempts.after_failure(max_failures=5).locked
    with pytest.raises(ValueError, match="max_failures"):
        PinAttempts().after_failure(max_failures=0)


# -- phone numbers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "+256 700 000 001",
        "256700000001",
        "00256700000001",
        "+256-700-000-001",
        "+256 (700) 000.001",
        "tel:+256700000001",
        " +256700000001\t",
    ],
)
def test_one_phone_number_written_many_ways_normalises_to_one(text: str) -> None:
    assert normalise_msisdn(text) == "256700000001"


def test_a_phone_number_has_a_tel_uri() -> None:
    assert msisdn_uri("+256 700 000 001") == "tel:+256700000001"
    assert msisdn_uri("256700000001") == "tel:+256700000001"
    assert normalise_msisdn(msisdn_uri("256700000001")) == "256700000001"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("+256 7OO 000 001", "digits only"),  # letter O for zero
        ("call 256700000001", "digits only"),
        ("256*700#", "digits only"),
        ("2567000000+01", "digits only"),
        ("0700 000 001", "country code"),
        ("+0256700000001", "country code"),
        ("2567000", "8 to 15"),
        ("2567000000000001", "8 to 15"),
        ("", "digits only"),
        ("1" * 100, "at most 15"),
    ],
)
def test_what_is_not_a_phone_number_is_refused(text: str, says: str) -> None:
    with pytest.raises(InvalidIdentifier, match=says):
        normalise_msisdn(text)


@given(st.text(alphabet="0123456789 +-.()tel:0", max_size=30))
def test_normalising_a_phone_number_is_idempotent(text: str) -> None:
    try:
        once = normalise_msisdn(text)
    except InvalidIdentifier:
        return
    assert normalise_msisdn(once) == once
    assert re.fullmatch(r"[1-9][0-9]{7,14}", once)


@given(
    digits=st.from_regex(r"[1-9][0-9]{7,14}", fullmatch=True),
    separators=st.lists(st.sampled_from([" ", "-", ".", "(", ")"]), max_size=15),
    prefix=st.sampled_from(["", "+", "00", "tel:+"]),
)
def test_separators_and_prefixes_never_change_the_number(
    digits: str, separators: list[str], prefix: str
) -> None:
    spaced = "".join(d + s for d, s in zip(digits, separators + [""] * 15, strict=False))
    assert normalise_msisdn(prefix + spaced) == digits


# -- user numbers --------------------------------------------------------------------------


def test_a_user_number_is_exactly_eight_digits() -> None:
    assert UserNumber.parse(" 1234 5678 ") == "12345678"
    assert UserNumber.parse("1234-5678") == UserNumber("12345678")
    assert repr(UserNumber("12345678")) == "UserNumber('12345678')"
    full_width = "".join(chr(0xFF10 + int(d)) for d in "12345678")
    for bad in ["1234567", "123456789", "1234567a", "", full_width]:
        with pytest.raises(InvalidIdentifier, match="exactly 8 digits"):
            UserNumber.parse(bad)


def test_allocated_user_numbers_avoid_taken_ones() -> None:
    taken: set[str] = set()
    rng = random.Random(7)
    for _ in range(200):
        number = allocate_user_number(rng, taken.__contains__)
        assert number not in taken
        taken.add(number)
    assert len(taken) == 200


def test_allocated_user_numbers_are_eight_digits_not_starting_with_zero() -> None:
    rng = random.Random(1)
    for _ in range(500):
        number = allocate_user_number(rng, lambda _: False)
        assert isinstance(number, UserNumber)
        assert re.fullmatch(r"[1-9][0-9]{7}", number)


def test_allocation_skips_taken_numbers_and_gives_up_after_its_attempts() -> None:
    asked: list[str] = []

    def taken_first_three(number: str) -> bool:
        asked.append(number)
        return len(asked) <= 3

    number = allocate_user_number(random.Random(3), taken_first_three)
    assert number == asked[3] and len(asked) == 4

    with pytest.raises(UserNumbersExhausted, match="5 attempts"):
        allocate_user_number(random.Random(3), lambda _: True, attempts=5)


# -- people --------------------------------------------------------------------------------


def person(first: str, last: str, born: str, national_id: str) -> PersonKey:
    return PersonKey.of(first, last, born, national_id, today=TODAY)


def test_the_same_person_with_other_spacing_or_case_is_one_key() -> None:
    typed = person("Mary Anne", "Okello", "1990-04-25", "CM90 0123 4ABC")
    again = person("  MARY   anne ", "OKELLO\t", "1990-04-25", "cm9001234abc")
    assert typed == again
    assert hash(typed) == hash(again)
    assert again.first_name == "mary anne"
    assert again.national_id == "CM9001234ABC"


def test_different_people_may_share_name_and_birth_date() -> None:
    one = person("John", "Smith", "1985-01-01", "A1")
    other = person("John", "Smith", "1985-01-01", "A2")
    assert one != other
    assert len({one, other}) == 2


def test_a_date_of_birth_is_parsed_from_year_month_day() -> None:
    assert person("A", "B", "2000-02-29", "X").date_of_birth == date(2000, 2, 29)
    assert PersonKey.of("A", "B", date(2000, 2, 29), "X", today=TODAY).date_of_birth == date(
        2000, 2, 29
    )


@pytest.mark.parametrize(
    ("born", "says"),
    [
        ("25/04/1990", "YYYY-MM-DD"),
        ("19900425", "YYYY-MM-DD"),
        ("1990-4-25", "YYYY-MM-DD"),
        ("2001-02-29", "no such date"),
        ("1990-13-01", "no such date"),
        ("2024-06-16", "future"),
        ("1893-06-15", "over 130"),  # 131 today
    ],
)
def test_impossible_dates_of_birth_are_refused_with_a_clear_error(born: str, says: str) -> None:
    with pytest.raises(InvalidPersonDetails, match=says) as refused:
        person("A", "B", born, "X")
    assert refused.value.field == "date_of_birth"


def test_born_today_and_aged_130_are_accepted() -> None:
    assert person("A", "B", "2024-06-15", "X").date_of_birth == TODAY
    assert person("A", "B", "1893-06-16", "X").date_of_birth == date(1893, 6, 16)  # 131 tomorrow


@pytest.mark.parametrize(
    ("first", "last", "national_id", "field"),
    [
        ("  ", "B", "X", "first_name"),
        ("A", "", "X", "last_name"),
        ("A", "B", " \t", "national_id"),
        ("A" * 101, "B", "X", "first_name"),
        ("A", "B", "X" * 33, "national_id"),
    ],
)
def test_missing_or_overlong_details_are_refused_naming_the_field(
    first: str, last: str, national_id: str, field: str
) -> None:
    with pytest.raises(InvalidPersonDetails) as refused:
        person(first, last, "1990-01-01", national_id)
    assert refused.value.field == field
