"""A loopback FHIR server for the bench: sleeps a fixed delay, then answers from a table of
prepared responses (searchset Bundles and reads), keyed by the unquoted path and query."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote


def normalise(path_and_query: str) -> str:
    return unquote(path_and_query.replace("+", " "))


class FhirStub:
    def __init__(self, base_path: str, responses: dict[str, dict], delay_seconds: float = 0.020):
        self.base_path = base_path.rstrip("/")
        self.table = {
            normalise(f"{self.base_path}/{k}"): json.dumps(v).encode() for k, v in responses.items()
        }
        self.delay = delay_seconds
        self.calls = 0
        self.misses: list[str] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as two writes: with Nagle's algorithm the body waits for
            # the client's delayed ACK (~40 ms), which would be charged to the service.
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                time.sleep(stub.delay)
                stub.calls += 1
                body = stub.table.get(normalise(self.path))
                if body is None:
                    stub.misses.append(self.path)
                    status, body = (
                        404,
                        json.dumps(
                            {
                                "resourceType": "OperationOutcome",
                                "issue": [{"severity": "error", "code": "not-found"}],
                            }
                        ).encode(),
                    )
                else:
                    status = 200
                self.send_response(status)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}{self.base_path}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> FhirStub:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
