"""A small fake of the Telegram Bot API, for tests: no network beyond loopback.

Two ways to use it, sharing one implementation:
- `FakeBotAPI.serve()` starts a real HTTP server on 127.0.0.1 (ephemeral port); point
  TELEGRAM_BASE_URL at `fake.base_url` and run the real bot against it (end-to-end tests);
- `FakeRequest(fake)` plugs it into python-telegram-bot in-process (handler tests).

It queues updates for getUpdates, records every other call, and answers with just enough of a
real response for python-telegram-bot to parse. `faults` lets a test inject failures per method.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from telegram.error import NetworkError
from telegram.request import BaseRequest, RequestData

BOT_ID = 777000111
BOT_USERNAME = "CrossBorderTestBot"
_JSON_KEYS = {"chat_id", "reply_markup", "reply_parameters", "results", "commands", "offset",
              "limit", "timeout", "allowed_updates", "message_thread_id", "show_alert",
              "cache_time", "is_personal", "link_preview_options", "disable_web_page_preview",
              "scope", "drop_pending_updates", "max_connections", "reply_to_message_id"}


class Drop:
    """Fault: close the connection without an answer."""


@dataclass(frozen=True, slots=True)
class Raw:
    """Fault: answer with these bytes (malformed JSON, an HTML error page...)."""

    body: bytes
    status: int = 200


@dataclass(frozen=True, slots=True)
class Delay:
    """Fault: no answer for this many seconds, then the connection drops: the client times
    out and the request was never processed."""

    seconds: float


Outcome = tuple[int, dict[str, Any]] | Drop | Raw | Delay


def fail_first(count: int, outcome: Outcome | Callable[[], Outcome]
               ) -> Callable[[dict[str, Any]], Outcome | None]:
    """A fault for `FakeBotAPI.faults`: the first `count` calls fail, later ones succeed."""
    calls = itertools.count()
    lock = threading.Lock()

    def fault(params: dict[str, Any]) -> Outcome | None:
        with lock:
            n = next(calls)
        if n >= count:
            return None
        return outcome() if callable(outcome) else outcome

    return fault


def error(code: int, description: str, retry_after: int | None = None) -> tuple[int, dict]:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return code, body


@dataclass(frozen=True, slots=True)
class Call:
    method: str
    params: dict[str, Any]


@dataclass
class FakeBotAPI:
    token: str
    bot_id: int = BOT_ID
    username: str = BOT_USERNAME
    calls: list[Call] = field(default_factory=list)
    # method -> list of callables returning (status, body) or None to proceed normally
    faults: dict[str, list[Callable[[dict[str, Any]], Outcome | None]]] = \
        field(default_factory=dict)
    _updates: list[dict[str, Any]] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _message_ids: itertools.count = field(default_factory=lambda: itertools.count(10_000))
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _server: ThreadingHTTPServer | None = None

    # --- feeding updates ---------------------------------------------------------------------

    def add_update(self, update: dict[str, Any]) -> int:
        with self._cond:
            update_id = next(self._ids)
            self._updates.append({"update_id": update_id, **update})
            self._cond.notify_all()
            return update_id

    # --- the API ----------------------------------------------------------------------------

    def handle(self, method: str, params: dict[str, Any]) -> Outcome:
        for fault in self.faults.get(method, []):
            outcome = fault(params)
            if outcome is not None:
                if isinstance(outcome, Delay):
                    time.sleep(outcome.seconds)
                    return Drop()
                return outcome
        if method == "getUpdates":
            return 200, {"ok": True, "result": self._get_updates(params)}
        with self._cond:
            self.calls.append(Call(method, params))
            self._cond.notify_all()
        return 200, {"ok": True, "result": self._result(method, params)}

    def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), 1.0)
        with self._cond:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
            while not self._updates and time.monotonic() < deadline:
                self._cond.wait(max(0.0, deadline - time.monotonic()))
            return list(self._updates[: int(params.get("limit") or 100)])

    def _bot_user(self) -> dict[str, Any]:
        return {"id": self.bot_id, "is_bot": True, "first_name": "CrossBorder",
                "username": self.username, "can_join_groups": True,
                "can_read_all_group_messages": False, "supports_inline_queries": True}

    def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return self._bot_user()
        if method in {"sendMessage", "editMessageText"}:
            chat_id = params.get("chat_id")
            return {"message_id": next(self._message_ids), "date": int(time.time()),
                    "chat": {"id": chat_id, "type": "private" if int(chat_id) > 0
                             else "supergroup"},
                    "from": self._bot_user(), "text": params.get("text", "")}
        return True

    # --- reading what the bot did ------------------------------------------------------------

    def sent(self, method: str = "sendMessage") -> list[Call]:
        with self._cond:
            return [c for c in self.calls if c.method == method]

    def wait_for(self, predicate: Callable[[list[Call]], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(list(self.calls)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    # --- serving over HTTP -------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        assert self._server is not None, "call serve() first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/bot"

    def serve(self) -> FakeBotAPI:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the real Bot API
            disable_nagle_algorithm = True  # headers and body go out at once, no 40 ms stalls

            def do_POST(self) -> None:
                if self.path.startswith("/_fake/"):
                    self._control()
                    return
                prefix = f"/bot{fake.token}/"
                if not self.path.startswith(prefix):
                    self._reply(404, {"ok": False, "error_code": 404,
                                      "description": "Not Found"})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8") if length else ""
                outcome = fake.handle(self.path[len(prefix):], parse_body(
                    body, self.headers.get("Content-Type", "")))
                if isinstance(outcome, Drop):
                    self.close_connection = True
                    with suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                elif isinstance(outcome, Raw):
                    self._send_bytes(outcome.status, outcome.body, "text/html")
                else:
                    self._reply(*outcome)

            do_GET = do_POST

            def _control(self) -> None:
                """For a fake in another process: feed updates, count calls."""
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null") if length else None
                if self.path == "/_fake/updates":
                    for update in body or []:
                        fake.add_update(update)
                    self._reply(200, {"ok": True})
                elif self.path.startswith("/_fake/count/"):
                    method = self.path.rsplit("/", 1)[-1]
                    self._reply(200, {"count": len(fake.sent(method))})
                else:
                    self._reply(404, {"ok": False})

            def _reply(self, status: int, payload: dict[str, Any]) -> None:
                self._send_bytes(status, json.dumps(payload).encode(), "application/json")

            def _send_bytes(self, status: int, data: bytes, content_type: str) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the bot hung up (it is stopping): nothing to answer

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 1024  # a burst of concurrent replies must not be refused
            daemon_threads = True

        self._server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def parse_body(body: str, content_type: str) -> dict[str, Any]:
    if not body:
        return {}
    if "json" in content_type:
        return json.loads(body)
    params: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        if key in _JSON_KEYS:
            try:
                params[key] = json.loads(value)
                continue
            except ValueError:
                pass
        params[key] = value
    return params


class FakeRequest(BaseRequest):
    """Routes python-telegram-bot's requests to a FakeBotAPI in the same process."""

    def __init__(self, fake: FakeBotAPI):
        self.fake = fake

    @property
    def read_timeout(self) -> float | None:
        return 1.0

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout: Any = None, write_timeout: Any = None,
                         connect_timeout: Any = None, pool_timeout: Any = None
                         ) -> tuple[int, bytes]:
        api_method = url.rsplit("/", 1)[-1]
        params = request_data.parameters if request_data else {}
        outcome = self.fake.handle(api_method, json.loads(json.dumps(params)))
        if isinstance(outcome, Drop):
            raise NetworkError("connection dropped by the fake Bot API")
        if isinstance(outcome, Raw):
            return outcome.status, outcome.body
        status, payload = outcome
        return status, json.dumps(payload).encode()


# --- building updates -----------------------------------------------------------------------

_DATE = 1_700_000_000


def user(user_id: int = 4242, name: str = "Ana") -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": name}


def chat(chat_id: int, kind: str = "private") -> dict[str, Any]:
    data: dict[str, Any] = {"id": chat_id, "type": kind}
    if kind != "private":
        data["title"] = "Cross-border watchers"
    return data


def message(text: str, *, chat_id: int = 4242, kind: str = "private", user_id: int = 4242,
            message_id: int = 1, reply_to: dict[str, Any] | None = None,
            thread_id: int | None = None, mention: str | None = None) -> dict[str, Any]:
    entities = []
    if text.startswith("/"):
        entities.append({"type": "bot_command", "offset": 0, "length": len(text.split()[0])})
    if mention and mention in text:
        entities.append({"type": "mention", "offset": text.index(mention),
                         "length": len(mention)})
    msg: dict[str, Any] = {"message_id": message_id, "date": _DATE, "chat": chat(chat_id, kind),
                           "from": user(user_id), "text": text}
    if entities:
        msg["entities"] = entities
    if reply_to is not None:
        msg["reply_to_message"] = reply_to
    if thread_id is not None:
        msg["message_thread_id"] = thread_id
        msg["is_topic_message"] = True
    return {"message": msg}


def bot_message(fake: FakeBotAPI, chat_id: int, kind: str, message_id: int = 500
                ) -> dict[str, Any]:
    return {"message_id": message_id, "date": _DATE, "chat": chat(chat_id, kind),
            "from": fake._bot_user(), "text": "an earlier answer"}


def callback(data: str, *, chat_id: int = 4242, user_id: int = 4242,
             fake: FakeBotAPI | None = None) -> dict[str, Any]:
    origin = {"message_id": 900, "date": _DATE, "chat": chat(chat_id),
              "from": (fake._bot_user() if fake else user(BOT_ID)), "text": "buttons"}
    return {"callback_query": {"id": f"cb{data}"[:60], "from": user(user_id),
                               "chat_instance": "ci", "data": data, "message": origin}}


def inline(query: str, *, user_id: int = 4242) -> dict[str, Any]:
    return {"inline_query": {"id": f"iq{abs(hash(query))}", "from": user(user_id),
                             "query": query, "offset": ""}}


async def feed(app: Any, payload: dict[str, Any]) -> None:
    """Hand one update to an Application in-process, as polling would."""
    from telegram import Update

    await app.process_update(Update.de_json({"update_id": 1, **payload}, app.bot))


def texts(fake: FakeBotAPI) -> list[str]:
    return [c.params["text"] for c in fake.sent()]


if __name__ == "__main__":  # a fake in its own process: prints its base URL, serves until killed
    import sys

    server = FakeBotAPI(sys.argv[1]).serve()
    print(server.base_url, flush=True)
    threading.Event().wait()
