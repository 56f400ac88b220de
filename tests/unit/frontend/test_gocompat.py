"""Go formatting and parsing the history text and validation depend on."""

from __future__ import annotations

import pytest

from builder.frontend import gocompat as go


@pytest.mark.parametrize("ns,text", [
    (0, "0s"), (1, "1ns"), (1500, "1.5µs"), (1_500_000, "1.5ms"), (30 * 10**9, "30s"),
    (90 * 10**9, "1m30s"), (300 * 10**9, "5m0s"), (3600 * 10**9, "1h0m0s"),
    (3_723_500_000_000, "1h2m3.5s"), (-2 * 10**9, "-2s"),
])
def test_duration_round_trip(ns: int, text: str) -> None:
    assert go.format_duration(ns) == text
    assert go.parse_duration(text) == ns


@pytest.mark.parametrize("bad", ["", "5", "1x", "s", ".s", "1.2.3s"])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(ValueError):
        go.parse_duration(bad)


def test_quote_and_quote_rune() -> None:
    assert go.quote('a"b\\c\n\x01é') == '"a\\"b\\\\c\\n\\x01é"'
    assert go.quote_rune(0) == "'\\x00'" and go.quote_rune(3) == "'\\x03'"
    assert go.quote_rune(65) == "'A'" and go.quote_rune(7) == "'\\a'"
    assert go.quote_list(None) == "[]" and go.quote_list(["a b"]) == '["a b"]'


def test_signals() -> None:
    assert go.parse_signal("SIGTERM") == go.parse_signal("term") == 15
    assert go.parse_signal("9") == 9
    assert go.parse_signal("SIGRTMIN+1") > go.parse_signal("SIGUSR2")
    for bad in ("0", "SIGNOPE", ""):
        with pytest.raises(ValueError, match="Invalid signal"):
            go.parse_signal(bad)


def test_port_specs() -> None:
    assert go.parse_port_specs(["80", "53/UDP", "8000-8001"]) == [
        "53/udp", "80/tcp", "8000/tcp", "8001/tcp"]
    assert go.parse_port_specs(["127.0.0.1:8080:80"]) == ["80/tcp"]
    for bad in ("80/foo", "x", "70000", "9-1"):
        with pytest.raises(ValueError):
            go.parse_port_specs([bad])
    assert go.map_keys(["b", "a"]) == "map[a:{} b:{}]"
