"""dissect --keylog: wss:// captured live, decrypted, and compared with tshark's reading.

Each capture is a real demo server with ``tls=True`` and a real :class:`ClientThread` on
loopback, captured by :func:`demo_server.capture.capture`; the server writes the key log.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from demo_server import ClientThread, ServerThread
from demo_server.capture import CaptureUnavailable, capture
from demo_server.dissect import Direction, DissectError, dissect
from demo_server.events import encode
from demo_server.tls import client_context

try:
    capture(9, backend="socket").start().stop()
    CAN_CAPTURE = True
except CaptureUnavailable:
    CAN_CAPTURE = False

pytestmark = pytest.mark.skipif(not CAN_CAPTURE, reason="live capture needs CAP_NET_RAW")
TSHARK = shutil.which("tshark")
BIG = "x" * 100_000  # one message over many TLS records (16 KiB of plaintext at most each)


@dataclass(frozen=True)
class Variant:
    name: str
    version: str
    cipher: str  # the suite the ServerHello picks (scapy's name)
    openssl: str | None = None  # TLS 1.2 cipher string for the client
    compression: bool = False


VARIANTS = [
    Variant("tls13", "TLS 1.3", "TLS_AES_256_GCM_SHA384"),
    Variant("tls12-aesgcm", "TLS 1.2", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            "ECDHE+AESGCM"),
    Variant("tls12-chacha20", "TLS 1.2", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            "ECDHE+CHACHA20"),
    Variant("tls13-deflate", "TLS 1.3", "TLS_AES_256_GCM_SHA384", compression=True),
    Variant("tls12-deflate", "TLS 1.2", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            "ECDHE+AESGCM", compression=True),
]


@dataclass(frozen=True)
class Captured:
    pcap: Path
    keylog: Path
    port: int
    variant: Variant


def record(folder: Path, variant: Variant) -> Captured:
    """A wss:// session: the handshake, two ticks, client_data "hello" and BIG, the close."""
    folder.mkdir(parents=True, exist_ok=True)
    keylog = folder / "keys.log"
    context = client_context()
    if variant.openssl:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers(variant.openssl)
    with ServerThread(tls=True, keylog=keylog, compression=variant.compression,
                      max_size=2**20, rate_limit=None) as server:
        url = server.ws_url.replace("127.0.0.1", "localhost")  # so the ClientHello has SNI
        with (capture(server.port) as cap,
              ClientThread(url, ssl=context, compression=variant.compression) as client):
            client.next("second", timeout=5)
            client.send("client_data", "hello")
            client.send("client_data", BIG)
            client.next("second", timeout=5)
        port = server.port
    pcap = cap.save(folder / "wss.pcap")
    return Captured(pcap, keylog, port, variant)


@pytest.fixture(scope="module")
def captures(tmp_path_factory) -> dict[str, Captured]:
    base = tmp_path_factory.mktemp("wss")
    return {v.name: record(base / v.name, v) for v in VARIANTS}


def cli(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "demo_server.dissect", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def client_data(conv) -> list[str]:
    return [json.loads(m.data)["data"] for m in conv.messages
            if m.direction is Direction.C2S and m.opcode == 1]


@pytest.mark.parametrize("name", [v.name for v in VARIANTS])
def test_decrypts_the_same_handshake_frames_and_messages(captures, name):
    got = captures[name]
    conv = dissect(got.pcap, got.port, keylog=got.keylog)
    assert conv.warnings == []
    assert (conv.tls.version, conv.tls.cipher_suite, conv.tls.sni, conv.tls.decrypted) == (
        got.variant.version, got.variant.cipher, "localhost", True)
    assert conv.handshake.upgraded and conv.handshake.accept_ok
    assert bool(conv.handshake.deflate) is got.variant.compression
    assert any(f.rsv1 for f in conv.frames) is got.variant.compression
    assert client_data(conv) == ["hello", BIG]
    seconds = [json.loads(m.data) for m in conv.messages
               if m.direction is Direction.S2C and m.opcode == 1]
    assert len(seconds) >= 2 and all(s["event"] == "second" for s in seconds)
    assert [m.opcode for m in conv.messages][-2:] == [8, 8]  # the close, both ways
    # the JSON: the plain schema, plus "tls"
    out = conv.to_dict()
    assert list(out) == ["handshake", "tls", "frames", "messages", "warnings"]
    assert out["tls"]["version"] == got.variant.version and out["tls"]["decrypted"]


def test_a_big_message_spans_many_records(captures):
    got = captures["tls13"]
    conv = dissect(got.pcap, got.port, keylog=got.keylog)
    (big,) = [f for f in conv.frames if f.payload_length > 50_000]
    records = [r for r in conv.tls.records
               if r.direction is Direction.C2S and r.inner == "application_data"]
    assert big.payload_length == len(encode("client_data", BIG))
    assert len(records) >= 2 + big.payload_length // 16_384  # 16 KiB of plaintext each
    assert max(r.length for r in records) <= 16_384 + 256  # RFC 8446 5.2: the record limit


def test_without_the_key_log_only_the_tls_layer(captures):
    got = captures["tls13"]
    conv = dissect(got.pcap, got.port)
    assert conv.frames == [] and conv.messages == [] and not conv.tls.decrypted
    (warning,) = conv.warnings
    assert "TLS 1.3" in warning and "SNI localhost" in warning and "--keylog" in warning
    kinds = {r.content for r in conv.tls.records}
    assert kinds == {"handshake", "change_cipher_spec", "application_data"}
    done = cli(got.pcap, "--port", got.port)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and "pass the key log" in done.stderr
    assert "application_data" in done.stdout


def test_a_key_log_of_other_connections(captures):
    got, other = captures["tls13"], captures["tls12-aesgcm"]
    done = cli(got.pcap, "--port", got.port, "--keylog", other.keylog)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "the key log has no secrets for it" in done.stderr


@pytest.mark.parametrize("name", ["tls13", "tls12-chacha20"])
def test_a_key_log_with_wrong_secrets(captures, name, tmp_path):
    got = captures[name]
    lines = got.keylog.read_text().splitlines()
    wrong = [" ".join([*line.split()[:2], "00" * (len(line.split()[2]) // 2)])
             if not line.startswith("#") else line for line in lines]
    (tmp_path / "wrong.log").write_text("\n".join(wrong) + "\n")
    done = cli(got.pcap, "--port", got.port, "--keylog", tmp_path / "wrong.log")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "the key log's secrets do not decrypt this connection" in done.stderr


@pytest.mark.parametrize("text", ["", "hello world\n", "CLIENT_RANDOM zz 00\n"])
def test_not_a_key_log(captures, text, tmp_path):
    got = captures["tls13"]
    (tmp_path / "bad.log").write_text(text)
    done = cli(got.pcap, "--port", got.port, "--keylog", tmp_path / "bad.log")
    assert (done.returncode, done.stdout) == (2, "")
    assert "is not an NSS key log" in done.stderr and "Traceback" not in done.stderr
    with pytest.raises(DissectError, match="not an NSS key log"):
        dissect(got.pcap, got.port, keylog=tmp_path / "bad.log")
    missing = cli(got.pcap, "--port", got.port, "--keylog", tmp_path / "none.log")
    assert missing.returncode == 2 and "cannot read the key log" in missing.stderr


def tshark_websocket(got: Captured) -> tuple[list[dict], list[str], list[int]]:
    """What tshark finds with the key log: each WebSocket frame's header fields, the text
    of each text message (inflated: its "Line-based text data"; a long one is cut and
    marked " [truncated]"), each close code."""
    frames: list[dict] = []
    texts: list[str] = []
    codes: list[int] = []

    def tshark(*args: str) -> list[dict]:
        done = subprocess.run(
            [str(TSHARK), "-r", got.pcap, "-o", f"tls.keylog_file:{got.keylog}",
             "-d", f"tcp.port=={got.port},tls", "-o", f"http.tls.port:{got.port}",
             "-Y", "websocket", "-T", "json", *args],
            capture_output=True, text=True, timeout=120, check=True)
        return [packet["_source"]["layers"] for packet in json.loads(done.stdout)]

    for layers in tshark("-j", "data-text-lines"):  # each line is a key of the layer
        lines = layers.get("data-text-lines", [])
        texts += [key for layer in (lines if isinstance(lines, list) else [lines])
                  for key in layer]
    fields = tshark(*[arg for field in ("websocket.fin", "websocket.opcode", "websocket.mask",
                             "websocket.masking_key", "websocket.payload_length",
                             "websocket.payload_length_ext_16",
                             "websocket.payload_length_ext_64", "websocket.rsv",
                             "websocket.payload.close.status_code")
                      for arg in ("-e", field)])
    for layers in fields:
        codes += map(int, layers.get("websocket.payload.close.status_code", []))
        for i, fin in enumerate(layers["websocket.fin"]):
            length = int(layers["websocket.payload_length"][i])
            if length == 126:
                length = int(layers["websocket.payload_length_ext_16"].pop(0))
            elif length == 127:
                length = int(layers["websocket.payload_length_ext_64"].pop(0))
            masked = layers["websocket.mask"][i] in ("1", "True")
            frames.append({"fin": fin in ("1", "True"),
                           "opcode": int(layers["websocket.opcode"][i]), "masked": masked,
                           "masking_key": (layers["websocket.masking_key"].pop(0)
                                           .replace(":", "") if masked else None),
                           "rsv1": bool(int(layers["websocket.rsv"][i], 0) & 4),
                           "length": length})
    return frames, texts, codes


@pytest.mark.parametrize("name", [v.name for v in VARIANTS])
def test_the_same_frames_as_tshark(captures, name):
    if TSHARK is None:
        if os.environ.get("CI"):
            pytest.fail("tshark is missing: .ci/run must install Debian's tshark")
        pytest.skip("tshark is not installed (Debian: apt-get install tshark)")
    got = captures[name]
    done = cli(got.pcap, "--port", got.port, "--keylog", got.keylog, "--json")
    assert done.returncode == 0, done.stderr
    ours = [{"fin": f["fin"], "opcode": f["opcode"], "masked": f["masked"],
             "masking_key": f["masking_key"], "rsv1": f["rsv1"], "length": f["payload_length"]}
            for f in json.loads(done.stdout)["frames"]]
    theirs, texts, codes = tshark_websocket(got)
    assert len(ours) >= 6
    assert ours == theirs
    messages = json.loads(done.stdout)["messages"]
    ours_texts = [m["text"] for m in messages if m["opcode"] == 1]
    assert len(texts) == len(ours_texts) >= 4
    for text, mine in zip(texts, ours_texts, strict=True):
        cut = text.removeprefix(" [truncated]")
        assert mine == text or (cut != text and mine.startswith(cut) and len(cut) > 100)
    assert codes == [m["close_code"] for m in messages if m["opcode"] == 8] == [1000, 1000]
