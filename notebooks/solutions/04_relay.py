# Solution of the "going further" exercise in 04-send-from-client.ipynb: run it there.
# ruff: noqa: F704
import json

from websockets.asyncio.client import connect
from websockets.asyncio.server import broadcast, serve

clients = set()


async def relay(websocket):  # socket.on('client_data', d => socket.broadcast.emit(...))
    clients.add(websocket)
    try:
        async for message in websocket:
            broadcast(clients - {websocket}, message)  # everyone but the sender
    finally:
        clients.discard(websocket)


async with serve(relay, "127.0.0.1", 0) as relay_server:  # stops when the block ends
    url = f"ws://127.0.0.1:{relay_server.sockets[0].getsockname()[1]}/"
    async with connect(url) as alice, connect(url) as bob, connect(url) as carol:
        await alice.send(json.dumps({"event": "client_data", "data": "你好, everyone"}))
        print("bob got:", json.loads(await bob.recv())["data"])
        print("carol got:", json.loads(await carol.recv())["data"])
        await bob.send(json.dumps({"event": "client_data", "data": "hi alice"}))
        # one connection delivers in order: had alice got her own message, it would come first
        print("alice got:", json.loads(await alice.recv())["data"])
