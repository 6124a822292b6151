"""Half an emoji: a UTF-16 surrogate without its other half.

The pages split a long paste into messages; cut between the two halves of a surrogate pair,
an emoji arrives as ``"\\ud83d"`` then ``"\\ude00"``. JSON carries them, Python keeps them in a
``str``, and then nothing can encode that string: not UTF-8, not a Jupyter message. So the
pages split between code points, and the record makes whatever arrives valid Unicode.
"""

from __future__ import annotations

import pytest
from jupyter_client.manager import start_new_kernel

from demo_server import ServerThread
from demo_server.record import ReceivedLog

from . import test_browser

# test_browser's fixture: a fresh page whose JavaScript errors fail the test.
page = test_browser.page

CHUNK = 4096  # the pages' MAX_CHUNK, in UTF-16 units
EMOJI = "\U0001f600"  # 😀: two UTF-16 units, one code point
LONE = ["a", "\ud83d", "\ude00", "b", "\udc00c\ud83d"]  # halves, as a splitting client sends


@pytest.mark.browser
@pytest.mark.parametrize("flavour", ["websocket", "socketio"])
def test_a_paste_with_an_emoji_on_the_chunk_boundary_arrives_whole(flavour, page):
    pasted = "x" * (CHUNK - 1) + EMOJI + "y" * CHUNK + "end"  # the emoji's halves: 4096, 4097
    with ServerThread(flavour=flavour) as server:
        page.goto(server.page_url)
        page.wait_for_selector("#status.open")
        page.locator("#text").evaluate("""(el, text) => {
            const data = new DataTransfer();
            data.setData('text/plain', text);
            el.dispatchEvent(new ClipboardEvent('paste', {clipboardData: data, bubbles: true}));
        }""", pasted)
        assert server.received.wait_for(3, timeout=5)
        chunks = [item.data for item in server.received.snapshot()]
    assert "".join(chunks) == pasted
    assert chunks[0] == "x" * (CHUNK - 1)  # one unit short: the emoji starts the next one
    assert all(len(chunk.encode("utf-16-le")) <= 2 * CHUNK for chunk in chunks)


def test_the_record_holds_valid_unicode_whatever_arrives():
    log = ReceivedLog()
    for data in LONE + [f"pair {EMOJI}", "\ud83d\ude00"]:  # the last: a pair in two units
        log.append(1, "127.0.0.1:50000", data)
    assert [item.data for item in log.snapshot()] == [
        "a", "\ufffd", "\ufffd", "b", "\ufffdc\ufffd", f"pair {EMOJI}", EMOJI]
    assert log.text().encode() == f"a\ufffd\ufffdb\ufffdc\ufffdpair {EMOJI}{EMOJI}".encode()


KERNEL_CODE = f"""
from IPython.display import display
from demo_server.record import ReceivedLog
from demo_server.widgets import ReceivedView
log = ReceivedLog()
view = ReceivedView(log)
display(view)  # from here on, each update is a Jupyter message to encode
for data in {LONE!r}:
    log.append(1, "127.0.0.1:50000", data)
print(view.shown, view.summary.value, len(log.text().encode()))
"""


def test_received_view_in_a_real_kernel_shows_every_message_after_half_an_emoji():
    """In a kernel every widget update is JSON sent to the front end: before the record
    made text valid, the update with ``"\\ud83d"`` failed, and so did every later one."""
    manager, client = start_new_kernel(kernel_name="python3", startup_timeout=60)
    printed, errors = [], []

    def keep(message: dict) -> None:
        content = message["content"]
        if message["msg_type"] == "stream":
            (printed if content["name"] == "stdout" else errors).append(content["text"])
        elif message["msg_type"] == "error":
            errors.append("\n".join(content["traceback"]))

    try:
        reply = client.execute_interactive(KERNEL_CODE, timeout=60, output_hook=keep)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    assert reply["content"]["status"] == "ok" and errors == [], errors
    assert "".join(printed) == "5 1 client, 5 messages received 15\n"
