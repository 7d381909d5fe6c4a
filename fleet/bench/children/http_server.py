"""The HTTP + base64 + JSON baseline's server: a ``ThreadingHTTPServer`` on 127.0.0.1.

It prints its port once listening (the parent waits for that line), then for each POST parses
the JSON, decodes the base64, rebuilds the array, touches it and answers a small JSON. It
serves until the parent terminates it.
"""

from __future__ import annotations

import base64
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from fleet.bench.children.common import answer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True

    def do_POST(self) -> None:  # the name http.server calls
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        pixels = base64.b64decode(request["image"])
        frame = np.frombuffer(pixels, dtype=request["dtype"]).reshape(request["shape"])
        body = json.dumps(answer(frame, request["verify"])).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a line on stderr per frame would be timed too


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
