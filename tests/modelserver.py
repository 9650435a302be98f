"""A local HTTP server that speaks OpenAI's chat-completions shape (as a local Ollama or
vLLM server does), on ``127.0.0.1`` port 0 in a thread.

``POST /v1/chat/completions`` answers with the next scripted reply: ``answer(obj)`` queues
a JSON object the "model" returns as its message content (``answer_text(s)`` queues raw
content, e.g. prose that is not JSON). With nothing queued it answers ``{}``. Errors,
429s with ``Retry-After``, slow answers and outages come from ``ApiServer``
(``fail_next``, ``down``, ``limit``). A request without ``Authorization: Bearer <key>``
is answered 401 when ``key`` is set.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections import deque
from typing import Any

from crmservers import Answer, ApiServer, Request


class ModelServer(ApiServer):
    routes = (("POST", r"/v1/chat/completions", "chat"),)

    def __init__(self, key: str | None = None) -> None:
        super().__init__()
        self.key = key
        self._answers: deque[str] = deque()
        self._ids = itertools.count(1)
        self._answers_lock = threading.Lock()

    def answer(self, obj: dict[str, Any]) -> None:
        self.answer_text(json.dumps(obj))

    def answer_text(self, content: str) -> None:
        with self._answers_lock:
            self._answers.append(content)

    def authorized(self, headers: dict[str, str]) -> bool:
        if self.key is None:
            return True
        got = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        return got == f"Bearer {self.key}"

    def on_chat(self, match: re.Match[str], req: Request) -> Answer:
        body = req.body or {}
        if not isinstance(body.get("messages"), list) or not body.get("model"):
            return (400, {"error": {"message": "model and messages are required",
                                    "type": "invalid_request_error"}}, {})
        with self._answers_lock:
            content = self._answers.popleft() if self._answers else "{}"
        n = next(self._ids)
        return (200, {
            "id": f"chatcmpl-{n}", "object": "chat.completion", "created": 1764633600 + n,
            "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
        }, {})
