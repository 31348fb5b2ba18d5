"""The AT modem: 27.007 / 27.005 commands as plain bytes, then over real TCP with pyserial."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pytest
import serial
from twisted.internet import reactor as global_reactor
from twisted.internet.threads import blockingCallFromThread, deferToThread

from simulators.modem.at_commands import AtSession, imei_for
from simulators.modem.at_modem import AtModemServer
from simulators.modem.at_sms import Inbox
from simulators.modem.at_syntax import parse_command_line
from simulators.modem.handsets import HandsetBusy, HandsetState, InvalidInput, Screen, Sms
from tests.support import asyncio_test
from tests.unit.simulators.echo_esme import EchoNetwork, echo_network
from ussdloop.aio import as_deferred, wait_deferred

MSISDN = "256700000001"


class RecordingHandset:
    """The handset's synchronous USSD actions, recorded; the test sets its state."""

    def __init__(self, state: HandsetState) -> None:
        self.state = state
        self.requests: list[tuple[str, ...]] = []
        self.refuse: Exception | None = None

    def _record(self, *request: str) -> None:
        if self.refuse is not None:
            raise self.refuse
        self.requests.append(request)

    def dial_nowait(self, code: str) -> None:
        self._record("dial", code)

    def reply_nowait(self, text: str) -> None:
        if self.state is HandsetState.WAITING:
            raise HandsetBusy("waiting for the network")
        self._record("reply", text)

    def cancel_nowait(self) -> None:
        self._record("cancel")


class Phone:
    """A session on a recording handset, and a helper to type lines."""

    def __init__(self, state: HandsetState = HandsetState.IDLE, capacity: int = 10) -> None:
        self.handset = RecordingHandset(state)
        self.inbox = Inbox(capacity)
        self.session = AtSession(MSISDN, self.inbox, self.handset)

    @property
    def requests(self) -> list[tuple[str, ...]]:
        return self.handset.requests

    def type(self, line: str | bytes) -> bytes:
        """Send one line (CR added); the bytes the modem writes back."""
        data = line.encode("latin-1") if isinstance(line, str) else line
        return self.session.receive(data + b"\r")

    def quiet(self) -> Phone:
        assert self.type("ATE0") == b"ATE0\r\r\nOK\r\n"
        return self


def screen(text: str, expects_reply: bool = True, **kwargs: object) -> Screen:
    return Screen(text=text, expects_reply=expects_reply, **kwargs)  # type: ignore[arg-type]


# --- V.250 basics --------------------------------------------------------------------------


def test_at_answers_ok_and_echo_is_on_after_power_up() -> None:
    assert Phone().type("AT") == b"AT\r\r\nOK\r\n"


def test_ate0_turns_echo_off_and_ate1_back_on() -> None:
    phone = Phone()
    assert phone.type("ATE0") == b"ATE0\r\r\nOK\r\n"  # the line itself is still echoed
    assert phone.type("AT") == b"\r\nOK\r\n"
    assert phone.type("ate1") == b"\r\nOK\r\n"
    assert phone.type("AT") == b"AT\r\r\nOK\r\n"


def test_echo_follows_the_bytes_as_they_arrive_and_lf_is_ignored() -> None:
    session = Phone().session
    assert session.receive(b"A") == b"A"
    assert session.receive(b"T\r\n") == b"T\r\r\nOK\r\n"


def test_backspace_edits_the_line() -> None:
    assert Phone().quiet().type(b"ATX\x08") == b"\r\nOK\r\n"


def test_ati_names_the_manufacturer_and_model() -> None:
    out = Phone().quiet().type("ATI")
    assert out == (
        b"\r\nManufacturer: ussdloop\r\nModel: USSD modem simulator\r\nRevision: 1.0\r\n"
        b"IMEI: " + imei_for(MSISDN).encode() + b"\r\n\r\nOK\r\n"
    )


def test_identity_commands() -> None:
    phone = Phone().quiet()
    assert phone.type("AT+CGMI") == b"\r\nussdloop\r\n\r\nOK\r\n"
    assert phone.type("AT+CGMM") == b"\r\nUSSD modem simulator\r\n\r\nOK\r\n"
    assert phone.type("AT+CNUM") == b'\r\n+CNUM: "","256700000001",145\r\n\r\nOK\r\n'


def test_the_imei_is_fifteen_digits_with_a_valid_luhn_check_digit() -> None:
    imei = imei_for(MSISDN)
    assert len(imei) == 15 and imei.isdigit()
    digits = [int(c) for c in imei]
    total = sum(
        d if i % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2) for i, d in enumerate(digits)
    )
    assert total % 10 == 0


@pytest.mark.parametrize(
    "line", ["AT+FOO", "ATX", "HELLO", "AT+CUSD=9", 'AT+CSCS="KLINGON"', 'AT+CUSD=1,"*1']
)
def test_unknown_commands_and_bad_syntax_answer_error(line: str) -> None:
    assert Phone().quiet().type(line) == b"\r\nERROR\r\n"


def test_an_overlong_line_answers_error_and_the_next_line_works() -> None:
    phone = Phone().quiet()
    assert phone.type("AT" + "I" * 600) == b"\r\nERROR\r\n"
    assert phone.type("AT") == b"\r\nOK\r\n"


def test_an_empty_line_is_ignored() -> None:
    assert Phone().quiet().type("") == b""


def test_several_commands_on_one_line_run_in_order_and_stop_at_the_first_error() -> None:
    phone = Phone().quiet()
    assert phone.type('AT+CSCS="UCS2";+CSCS?') == b'\r\n+CSCS: "UCS2"\r\n\r\nOK\r\n'
    assert phone.type("AT+CMGF=1;+FOO;+CSCS?") == b"\r\nERROR\r\n"


def test_cmee_chooses_how_errors_read() -> None:
    phone = Phone().quiet()
    assert phone.type("AT+CMGF=0") == b"\r\n+CMS ERROR: 303\r\n"
    phone.type("AT+CMEE=2")
    assert phone.type("AT+CMGF=0") == b"\r\n+CMS ERROR: operation not supported\r\n"
    phone.type("AT+CMEE=0")
    assert phone.type("AT+CMGF=0") == b"\r\nERROR\r\n"


def test_atz_restores_the_defaults() -> None:
    phone = Phone().quiet()
    phone.type('AT+CSCS="UCS2"')
    assert phone.type("ATZ") == b"\r\nOK\r\n"
    assert phone.type("AT+CSCS?") == b'AT+CSCS?\r\r\n+CSCS: "GSM"\r\n\r\nOK\r\n'


def test_the_command_line_parser_reads_forms_and_string_escapes() -> None:
    commands = parse_command_line(b'+CUSD=1,"say \\22hi\\22",15;+CSCS?;E0')
    assert [(c.name, c.form.value) for c in commands] == [
        ("+CUSD", "set"),
        ("+CSCS", "read"),
        ("E", "action"),
    ]
    assert commands[0].args[1].raw == b'say "hi"'  # type: ignore[union-attr]


# --- character sets ------------------------------------------------------------------------


def test_cscs_reads_and_lists_the_character_sets() -> None:
    phone = Phone().quiet()
    assert phone.type("AT+CSCS?") == b'\r\n+CSCS: "GSM"\r\n\r\nOK\r\n'
    assert phone.type("AT+CSCS=?") == b'\r\n+CSCS: ("GSM","IRA","UCS2")\r\n\r\nOK\r\n'
    assert phone.type('AT+CSCS="IRA"') == b"\r\nOK\r\n"
    assert phone.type("AT+CSCS?") == b'\r\n+CSCS: "IRA"\r\n\r\nOK\r\n'


# --- USSD ------------------------------------------------------------------------------


def test_cusd_dials_when_idle_and_answers_ok_before_the_network_does() -> None:
    phone = Phone().quiet()
    assert phone.type('AT+CUSD=1,"*123#",15') == b"\r\nOK\r\n"
    assert phone.requests == [("dial", "*123#")]


def test_the_dcs_parameter_is_optional() -> None:
    phone = Phone().quiet()
    assert phone.type('AT+CUSD=1,"*123#"') == b"\r\nOK\r\n"
    assert phone.requests == [("dial", "*123#")]


def test_input_the_handset_cannot_send_is_refused() -> None:
    phone = Phone().quiet()
    phone.handset.refuse = InvalidInput("not encodable")
    assert phone.type('AT+CUSD=1,"*123#",15') == b"\r\n+CME ERROR: 25\r\n"


def test_cusd_answers_the_open_dialogue() -> None:
    phone = Phone(HandsetState.OPEN).quiet()
    assert phone.type('AT+CUSD=1,"1",15') == b"\r\nOK\r\n"
    assert phone.requests == [("reply", "1")]


def test_cusd_while_the_network_has_not_answered_is_not_allowed() -> None:
    phone = Phone(HandsetState.WAITING).quiet()
    assert phone.type('AT+CUSD=1,"1",15') == b"\r\n+CME ERROR: 3\r\n"
    assert phone.requests == []


def test_cusd_2_releases_an_open_dialogue_and_is_harmless_when_idle() -> None:
    phone = Phone(HandsetState.OPEN).quiet()
    assert phone.type("AT+CUSD=2") == b"\r\nOK\r\n"
    assert phone.requests == [("cancel",)]
    idle = Phone().quiet()
    assert idle.type("AT+CUSD=2") == b"\r\nOK\r\n"
    assert idle.requests == []


def test_cusd_read_and_test_forms() -> None:
    phone = Phone().quiet()
    assert phone.type("AT+CUSD?") == b"\r\n+CUSD: 0\r\n\r\nOK\r\n"
    assert phone.type("AT+CUSD=1") == b"\r\nOK\r\n"
    assert phone.type("AT+CUSD?") == b"\r\n+CUSD: 1\r\n\r\nOK\r\n"
    assert phone.type("AT+CUSD=?") == b"\r\n+CUSD: (0-2)\r\n\r\nOK\r\n"


def test_a_ussd_string_longer_than_182_characters_is_refused() -> None:
    phone = Phone().quiet()
    assert phone.type('AT+CUSD=1,"' + "1" * 183 + '",15') == b"\r\n+CME ERROR: 24\r\n"


def test_cusd_in_ucs2_takes_hex_of_utf16() -> None:
    phone = Phone().quiet()
    phone.type('AT+CSCS="UCS2"')
    assert phone.type('AT+CUSD=1,"002A0031003200330023",72') == b"\r\nOK\r\n"
    assert phone.requests == [("dial", "*123#")]
    assert phone.type('AT+CUSD=1,"2A",72') == b"\r\n+CME ERROR: 25\r\n"


@pytest.mark.parametrize(
    ("shown", "expected"),
    [
        (screen("Welcome\n1. Balance"), b'\r\n+CUSD: 1,"Welcome\n1. Balance",15\r\n'),
        (screen("Bye", False), b'\r\n+CUSD: 0,"Bye",15\r\n'),
        (screen("Bye", False, ended_reason="released"), b'\r\n+CUSD: 0,"Bye",15\r\n'),
        (screen("", False, ended_reason="aborted"), b"\r\n+CUSD: 2\r\n"),
        (screen("", False, ended_reason="timeout"), b"\r\n+CUSD: 5\r\n"),
        (screen("", False, ended_reason="network_error"), b"\r\n+CUSD: 4\r\n"),
    ],
)
def test_screens_become_unsolicited_cusd_with_the_27_007_status(
    shown: Screen, expected: bytes
) -> None:
    phone = Phone().quiet()
    phone.type("AT+CUSD=1")
    assert phone.session.ussd_screen(shown) == expected


def test_screens_are_not_presented_until_cusd_1() -> None:
    phone = Phone().quiet()
    assert phone.session.ussd_screen(screen("Pay 5.00 USD?")) == b""
    phone.type("AT+CUSD=1")
    assert phone.session.ussd_screen(screen("Pay 5.00 USD?")).startswith(b"\r\n+CUSD: 1,")


def test_text_in_gsm_is_gsm_03_38_octets_and_quotes_are_escaped() -> None:
    phone = Phone().quiet()
    phone.type("AT+CUSD=1")
    assert phone.session.ussd_screen(screen('£5 "ok"')) == b'\r\n+CUSD: 1,"\x015 \\22ok\\22",15\r\n'


def test_text_the_character_set_cannot_hold_is_sent_as_ucs2_hex() -> None:
    phone = Phone().quiet()
    phone.type("AT+CUSD=1")
    assert phone.session.ussd_screen(screen("Привет")) == (
        b'\r\n+CUSD: 1,"041F04400438043204350442",72\r\n'
    )
    phone.type('AT+CSCS="IRA"')
    assert phone.session.ussd_screen(screen("£5")) == b'\r\n+CUSD: 1,"00A30035",72\r\n'
    assert phone.session.ussd_screen(screen("ok")) == b'\r\n+CUSD: 1,"ok",15\r\n'


def test_with_ucs2_every_screen_is_hex_and_dcs_is_how_it_came_over_the_air() -> None:
    phone = Phone().quiet()
    phone.type('AT+CSCS="UCS2";+CUSD=1')
    assert phone.session.ussd_screen(screen("Hi")) == b'\r\n+CUSD: 1,"00480069",15\r\n'
    assert phone.session.ussd_screen(screen("Hi", data_coding=0x08)) == (
        b'\r\n+CUSD: 1,"00480069",72\r\n'
    )


@pytest.mark.parametrize(
    ("charset", "shown", "expected"),
    [
        ("GSM", screen("Hi", data_coding=0x08), b'"Hi",72'),
        ("GSM", screen("Hi", data_coding=0x00), b'"Hi",15'),
        ("GSM", screen("Hi", data_coding=0x01), b'"Hi",15'),
        ("GSM", screen("Hi"), b'"Hi",15'),
        ("IRA", screen("ok", data_coding=0x08), b'"ok",72'),
        ("UCS2", screen("Hi", data_coding=0x00), b'"00480069",15'),
        ("UCS2", screen("П", data_coding=0x08), b'"041F",72'),
        # the GSM/IRA set cannot hold it: UCS2 hex, so dcs 72 whatever came over the air
        ("GSM", screen("П", data_coding=0x00), b'"041F",72'),
        ("IRA", screen("£5", data_coding=0x00), b'"00A30035",72'),
    ],
)
def test_cusd_dcs_reports_the_data_coding_the_screen_arrived_in(
    charset: str, shown: Screen, expected: bytes
) -> None:
    phone = Phone().quiet()
    phone.type(f'AT+CSCS="{charset}";+CUSD=1')
    assert phone.session.ussd_screen(shown) == b"\r\n+CUSD: 1," + expected + b"\r\n"


# --- SMS -------------------------------------------------------------------------------


def sms(text: str, sender: str = "123", at: float = 1_700_000_000.0) -> Sms:
    return Sms(id=f"m-{text}", sender=sender, text=text, received_at=at)


def test_text_mode_is_the_only_mode() -> None:
    phone = Phone().quiet()
    assert phone.type("AT+CMGF=1") == b"\r\nOK\r\n"
    assert phone.type("AT+CMGF?") == b"\r\n+CMGF: 1\r\n\r\nOK\r\n"
    assert phone.type("AT+CMGF=0") == b"\r\n+CMS ERROR: 303\r\n"


def test_cnmi_2_1_announces_new_messages_with_cmti() -> None:
    phone = Phone().quiet()
    index = phone.inbox.add(sms("hello"))
    assert index == 1
    assert phone.session.sms_arrived(1) == b""  # CNMI off after power-up
    assert phone.type("AT+CNMI=2,1") == b"\r\nOK\r\n"
    assert phone.type("AT+CNMI?") == b"\r\n+CNMI: 2,1,0,0,0\r\n\r\nOK\r\n"
    assert phone.session.sms_arrived(1) == b'\r\n+CMTI: "ME",1\r\n'


def test_cmgl_lists_messages_then_marks_them_read() -> None:
    phone = Phone().quiet()
    phone.inbox.add(sms("Received 5.00 USD from 256700000002", at=1_700_000_000.0))
    phone.inbox.add(sms("second", sender="DFSP1", at=1_700_000_061.0))
    assert phone.type('AT+CMGL="ALL"') == (
        b'\r\n+CMGL: 1,"REC UNREAD","123",,"23/11/14,22:13:20+00"\r\n'
        b"Received 5.00 USD from 256700000002\r\n"
        b'+CMGL: 2,"REC UNREAD","DFSP1",,"23/11/14,22:14:21+00"\r\n'
        b"second\r\n\r\nOK\r\n"
    )
    assert phone.type('AT+CMGL="REC UNREAD"') == b"\r\nOK\r\n"
    assert phone.type('AT+CMGL="REC READ"').count(b"+CMGL:") == 2


def test_cmgr_reads_one_message_and_cmgd_deletes_it() -> None:
    phone = Phone().quiet()
    phone.inbox.add(sms("one"))
    phone.inbox.add(sms("two"))
    assert phone.type("AT+CMGR=2") == (
        b'\r\n+CMGR: "REC UNREAD","123",,"23/11/14,22:13:20+00"\r\ntwo\r\n\r\nOK\r\n'
    )
    assert phone.type("AT+CMGR=2").startswith(b'\r\n+CMGR: "REC READ"')
    assert phone.type("AT+CMGD=2") == b"\r\nOK\r\n"
    assert phone.type("AT+CMGR=2") == b"\r\n+CMS ERROR: 321\r\n"
    assert phone.type("AT+CMGD=2") == b"\r\n+CMS ERROR: 321\r\n"
    assert phone.inbox.add(sms("three")) == 2  # the lowest free index is used again


def test_cmgd_with_delflag_4_empties_the_storage() -> None:
    phone = Phone().quiet()
    for text in ("a", "b", "c"):
        phone.inbox.add(sms(text))
    assert phone.type("AT+CMGD=1,4") == b"\r\nOK\r\n"
    assert phone.type('AT+CMGL="ALL"') == b"\r\nOK\r\n"


def test_a_full_storage_takes_no_more_messages() -> None:
    inbox = Inbox(capacity=2)
    assert [inbox.add(sms("a")), inbox.add(sms("b")), inbox.add(sms("c"))] == [1, 2, None]


def test_messages_are_written_in_the_current_character_set() -> None:
    phone = Phone().quiet()
    phone.inbox.add(sms("Hi"))
    phone.type('AT+CSCS="UCS2"')
    assert b"\r\n00480069\r\n" in phone.type("AT+CMGR=1")


# --- over real TCP, as a modem tool sees it ---------------------------------------------------

OTHER = "256700000002"
T = TypeVar("T")


@asynccontextmanager
async def modems() -> AsyncIterator[tuple[EchoNetwork, AtModemServer]]:
    async with echo_network() as network:
        server = AtModemServer(network.simulator.network, "127.0.0.1", 0, [MSISDN, OTHER])
        await server.start()
        try:
            yield network, server
        finally:
            await server.stop()


class Line:
    """pyserial on ``socket://``, used from a thread (its calls block)."""

    def __init__(self, port: int) -> None:
        self.serial = serial.serial_for_url(f"socket://127.0.0.1:{port}", timeout=5)

    def command(self, line: str, until: bytes = b"OK\r\n") -> bytes:
        self.serial.write(line.encode("latin-1") + b"\r")
        return self.expect(until)

    def expect(self, until: bytes) -> bytes:
        data: bytes = self.serial.read_until(until)
        assert data.endswith(until), data
        return data

    def close(self) -> None:
        self.serial.close()


def on_reactor(coro_fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run an asyncio coroutine on the reactor and wait for it, from a thread."""
    return blockingCallFromThread(global_reactor, as_deferred, coro_fn())  # type: ignore[arg-type]


async def in_thread(fn: Callable[[], T]) -> T:
    return await wait_deferred(deferToThread(fn))


@asyncio_test
async def test_a_ussd_dialogue_over_tcp_with_pyserial() -> None:
    async with modems() as (network, server):

        def session() -> list[bytes]:
            line = Line(server.ports[MSISDN])
            try:
                return [
                    line.command("AT"),
                    line.command("ATE0"),
                    line.command('AT+CUSD=1,"*123#",15', until=b'",15\r\n'),
                    line.command('AT+CUSD=1,"1",15', until=b'",15\r\n'),
                ]
            finally:
                line.close()

        at, echo_off, welcome, balance = await in_thread(session)
        assert at == b"AT\r\r\nOK\r\n"
        assert echo_off == b"ATE0\r\r\nOK\r\n"
        assert welcome == b'\r\nOK\r\n\r\n+CUSD: 1,"Echo service\n1. Balance\n0. Exit",15\r\n'
        assert balance == b'\r\nOK\r\n\r\n+CUSD: 0,"Your balance is 10.00 USD",15\r\n'
        assert network.simulator.network.handset(MSISDN).state is HandsetState.IDLE


@asyncio_test
async def test_an_unknown_code_answers_ok_then_the_network_refusal() -> None:
    async with modems() as (_, server):

        def session() -> bytes:
            line = Line(server.ports[MSISDN])
            try:
                line.command("ATE0")
                return line.command('AT+CUSD=1,"*999#",15', until=b",15\r\n")
            finally:
                line.close()

        assert await in_thread(session) == (
            b'\r\nOK\r\n\r\n+CUSD: 4,"Connection problem or invalid MMI code.",15\r\n'
        )


@asyncio_test
async def test_a_pushed_prompt_arrives_unsolicited_and_is_answered() -> None:
    async with modems() as (network, server):
        esme = network.esme

        def session() -> tuple[bytes, bytes]:
            line = Line(server.ports[MSISDN])
            try:
                line.command("ATE0;+CUSD=1")
                on_reactor(lambda: esme.push(MSISDN, "Pay 5.00 USD?\n0. No"))
                pushed = line.expect(b'",15\r\n')
                return pushed, line.command('AT+CUSD=1,"0",15', until=b'",15\r\n')
            finally:
                line.close()

        pushed, answered = await in_thread(session)
        assert pushed == b'\r\n+CUSD: 1,"Pay 5.00 USD?\n0. No",15\r\n'
        assert answered == b'\r\nOK\r\n\r\n+CUSD: 0,"Goodbye",15\r\n'


@asyncio_test
async def test_an_sms_is_announced_with_cmti_and_read_with_cmgr() -> None:
    async with modems() as (network, server):
        esme = network.esme

        def session() -> tuple[bytes, bytes, bytes]:
            line = Line(server.ports[MSISDN])
            try:
                line.command("ATE0;+CMGF=1;+CNMI=2,1")
                on_reactor(lambda: esme.send_sms(MSISDN, "You received 5.00 USD"))
                announced = line.expect(b'\r\n+CMTI: "ME",1\r\n')
                return announced, line.command("AT+CMGR=1"), line.command('AT+CMGL="ALL"')
            finally:
                line.close()

        announced, read, listed = await in_thread(session)
        assert announced == b'\r\n+CMTI: "ME",1\r\n'
        assert read.startswith(b'\r\n+CMGR: "REC UNREAD","123",,"')
        assert read.endswith(b'+00"\r\nYou received 5.00 USD\r\n\r\nOK\r\n')
        assert listed.startswith(b'\r\n+CMGL: 1,"REC READ","123",,"')


@asyncio_test
async def test_each_handset_has_its_own_port_and_number() -> None:
    async with modems() as (_, server):
        assert len(set(server.ports.values())) == 2

        def numbers() -> list[bytes]:
            answers = []
            for msisdn in (MSISDN, OTHER):
                line = Line(server.ports[msisdn])
                try:
                    answers.append(line.command("AT+CNUM"))
                finally:
                    line.close()
            return answers

        assert await in_thread(numbers) == [
            b'AT+CNUM\r\r\n+CNUM: "","256700000001",145\r\n\r\nOK\r\n',
            b'AT+CNUM\r\r\n+CNUM: "","256700000002",145\r\n\r\nOK\r\n',
        ]


@asyncio_test
async def test_garbage_and_an_endless_line_get_error_and_the_modem_carries_on() -> None:
    async with modems() as (_, server):

        def session() -> list[bytes]:
            line = Line(server.ports[MSISDN])
            try:
                line.command("ATE0")
                line.serial.write(bytes(b for b in range(256) if b != 0x0D) * 8 + b"\r")
                garbage = line.expect(b"ERROR\r\n")
                return [garbage, line.command("AT")]
            finally:
                line.close()

        garbage, at = await in_thread(session)
        assert garbage.endswith(b"\r\nERROR\r\n") and at == b"\r\nOK\r\n"


@asyncio_test
async def test_stopping_the_server_hangs_up() -> None:
    async with echo_network() as network:
        server = AtModemServer(network.simulator.network, "127.0.0.1", 0, [MSISDN])
        await server.start()
        port = server.ports[MSISDN]
        line = Line(port)
        await in_thread(lambda: line.command("AT"))
        await server.stop()
        with pytest.raises(serial.SerialException, match="disconnected"):
            await in_thread(lambda: line.serial.read(1))
        line.close()
