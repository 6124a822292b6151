# Solution of the exercise in 08-what-socketio-adds.ipynb: run it there (it uses
# `sio_server`, `connect`, `json` and `decode_by_hand`).
# ruff: noqa: F704, F821
url = f"ws://127.0.0.1:{sio_server.port}/socket.io/?EIO=4&transport=websocket"
async with connect(url) as websocket:
    opened = json.loads((await websocket.recv())[1:])  # 0{...}: Engine.IO's open packet
    print("Engine.IO session", opened["sid"], "pingInterval", opened["pingInterval"], "ms")
    await websocket.send("40")  # Socket.IO CONNECT to the main namespace "/"
    print("joined:", await websocket.recv())  # 40{"sid":...}: the Socket.IO session
    seconds = []
    async for text in websocket:
        if text == "2":  # Engine.IO ping...
            await websocket.send("3")  # ...answered with a pong, or the server drops us
            print("ping -> pong")
        elif text.startswith("42"):  # a Socket.IO EVENT
            _, _, event, args = decode_by_hand(text)
            seconds.append(args[0]["second"])
            print(event, args[0])
            if len(seconds) == 1:  # socket.emit('client_data', ...)
                await websocket.send("42" + json.dumps(["client_data",
                                                        "hello from a plain WebSocket"]))
            if len(seconds) == 3:
                break
last = sio_server.received.snapshot()[-1]
print(f"the server recorded {last.data!r} from its client {last.client}")
