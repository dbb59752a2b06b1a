"""A local HTTP server that speaks the OpenAI chat-completions wire format, for tests.

Each test queues the answers it wants (a completion, malformed content, a delay, a 429),
then points the real ``openai`` client at it over real HTTP.
"""

from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler

from tests.loopback import LoopbackServer


def completion(
    content: str, *, model: str = "test-model", prompt_tokens: int = 120, completion_tokens: int = 40
) -> dict:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


class ChatServer:
    def __init__(self):
        self.answers: list[dict] = []  # {"status", "body", "headers", "delay"}
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server API
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                server.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
                answer = (
                    server.answers.pop(0) if server.answers else {"status": 500, "body": {"error": "no answer queued"}}
                )
                time.sleep(answer.get("delay", 0))
                payload = json.dumps(answer["body"]).encode()
                try:
                    self.send_response(answer.get("status", 200))
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for key, value in answer.get("headers", {}).items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, *args):
                pass

        self.loopback = LoopbackServer(Handler)

    @property
    def base_url(self) -> str:
        return self.loopback.url + "/v1"

    def __enter__(self):
        self.loopback.start()
        return self

    def __exit__(self, *exc):
        self.loopback.stop()
