"""The SMPP v3.4 PDU codec: byte-exact fixtures, another implementation's vectors, properties."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.smpp.constants import CommandId, CommandStatus, Tag, UssdServiceOp
from gateway.smpp.pdu import (
    SCHEMAS,
    Kind,
    Pdu,
    PduError,
    PduStream,
    decode,
    encode,
    generic_nack,
    request,
)
from gateway.smpp.tlv import ItsSessionInfo, TlvValueError, its_session_info, ussd_service_op

VECTORS = Path(__file__).resolve().parents[3].parent / "shared" / "vectors" / "smpp"


def _fixtures() -> list[dict[str, str]]:
    path = VECTORS / "pdu-fixtures.json"
    if not path.exists():
        return []
    return json.loads(path.read_text())["pdus"]  # type: ignore[no-any-return]


# A USSD BEGIN as a USSD centre sends it: deliver_sm from 256700000001 to 123,
# "*123#" in DCS 0x0F, ussd_service_op=1 (PSSR indication), its_session_info session 7.
def ussd_begin_bytes() -> bytes:
    body = (
        b"USSD\0"
        + bytes((1, 1))
        + b"256700000001\0"
        + bytes((1, 1))
        + b"123\0"
        + bytes((0, 0, 0))  # esm_class, protocol_id, priority_flag
        + b"\0\0"  # schedule_delivery_time, validity_period
        + bytes((0, 0, 0x0F, 0))  # registered_delivery, replace, data_coding, default_msg_id
        + bytes((5,))
        + b"*123#"
        + bytes.fromhex("0501000101")  # ussd_service_op = 1
        + bytes.fromhex("1383000207" + "00")  # its_session_info: session 7, seq 0, no end
    )
    return struct.pack(">IIII", 16 + len(body), 5, 0, 1) + body


def test_a_ussd_begin_decodes_to_its_fields_and_encodes_back_byte_for_byte() -> None:
    raw = ussd_begin_bytes()
    pdu = decode(raw)
    assert pdu.command_id is CommandId.DELIVER_SM
    assert pdu["source_addr"] == "256700000001"
    assert pdu["destination_addr"] == "123"
    assert pdu["short_message"] == b"*123#"
    assert pdu["data_coding"] == 0x0F
    assert ussd_service_op(pdu) == UssdServiceOp.PSSR_INDICATION
    assert its_session_info(pdu) == ItsSessionInfo(7, 0, False)
    assert encode(pdu) == raw


def test_building_a_submit_sm_fills_every_mandatory_field() -> None:
    pdu = request(CommandId.SUBMIT_SM, 9, destination_addr="256700000001", short_message=b"Hi")
    raw = encode(pdu)
    again = decode(raw)
    assert again["sm_length"] == 2
    assert again["short_message"] == b"Hi"
    assert again["service_type"] == ""
    assert again.sequence_number == 9


def test_unknown_tlvs_survive_a_round_trip_in_their_order() -> None:
    pdu = request(CommandId.DELIVER_SM, 3, short_message=b"x")
    pdu.tlvs = [(0x1400, b"vendor"), (Tag.USSD_SERVICE_OP, b"\x12"), (0x2001, b"")]
    again = decode(encode(pdu))
    assert again.tlvs == pdu.tlvs


def test_an_error_response_has_no_body_and_a_success_response_has_one() -> None:
    submit = request(CommandId.SUBMIT_SM, 77)
    rejected = submit.response(CommandStatus.ESME_RTHROTTLED)
    assert encode(rejected) == bytes.fromhex("0000001080000004000000580000004d")
    accepted = submit.response(message_id="abc")
    assert encode(accepted)[16:] == b"abc\0"


def test_enquire_link_response_and_generic_nack_are_bare_headers() -> None:
    link = request(CommandId.ENQUIRE_LINK, 5)
    assert encode(link.response()) == bytes.fromhex("00000010800000150000000000000005")
    assert encode(generic_nack(6, CommandStatus.ESME_RINVCMDID)) == bytes.fromhex(
        "00000010800000000000000300000006"
    )


@pytest.mark.parametrize(
    ("name", "field", "status"),
    [
        ("too long system_id", "system_id", CommandStatus.ESME_RINVSYSID),
        ("too long password", "password", CommandStatus.ESME_RINVPASWD),
    ],
)
def test_an_over_long_bind_field_is_refused_with_its_own_status(
    name: str, field: str, status: CommandStatus
) -> None:
    pdu = request(CommandId.BIND_TRANSCEIVER, 1)
    raw = bytearray(encode(pdu))
    body = b"x" * 30 + b"\0" if field == "system_id" else b"\0" + b"y" * 20 + b"\0"
    frame = bytes(raw[:16]) + body + b"\0\x34\0\0\0"
    frame = struct.pack(">I", len(frame)) + frame[4:]
    with pytest.raises(PduError) as error:
        decode(frame)
    assert error.value.status == status, name
    assert error.value.sequence_number == 1
    assert error.value.command_id == CommandId.BIND_TRANSCEIVER


def test_an_unknown_command_id_is_refused_with_esme_rinvcmdid_and_its_sequence() -> None:
    with pytest.raises(PduError) as error:
        decode(bytes.fromhex("00000010f00000090000000000000042"))
    assert error.value.status == CommandStatus.ESME_RINVCMDID
    assert error.value.sequence_number == 0x42


def test_a_tlv_with_a_wrong_size_is_refused_when_read_not_when_decoded() -> None:
    pdu = request(CommandId.DELIVER_SM, 1)
    pdu.set_tlv(Tag.ITS_SESSION_INFO, b"\x01\x02\x03")
    again = decode(encode(pdu))
    with pytest.raises(TlvValueError):
        its_session_info(again)


# --- another implementation's fixtures (../shared/vectors/smpp) --------------------------

FIXTURES = _fixtures()
needs_vectors = pytest.mark.skipif(
    not FIXTURES, reason=f"no SMPP vectors at {VECTORS} (../shared is absent)"
)


@needs_vectors
@pytest.mark.parametrize(
    "fixture",
    [f for f in FIXTURES if f["expect"] == "round-trip"],
    ids=lambda f: f["name"],
)
def test_published_pdus_decode_and_encode_back_to_the_same_bytes(fixture: dict[str, str]) -> None:
    raw = bytes.fromhex(fixture["hex"])
    assert encode(decode(raw)) == raw


@needs_vectors
@pytest.mark.parametrize(
    "fixture",
    [f for f in FIXTURES if f["expect"] == "reject"],
    ids=lambda f: f["name"],
)
def test_published_bad_pdus_are_refused_with_the_expected_status(fixture: dict[str, str]) -> None:
    raw = bytes.fromhex(fixture["hex"])
    if len(raw) == 4:  # the fixture is a bare command_id: give it a header around it
        raw = struct.pack(">I", 16) + raw + bytes(8)
    with pytest.raises(PduError) as error:
        decode(raw)
    assert error.value.status.name == fixture["command_status"]


@needs_vectors
def test_a_stream_of_published_pdus_with_bad_ones_between_keeps_decoding() -> None:
    good = [bytes.fromhex(f["hex"]) for f in FIXTURES if f["expect"] == "round-trip"]
    bad_body = bytes.fromhex("00000011000000060000000000000000ff")  # unbind with a body
    stream = PduStream()
    data = b"".join(g + bad_body for g in good)
    results = []
    for i in range(0, len(data), 7):  # in awkward slices, as TCP delivers them
        results += stream.feed(data[i : i + 7])
    assert [encode(r) for r in results if isinstance(r, Pdu)] == good
    assert sum(isinstance(r, PduError) for r in results) == len(good)
    assert not stream.broken


# --- framing --------------------------------------------------------------------------


def test_a_command_length_that_cannot_be_resynchronised_breaks_the_stream() -> None:
    stream = PduStream()
    out = stream.feed(bytes.fromhex("0000000f000000060000000000000009"))
    assert len(out) == 1 and isinstance(out[0], PduError)
    assert out[0].fatal and out[0].status == CommandStatus.ESME_RINVCMDLEN
    assert out[0].sequence_number == 9
    assert stream.broken
    assert stream.feed(encode(request(CommandId.ENQUIRE_LINK, 1))) == []


def test_a_command_length_over_the_limit_is_refused_before_reading_the_body() -> None:
    stream = PduStream(max_length=1024)
    out = stream.feed(struct.pack(">IIII", 4096, 4, 0, 1))
    assert isinstance(out[0], PduError) and out[0].fatal


# --- properties ---------------------------------------------------------------------------

REQUESTS_WITH_FIELDS = [c for c, s in SCHEMAS.items() if s.params and not c.is_response]
cstring = st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=0xFF), max_size=5)


@st.composite
def pdus(draw: st.DrawFn) -> Pdu:
    command = draw(st.sampled_from(sorted(SCHEMAS)))
    schema = SCHEMAS[command]
    sequence = draw(st.integers(0, 0xFFFFFFFF))
    status = draw(st.integers(0, 0xFFFFFFFF))
    params: dict[str, int | str | bytes] = {}
    for p in schema.params:
        if p.kind is Kind.COCTET:
            params[p.name] = draw(
                st.text(
                    alphabet=st.characters(min_codepoint=1, max_codepoint=0xFF),
                    max_size=p.max_length - 1,
                )
            )
        elif p.kind is Kind.SHORT_MESSAGE:
            params[p.name] = draw(st.binary(max_size=254))
        elif p.kind is Kind.SM_LENGTH:
            continue
        else:
            params[p.name] = draw(st.integers(0, 255))
    if "short_message" in params:
        params["sm_length"] = len(params["short_message"])  # type: ignore[arg-type]
    tlvs: list[tuple[int, bytes]] = []
    if schema.tlvs_allowed:
        tlvs = draw(st.lists(st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=40)), max_size=4))
    if command.is_response and not draw(st.booleans()):
        params = {}
        tlvs = [] if not schema.tlvs_allowed or not schema.params else tlvs
    if command.is_response and not params and schema.params:
        tlvs = []
    return Pdu(command, sequence, status, params, tlvs)


@given(pdus())
def test_decode_of_encode_is_the_identity(pdu: Pdu) -> None:
    assert decode(encode(pdu)) == pdu


@given(st.binary(max_size=300))
def test_random_bytes_never_crash_the_decoder(data: bytes) -> None:
    try:
        pdu = decode(data)
    except PduError as error:
        assert isinstance(error.status, CommandStatus)
    else:
        assert encode(pdu) == data


@given(st.lists(st.binary(max_size=120), max_size=20))
def test_random_byte_chunks_never_crash_the_stream(chunks: list[bytes]) -> None:
    stream = PduStream(max_length=4096)
    for chunk in chunks:
        for item in stream.feed(chunk):
            assert isinstance(item, Pdu | PduError)
    assert stream.buffered < 4096


@given(st.lists(pdus(), min_size=1, max_size=8), st.integers(1, 50))
def test_any_sequence_of_pdus_survives_any_slicing_of_the_stream(
    items: list[Pdu], step: int
) -> None:
    data = b"".join(encode(p) for p in items)
    stream = PduStream()
    decoded: list[Pdu | PduError] = []
    for i in range(0, len(data), step):
        decoded += stream.feed(data[i : i + step])
    assert decoded == items
