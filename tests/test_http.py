"""The plain HTTP side of the port: hello, static files, and nothing else, in any spelling."""

import json
import socket
import time
from importlib import resources

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin

from demo_server import ServerThread
from demo_server.routes import Router, is_loopback
from demo_server.sensor import Sensor

from .conftest import http_get, http_raw

STATIC = resources.files("demo_server") / "static"


def test_root_says_hello_in_plain_text(server):
    status, headers, body = http_get(server.port, "/")
    assert (status, body) == (200, b"Hello, World.")
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["content-length"] == "13"


@pytest.mark.parametrize(
    ("path", "content_type"),
    [("/socket.html", "text/html; charset=utf-8"),
     ("/client.js", "text/javascript; charset=utf-8")],
)
def test_static_files_are_served_with_their_type(server, path, content_type):
    status, headers, body = http_get(server.port, path)
    assert status == 200
    assert headers["content-type"] == content_type
    assert body == (STATIC / path.lstrip("/")).read_bytes()


def test_query_strings_are_ignored(server):
    assert http_get(server.port, "/socket.html?v=2")[0] == 200


SECRET = (resources.files("demo_server") / "server.py").read_bytes()[:200]

TRAVERSALS = [
    "/../server.py", "/../../etc/passwd", "/%2e%2e/server.py", "/%2E%2E%2Fserver.py",
    "/static/../server.py", "/static/socket.html", "//etc/passwd", "/..\\server.py",
    "/\\..\\server.py", "/..%5cserver.py", "/%00", "/socket.html%00.txt", "/./socket.html",
    "/socket.html/", "/SOCKET.HTML", "/%2fetc%2fpasswd", "/....//server.py",
    "/" + "../" * 300 + "etc/passwd", "/" + "a" * 4000, "/__init__.py", "/static",
    "/favicon.ico", "/client.js/..", "/second/", "/sensor/x", "/ws/", "/ws/sensor/",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_every_other_path_is_404_and_leaks_nothing(server, path):
    status, _, body = http_get(server.port, path)
    assert status == 404
    assert body == b"Not Found\n"


@pytest.mark.parametrize("raw", [b"/a\x00b", b"/socket.html\x00", b"/caf\xc3\xa9"])
def test_paths_with_nul_or_non_ascii_bytes_get_no_file(server, raw):
    reply = http_raw(server.port, b"GET " + raw + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert not reply.startswith(b"HTTP/1.1 200")
    assert SECRET not in reply and b"<html" not in reply


def test_a_path_too_long_for_the_parser_is_refused_by_the_library(server):
    reply = http_raw(server.port, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 414")


@pytest.mark.parametrize("method", [b"POST", b"PUT", b"DELETE"])
def test_methods_other_than_get_and_head_are_405(server, method):
    reply = http_raw(server.port, method + b" / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 405")
    assert b"\r\nAllow: GET, HEAD\r\n" in reply


@pytest.mark.parametrize("path", [b"/", b"/socket.html", b"/client.js", b"/nowhere"])
def test_head_is_answered_like_get_without_a_body(server, path):
    get = http_raw(server.port, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    head = http_raw(server.port, b"HEAD " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    get_head, _, body = get.partition(b"\r\n\r\n")
    assert body and head.endswith(b"\r\n\r\n")
    strip = [line for line in get_head.split(b"\r\n") if not line.startswith(b"Date:")]
    assert [line for line in head[:-4].split(b"\r\n") if not line.startswith(b"Date:")] == strip


def test_plain_get_on_the_websocket_path_asks_for_an_upgrade(server):
    assert http_get(server.port, "/ws")[0] == 426


def test_garbage_gets_no_response_and_the_server_goes_on(server):
    assert http_raw(server.port, b"\x16\x03\x01garbage\r\n\r\n") == b""
    assert http_get(server.port, "/")[0] == 200


# -- the Origin check on /ws --------------------------------------------------------------

def _open(url, origin):
    with connect(url, origin=origin, open_timeout=5) as ws:
        return ws.recv(timeout=3)


def test_same_origin_and_originless_clients_are_accepted(server):
    origin = f"http://127.0.0.1:{server.port}"
    assert '"second"' in _open(server.ws_url, origin)
    assert '"second"' in _open(server.ws_url, None)


@pytest.mark.parametrize("origin", ["http://evil.example", "http://127.0.0.1:1", "null",
                                    "file://", "http://127.0.0.1.evil.example"])
def test_other_origins_get_403(server, origin):
    with pytest.raises(InvalidStatus) as info:
        _open(server.ws_url, origin)
    assert info.value.response.status_code == 403


def test_allow_origin_lets_a_listed_site_in():
    with ServerThread(allow_origins=["http://teacher.local:8001/"]) as server:
        assert '"second"' in _open(server.ws_url, "http://teacher.local:8001")
        with pytest.raises(InvalidStatus):
            _open(server.ws_url, "http://student.local:8001")


def _open_as(name: str, port: int, origin: str):
    """Connect to our loopback port while the URL (so Host) names ``name``, as a browser
    would after DNS rebinding made ``name`` resolve to 127.0.0.1."""
    sock = socket.create_connection(("127.0.0.1", port))
    with connect(f"ws://{name}:{port}/ws", sock=sock, origin=Origin(origin),
                 open_timeout=5) as ws:
        return ws.recv(timeout=3)


def test_a_rebound_name_is_refused_on_a_loopback_server(server):
    name = "rebound.example"
    with pytest.raises(InvalidStatus) as info:
        _open_as(name, server.port, f"http://{name}:{server.port}")  # same-origin with itself
    assert info.value.response.status_code == 403
    assert '"second"' in _open_as("localhost", server.port, f"http://localhost:{server.port}")


def test_allow_origin_admits_a_name_on_purpose():
    with ServerThread(allow_origins=["http://lab.example:1"]) as server:
        assert '"second"' in _open_as("lab.example", server.port, "http://lab.example:1")


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("LOCALHOST", True), ("0.0.0.0", False), ("192.0.2.1", False),
    ("teacher.local", False), ("", False),
])
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


@pytest.mark.parametrize("bad", ["teacher.local", "ftp://x", "http://", "http://x/path", 5])
def test_malformed_allow_origin_is_refused_up_front(bad):
    with pytest.raises(ValueError, match="an origin looks like"):
        Router([bad])


# -- polling endpoints ---------------------------------------------------------------------

def test_second_can_be_polled_and_is_never_cached(server):
    before = time.time()
    status, headers, body = http_get(server.port, "/second")
    data = json.loads(body)
    assert (status, headers["content-type"], headers["cache-control"]) == (
        200, "application/json", "no-store")
    assert set(data) == {"second", "epoch", "sent"}
    assert data["second"] == data["epoch"] % 60
    assert int(before) <= data["epoch"] <= data["sent"] <= time.time()


def test_sensor_can_be_polled_and_matches_the_signal(server):
    status, headers, body = http_get(server.port, "/sensor")
    data = json.loads(body)
    assert (status, headers["cache-control"]) == (200, "no-store")
    assert data["value"] == Sensor().value_at(data["t"])
