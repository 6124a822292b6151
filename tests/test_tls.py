"""https:// and wss:// on the demo server: certificates, contexts, key logs, the CLI."""

from __future__ import annotations

import random
import re
import signal
import ssl
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
import trustme
from scapy.layers.inet import TCP
from websockets.sync.client import connect

from demo_server import ClientThread, ServerThread
from demo_server.capture import load_sample
from demo_server.dissect import Direction, Stream, dissect, load_keylog
from demo_server.dissect.tls import decrypt
from demo_server.tls import (
    ca_file,
    client_context,
    keylog_for,
    sample_keylog,
    server_context,
    throwaway_ca,
)

TLS13_LABELS = {"CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET",
                "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0", "EXPORTER_SECRET"}


def labels(path) -> list[str]:
    return [line.split()[0] for line in path.read_text().splitlines()
            if not line.startswith("#")]


def test_server_thread_serves_https_and_wss_on_one_port(tmp_path):
    keys = tmp_path / "server.keys"
    with ServerThread(tls=True, keylog=keys) as server:
        port = server.port
        assert server.url == f"https://127.0.0.1:{port}/"
        assert server.ws_url == f"wss://127.0.0.1:{port}/ws"
        assert server.page_url == f"https://127.0.0.1:{port}/socket.html"
        with urllib.request.urlopen(server.url, context=client_context(), timeout=5) as reply:
            assert reply.read() == b"Hello, World."
        with ClientThread(server.ws_url) as client:  # trusts the throwaway CA by default
            assert "second" in client.next("second")
            client.send("client_data", "over tls")
            assert server.received.wait_for(1, timeout=5)
        assert [r.data for r in server.received.snapshot()] == ["over tls"]
    assert set(labels(keys)) == TLS13_LABELS  # two connections, both logged
    assert len(labels(keys)) == 2 * len(TLS13_LABELS)


def test_plain_clients_and_unknown_authorities_are_refused():
    with ServerThread(tls=True) as server:
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            urllib.request.urlopen(server.url, context=ssl.create_default_context(),
                                   timeout=5)
        plain = server.ws_url.replace("wss://", "ws://")
        with pytest.raises(Exception):  # noqa: B017  a TLS server does not speak HTTP
            connect(plain, open_timeout=5).close()
        with ClientThread(server.ws_url) as client:  # the server still serves the others
            assert "second" in client.next("second")


def test_client_thread_key_log_and_sslkeylogfile(tmp_path, monkeypatch):
    with ServerThread(tls=True) as server:
        with ClientThread(server.ws_url, keylog=tmp_path / "client.keys") as client:
            client.next("second")
        assert set(labels(tmp_path / "client.keys")) == TLS13_LABELS
        monkeypatch.setenv("SSLKEYLOGFILE", str(tmp_path / "env.keys"))
        with ClientThread(server.ws_url) as client:
            client.next("second")
        assert set(labels(tmp_path / "env.keys")) == TLS13_LABELS


def test_a_real_certificate_from_files(tmp_path):
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    with ServerThread("localhost", certfile=tmp_path / "cert.pem",
                      keyfile=tmp_path / "key.pem") as server:
        assert server.ws_url.startswith("wss://localhost:")
        with pytest.raises(ConnectionError):  # not the throwaway CA: not trusted
            ClientThread(server.ws_url, open_timeout=5).start()
        context = ssl.create_default_context()
        ca.configure_trust(context)
        with ClientThread(server.ws_url, ssl=context) as client:
            assert "second" in client.next("second")


def test_the_throwaway_ca_is_one_per_process_and_saved_for_browsers():
    assert throwaway_ca() is throwaway_ca()
    pem = ca_file().read_bytes()
    assert pem.startswith(b"-----BEGIN CERTIFICATE-----")
    assert pem == throwaway_ca().cert_pem.bytes()
    context = ssl.create_default_context(cafile=str(ca_file()))  # what a browser would trust
    with (ServerThread(tls=True) as server,
          urllib.request.urlopen(server.url, context=context, timeout=5) as reply):
        assert reply.status == 200


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"flavour": "socketio", "tls": True}, "tls is for the websocket flavour"),
    ({"keylog": "x.keys"}, "need tls=True"),
    ({"keyfile": "key.pem"}, "need tls=True"),
])
def test_server_thread_refuses_tls_options_that_cannot_work(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ServerThread(**kwargs)


def test_bad_certificate_files_are_a_clear_error(tmp_path):
    (tmp_path / "cert.pem").write_text("not a certificate")
    with pytest.raises(ValueError, match="cannot load the certificate"):
        server_context(certfile=tmp_path / "cert.pem")
    with pytest.raises(ValueError, match="cannot load the certificate .*missing.pem"):
        server_context(certfile=tmp_path / "missing.pem")


def test_client_thread_refuses_tls_options_for_ws():
    with pytest.raises(ValueError, match="for wss:// URLs"):
        ClientThread("ws://127.0.0.1:1/ws", keylog="x.keys")
    with pytest.raises(ValueError, match="not both"):
        ClientThread("wss://127.0.0.1:1/ws", ssl=client_context(), keylog="x.keys")


def test_cli_tls_serves_https_and_writes_the_key_log(tmp_path):
    keys = tmp_path / "cli.keys"
    proc = subprocess.Popen([sys.executable, "-m", "demo_server", "--port", "0", "--tls",
                             "--keylog", str(keys)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        banner = "".join(proc.stdout.readline() for _ in range(5))
        match = re.search(r"browser page\s+https://127\.0\.0\.1:(\d+)/socket\.html", banner)
        assert match and "WebSocket       wss://127.0.0.1:" in banner, banner
        # the throwaway CA lives in the server's process: this client skips the check
        unverified = ssl.create_default_context()
        unverified.check_hostname, unverified.verify_mode = False, ssl.CERT_NONE
        with connect(f"wss://127.0.0.1:{match.group(1)}/ws", ssl=unverified) as ws:
            assert '"second"' in ws.recv(timeout=5)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert set(labels(keys)) == TLS13_LABELS


@pytest.mark.parametrize(("args", "message"), [
    (["--tls", "--socketio"], "--tls is for the plain WebSocket server"),
    (["--keylog", "x.keys"], "--keyfile and --keylog need --tls"),
    (["--certfile", "/nonexistent.pem"], "cannot load the certificate /nonexistent.pem"),
])
def test_cli_tls_bad_options_exit_2(args, message):
    done = subprocess.run([sys.executable, "-m", "demo_server", "--port", "0", *args],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_the_bundled_wss_sample_decrypts_with_its_key_log():
    """What scripts/record_tls_sample.py says it recorded, for readers who cannot capture."""
    cap = load_sample("tls")
    assert keylog_for(cap, "unused.keys") == sample_keylog()
    locked = dissect(cap, cap.port)
    assert locked.frames == [] and "pass the key log" in locked.warnings[0]
    conv = dissect(cap, cap.port, keylog=sample_keylog())
    assert conv.warnings == [] and conv.tls.decrypted
    assert (conv.tls.version, conv.tls.sni) == ("TLS 1.3", "localhost")
    texts = [(str(m.direction), m.text) for m in conv.messages if m.opcode == 1]
    assert [way for way, _ in texts] == ["s2c", "s2c", "c2s", "s2c"]
    assert texts[2][1] == '{"event":"client_data","data":"hi"}'
    assert [m.close_code for m in conv.messages if m.opcode == 8] == [1000, 1000]
    assert len(set(labels(sample_keylog()))) == len(labels(sample_keylog())) == 5


def test_a_damaged_record_keeps_what_was_decrypted_before_it():
    """One flipped byte in the last tick's record: the ticks before it still decrypt."""
    cap = load_sample("tls")
    conv = dissect(cap, cap.port, keylog=sample_keylog())
    last_tick = [f for f in conv.frames if f.direction is Direction.S2C
                 and f.opcode == 1][-1]
    (record,) = [r for r in conv.tls.records if r.packet == last_tick.packet]
    packets = [pkt.copy() for pkt in cap.packets]
    data = bytearray(bytes(packets[record.packet][TCP].payload))
    data[-1] ^= 0x01  # the last byte of the record's AEAD tag
    packets[record.packet][TCP].remove_payload()
    packets[record.packet][TCP].add_payload(bytes(data))
    damaged = dissect(packets, cap.port, keylog=sample_keylog())
    (warning,) = damaged.warnings
    assert warning.startswith("decrypted up to a record that does not decrypt")
    assert f"packet #{record.packet + 1}, s2c" in warning
    assert damaged.frames == [f for f in conv.frames if f.packet < record.packet]


def changed(streams: dict, way: Direction, offset: int, value: int) -> dict:
    """The streams with one byte of one direction set to ``value``."""
    out = {}
    for direction, stream in streams.items():
        data = bytearray(stream.data)
        if direction is way:
            data[offset] = value
        out[direction] = Stream(bytes(data), [(len(data), 0, 0.0)])
    return out


def test_damaged_tls_streams_never_raise():
    """Bytes changed in the sample's streams, with and without its key log: what cannot be
    read is a warning, never an exception. A record type of 0x80 makes scapy read the
    record as SSLv2, which has no ``type`` or ``msg``; then random changes, the ClientHello
    most of all."""
    cap = load_sample("tls")
    conv = dissect(cap, cap.port)
    keys = load_keylog(sample_keylog())
    cases = [changed(conv.streams, r.direction, r.offset, 0x80) for r in conv.tls.records]
    rng = random.Random(16)
    for _ in range(60):
        way = rng.choice(list(Direction))
        size = len(conv.streams[way].data)
        cases.append(changed(conv.streams, way, rng.randrange(min(size, 600)),
                             rng.randrange(256)))
    for streams in cases:
        for keylog in (None, keys):
            warnings: list[str] = []
            info, plain = decrypt(streams, keylog, warnings)
            assert plain is not None or warnings
