# Solution of the exercise in 04-send-from-client.ipynb: run it there (it uses `client`).
# ruff: noqa: F821
client.send_raw("hello")  # a text frame that is not JSON
print(client.next("error", timeout=5)["message"])

client.send("second", {"second": 7})  # an event only the server may send
print(client.next("error", timeout=5)["message"])

client.send("client_data", 42)  # client_data must be a string
print(client.next("error", timeout=5)["message"])
