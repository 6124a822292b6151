"""Layer 1½, TLS: a ``wss://`` connection's records, decrypted with a key log like Wireshark's.

The TCP streams of a ``wss://`` connection hold TLS records (RFC 8446, section 5.1: a
5-byte header, content type, version, length, then the fragment). Without keys only the
handshake's first messages are readable: the ClientHello (with the server name, SNI) and
the ServerHello (version and cipher suite); the rest is application data of known sizes.

With the secrets the client or server logged (``SSLKEYLOGFILE``, NSS key log format),
scapy's TLS layer decrypts them: every record of both directions is read in capture order
by one ``tlsSession``, :meth:`~scapy.layers.tls.session.tlsSession.mirror`-ed when the
direction changes, as scapy documents for static analysis. The application data of each
direction, joined, is a new :class:`~.tcp.Stream` the next layers read as if it were TCP.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

from scapy.layers.tls.basefields import _tls_version
from scapy.layers.tls.crypto.suites import _tls_cipher_suites
from scapy.layers.tls.extensions import TLS_Ext_ServerName, TLS_Ext_SupportedVersion_SH
from scapy.layers.tls.handshake import TLSClientHello, TLSServerHello
from scapy.layers.tls.record import TLS, TLSApplicationData
from scapy.layers.tls.record_tls13 import TLS13
from scapy.layers.tls.session import parse_nss_keys, tlsSession

from .tcp import Direction, Stream

__all__ = ["CONTENT_TYPES", "KeyLog", "KeyLogError", "TlsInfo", "TlsRecord", "decrypt",
           "load_keylog", "looks_like_tls"]

KeyLog = dict[str, dict[bytes, bytes]]  # label -> client random -> secret
CONTENT_TYPES = {20: "change_cipher_spec", 21: "alert", 22: "handshake",
                 23: "application_data"}
_HANDSHAKE, _APPLICATION_DATA = 22, 23
# TLS 1.3's secrets for application data; TLS 1.2's master secret
_SECRETS_13 = ("CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET",
               "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0")
_SECRETS_12 = ("CLIENT_RANDOM",)


class KeyLogError(ValueError):
    """The key log cannot be read, or is not in the NSS key log format."""


def load_keylog(path: str | os.PathLike[str]) -> KeyLog:
    """The secrets of an NSS key log file (what ``SSLKEYLOGFILE`` names), by label."""
    name = os.fspath(path)
    try:
        with open(name, encoding="ascii") as file:
            text = file.read()
    except OSError as exc:
        raise KeyLogError(f"cannot read the key log {name}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise KeyLogError(f"{name} is not a key log (not text)") from exc
    keys: KeyLog = parse_nss_keys(text) if text.strip() else {}  # type: ignore[assignment]
    if not keys:
        raise KeyLogError(f"{name} is not an NSS key log (SSLKEYLOGFILE): every line must be "
                          "'LABEL <client random hex> <secret hex>', e.g. CLIENT_RANDOM ...")
    return keys


def looks_like_tls(c2s: bytes) -> bool:
    """Whether a client's stream starts with a TLS handshake record holding a ClientHello."""
    return len(c2s) > 5 and c2s[0] == _HANDSHAKE and c2s[1] == 3 and c2s[5] == 1


@dataclass(frozen=True)
class TlsRecord:
    """One TLS record as captured: what anyone on the path sees of it."""

    direction: Direction
    packet: int  # capture index of the packet that completed it
    time: float
    content_type: int  # on the wire: 23 (application data) for every TLS 1.3 record
    length: int  # of the (encrypted) fragment, after the 5-byte header
    offset: int  # where its header starts in the direction's TCP stream
    inner: str | None = None  # once decrypted, the real content type (CONTENT_TYPES)

    @property
    def content(self) -> str:
        return CONTENT_TYPES.get(self.content_type, f"type {self.content_type}")


@dataclass
class TlsInfo:
    """What the TLS layer found: in clear text (version, cipher suite, SNI), the records,
    and whether the key log decrypted them."""

    version: str | None = None  # "TLS 1.3", from the ServerHello
    cipher_suite: str | None = None  # "TLS_AES_256_GCM_SHA384"
    sni: str | None = None  # the server name the client asked for
    records: list[TlsRecord] = field(default_factory=list, repr=False)
    decrypted: bool = False

    def describe(self) -> str:
        """``TLS 1.3, TLS_AES_256_GCM_SHA384, SNI localhost``."""
        parts = [self.version or "TLS (no ServerHello captured)"]
        if self.cipher_suite:
            parts.append(self.cipher_suite)
        parts.append(f"SNI {self.sni}" if self.sni else "no SNI")
        return ", ".join(parts)


def _records(direction: Direction, stream: Stream, warnings: list[str]
             ) -> Iterator[tuple[TlsRecord, bytes]]:
    """Each whole record of one direction's stream, with its bytes."""
    data, pos = stream.data, 0
    while pos < len(data):
        end = pos + 5 + int.from_bytes(data[pos + 3 : pos + 5], "big") if pos + 5 <= len(
            data) else None
        if end is None or end > len(data):
            warnings.append(f"{direction}: the stream ends inside a TLS record at offset "
                            f"{pos:,} ({len(data) - pos:,} bytes)")
            return
        packet, when = stream.delivered_by(end)
        yield TlsRecord(direction, packet, when, data[pos], end - pos - 5, pos), data[pos:end]
        pos = end


def _hello(raw: bytes) -> TLSClientHello | TLSServerHello | None:
    """The hello message of a clear-text handshake record (no keys needed)."""
    message = next(iter(getattr(TLS(raw), "msg", None) or ()), None)  # SSLv2 has no msg
    return message if isinstance(message, (TLSClientHello, TLSServerHello)) else None


def _name(names: dict[int, str], value: object) -> str | None:
    """scapy's name for a version or cipher suite number, else its hex."""
    return names.get(value, f"0x{value:04x}") if isinstance(value, int) else None


def _clear_text(info: TlsInfo, records: list[tuple[TlsRecord, bytes]]) -> bytes | None:
    """Version, cipher suite and SNI from the hellos; returns the client random."""
    client_random = None
    for record, raw in records:
        if record.content_type != _HANDSHAKE:
            continue
        hello = _hello(raw)
        if isinstance(hello, TLSClientHello) and client_random is None:
            client_random = raw[11:43]  # record header 5, handshake header 4, version 2
            for ext in hello.ext or ():
                if isinstance(ext, TLS_Ext_ServerName) and ext.servernames:
                    info.sni = ext.servernames[0].servername.decode(errors="replace")
        elif isinstance(hello, TLSServerHello) and info.version is None:
            version = hello.version
            for ext in hello.ext or ():
                if isinstance(ext, TLS_Ext_SupportedVersion_SH):
                    version = ext.version
            info.version = _name(_tls_version, version)
            info.cipher_suite = _name(_tls_cipher_suites, hello.cipher)
    return client_random


def decrypt(streams: dict[Direction, Stream], keylog: KeyLog | None, warnings: list[str]
            ) -> tuple[TlsInfo, dict[Direction, Stream] | None]:
    """The TLS layer of a connection, and its decrypted streams (None: not decrypted).

    Why a connection is not decrypted (no key log, no secrets for it in the key log,
    secrets that do not decrypt it) is said in ``warnings``.
    """
    info = TlsInfo()
    records = sorted((item for way in Direction for item in _records(way, streams[way],
                                                                       warnings)),
                     key=lambda item: (item[0].packet, item[0].direction is Direction.S2C,
                                       item[0].offset))
    info.records = [record for record, _ in records]
    client_random = _clear_text(info, records)
    what = f"this connection is {info.describe()}"
    if keylog is None:
        warnings.append(f"{what}: its WebSocket is encrypted; pass the key log its client "
                        "or server wrote (SSLKEYLOGFILE) with --keylog to decrypt it")
        return info, None
    labels = _SECRETS_13 if info.version == "TLS 1.3" else _SECRETS_12
    if client_random is None or not all(client_random in keylog.get(label, {})
                                        for label in labels):
        shown = client_random.hex()[:16] + "…" if client_random else "not captured"
        warnings.append(f"{what}: the key log has no secrets for it (client random {shown}); "
                        "it was written for other connections")
        return info, None
    return _decrypted(info, records, keylog, warnings)


def _decrypted(info: TlsInfo, records: list[tuple[TlsRecord, bytes]], keylog: KeyLog,
               warnings: list[str]) -> tuple[TlsInfo, dict[Direction, Stream] | None]:
    """Every record read by one session; the application data of each direction, joined."""
    session = tlsSession(connection_end="server")  # reads what the client wrote first
    session.nss_keys = keylog
    reading = Direction.C2S
    plain = {way: bytearray() for way in Direction}
    arrivals: dict[Direction, list[tuple[int, int, float]]] = {way: [] for way in Direction}
    read = []
    for record, raw in records:
        if record.direction is not reading:
            session.mirror()
            reading = record.direction
        try:
            parsed = TLS(raw, tls_session=session, strict_integrity=True)
            inner = parsed.getlayer(TLS13)
            messages = inner.inner.msg if inner is not None else parsed.msg
            kind = int(inner.inner.type if inner is not None else parsed.type)
        except Exception as exc:  # noqa: BLE001  (scapy raises many kinds on bad secrets)
            where = (f"packet #{record.packet + 1}, {record.direction} TLS record at offset "
                     f"{record.offset:,}: {type(exc).__name__} {exc}".rstrip())
            if not any(plain.values()):
                warnings.append(f"the key log's secrets do not decrypt this connection: {where}")
                return info, None
            warnings.append(f"decrypted up to a record that does not decrypt (a damaged "
                            f"capture?): {where}")
            break
        read.append(TlsRecord(**{**vars(record), "inner": CONTENT_TYPES.get(kind, str(kind))}))
        data = b"".join(m.data for m in messages if isinstance(m, TLSApplicationData))
        if kind == _APPLICATION_DATA and data:
            plain[record.direction] += data
            arrivals[record.direction].append((len(plain[record.direction]), record.packet,
                                               record.time))
    info.records, info.decrypted = read + [item[0] for item in records[len(read):]], True
    return info, {way: Stream(bytes(plain[way]), arrivals[way]) for way in Direction}
