"""A class of 200 students typing 5 keys a second for 30 s: the ticks stay on time, and the
server's record, roster and the teacher's view stay within their bounds.

The students run in a process of their own (as they would on their own machines), so
their work does not share the server's GIL; the test process holds the server, the
teacher's view and one more client that times the ticks.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from websockets.sync.client import connect

from demo_server import ServerThread
from demo_server.classroom import SHOWN_TYPING, ClassroomView
from demo_server.roster import KEEP_LEFT, TAIL

from .test_websocket import ON_TIME, next_event

STUDENTS, RATE, SECONDS = 200, 5.0, 30.0
STUDENTS_SCRIPT = Path(__file__).with_name("classroom_students.py")


@pytest.mark.timeout(180)
def test_a_class_of_200_typing_leaves_ticks_on_time_and_the_record_bounded():
    with ServerThread() as server:
        view = ClassroomView(server)
        class_ = subprocess.Popen(
            [sys.executable, str(STUDENTS_SCRIPT), server.ws_url, str(STUDENTS), str(RATE),
             str(SECONDS)], stdout=subprocess.PIPE, text=True)
        try:
            assert view.wait_until(lambda shown: len(shown) == STUDENTS, timeout=60)
            ticks = []
            with connect(server.ws_url) as timer:
                for _ in range(int(SECONDS) - 5):  # while every student types
                    ticks.append((next_event(timer, "second"), time.time()))
            out, _ = class_.communicate(timeout=SECONDS + 60)
        finally:
            if class_.poll() is None:
                class_.kill()
                class_.wait()
        summary = json.loads(out)
        expected = int(STUDENTS * RATE * SECONDS)
        assert summary == {"connected": STUDENTS, "sent": expected, "failures": 0}
        assert server.received.wait_for(expected, timeout=30)
        late = [(round(tick["sent"] - tick["epoch"], 3), round(arrived - tick["epoch"], 3))
                for tick, arrived in ticks]
        print(f"{len(ticks)} ticks under load, (sent, arrived) after the second's start: "
              f"worst {max(s for s, _ in late)} s, {max(a for _, a in late)} s")
        epochs = [tick["epoch"] for tick, _ in ticks]
        assert epochs == list(range(epochs[0], epochs[0] + len(ticks)))
        for sent, arrived in late:
            assert 0 <= sent < ON_TIME and 0 <= arrived < ON_TIME, late
        # Bounded: the record keeps its last maxlen messages, the roster TAIL characters a
        # student and KEEP_LEFT students gone, the view SHOWN_TYPING characters a row.
        assert server.received.total == expected and len(server.received) == 1000
        assert view.wait_until(lambda shown: all(s.left for s in shown), timeout=10)
        assert len(server.roster) == KEEP_LEFT
        assert all(len(s.typing) <= TAIL and s.messages == RATE * SECONDS
                   for s in server.roster.snapshot())
        assert len(view.table.value) < 1000 + KEEP_LEFT * (250 + SHOWN_TYPING)
        view.stop()
