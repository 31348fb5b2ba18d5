"""Carrier dialects: how a USSD dialogue unit rides in a PDU, both ways, per carrier."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.smpp.constants import CommandId, CommandStatus, Tag, UssdServiceOp
from gateway.smpp.dialects import (
    STANDARD,
    UMR_VARIANT,
    Dialect,
    DialectError,
    SessionKey,
    UssdAction,
    UssdMessage,
    build_mobile_originated,
    build_mobile_terminated,
    parse_mobile_originated,
    parse_mobile_terminated,
)
from gateway.smpp.gsm0338 import DataCoding
from gateway.smpp.pdu import decode, encode
from gateway.smpp.tlv import (
    ItsSessionInfo,
    its_session_info,
    user_message_reference,
    ussd_service_op,
)

MSISDN, CODE = "256700000001", "123"


def test_a_standard_begin_is_a_pssr_indication_with_its_session_info() -> None:
    begin = UssdMessage(UssdAction.BEGIN, MSISDN, CODE, "*123#", session_id=7)
    pdu = build_mobile_originated(STANDARD, begin, 1)
    assert pdu.command_id is CommandId.DELIVER_SM
    assert (pdu["source_addr"], pdu["destination_addr"]) == (MSISDN, CODE)
    assert ussd_service_op(pdu) == UssdServiceOp.PSSR_INDICATION
    assert its_session_info(pdu) == ItsSessionInfo(7, 0, False)
    assert parse_mobile_originated(STANDARD, decode(encode(pdu))) == begin


def test_a_standard_last_screen_is_a_pssr_response_with_the_end_bit() -> None:
    end = UssdMessage(UssdAction.END, MSISDN, CODE, "Done", session_id=7)
    pdu = build_mobile_terminated(STANDARD, end, 2)
    assert pdu.command_id is CommandId.SUBMIT_SM
    assert pdu["service_type"] == "USSD"
    assert ussd_service_op(pdu) == UssdServiceOp.PSSR_RESPONSE
    assert its_session_info(pdu) == ItsSessionInfo(7, 0, True)
    assert parse_mobile_terminated(STANDARD, decode(encode(pdu))) == end


def test_a_standard_unit_with_the_end_bit_from_the_network_is_an_abort() -> None:
    abort = UssdMessage(UssdAction.ABORT, MSISDN, CODE, "", session_id=9)
    pdu = build_mobile_originated(STANDARD, abort, 3)
    assert its_session_info(pdu) == ItsSessionInfo(9, 0, True)
    assert parse_mobile_originated(STANDARD, pdu).action is UssdAction.ABORT


def test_the_umr_variant_carries_the_session_in_user_message_reference_and_aborts_with_0x81() -> (
    None
):
    abort = UssdMessage(UssdAction.ABORT, MSISDN, CODE, "", session_id=40000)
    pdu = build_mobile_originated(UMR_VARIANT, abort, 4)
    assert ussd_service_op(pdu) == 0x81
    assert user_message_reference(pdu) == 40000
    assert pdu.tlv(Tag.ITS_SESSION_INFO) is None
    assert parse_mobile_originated(UMR_VARIANT, pdu) == abort


def test_the_umr_variant_ends_without_an_end_bit_and_writes_gsm_text_as_dcs_0x0f() -> None:
    end = UssdMessage(UssdAction.END, MSISDN, CODE, "Balance: 975 USD", session_id=12)
    pdu = build_mobile_terminated(UMR_VARIANT, end, 5)
    assert ussd_service_op(pdu) == UssdServiceOp.PSSR_RESPONSE
    assert pdu["data_coding"] == DataCoding.USSD_GSM7
    assert pdu["short_message"] == b"Balance: 975 USD"
    assert parse_mobile_terminated(UMR_VARIANT, pdu) == end


def test_text_outside_gsm_goes_out_in_ucs2() -> None:
    screen = UssdMessage(UssdAction.CONTINUE, MSISDN, CODE, "Привет", session_id=1)
    pdu = build_mobile_terminated(STANDARD, screen, 6)
    assert pdu["data_coding"] == DataCoding.UCS2
    assert pdu["short_message"] == "Привет".encode("utf-16-be")


def test_a_unit_without_ussd_service_op_is_refused_with_missing_optional_parameter() -> None:
    pdu = build_mobile_originated(STANDARD, UssdMessage(UssdAction.BEGIN, MSISDN, CODE, "*1#"), 1)
    pdu.tlvs = [(t, v) for t, v in pdu.tlvs if t != Tag.USSD_SERVICE_OP]
    with pytest.raises(DialectError) as error:
        parse_mobile_originated(STANDARD, pdu)
    assert error.value.status == CommandStatus.ESME_RMISSINGOPTPARAM


def test_a_mobile_terminated_operation_from_the_network_is_refused() -> None:
    screen = UssdMessage(UssdAction.CONTINUE, MSISDN, CODE, "x", session_id=1)
    pdu = build_mobile_terminated(STANDARD, screen, 1)  # USSR request: not an MO operation
    with pytest.raises(DialectError) as error:
        parse_mobile_originated(STANDARD, pdu)
    assert error.value.status == CommandStatus.ESME_RINVOPTPARAMVAL


def test_a_session_tlv_of_the_wrong_size_is_refused_not_crashed_on() -> None:
    pdu = build_mobile_originated(
        STANDARD, UssdMessage(UssdAction.BEGIN, MSISDN, CODE, "*1#", 1), 1
    )
    pdu.set_tlv(Tag.ITS_SESSION_INFO, b"\x01")
    with pytest.raises(DialectError) as error:
        parse_mobile_originated(STANDARD, pdu)
    assert error.value.status == CommandStatus.ESME_RINVOPTPARAMVAL


def test_a_dialect_that_cannot_signal_an_abort_is_refused() -> None:
    with pytest.raises(ValueError, match="no way to signal an abort"):
        Dialect(name="mute", session_key=SessionKey.MSISDN_ONLY)


MO_ACTIONS = [UssdAction.BEGIN, UssdAction.CONTINUE, UssdAction.ABORT, UssdAction.NOTIFY_ACK]
MT_ACTIONS = [UssdAction.CONTINUE, UssdAction.END, UssdAction.NOTIFY]
texts = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x4FF), max_size=70)


@given(
    st.sampled_from([STANDARD, UMR_VARIANT]),
    st.sampled_from(MO_ACTIONS),
    texts,
    st.integers(0, 255),
)
def test_every_mobile_originated_unit_survives_the_wire(
    dialect: Dialect, action: UssdAction, text: str, session: int
) -> None:
    text = "" if action is UssdAction.ABORT else text
    unit = UssdMessage(action, MSISDN, CODE, text, session_id=session)
    wire = encode(build_mobile_originated(dialect, unit, 1))
    assert parse_mobile_originated(dialect, decode(wire)) == unit


@given(
    st.sampled_from([STANDARD, UMR_VARIANT]),
    st.sampled_from(MT_ACTIONS),
    texts,
    st.integers(0, 255),
)
def test_every_mobile_terminated_unit_survives_the_wire(
    dialect: Dialect, action: UssdAction, text: str, session: int
) -> None:
    unit = UssdMessage(action, MSISDN, CODE, text, session_id=session)
    wire = encode(build_mobile_terminated(dialect, unit, 1))
    assert parse_mobile_terminated(dialect, decode(wire)) == unit
