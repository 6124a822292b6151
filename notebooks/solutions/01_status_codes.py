# Solution of the exercise in 01-create-server.ipynb: run it there (it uses `server`).
# ruff: noqa: F821
import urllib.error
import urllib.request

for path in ["socket.html", "nope"]:
    try:
        response = urllib.request.urlopen(server.url + path, timeout=5)
    except urllib.error.HTTPError as error:  # a 4xx or 5xx status arrives as an exception...
        response = error  # ...that is also the response: it has .status and .headers
    with response:
        print(f"/{path}: {response.status} {response.headers['Content-Type']}")
