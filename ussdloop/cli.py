"""The ``ussdloop`` command line.

ussdloop up [--config F]                 the whole network in one process
ussdloop simulator [--config F]          the modem simulator alone
ussdloop dfsp --dfsp NAME [--config F]   one DFSP's service (database and API) alone
ussdloop gateway --dfsp NAME [--config F]  one DFSP's gateway alone
ussdloop demo [--config F]               start a network on free ports (and a fresh
                                         temporary data directory) and play the stories
ussdloop phone --msisdn N [--control URL]  an interactive terminal phone
ussdloop config [--config F]             check a configuration and print it
ussdloop forensic verify [--config F] [--url URL]
                                         verify every chain of the central forensic log
ussdloop forensic transfer ID [--config F] [--url URL]
                                         the path of one transfer across the services
ussdloop forensic customer USER_NUMBER [--from ISO] [--to ISO] [--config F] [--url URL]
                                         one customer's records and transfers in a
                                         window (the last 30 days by default)
ussdloop bulk submit FILE --dfsp NAME --maker USER_NUMBER --checker USER_NUMBER
                     [--end ISO] [--account ID] [--config F] [--url URL]
                                         pay a bulk file through a DFSP's API with a
                                         progress bar (PINs: USSDLOOP_MAKER_PIN and
                                         USSDLOOP_CHECKER_PIN, or asked for)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from ussdloop.config import ConfigError, NetworkConfig, load_network
from ussdloop.logs import LEVELS, start_logging
from ussdloop.times import parse_instant


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "phone":
        from simulators.modem.phone_cli import main as phone_main

        return phone_main(argv=[a for a in (argv or sys.argv[1:]) if a != "phone"])
    try:
        network = load_network(args.config)
        if args.command != "config":
            from ussdloop.compose import check

            check(network, [args.dfsp] if args.command in ("gateway", "dfsp") else None)
    except ConfigError as error:
        print(f"ussdloop: configuration error: {error}", file=sys.stderr)
        return 2
    if args.command != "config":
        start_logging(args.log_level if args.command != "demo" else "warn", json=args.log_json)
    command: Callable[[argparse.Namespace, NetworkConfig], int] = args.run
    return command(args, network)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ussdloop", description="A USSD-first mobile-money network."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def command(
        name: str, run: Callable[[argparse.Namespace, NetworkConfig], int], help: str
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help)
        sub.add_argument("--config", help="a network TOML file merged over the shipped default")
        sub.add_argument("--log-level", default="info", choices=LEVELS)
        sub.add_argument("--log-json", action="store_true", help="one JSON object per log event")
        sub.set_defaults(run=run)
        return sub

    command("up", _up, "run the whole network in one process")
    command("central", _central, "run the central services alone")
    command("simulator", _simulator, "run the modem simulator alone")
    dfsp = command("dfsp", _dfsp, "run one DFSP's service (database and API) alone")
    dfsp.add_argument("--dfsp", required=True, help="the DFSP to run, e.g. dfsp1")
    gateway = command("gateway", _gateway, "run one DFSP's gateway alone")
    gateway.add_argument("--dfsp", required=True, help="the DFSP whose gateway to run, e.g. dfsp1")
    command("demo", _demo, "start a network on free ports and play the stories from handsets")
    command("config", _config, "check a configuration and print it")
    _forensic_commands(commands)
    _bulk_commands(commands)
    phone = commands.add_parser(
        "phone", help="an interactive terminal phone (uses the control API)"
    )
    phone.add_argument("--msisdn", required=True)
    phone.add_argument("--control", default="http://127.0.0.1:8000")
    return parser


def _config(args: argparse.Namespace, network: NetworkConfig) -> int:
    print(json.dumps(dataclasses.asdict(network), indent=2))
    return 0


def _up(args: argparse.Namespace, network: NetworkConfig) -> int:
    from ussdloop.compose import start_network
    from ussdloop.runner import serve

    async def start() -> Callable[[], Awaitable[None]]:
        carrier = await start_network(network)
        _print_endpoints(network.network.name, carrier.running.endpoints)
        return carrier.running.stop

    return serve(start)


def _simulator(args: argparse.Namespace, network: NetworkConfig) -> int:
    from ussdloop.compose import Running, start_simulator
    from ussdloop.runner import serve

    async def start() -> Callable[[], Awaitable[None]]:
        running = Running()
        try:
            await start_simulator(network, running)
        except BaseException:
            await running.stop()
            raise
        _print_endpoints("modem simulator", running.endpoints)
        return running.stop

    return serve(start)


def _central(args: argparse.Namespace, network: NetworkConfig) -> int:
    from ussdloop.compose import Running, start_central
    from ussdloop.runner import serve

    async def start() -> Callable[[], Awaitable[None]]:
        running = Running()
        await start_central(network, running)
        _print_endpoints("central services", running.endpoints)
        return running.stop

    return serve(start)


def _dfsp(args: argparse.Namespace, network: NetworkConfig) -> int:
    from ussdloop.compose import Running, central_link, start_dfsp
    from ussdloop.runner import serve

    async def start() -> Callable[[], Awaitable[None]]:
        running = Running()
        link = await central_link(network, args.dfsp)  # the centre must be up already
        await start_dfsp(network, args.dfsp, running, central=link)
        _print_endpoints(f"{args.dfsp} service", running.endpoints)
        return running.stop

    return serve(start)


def _gateway(args: argparse.Namespace, network: NetworkConfig) -> int:
    from ussdloop.compose import Running, start_gateway
    from ussdloop.runner import serve

    async def start() -> Callable[[], Awaitable[None]]:
        running = Running()
        await start_gateway(network, args.dfsp, running)
        smpp = network.dfsps[args.dfsp].gateway.smpp
        running.endpoints.append(
            f"binding to SMSC smpp://{smpp.host}:{smpp.port} as {smpp.system_id}"
        )
        _print_endpoints(f"{args.dfsp} gateway", running.endpoints)
        return running.stop

    return serve(start)


def _demo(args: argparse.Namespace, network: NetworkConfig) -> int:
    from ussdloop.demo import play_demo
    from ussdloop.runner import run_once

    return run_once(lambda: play_demo(network))


def _forensic_commands(commands: Any) -> None:
    forensic = commands.add_parser("forensic", help="verify the forensic log, trace a transfer")
    actions = forensic.add_subparsers(dest="forensic_command", required=True)
    verify = actions.add_parser("verify", help="verify every chain; exit 1 naming any problem")
    transfer = actions.add_parser("transfer", help="the path of one transfer across services")
    transfer.add_argument("id", help="the transfer id")
    customer = actions.add_parser("customer", help="one customer's records and transfers")
    customer.add_argument("user_number", help="the customer's user number")
    customer.add_argument("--from", dest="since", type=_iso_time, help="ISO time (30 days back)")
    customer.add_argument("--to", dest="until", type=_iso_time, help="ISO time (now)")
    for action, run in (
        (verify, _forensic_verify),
        (transfer, _forensic_transfer),
        (customer, _forensic_customer),
    ):
        action.add_argument("--config", help="a network TOML file merged over the shipped default")
        action.add_argument("--url", help="the central API (operator credentials from --config)")
        action.add_argument("--log-level", default="warn", choices=LEVELS)
        action.add_argument("--log-json", action="store_true")
        action.set_defaults(run=run)


def _forensic_verify(args: argparse.Namespace, network: NetworkConfig) -> int:
    from central.forensic.cli import verify_command

    return _forensic_run(lambda: verify_command(network, args.url, sys.stdout))


def _forensic_transfer(args: argparse.Namespace, network: NetworkConfig) -> int:
    from central.forensic.cli import transfer_command

    return _forensic_run(lambda: transfer_command(network, args.url, args.id, sys.stdout))


def _forensic_customer(args: argparse.Namespace, network: NetworkConfig) -> int:
    from central.forensic.cli import customer_command

    until = args.until or datetime.now(UTC)
    since = args.since or until - timedelta(days=30)
    return _forensic_run(
        lambda: customer_command(network, args.url, args.user_number, since, until, sys.stdout)
    )


def _iso_time(text: str) -> datetime:
    try:
        return parse_instant(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from None


def _forensic_run(command: Callable[[], Coroutine[Any, Any, int]]) -> int:
    import asyncio

    from central.forensic.cli import CommandError

    try:
        return asyncio.run(command())
    except CommandError as error:
        print(f"ussdloop: {error}", file=sys.stderr)
        return 2


def _bulk_commands(commands: Any) -> None:
    bulk = commands.add_parser("bulk", help="bulk payments through a DFSP's API")
    actions = bulk.add_subparsers(dest="bulk_command", required=True)
    submit = actions.add_parser(
        "submit", help="upload a file as the maker, approve as the checker, follow it"
    )
    submit.add_argument("file", help="the CSV file (SPEC section 3)")
    submit.add_argument("--dfsp", required=True, help="the payer's DFSP, e.g. dfsp1")
    submit.add_argument("--maker", required=True, help="the maker's user number")
    submit.add_argument("--checker", required=True, help="the checker's user number")
    submit.add_argument("--end", help="retries end at this ISO 8601 date and time (UTC)")
    submit.add_argument("--account", help="the account paid from (default: the maker's primary)")
    submit.add_argument("--config", help="a network TOML file merged over the shipped default")
    submit.add_argument("--url", help="the DFSP API (default: from --config)")
    submit.add_argument("--log-level", default="warn", choices=LEVELS)
    submit.add_argument("--log-json", action="store_true")
    submit.set_defaults(run=_bulk_submit)


def _bulk_submit(args: argparse.Namespace, network: NetworkConfig) -> int:
    import asyncio
    from pathlib import Path

    from ussdloop.bulk_cli import SubmitRefused, SubmitRequest, parse_end, submit

    try:
        request = SubmitRequest(
            file=Path(args.file),
            dfsp=args.dfsp,
            maker=args.maker,
            checker=args.checker,
            end_at=parse_end(args.end),
            account_id=args.account,
            url=args.url,
        )
        return asyncio.run(submit(network, request, sys.stdout))
    except SubmitRefused as error:
        print(f"ussdloop: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nussdloop: stopped following; the batch goes on at the DFSP", file=sys.stderr)
        return 130


def _print_endpoints(title: str, endpoints: list[str]) -> None:
    print(f"{title} is up:", flush=True)
    for endpoint in endpoints:
        print(f"  {endpoint}", flush=True)
    print("Ctrl-C stops it.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
