"""dissect against hostile or broken captures: every limit holds and says so, cut files warn."""

from __future__ import annotations

import gzip
import json

import pytest
from websockets.extensions.permessage_deflate import PerMessageDeflate

from demo_server.capture import SAMPLE_PORT
from demo_server.dissect import Limits, conversations, dissect

from .test_dissect import S2C, deflate_frames, flow_with, run_cli
from .test_dissect import SAMPLE as SAMPLE_PCAP


def zeros_bomb(count: int, size: int) -> list:
    """``count`` server messages of ``size`` spaces each: a few KB on the wire each."""
    server = PerMessageDeflate(False, False, 15, 15)
    return [(S2C, f) for f in deflate_frames(S2C, [" " * size] * count, server)]


def test_inflating_stops_at_the_limit_and_says_so_once():
    flow = flow_with(zeros_bomb(6, 300_000), "permessage-deflate")
    wire = sum(len(p["TCP"].payload) for p in flow.packets)
    conv = dissect(flow.packets, 8001, limits=Limits(max_inflated=1_000_000))
    assert wire < 20_000  # 1.8 MB of text in a few KB: what a bomb looks like
    inflated = [m for m in conv.messages if m.text is not None and m.text.strip() == ""]
    assert sum(len(m.data) for m in inflated) <= 1_000_000
    assert len(inflated) == 3  # three fit in the budget; the fourth ran over it
    (warning,) = conv.warnings
    assert "max_inflated limit" in warning and "--max-inflated" in warning
    assert len(conv.messages) == 6  # the rest are kept, compressed as sent
    assert all(m.text is None for m in conv.messages[3:])


def test_default_limit_bounds_what_a_bomb_costs():
    conv = dissect(flow_with(zeros_bomb(3, 30_000_000), "permessage-deflate").packets, 8001)
    assert sum(len(m.data) for m in conv.messages) <= Limits().max_inflated
    assert any("max_inflated" in w for w in conv.warnings)


def test_packets_past_the_limit_are_not_read(tmp_path):
    done = run_cli(str(SAMPLE_PCAP), "--port", str(SAMPLE_PORT), "--max-packets", "12",
                   "--json")
    assert done.returncode == 2
    out = json.loads(done.stdout)
    assert out["warnings"][0] == ("read only the first 12 packets (the max_packets limit; "
                                  "--max-packets raises it)")
    assert "read only the first 12 packets" in done.stderr


def test_shown_payloads_are_cut_and_marked():
    done = run_cli(str(SAMPLE_PCAP), "--port", str(SAMPLE_PORT), "--max-shown", "8", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    long_frames = [f for f in out["frames"] if f["payload_length"] > 8]
    assert long_frames and all(len(f["payload_hex"]) == 16 and f["truncated"]
                               for f in long_frames)
    texts = [m for m in out["messages"] if "text" in m]
    assert all(len(m["text"]) <= 8 for m in texts)
    assert any(m.get("truncated") for m in texts)
    whole = json.loads(run_cli(str(SAMPLE_PCAP), "--port", str(SAMPLE_PORT), "--json").stdout)
    assert not any("truncated" in f for f in whole["frames"] + whole["messages"])


def test_a_file_cut_inside_a_record_header_is_a_warning(tmp_path):
    data = SAMPLE_PCAP.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data + data[24:34])  # ten bytes of a next record's header
    conv = dissect(cut, SAMPLE_PORT)
    assert conv.warnings[0] == ("the capture file is cut short inside a record "
                                "(10 bytes left unread)")
    assert conv.messages == dissect(SAMPLE_PCAP, SAMPLE_PORT).messages


def test_gzipped_captures_read_like_plain_ones(tmp_path):
    packed = tmp_path / "sample.pcap.gz"
    packed.write_bytes(gzip.compress(SAMPLE_PCAP.read_bytes()))
    assert dissect(packed, SAMPLE_PORT).to_dict() == dissect(SAMPLE_PCAP, SAMPLE_PORT).to_dict()


def test_file_level_warnings_reach_every_connection():
    convs = conversations(SAMPLE_PCAP, SAMPLE_PORT, limits=Limits(max_packets=5))
    assert convs and all(c.warnings[0].startswith("read only the first 5 packets")
                         for c in convs)


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "10"])
def test_limits_must_be_positive_whole_numbers(bad):
    with pytest.raises(ValueError, match="must be a positive whole number"):
        Limits(max_packets=bad)


@pytest.mark.parametrize("value", ["0", "-5", "many", "1e9"])
def test_cli_refuses_bad_limits_in_one_line(value):
    done = run_cli(str(SAMPLE_PCAP), "--port", "8001", "--max-inflated", value)
    assert done.returncode == 2 and "expected a whole number of at least 1" in done.stderr
    assert "Traceback" not in done.stderr
