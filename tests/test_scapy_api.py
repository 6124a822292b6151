"""The parts of scapy that capture.py and dissect/tls.py use beyond its documented API, each
checked by name.

scapy keeps no promise about these: when an upgrade renames or reshapes one, these tests
fail with the name of what changed, instead of captures silently losing packets.
pyproject.toml pins the scapy versions they were checked with.
"""

from __future__ import annotations

import ctypes
import inspect
import sys
from importlib import metadata

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the private APIs are on capture.py's Linux path")


def parameters(function) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_installed_scapy_is_a_pinned_version():
    requires = metadata.requires("websocket-intro") or []
    (pin,) = [r.split(";")[0][len("scapy"):] for r in requires if r.startswith("scapy")]
    installed = Version(metadata.version("scapy"))
    assert installed in SpecifierSet(pin), f"scapy {installed} is outside the pinned {pin}"


def test_l2listensocket_recv_raw_takes_the_socket_and_a_size():
    from scapy.arch.linux import L2ListenSocket

    assert parameters(L2ListenSocket._recv_raw) == ["self", "sock", "x"], (
        "scapy.arch.linux.L2ListenSocket._recv_raw(sock, x) changed")
    assert {"iface", "filter"} <= set(parameters(L2ListenSocket.__init__)), (
        "L2ListenSocket(iface=..., filter=...) changed")


def test_last_packet_timestamp_reads_the_socket():
    from scapy.arch.linux import get_last_packet_timestamp

    assert parameters(get_last_packet_timestamp) == ["sock"], (
        "scapy.arch.linux.get_last_packet_timestamp(sock) changed")


def test_compile_filter_gives_a_bpf_program_we_can_patch():
    from scapy.arch.common import compile_filter, free_filter
    from scapy.libs.structures import bpf_insn, bpf_program, sock_fprog

    assert parameters(compile_filter)[:2] == ["filter_exp", "iface"], (
        "scapy.arch.common.compile_filter(filter_exp, iface) changed")
    assert parameters(free_filter) == ["bp"], "scapy.arch.common.free_filter(bp) changed"
    assert [name for name, _ in bpf_program._fields_] == ["bf_len", "bf_insns"], (
        "scapy.libs.structures.bpf_program fields changed")
    assert [name for name, _ in bpf_insn._fields_] == ["code", "jt", "jf", "k"], (
        "scapy.libs.structures.bpf_insn fields changed")
    assert [name for name, _ in sock_fprog._fields_] == ["len", "filter"], (
        "scapy.libs.structures.sock_fprog fields changed")
    assert issubclass(sock_fprog, ctypes.Structure)


def test_linux_socket_option_constants():
    import socket

    from scapy.data import SO_ATTACH_FILTER, SOL_PACKET

    # <linux/socket.h>, <asm-generic/socket.h>: capture.py uses these with setsockopt
    assert (SOL_PACKET, SO_ATTACH_FILTER) == (263, 26), "scapy.data socket constants changed"
    assert socket.PACKET_OUTGOING == 4


def test_async_sniffer_takes_an_opened_socket_and_a_started_callback():
    from scapy.sendrecv import AsyncSniffer, sniff

    source = inspect.getsource(sniff) + inspect.getsource(AsyncSniffer)
    for name in ("opened_socket", "started_callback", "prn", "store"):
        assert name in source, f"scapy.sendrecv.AsyncSniffer lost the {name}= option"


def test_tls_internals_that_dissect_tls_uses():
    """demo_server/dissect/tls.py: names scapy's TLS layer keeps private or undocumented."""
    from scapy.layers.tls.basefields import _tls_version
    from scapy.layers.tls.crypto.suites import _tls_cipher_suites
    from scapy.layers.tls.record import TLS
    from scapy.layers.tls.record_tls13 import TLS13
    from scapy.layers.tls.session import parse_nss_keys, tlsSession

    assert _tls_version[0x0303] == "TLS 1.2" and _tls_version[0x0304] == "TLS 1.3"
    assert _tls_cipher_suites[0x1302] == "TLS_AES_256_GCM_SHA384"
    assert "strict_integrity" in inspect.getsource(TLS.__init__), (
        "TLS(..., strict_integrity=True) is gone: wrong secrets would decrypt to garbage")
    assert "strict_integrity" in inspect.getsource(TLS13.__init__)
    session = tlsSession(connection_end="server")
    assert session.nss_keys is None and session.mirror() is session
    assert session.connection_end == "client", "tlsSession.mirror() no longer swaps ends"
    keys = parse_nss_keys("CLIENT_RANDOM " + "ab" * 32 + " " + "cd" * 48 + "\n")
    assert keys["CLIENT_RANDOM"][bytes.fromhex("ab" * 32)] == bytes.fromhex("cd" * 48)
    assert parse_nss_keys("not a key log\n") == {}, "parse_nss_keys no longer refuses junk"
