# Solution of the exercise in 10-scale-out.ipynb: run it there (it uses `redis`,
# `servers`, `keep`, `live`, `connect`, `json` and `ServerThread`).
# ruff: noqa: F821
def late_joiner():
    late = keep("server_late", ServerThread(redis_url=redis.url, process="late")).start()
    print("the late server's record at start:", late.received.snapshot())  # pub/sub kept nothing
    with connect(servers[0].ws_url) as client:
        client.send(json.dumps({"event": "client_data", "data": "after the late one joined"}))
        print("it got the new message:", late.received.wait_for(1, 10))
    print("its record now:", [(item.process, item.data) for item in late.received.snapshot()])


live("late_joiner", late_joiner)
