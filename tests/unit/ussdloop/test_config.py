"""The network configuration: shipped defaults, overrides, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from ussdloop.config import ConfigError, load_network


def test_the_shipped_network_is_the_one_of_spec_section_7() -> None:
    config = load_network(environ={})
    assert config.central.http.port == 8088
    assert config.simulator.smpp.port == 2775
    assert config.simulator.control.port == 8000
    assert config.simulator.at_modems.base_port == 7000
    dfsp1, dfsp2 = config.dfsps["dfsp1"], config.dfsps["dfsp2"]
    assert (dfsp1.short_code, dfsp1.currency, dfsp1.api.port) == ("123", "USD", 8010)
    assert (dfsp2.short_code, dfsp2.currency, dfsp2.api.port) == ("456", "USD", 8020)
    assert (dfsp1.gateway.ussd_http.port, dfsp2.gateway.ussd_http.port) == (8019, 8029)
    assert dfsp1.gateway.smpp.port == config.simulator.smpp.port
    assert dfsp1.gateway.smpp.window == 10


def test_a_file_overrides_only_what_it_names(tmp_path: Path) -> None:
    path = tmp_path / "net.toml"
    path.write_text('[dfsps.dfsp1.gateway.smpp]\nwindow = 32\nbind_mode = "pair"\n')
    config = load_network(path, environ={})
    assert config.dfsps["dfsp1"].gateway.smpp.window == 32
    assert config.dfsps["dfsp1"].gateway.smpp.bind_mode == "pair"
    assert config.dfsps["dfsp1"].gateway.smpp.system_id == "dfsp1"


def test_environment_variables_override_any_value() -> None:
    config = load_network(
        environ={
            "USSDLOOP__SIMULATOR__SMPP__PORT": "2776",
            "USSDLOOP__DFSPS__DFSP2__GATEWAY__DIALECT": "umr",
        }
    )
    assert config.simulator.smpp.port == 2776
    assert config.dfsps["dfsp2"].gateway.dialect == "umr"


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[dfsps.dfsp1.gateway.smpp]\nwindow = 'ten'\n", "dfsps.dfsp1.gateway.smpp.window"),
        ("[simulator.smpp]\nport = 70000\n", "simulator.smpp"),
        ("[dfsps.dfsp1.gateway.smpp]\nbind_mode = 'both'\n", "dfsps.dfsp1.gateway.smpp.bind_mode"),
        ("[dfsps.dfsp1]\nshort_kode = '1'\n", "dfsps.dfsp1.short_kode"),
        ("[dfsps.dfsp3]\ncurrency = 'USD'\n", "dfsps.dfsp3.short_code"),
        ("[dfsps.dfsp2]\nshort_code = '123'\n", ""),
        ("[dfsps.dfsp1.gateway.smpp]\npassword = 'far-too-long'\n", "dfsps.dfsp1.gateway.smpp"),
    ],
)
def test_a_bad_value_fails_naming_its_key(tmp_path: Path, toml: str, key: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as error:
        load_network(path, environ={})
    assert error.value.key == key
    assert str(error.value).startswith(key)


def test_a_file_that_is_not_toml_is_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[dfsps\n")
    with pytest.raises(ConfigError, match=r"broken\.toml is not valid TOML"):
        load_network(path, environ={})


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_network(tmp_path / "nope.toml", environ={})
