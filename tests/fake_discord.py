"""A loopback fake of Discord's REST API and gateway, enough for discord.py to run a bot.

It speaks what discord.py 2.x uses (read from its http.py, gateway.py, state.py and
interactions.py): login, the gateway handshake, command sync, interaction callbacks
and webhook follow-ups. Like real Discord it enforces the 3-second first-response
deadline, a single initial response, and message size limits; unlike Discord it also
records every breach of the bot's own rules (mentions that could ping) as a violation.
"""

import asyncio
import itertools
import json
import re
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

APP_ID = 1100000000000000001
GUILD_ID = 1200000000000000001
CHANNEL_ID = 1300000000000000001
SPOILER_CHANNEL_ID = 1300000000000000002  # a second text channel, for /config
DM_CHANNEL_ID = 1400000000000000001
MEMBER_PERMISSIONS = 2248473465835073  # @everyone's usual permissions: no Manage Server
MANAGE_GUILD = 1 << 5
TOKEN = "fake.bot.token"
EPHEMERAL = 64
RESPONSE_DEADLINE_S = 3.0
DISCORD_EPOCH_MS = 1_420_070_400_000

_BOT_USER = {
    "id": str(APP_ID),
    "username": "lookback",
    "discriminator": "0",
    "global_name": None,
    "avatar": None,
    "bot": True,
    "flags": 0,
    "verified": True,
    "mfa_enabled": False,
}


def user(user_id: int) -> dict[str, Any]:
    return {
        "id": str(user_id),
        "username": f"member{user_id}",
        "discriminator": "0",
        "global_name": None,
        "avatar": None,
    }


def message_violations(data: dict[str, Any]) -> list[str]:
    """What real Discord would refuse in a message payload, plus pings the bot must never allow."""
    problems = []
    content = data.get("content") or ""
    embeds = data.get("embeds") or []
    if len(content) > 2000:
        problems.append(f"content is {len(content)} > 2000 characters")
    if not content and not embeds and not data.get("components"):
        problems.append("empty message")
    if len(embeds) > 10:
        problems.append("more than 10 embeds")
    total = 0
    for embed in embeds:
        fields = embed.get("fields", [])
        parts = {
            "title": (embed.get("title", ""), 256),
            "description": (embed.get("description", ""), 4096),
            "footer": (embed.get("footer", {}).get("text", ""), 2048),
            "author": (embed.get("author", {}).get("name", ""), 256),
        }
        for n, f in enumerate(fields, 1):
            parts[f"field {n} name"] = (f.get("name", ""), 256)
            parts[f"field {n} value"] = (f.get("value", ""), 1024)
            if not f.get("name") or not f.get("value"):
                problems.append("empty embed field")
        problems += [f"{k} is {len(t)} > {m}" for k, (t, m) in parts.items() if len(t) > m]
        if len(fields) > 25:
            problems.append(f"{len(fields)} fields > 25")
        total += sum(len(t) for t, _ in parts.values())
    if total > 6000:
        problems.append(f"embeds total {total} > 6000 characters")
    mentions = data.get("allowed_mentions")
    if mentions is None or mentions.get("parse") or mentions.get("users") or mentions.get("roles"):
        problems.append(f"allowed_mentions could ping: {mentions!r}")
    return sorted(set(problems))


@dataclass
class Reply:
    """A message the bot sent: an interaction's first response or a follow-up."""

    interaction_id: int | None
    type: int  # interaction callback type (4 message, 5 deferred, ...); 0 for a follow-up
    data: dict[str, Any]
    message: dict[str, Any]  # the message object Discord created
    latency_s: float  # from dispatch until the bot's response reached the fake

    @property
    def ephemeral(self) -> bool:
        return bool((self.data.get("flags") or 0) & EPHEMERAL)

    @property
    def embeds(self) -> list[dict[str, Any]]:
        return self.data.get("embeds") or []

    @property
    def text(self) -> str:
        """Everything a member reads in this reply."""
        parts = [self.data.get("content") or ""]
        for embed in self.embeds:
            parts += [embed.get("title", ""), embed.get("description", "")]
            parts += [embed.get("footer", {}).get("text", "")]
            parts += [f"{f['name']}\n{f['value']}" for f in embed.get("fields", [])]
        return "\n".join(parts)

    @property
    def choices(self) -> list[str]:
        """An autocomplete response's choices, by name."""
        return [c["name"] for c in self.data.get("choices", [])]

    @property
    def buttons(self) -> list[str]:
        """Every button's label, or emoji when it has no label."""
        return [
            c.get("label") or (c.get("emoji") or {}).get("name", "")
            for row in self.data.get("components") or []
            for c in row.get("components", [])
        ]

    def button(self, label: str) -> str:
        """The custom_id of the button with this label (or emoji)."""
        for row in self.data.get("components") or []:
            for component in row.get("components", []):
                emoji = (component.get("emoji") or {}).get("name")
                if label in (component.get("label"), emoji):
                    return component["custom_id"]
        raise AssertionError(f"no {label!r} button in {self.data.get('components')}")


# Linux's SO_TIMESTAMPNS (asm-generic/socket.h), which Python's socket module does not name.
SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("qq")


class _KernelStampedSocket:
    """A connection's socket whose reads also return when the kernel received the bytes.

    asyncio's selector transports read with `sock.recv`; this reads with `recvmsg`
    instead and keeps the SO_TIMESTAMPNS time of the last bytes read, as monotonic time.
    Everything else is the socket's own.
    """

    def __init__(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self._sock = sock
        self.received_at: float | None = None

    def recv(self, size: int) -> bytes:
        data, ancillary, _, _ = self._sock.recvmsg(size, socket.CMSG_SPACE(_TIMESPEC.size))
        self.received_at = None
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                seconds, nanoseconds = _TIMESPEC.unpack(value[: _TIMESPEC.size])
                # The stamp is wall-clock time; latencies are measured on the monotonic clock.
                self.received_at = seconds + nanoseconds / 1e9 - time.time() + time.monotonic()
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _ArrivalStamps(asyncio.Protocol):
    """aiohttp's protocol for one connection, noting when its bytes last arrived.

    Discord times a response when it receives it. The fake serves requests one at a
    time, so a handler may start milliseconds after its request arrived (behind the
    rest of a burst): handlers read the arrival time from here instead. On Linux it is
    the kernel's receive time, so even the read is not delayed by the fake's busy loop
    (in a burst that opens new connections, that delay reached 3-4 ms).
    """

    def __init__(
        self, inner: asyncio.Protocol, stamps: dict[asyncio.BaseTransport | None, float]
    ) -> None:
        self.inner, self.stamps = inner, stamps
        self.sock: _KernelStampedSocket | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        sock = getattr(transport, "_sock", None)  # a selector transport's socket
        if sys.platform == "linux" and isinstance(sock, socket.socket):
            self.sock = transport._sock = _KernelStampedSocket(sock)  # type: ignore[attr-defined]
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        received_at = self.sock.received_at if self.sock else None
        self.stamps[self.transport] = received_at or time.monotonic()
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.stamps.pop(self.transport, None)
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


@dataclass(frozen=True)
class Channel:
    """A channel option's value in `FakeDiscord.slash`."""

    id: int


@dataclass
class _Session:
    """One gateway connection: a shard of the bot, with its own sequence numbers."""

    ws: web.WebSocketResponse
    shard: tuple[int, int] = (0, 1)  # (id, count)
    seq: int = 0


IDENTIFY_SPACING_S = 5.0  # max_concurrency 1: one IDENTIFY per 5 s for the whole bot


@dataclass
class _Pending:
    created: float
    token: str
    reply: asyncio.Future
    autocomplete: bool = False  # answered only with choices (type 8), never deferred
    responded: bool = False


def choice_violations(data: dict[str, Any]) -> list[str]:
    """What Discord refuses in an autocomplete response."""
    choices = data.get("choices")
    if not isinstance(choices, list):
        return ["autocomplete response without choices"]
    problems = [f"{len(choices)} choices > 25"] if len(choices) > 25 else []
    for choice in choices:
        name, value = choice.get("name", ""), choice.get("value", "")
        if not 1 <= len(name) <= 100:
            problems.append(f"choice name of {len(name)} characters")
        if isinstance(value, str) and not 1 <= len(value) <= 100:
            problems.append(f"choice value of {len(value)} characters")
    return problems


@dataclass
class FakeDiscord:
    token: str = TOKEN
    requests: list[tuple[str, str]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    synced: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    identifies: int = 0
    resumes: int = 0
    intents: int = 0  # what the bot subscribed to at its last identify
    clock_offset_s: float = 0.0  # moves the time ids carry, to test what waits on time
    response_deadline_s: float = RESPONSE_DEADLINE_S  # longer for a bot run under valgrind

    def __post_init__(self) -> None:
        self._id_counter = itertools.count()
        self._sessions: dict[int, _Session] = {}  # by shard id
        self._identified: list[tuple[float, int]] = []  # (when, shard id)
        self._shard_of_session: dict[str, tuple[int, int]] = {}  # for RESUME
        self._ready = asyncio.Event()
        self._synced_event = asyncio.Event()
        self._pending: dict[int, _Pending] = {}
        self._followups: dict[str, list[Reply]] = {}
        self._followup_event = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None
        self._arrivals: dict[asyncio.BaseTransport | None, float] = {}
        self.url = ""
        self.synced_at = 0.0

    # --- lifecycle -------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application()
        api = "/api/v10"
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get(f"{api}/gateway/bot", self._gateway_bot)
        app.router.add_get(f"{api}/users/@me", self._me)
        app.router.add_get(f"{api}/oauth2/applications/@me", self._application)
        app.router.add_put(f"{api}/applications/{{app}}/commands", self._sync)
        app.router.add_put(f"{api}/applications/{{app}}/guilds/{{guild}}/commands", self._sync)
        app.router.add_post(f"{api}/interactions/{{id}}/{{token}}/callback", self._callback)
        app.router.add_post(f"{api}/webhooks/{{app}}/{{token}}", self._followup)
        app.router.add_route("*", f"{api}/webhooks/{{app}}/{{token}}/messages/{{mid}}", self._edit)
        app.router.add_route("*", "/{tail:.*}", self._unknown)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        # aiohttp's low-level server, served as its docs show, with arrivals noted.
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            lambda: _ArrivalStamps(server(), self._arrivals), "127.0.0.1", 0
        )
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        for session in list(self._sessions.values()):
            await session.ws.close()
        if self._server is not None:
            self._server.close()
        if self._runner is not None:
            await self._runner.cleanup()  # closes the connections the server waits for
        if self._server is not None:
            await self._server.wait_closed()

    async def wait_shards(self, ids: list[int], timeout: float = 60.0) -> None:
        """Until each of these shards has identified (for bots that run in several processes)."""
        async with asyncio.timeout(timeout):
            while not all(i in self._sessions and not self._sessions[i].ws.closed for i in ids):
                await asyncio.sleep(0.05)

    async def wait_ready(self, timeout: float = 30.0) -> None:
        """Until the bot has identified and synced its commands."""
        await asyncio.wait_for(
            asyncio.gather(self._ready.wait(), self._synced_event.wait()), timeout
        )

    def new_session(self) -> None:
        """Forget the last bot's connection (before starting the bot process again)."""
        self._ready.clear()
        self._synced_event.clear()

    # --- REST ---------------------------------------------------------------------

    def _json(self, data: Any, status: int = 200) -> web.Response:
        # discord.py compares the Content-Type exactly: no charset suffix.
        body = json.dumps(data).encode()
        return web.Response(body=body, status=status, headers={"Content-Type": "application/json"})

    def _error(self, status: int, code: int, message: str) -> web.Response:
        return self._json({"code": code, "message": message}, status)

    async def _me(self, request: web.Request) -> web.Response:
        self.requests.append(("GET", request.path))
        if request.headers.get("Authorization") != f"Bot {self.token}":
            return self._error(401, 0, "401: Unauthorized")
        return self._json(_BOT_USER)

    async def _application(self, request: web.Request) -> web.Response:
        self.requests.append(("GET", request.path))
        return self._json(
            {
                "id": str(APP_ID),
                "name": "lookback",
                "icon": None,
                "description": "",
                "rpc_origins": [],
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": user(1),
                "summary": "",
                "verify_key": "0" * 64,
                "team": None,
                "flags": 0,
            }
        )

    async def _sync(self, request: web.Request) -> web.Response:
        self.requests.append(("PUT", request.path))
        scope = request.match_info.get("guild", "global")
        if scope not in ("global", str(GUILD_ID)):  # a server the bot is not in
            return self._error(403, 50001, "Missing Access")
        commands = await request.json()
        for command in commands:
            self._check_command(command)
        given = [
            {
                "description": "",  # Discord fills it in for context menus
                **command,
                "id": str(self._snowflake()),
                "application_id": str(APP_ID),
                "version": "1",
                **({"guild_id": scope} if scope != "global" else {}),
            }
            for command in commands
        ]
        self.synced[scope] = given
        self.synced_at = time.monotonic()
        self._synced_event.set()
        return self._json(given)

    def _check_command(self, command: dict[str, Any], top: bool = True) -> None:
        name, description = command.get("name", ""), command.get("description", "")
        slash = command.get("type", 1) == 1 or not top  # options are named like slash commands
        if slash and not (re.fullmatch(r"[-_\w]{1,32}", name) and name == name.lower()):
            self.violations.append(f"bad command name {name!r}")
        if not slash and not 1 <= len(name) <= 32:
            self.violations.append(f"bad context menu name {name!r}")
        if slash and not 1 <= len(description) <= 100:
            self.violations.append(f"/{name} description is {len(description)} characters")
        if not slash and description:
            self.violations.append(f"context menu {name!r} has a description")
        options = command.get("options", [])
        if len(options) > 25:
            self.violations.append(f"/{name} has more than 25 options")
        required = [o.get("required", False) for o in options]
        if required != sorted(required, reverse=True):
            self.violations.append(f"/{name} has required options after optional ones")
        for option in options:
            if option.get("type") in (1, 2):
                self._check_command(option, top=False)
            elif not 1 <= len(option.get("description", "")) <= 100:
                self.violations.append(f"/{name} option {option.get('name')} needs a description")

    def _message(self, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": str(self._snowflake()),
            "channel_id": str(CHANNEL_ID),
            "type": 20,
            "content": data.get("content") or "",
            "embeds": data.get("embeds") or [],
            "components": data.get("components") or [],
            "attachments": [],
            "author": _BOT_USER,
            "timestamp": "2026-11-21T00:00:00+00:00",
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "pinned": False,
            "flags": data.get("flags") or 0,
            "application_id": str(APP_ID),
        }

    async def _callback(self, request: web.Request) -> web.Response:
        interaction_id = int(request.match_info["id"])
        self.requests.append(("POST", "/interactions/{id}/{token}/callback"))
        body = await request.json()
        arrived = self._arrivals.get(request.transport, time.monotonic())
        pending = self._pending.get(interaction_id)
        if pending is None or pending.token != request.match_info["token"]:
            return self._error(404, 10062, "Unknown interaction")
        if arrived - pending.created > self.response_deadline_s:
            self.violations.append(
                f"interaction {interaction_id} answered after {self.response_deadline_s:g} s"
            )
            return self._error(404, 10062, "Unknown interaction")
        if pending.responded:
            self.violations.append(f"interaction {interaction_id} answered twice")
            return self._error(400, 40060, "Interaction has already been acknowledged.")
        kind, data = body["type"], body.get("data") or {}
        problems = []
        if kind in (4, 7):
            problems = message_violations(data)
        if pending.autocomplete != (kind == 8):
            problems.append(
                f"callback type {kind} for {'an autocomplete' if pending.autocomplete else 'a command'}"
            )
        if kind == 8:
            problems += choice_violations(data)
        if problems:
            self.violations += problems
            return self._error(400, 50035, "Invalid Form Body: " + "; ".join(problems))
        pending.responded = True
        message = self._message(data)
        reply = Reply(interaction_id, kind, data, message, arrived - pending.created)
        pending.reply.set_result(reply)
        return self._json(
            {
                "interaction": {
                    "id": str(interaction_id),
                    "type": 2,
                    "response_message_id": message["id"],
                    "response_message_loading": kind == 5,
                    "response_message_ephemeral": bool((data.get("flags") or 0) & EPHEMERAL),
                },
                "resource": {"type": kind, "message": message},
            }
        )

    async def _followup(self, request: web.Request) -> web.Response:
        self.requests.append(("POST", "/webhooks/{app}/{token}"))
        data = await request.json()
        problems = message_violations(data)
        if problems:
            self.violations += problems
            return self._error(400, 50035, "Invalid Form Body: " + "; ".join(problems))
        message = self._message(data)
        token = request.match_info["token"]
        self._followups.setdefault(token, []).append(Reply(None, 0, data, message, 0))
        self._followup_event.set()
        return self._json(message)

    async def _edit(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, "/webhooks/{app}/{token}/messages/{mid}"))
        if request.method == "PATCH":
            data = await request.json()
            problems = message_violations(data)
            if problems:
                self.violations += problems
                return self._error(400, 50035, "Invalid Form Body")
            return self._json(self._message(data))
        if request.method == "DELETE":
            return web.Response(status=204)
        return self._json(self._message({"content": ""}))

    async def _unknown(self, request: web.Request) -> web.Response:
        self.violations.append(f"unexpected request {request.method} {request.path}")
        return self._error(404, 0, "404: Not Found")

    # --- gateway ------------------------------------------------------------------

    async def _gateway_bot(self, request: web.Request) -> web.Response:
        self.requests.append(("GET", request.path))
        return self._json(
            {
                "url": self.url.replace("http", "ws", 1) + "/gateway",
                "shards": 1,
                "session_start_limit": {
                    "total": 1000, "remaining": 999, "reset_after": 14_400_000,
                    "max_concurrency": 1,
                },
            }
        )  # fmt: skip

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        session = _Session(ws)
        await ws.send_json({"op": 10, "d": {"heartbeat_interval": 41250}})
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                break
            payload = msg.json()
            op = payload.get("op")
            if op == 1:
                await ws.send_json({"op": 11})
            elif op == 2:
                await self._identify(session, payload["d"])
            elif op == 6:
                self.resumes += 1
                # A resume comes on a new connection: its shard is the session's.
                session.shard = self._shard_of_session[payload["d"]["session_id"]]
                self._sessions[session.shard[0]] = session
                await self._send(session, "RESUMED", {})
        return ws

    async def _identify(self, session: _Session, data: dict[str, Any]) -> None:
        ws = session.ws
        if data.get("token") != self.token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return
        if data.get("intents", 0) & ((1 << 1) | (1 << 8) | (1 << 15)):
            await ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        shard_id, shard_count = data.get("shard") or (0, 1)
        now = time.monotonic()
        too_soon = [
            (now - t, s)
            for t, s in self._identified
            if s != shard_id and now - t < IDENTIFY_SPACING_S
        ]
        if too_soon:  # real Discord would refuse (rate limit) or drop one of them
            gap, other = min(too_soon)
            self.violations.append(
                f"shards {other} and {shard_id} identified {gap:.3f} s apart "
                f"(one per {IDENTIFY_SPACING_S:g} s)"
            )
        self._identified.append((now, shard_id))
        session.shard, session.seq = (shard_id, shard_count), 0
        self._sessions[shard_id] = session
        self.identifies += 1
        self.intents = data.get("intents", 0)
        here = self.shard_of(GUILD_ID) == shard_id
        session_id = f"session-{self.identifies}"
        self._shard_of_session[session_id] = session.shard
        ready = {
            "v": 10,
            "user": _BOT_USER,
            "guilds": [{"id": str(GUILD_ID), "unavailable": True}] if here else [],
            "session_id": session_id,
            "resume_gateway_url": self.url.replace("http", "ws", 1) + "/gateway",
            "application": {"id": str(APP_ID), "flags": 0},
            "private_channels": [],
        }
        if data.get("shard"):
            ready["shard"] = [shard_id, shard_count]
        await self._send(session, "READY", ready)
        if here:
            await self._send(session, "GUILD_CREATE", self._guild())
        self._ready.set()

    def shard_of(self, guild_id: int | None) -> int:
        """Which shard Discord sends a guild's events to; DMs go to shard 0."""
        count = max((s.shard[1] for s in self._sessions.values()), default=1)
        return 0 if guild_id is None else (guild_id >> 22) % count

    def _guild(self) -> dict[str, Any]:
        return {
            "id": str(GUILD_ID),
            "name": "Film Club",
            "icon": None,
            "owner_id": "1",
            "afk_channel_id": None,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "features": [],
            "mfa_level": 0,
            "system_channel_id": None,
            "premium_tier": 0,
            "preferred_locale": "en-US",
            "nsfw_level": 0,
            "unavailable": False,
            "member_count": 2,
            "large": False,
            "roles": [
                {
                    "id": str(GUILD_ID),
                    "name": "@everyone",
                    "permissions": "2248473465835073",
                    "position": 0,
                    "color": 0,
                    "hoist": False,
                    "managed": False,
                    "mentionable": False,
                    "flags": 0,
                }
            ],
            "emojis": [],
            "stickers": [],
            "channels": [
                {
                    "id": str(CHANNEL_ID),
                    "type": 0,
                    "name": "look-back",
                    "position": 0,
                    "permission_overwrites": [],
                    "nsfw": False,
                    "parent_id": None,
                },
                {
                    "id": str(SPOILER_CHANNEL_ID),
                    "type": 0,
                    "name": "spoilers",
                    "position": 1,
                    "permission_overwrites": [],
                    "nsfw": False,
                    "parent_id": None,
                },
            ],
            "members": [
                {
                    "user": _BOT_USER,
                    "roles": [],
                    "joined_at": "2026-01-01T00:00:00+00:00",
                    "deaf": False,
                    "mute": False,
                    "flags": 0,
                }
            ],
            "threads": [],
            "voice_states": [],
            "presences": [],
        }

    async def _send(self, session: _Session, event: str, data: dict[str, Any]) -> None:
        session.seq += 1
        await session.ws.send_json({"op": 0, "t": event, "s": session.seq, "d": data})

    async def drop_connection(self, code: int = 4000) -> None:
        """Close the gateway as Discord does on an internal error; the bot should resume."""
        await self._sessions[0].ws.close(code=code, message=b"Unknown error")

    # --- interactions -------------------------------------------------------------

    def _snowflake(self) -> int:
        """A new id dated now, as Discord's are: discord.py reads an interaction's
        `created_at` from its id, and cooldowns run on that time."""
        ms = int((time.time() + self.clock_offset_s) * 1000) - DISCORD_EPOCH_MS
        return ms << 22 | next(self._id_counter) % (1 << 22)

    def _interaction(
        self,
        kind: int,
        data: dict[str, Any],
        user_id: int,
        *,
        channel_id: int = CHANNEL_ID,
        dm: bool = False,
        permissions: int = MEMBER_PERMISSIONS,
    ) -> dict[str, Any]:
        """An interaction as Discord sends it: in the guild (from a member with
        `permissions`, in `channel_id`), or in the member's DM with the bot."""
        interaction_id = self._snowflake()
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(APP_ID),
            "type": kind,
            "data": data,
            "token": f"itoken-{interaction_id}",
            "version": 1,
            "locale": "en-US",
            "app_permissions": str(MEMBER_PERMISSIONS),
            "entitlements": [],
            "attachment_size_limit": 8388608,
        }
        if dm:
            return payload | {
                "channel_id": str(DM_CHANNEL_ID),
                "channel": {"id": str(DM_CHANNEL_ID), "type": 1, "recipients": [user(user_id)]},
                "user": user(user_id),
                "authorizing_integration_owners": {"0": str(GUILD_ID)},
                "context": 1,
            }
        return payload | {
            "guild_id": str(GUILD_ID),
            "guild_locale": "en-US",
            "channel_id": str(channel_id),
            "channel": {"id": str(channel_id), "type": 0, "guild_id": str(GUILD_ID)},
            "member": {
                "user": user(user_id),
                "roles": [],
                "joined_at": "2026-01-01T00:00:00+00:00",
                "deaf": False,
                "mute": False,
                "flags": 0,
                "permissions": str(permissions),
            },
            "authorizing_integration_owners": {"0": str(GUILD_ID)},
            "context": 0,
        }

    def _command_id(self, name: str, dm: bool) -> str:
        """The synced command's id; DMs see only global commands."""
        scope = str(GUILD_ID) if str(GUILD_ID) in self.synced and not dm else "global"
        return next((c["id"] for c in self.synced.get(scope, []) if c["name"] == name), "0")

    def slash(
        self,
        command: str,
        user_id: int = 501,
        *,
        channel_id: int = CHANNEL_ID,
        dm: bool = False,
        permissions: int = MEMBER_PERMISSIONS,
        focused: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """A slash command interaction; "spoilers on" gives subcommand `on` of /spoilers.

        A `Channel(id)` option value is a channel option, resolved as Discord sends it.
        With `focused`, it is the autocomplete interaction for that option instead.
        """
        name, *sub = command.split()
        types = {str: 3, bool: 5, int: 4, Channel: 7}
        opts = []
        resolved: dict[str, Any] = {}
        for key, value in options.items():
            option = {"name": key, "type": types[type(value)], "value": value}
            if isinstance(value, Channel):
                option["value"] = str(value.id)
                resolved.setdefault("channels", {})[str(value.id)] = {
                    "id": str(value.id), "type": 0, "name": "spoilers", "permissions": "0",
                    "guild_id": str(GUILD_ID), "parent_id": None,
                }  # fmt: skip
            if key == focused:
                option["focused"] = True
            opts.append(option)
        if sub:
            opts = [{"name": sub[0], "type": 1, "options": opts}]
        data = {"id": self._command_id(name, dm), "name": name, "type": 1, "options": opts}
        if resolved:
            data["resolved"] = resolved
        kind = 4 if focused else 2
        where = {"channel_id": channel_id, "dm": dm, "permissions": permissions}
        return self._interaction(kind, data, user_id, **where)

    def message_command(
        self, name: str, content: str, user_id: int = 501, *, dm: bool = False
    ) -> dict[str, Any]:
        """A message command (Apps → `name`) on a member's message holding `content`."""
        target = self._message({"content": content})
        target["author"] = user(user_id + 1)
        data = {
            "id": self._command_id(name, dm),
            "name": name,
            "type": 3,
            "target_id": target["id"],
            "resolved": {"messages": {target["id"]: target}},
        }
        return self._interaction(2, data, user_id, dm=dm)

    def click(self, reply: Reply, label: str, user_id: int = 501) -> dict[str, Any]:
        """A button click on a message the bot sent."""
        data = {"custom_id": reply.button(label), "component_type": 2}
        payload = self._interaction(3, data, user_id)
        payload["message"] = reply.message
        return payload

    async def send(self, interaction: dict[str, Any]) -> asyncio.Future:
        """Dispatch an interaction; the future resolves with the bot's first response."""
        guild = interaction.get("guild_id")
        session = self._sessions.get(self.shard_of(int(guild) if guild else None))
        assert session is not None and not session.ws.closed, "the bot is not connected"
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        interaction_id = int(interaction["id"])
        self._pending[interaction_id] = _Pending(
            time.monotonic(), interaction["token"], future, interaction["type"] == 4
        )
        await self._send(session, "INTERACTION_CREATE", interaction)
        return future

    async def ask(self, interaction: dict[str, Any], timeout: float = 10.0) -> Reply:
        """Dispatch an interaction and wait for the bot's first response."""
        return await asyncio.wait_for(await self.send(interaction), timeout)

    async def answer(self, interaction: dict[str, Any]) -> Reply:
        """What the member ends up seeing: the first response, or after a defer, the follow-up."""
        first = await self.ask(interaction)
        if first.type != 5:
            return first
        return (await self.followups(interaction))[0]

    async def followups(self, interaction: dict[str, Any], count: int = 1) -> list[Reply]:
        token = interaction["token"]
        async with asyncio.timeout(10):
            while len(self._followups.get(token, [])) < count:
                self._followup_event.clear()
                await self._followup_event.wait()
        return self._followups[token]
