# SPDX-License-Identifier: MIT
"""A small WSGI app for gunicorn under corrald: GET /slow?ms=N answers
after N milliseconds (at most 10 s) with the serving worker's pid and its
parent's (the gunicorn master corrald started)."""
import os
import time
from urllib.parse import parse_qs


def app(environ, start_response):
    if environ.get("PATH_INFO") == "/slow":
        query = parse_qs(environ.get("QUERY_STRING", ""))
        time.sleep(min(int(query.get("ms", ["0"])[0]), 10000) / 1000)
    body = f"{os.getpid()} {os.getppid()}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
