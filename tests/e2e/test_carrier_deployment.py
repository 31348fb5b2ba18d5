"""Acceptance: the deployment options of the carrier link, set through the network
configuration: SMPP over TLS, and USSD sessions shared through Redis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.ussd.stores import RedisSessionStore
from simulators.modem.network import MobileNetwork
from tests.e2e.carrier import carrier_network
from tests.pki import write_pki
from tests.support import asyncio_test

WALK = [("1", True), ("Amani", True), ("42", True), ("2", False)]


async def demo_walk(network: MobileNetwork, msisdn: str) -> str:
    handset = network.handset(msisdn)
    screen = await handset.dial("*123#", timeout=10)
    for answer, expects_reply in WALK:
        screen = await handset.reply(answer, timeout=10)
        assert screen.expects_reply is expects_reply
    return screen.text


# Twisted's CertificateOptions still hands pyOpenSSL objects to pyOpenSSL, which warns.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@asyncio_test
async def test_the_gateways_bind_over_tls_to_an_smsc_whose_certificate_their_ca_signed(
    tmp_path: Path,
) -> None:
    ca_file, cert_file, key_file = write_pki(tmp_path)
    env = {
        "USSDLOOP__SIMULATOR__TLS_CERT_FILE": json.dumps(str(cert_file)),
        "USSDLOOP__SIMULATOR__TLS_KEY_FILE": json.dumps(str(key_file)),
    }
    async with carrier_network(
        env, host="localhost", tls=True, tls_ca_file=str(ca_file)
    ) as carrier:
        assert await demo_walk(carrier.simulator.network, "256700000031") == "Done: Amani 42"


@asyncio_test
async def test_dialogues_work_with_sessions_kept_in_redis(redis_url: str) -> None:
    env = {"USSDLOOP__DFSPS__DFSP1__GATEWAY__SESSION_STORE": json.dumps(redis_url)}
    async with carrier_network(env) as carrier:
        gateway = carrier.gateways["dfsp1"]
        assert isinstance(gateway.store, RedisSessionStore)
        assert await demo_walk(carrier.simulator.network, "256700000032") == "Done: Amani 42"
        assert await gateway.store.count() == 0
