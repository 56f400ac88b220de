"""Go behaviours BuildKit's output depends on: `%q`/`%v` formatting for history entries, durations,
signal names and EXPOSE port specs (docker/go-connections/nat)."""

from __future__ import annotations

import re
import signal as _signal
import unicodedata

# ----------------------------------------------------------------------------- quoting

_SIMPLE_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
                   "\t": "\\t", "\v": "\\v"}


def _printable(ch: str) -> bool:
    # Go strconv.IsPrint: letters, marks, numbers, punctuation, symbols and ASCII space.
    if ch == " ":
        return True
    return unicodedata.category(ch)[0] in "LMNPS"


def _escape(ch: str, quote: str) -> str:
    if ch == quote or ch == "\\":
        return "\\" + ch
    if _printable(ch):
        return ch
    if ch in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[ch]
    code = ord(ch)
    if code < 0x80:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def quote(text: str) -> str:
    """Go `strconv.Quote` (what `%q` prints for a string)."""
    return '"' + "".join(_escape(ch, '"') for ch in text) + '"'


def quote_rune(code: int) -> str:
    """Go `strconv.QuoteRune` (what `%q` prints for an integer)."""
    if code < 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        code = 0xFFFD
    return "'" + _escape(chr(code), "'") + "'"


def quote_list(items: tuple[str, ...] | list[str] | None) -> str:
    """`%q` of a []string: `["a" "b"]` (`[]` for nil or empty)."""
    return "[" + " ".join(quote(i) for i in (items or ())) + "]"


def plain_list(items: tuple[str, ...] | list[str]) -> str:
    """`%v` of a []string: `[a b]`."""
    return "[" + " ".join(items) + "]"


# ----------------------------------------------------------------------------- integers

_DECIMAL = re.compile(r"[+-]?[0-9]+")


def parse_int(text: str, bits: int = 64) -> int:
    """Go `strconv.ParseInt(text, 10, bits)`: an optional sign and ASCII digits only (no
    spaces, no `_`, unlike Python's int()), within a signed `bits`-bit range; ValueError."""
    if not _DECIMAL.fullmatch(text):
        raise ValueError(f'strconv.ParseInt: parsing {quote(text)}: invalid syntax')
    value = int(text)
    if not -(1 << (bits - 1)) <= value < 1 << (bits - 1):
        raise ValueError(f'strconv.ParseInt: parsing {quote(text)}: value out of range')
    return value


# ----------------------------------------------------------------------------- durations

_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
          "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
_DURATION_PART = re.compile(r"([0-9]*)(?:\.([0-9]*))?([^0-9.]+)")


def parse_duration(text: str) -> int:
    """Go `time.ParseDuration` → nanoseconds; raises ValueError with Go's message."""
    error = ValueError(f"time: invalid duration {quote(text)}")
    s = text
    sign = 1
    if s[:1] in ("-", "+"):
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise error
    total = 0
    pos = 0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if not m or (not m.group(1) and not m.group(2)):
            raise error
        whole, frac, unit = m.group(1) or "0", m.group(2) or "", m.group(3)
        if unit not in _UNITS:
            raise ValueError(f"time: unknown unit {quote(unit)} in duration {quote(text)}")
        scale = _UNITS[unit]
        total += int(whole) * scale
        if frac:
            total += int(frac) * scale // (10 ** len(frac))
        pos = m.end()
    return sign * total


def format_duration(ns: int) -> str:
    """Go `time.Duration.String()`: `1h2m3.5s`, `150ms`, `0s`."""
    if ns == 0:
        return "0s"
    neg = ns < 0
    u = -ns if neg else ns
    if u < 1_000_000_000:
        for unit, size in (("ns", 1), ("µs", 1_000), ("ms", 1_000_000)):
            if u < size * 1000:
                out = _frac(u, size) + unit
                break
    else:
        hours, rest = divmod(u, 3_600_000_000_000)
        minutes, rest = divmod(rest, 60_000_000_000)
        out = _frac(rest, 1_000_000_000) + "s"
        if hours or minutes:
            out = f"{minutes}m" + out
        if hours:
            out = f"{hours}h" + out
    return "-" + out if neg else out


def _frac(value: int, size: int) -> str:
    whole, rest = divmod(value, size)
    if not rest:
        return str(whole)
    digits = len(str(size)) - 1
    return f"{whole}." + f"{rest:0{digits}d}".rstrip("0")


# ----------------------------------------------------------------------------- signals

_SIGNALS: dict[str, int] = {
    name[3:]: int(getattr(_signal, name))
    for name in dir(_signal)
    if name.startswith("SIG") and not name.startswith("SIG_") and name.isupper()
}
_SIGNALS.setdefault("IOT", _SIGNALS.get("ABRT", 6))


def _rt_signals() -> dict[str, int]:
    lo, hi = int(_signal.SIGRTMIN), int(_signal.SIGRTMAX)
    out = {}
    for i in range(1, hi - lo):
        out[f"RTMIN+{i}"] = lo + i
        out[f"RTMAX-{i}"] = hi - i
    return out


_SIGNALS.update(_rt_signals())


def parse_signal(text: str) -> int:
    """moby/sys/signal.ParseSignal on Linux: a positive number, or a name with or without
    `SIG` (any case). Raises ValueError("Invalid signal: …")."""
    if re.fullmatch(r"[+-]?[0-9]+", text):
        number = int(text)
        if number == 0:
            raise ValueError(f"Invalid signal: {text}")
        return number
    name = text.upper()
    if name.startswith("SIG"):
        name = name[3:]
    if name not in _SIGNALS:
        raise ValueError(f"Invalid signal: {text}")
    return _SIGNALS[name]


# ----------------------------------------------------------------------------- ports

_PROTOS = ("tcp", "udp", "sctp")


def parse_port_specs(specs: list[str]) -> list[str]:
    """docker/go-connections nat.ParsePortSpecs for EXPOSE: `80`, `80/udp`, `8000-8002/tcp`
    (optionally `ip:host:container`) → sorted unique `port/proto` keys. Raises ValueError."""
    out: set[str] = set()
    for raw in specs:
        spec, _, proto = raw.partition("/")
        proto = proto.lower() if proto else "tcp"
        if proto not in _PROTOS:
            raise ValueError(f"invalid proto: {proto}")
        container = spec.rsplit(":", 1)[-1] if spec.count(":") <= 2 else ""
        if spec.startswith("[") or not container:
            raise ValueError(f"invalid port specification: {raw!r}")
        lo_text, sep, hi_text = container.partition("-")
        try:
            lo = int(lo_text, 10)
            hi = int(hi_text, 10) if sep else lo
        except ValueError:
            raise ValueError(f"invalid containerPort: {container}") from None
        if not (0 <= lo <= 65535 and 0 <= hi <= 65535) or hi < lo:
            raise ValueError(f"invalid containerPort: {container}")
        out.update(f"{p}/{proto}" for p in range(lo, hi + 1))
    return sorted(out)


def map_keys(keys: list[str]) -> str:
    """`%v` of a Go map[string]struct{}: `map[a:{} b:{}]` (keys sorted, as fmt does)."""
    return "map[" + " ".join(f"{k}:{{}}" for k in sorted(keys)) + "]"
