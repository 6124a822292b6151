# Solution of the exercise in 09-wss-and-tls.ipynb: run it there (it uses `server`, `KEYS`,
# `client_context`, `connect`, `dissect` and `ssl`).
# ruff: noqa: F704, F821
import json

from demo_server.capture import CaptureUnavailable, capture

context = client_context()
context.maximum_version = ssl.TLSVersion.TLSv1_2  # no TLS 1.3...
context.set_ciphers("ECDHE+CHACHA20")  # ...and only ChaCha20-Poly1305 suites for TLS 1.2
try:
    with capture(server.port) as tls12:
        async with connect(server.ws_url, ssl=context, compression=None) as websocket:
            await websocket.recv()
            await websocket.recv()
except CaptureUnavailable as exc:
    print("cannot capture here:", exc)
else:
    print("without the key log:", dissect(tls12, server.port).tls.describe())
    opened = dissect(tls12, server.port, keylog=KEYS)
    print("with the key log:   ", opened.tls.describe(), "decrypted:", opened.tls.decrypted)
    for message in opened.messages:
        if message.opcode == 1:
            print("second", json.loads(message.text)["data"]["second"])
    # TLS 1.2 derives every key from one master secret: one CLIENT_RANDOM line.
    labels = [line.split()[0] for line in KEYS.read_text().splitlines()]
    print("the last line of the key log:", labels[-1])
