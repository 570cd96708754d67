"""A real OpenAI-compatible chat server on 127.0.0.1 for tests: it answers with questions made
from the passage, and can be told to fail the first N requests or to refuse every key."""
from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeLLM:
    def __init__(self, fail_first: int = 0, status: int = 500, required_key: str | None = None):
        self.fail_first, self.status, self.required_key = fail_first, status, required_key
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._lock:
                    server.requests.append(body)
                    server.headers.append(dict(self.headers))
                    failing = len(server.requests) <= server.fail_first
                if server.required_key and self.headers.get("Authorization") != f"Bearer {server.required_key}":
                    return self._send(401, {"error": "bad key"})
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": "not found"})
                if failing:
                    return self._send(server.status, {"error": "busy"})
                prompt = body["messages"][0]["content"]
                passage = prompt.split("---\n")[1]
                n = int(re.search(r"Write (\d+) different", prompt).group(1))
                words = re.findall(r"[A-Za-z]{5,}", passage)
                lines = [f"{i + 1}. What does the text say about {words[i % len(words)].lower()}?"
                         for i in range(n)]
                self._send(200, {"choices": [{"message": {"role": "assistant",
                                                          "content": "\n".join(lines)}}]})

            def _send(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
