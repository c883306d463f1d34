"""HTTP-level fake of the Telegram Bot API server for tests.

The real, unmodified aiogram ``Bot`` talks to it over HTTP::

    fake = FakeTelegram()
    base_url = await fake.start()
    bot = Bot(fake.token, session=AiohttpSession(api=TelegramAPIServer.from_base(base_url)))

Answers mimic the real server: ``{"ok": true, "result": ...}`` or
``{"ok": false, "error_code": N, "description": "..."}`` with HTTP status N, so aiogram raises the same
exception classes (TelegramBadRequest, TelegramRetryAfter, TelegramForbiddenError, ...) as in production.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import mimetypes
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from tests.fakes.telegram.errors import ApiError, bad_request
from tests.fakes.telegram.flood import FloodControl
from tests.fakes.telegram.records import Call, SentMessage, _Failure, _StoredFile
from tests.fakes.telegram.text import ignored_entities, parse_formatted, utf16_len

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_DOWNLOAD = 20 * 1024 * 1024
MAX_PHOTO_UPLOAD = 10 * 1024 * 1024  # sendPhoto: "The photo must be at most 10 MB in size"
MAX_UPLOAD = 50 * 1024 * 1024  # other files a bot sends
DEFAULT_GROUP_USER_ID = 111111
MEMBER_STATUSES = frozenset({"creator", "administrator", "member", "restricted", "left", "kicked"})
# What an administrator may do when a test does not say (a typical admin: everything but promoting).
ADMIN_RIGHTS = {
    "can_be_edited": False,
    "can_manage_chat": True,
    "can_delete_messages": True,
    "can_manage_video_chats": True,
    "can_restrict_members": True,
    "can_promote_members": False,
    "can_change_info": True,
    "can_invite_users": True,
    "can_post_stories": False,
    "can_edit_stories": False,
    "can_delete_stories": False,
    "can_send_welcome_messages": False,
    "can_pin_messages": True,
    "can_manage_topics": True,
}
# A restricted member's permissions when a test does not say: may read and write text only.
RESTRICTED_RIGHTS = {
    "can_send_messages": True,
    "can_send_audios": False,
    "can_send_documents": False,
    "can_send_photos": False,
    "can_send_videos": False,
    "can_send_video_notes": False,
    "can_send_voice_notes": False,
    "can_send_polls": False,
    "can_send_other_messages": False,
    "can_add_web_page_previews": False,
    "can_react_to_messages": True,
    "can_edit_tag": False,
    "can_change_info": False,
    "can_invite_users": False,
    "can_pin_messages": False,
    "can_manage_topics": False,
}

# fmt: off
CHAT_ACTIONS = frozenset({
    "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
    "upload_document",
    "choose_sticker", "find_location", "record_video_note", "upload_video_note",
})
JSON_FIELDS = frozenset({
    "entities", "caption_entities", "reply_markup", "reply_parameters", "link_preview_options", "commands",
    "scope", "allowed_updates", "media",
})
INT_FIELDS = frozenset({
    "chat_id", "message_id", "draft_id", "message_thread_id", "reply_to_message_id", "offset", "limit",
    "timeout", "user_id", "from_chat_id", "cache_time", "max_connections",
})
BOOL_FIELDS = frozenset({
    "disable_notification", "protect_content", "allow_sending_without_reply", "can_stop", "keep_on_stop",
    "show_alert", "drop_pending_updates", "disable_content_type_detection", "disable_web_page_preview",
    "allow_paid_broadcast",
})
# fmt: on
# Methods that deliver something to a chat: they get 403 for blocked chats and count towards flood control.
SENDING_METHODS = frozenset(
    {
        "sendmessage",
        "editmessagetext",
        "editmessagereplymarkup",
        "sendmessagedraft",
        "senddocument",
        "sendvoice",
        "sendphoto",
    }
)
BLOCKABLE_METHODS = SENDING_METHODS | {"sendchataction"}


# --------------------------------------------------------------------------------------------- server


class FakeTelegram:
    """A fake Telegram Bot API server on aiohttp.web with real validation, error texts and flood control.

    Flood control (`FloodControl`, its rules set by ``private_interval``, ``group_per_minute`` and
    ``global_per_second``) counts sendMessage, editMessageText, editMessageReplyMarkup, sendMessageDraft
    and sendDocument. Scripted failures from ``fail_next`` take precedence over everything else.

    Like the server, message text is stripped of leading/trailing whitespace (entities are shifted).
    Unlike it, chats are created on first use (no "chat not found", except from getChatMember), and
    url/mention/... entities are not auto-detected in plain text.

    Members (getChatMember): whoever wrote in a group is a "member" of it until `set_member` says
    otherwise (creator, administrator, restricted, left, kicked); a user the fake has seen elsewhere has
    "left" a group they never wrote in; a user it has never seen is "user not found".
    """

    def __init__(
        self,
        *,
        token: str = "123456:TEST-TOKEN",
        bot_id: int = 123456,
        bot_username: str = "test_assistant_bot",
        private_interval: float | None = None,
        group_per_minute: int | None = None,
        global_per_second: int | None = None,
        local_server: bool = False,
        group_window: float = 60.0,
    ) -> None:
        self.token = token
        # Acting as a local Bot API server (`telegram-bot-api --local`): webhooks over plain HTTP too.
        self.local_server = local_server
        self.bot_id = bot_id
        self.bot_username = bot_username
        self.flood = FloodControl(private_interval, group_per_minute, global_per_second, group_window)
        self.base_url = ""
        self.calls: list[Call] = []
        # (json.dumps(scope, sort_keys=True), language_code or "") -> list of {command, description}
        self.commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self.callback_answers: list[dict[str, Any]] = []
        self.webhook_url = ""
        # (chat id, how many) for every call whose entities beyond the 100th were silently dropped.
        self.ignored_entities: list[tuple[int, int]] = []
        self._updates: list[dict[str, Any]] = []
        self._next_update_id = 1
        self._update_event = asyncio.Event()
        self._poll_generation = 0
        self._closing = False
        self._chats: dict[int, dict[str, Any]] = {}
        self._users: dict[int, dict[str, Any]] = {}
        self._members: dict[int, dict[int, dict[str, Any]]] = {}  # chat -> user -> member fields
        self._messages: dict[int, dict[int, dict[str, Any]]] = {}  # chat -> message_id -> API Message
        self._last_message_id: dict[int, int] = {}
        self._sent: dict[tuple[int, int], SentMessage] = {}
        self._actions: dict[int, list[str]] = {}
        self._drafts: dict[int, list[dict[str, Any]]] = {}
        self._blocked: set[int] = set()
        self._failures: list[_Failure] = []
        self._drops: list[_Failure] = []
        self._too_many_requests = 0
        self._files: dict[str, _StoredFile] = {}
        self._files_by_path: dict[str, _StoredFile] = {}
        self._pending_callbacks: set[str] = set()
        self._runner: web.AppRunner | None = None
        self._handlers: dict[str, Callable[[dict[str, Any]], Any]] = {
            "getme": self._get_me,
            "getupdates": self._get_updates,
            "deletewebhook": self._delete_webhook,
            "setwebhook": self._set_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "setmycommands": self._set_my_commands,
            "getmycommands": self._get_my_commands,
            "deletemycommands": self._delete_my_commands,
            "sendmessage": self._send_message,
            "editmessagetext": self._edit_message_text,
            "editmessagereplymarkup": self._edit_message_reply_markup,
            "deletemessage": self._delete_message,
            "sendchataction": self._send_chat_action,
            "answercallbackquery": self._answer_callback_query,
            "sendmessagedraft": self._send_message_draft,
            "getchat": self._get_chat,
            "getchatmember": self._get_chat_member,
            "senddocument": self._send_document,
            "getfile": self._get_file,
            "sendvoice": self._send_voice,
            "sendphoto": self._send_photo,
        }

    # ---------------------------------------------------------------- lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._closing = False
        app = web.Application(client_max_size=64 * 1024 * 1024)  # default 1 MB would reject uploads
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        # Pending long polls are woken in stop(); a short shutdown timeout keeps teardown fast regardless.
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_port = self._runner.addresses[0][1]
        self.base_url = f"http://{host}:{bound_port}"
        return self.base_url

    async def stop(self) -> None:
        self._closing = True
        self._wake_pollers()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---------------------------------------------------------------- feeding updates

    @property
    def bot_user(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "Test Assistant",
            "username": self.bot_username,
        }

    def add_update(self, update: dict[str, Any]) -> int:
        if "update_id" not in update:
            update["update_id"] = self._next_update_id
        self._next_update_id = max(self._next_update_id, update["update_id"] + 1)
        if "callback_query" in update:
            self._pending_callbacks.add(str(update["callback_query"].get("id")))
        self._updates.append(update)
        self._wake_pollers()
        return update["update_id"]

    def user_message(
        self,
        chat_id: int,
        text: str | None = None,
        *,
        user_id: int | None = None,
        first_name: str = "Alice",
        language_code: str | None = "en",
        chat_type: str = "private",
        message_thread_id: int | None = None,
        is_topic_message: bool | None = None,
        entities: list[dict[str, Any]] | None = None,
        reply_to_message_id: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        if is_topic_message is None and message_thread_id is not None and chat_type == "supergroup":
            is_topic_message = True
        chat = self._chat(
            chat_id, chat_type=chat_type, first_name=first_name, is_forum=bool(is_topic_message)
        )
        if user_id is None:
            user_id = chat_id if chat_type == "private" else DEFAULT_GROUP_USER_ID
        sender: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if language_code is not None:
            sender["language_code"] = language_code
        self._seen(sender, chat_id)
        msg: dict[str, Any] = {
            "message_id": self._new_message_id(chat_id),
            "from": sender,
            "chat": dict(chat),
            "date": int(time.time()),
        }
        if text is not None:
            msg["text"] = text
        if entities:
            msg["entities"] = entities
        if message_thread_id is not None:
            msg["message_thread_id"] = message_thread_id
        if is_topic_message:
            msg["is_topic_message"] = True
        if reply_to_message_id is not None and (replied := self._find_message(chat_id, reply_to_message_id)):
            msg["reply_to_message"] = replied
        msg.update(extra or {})
        self._messages.setdefault(chat_id, {})[msg["message_id"]] = msg
        self.add_update({"message": msg})
        return msg

    def command(self, chat_id: int, command: str, args: str = "", **kw: Any) -> dict[str, Any]:
        head = "/" + command.lstrip("/")
        entity = {"type": "bot_command", "offset": 0, "length": utf16_len(head)}
        return self.user_message(chat_id, f"{head} {args}" if args else head, entities=[entity], **kw)

    def callback_query(
        self,
        chat_id: int,
        message_id: int,
        data: str,
        *,
        user_id: int | None = None,
        first_name: str = "Alice",
    ) -> dict[str, Any]:
        """Enqueues a press of an inline button under a message of the chat; returns the CallbackQuery."""
        query: dict[str, Any] = {
            "id": f"cbq-{self._next_update_id}",
            "from": {"id": user_id or chat_id, "is_bot": False, "first_name": first_name},
            "chat_instance": str(chat_id),
            "data": data,
        }
        self._users.setdefault(query["from"]["id"], dict(query["from"]))
        if (msg := self._find_message(chat_id, message_id)) is not None:
            query["message"] = msg
        self.add_update({"callback_query": query})
        return query

    def set_member(
        self,
        chat_id: int,
        user_id: int,
        status: str,
        *,
        first_name: str = "Alice",
        chat_type: str = "supergroup",
        **fields: Any,
    ) -> None:
        """Make `user_id` a member of the group with `status` (creator, administrator, member,
        restricted, left, kicked); `fields` override the status's defaults (is_anonymous, custom_title,
        can_* rights, until_date)."""
        if status not in MEMBER_STATUSES:
            raise ValueError(f"unknown status {status!r}; expected one of {sorted(MEMBER_STATUSES)}")
        self._chat(chat_id, chat_type=chat_type)
        self._users.setdefault(user_id, {"id": user_id, "is_bot": False, "first_name": first_name})
        self._members.setdefault(chat_id, {})[user_id] = {"status": status, **fields}

    def block_chat(self, chat_id: int) -> None:
        self._blocked.add(chat_id)

    def unblock_chat(self, chat_id: int) -> None:
        self._blocked.discard(chat_id)

    def add_file(
        self, content: bytes, file_name: str, mime_type: str, *, declared_size: int | None = None
    ) -> dict[str, Any]:
        """Registers a downloadable file; returns a Document object to put into a user message."""
        n = len(self._files) + 1
        document = {
            "file_id": f"FILE{n:06d}",
            "file_unique_id": f"U{n:06d}",
            "file_name": file_name,
            "mime_type": mime_type,
            "file_size": declared_size if declared_size is not None else len(content),
        }
        suffix = file_name.rsplit(".", 1)[-1] if "." in file_name else "bin"
        stored = _StoredFile(content, f"documents/file_{n}.{suffix}", document, document["file_size"])
        self._files[document["file_id"]] = stored
        self._files_by_path[stored.file_path] = stored
        return dict(document)

    def _register(
        self, content: bytes, folder: str, suffix: str, meta: dict[str, Any], declared_size: int | None
    ) -> dict[str, Any]:
        n = len(self._files) + 1
        item = {
            "file_id": f"FILE{n:06d}",
            "file_unique_id": f"U{n:06d}",
            **meta,
            "file_size": declared_size if declared_size is not None else len(content),
        }
        stored = _StoredFile(content, f"{folder}/file_{n}.{suffix}", item, item["file_size"])
        self._files[item["file_id"]] = stored
        self._files_by_path[stored.file_path] = stored
        return dict(item)

    def add_voice(self, content: bytes, *, duration: int, declared_size: int | None = None) -> dict[str, Any]:
        """A voice note a user recorded (Ogg/Opus); returns the Voice object for a user message."""
        meta = {"duration": duration, "mime_type": "audio/ogg"}
        return self._register(content, "voice", "oga", meta, declared_size)

    def add_audio(
        self,
        content: bytes,
        *,
        file_name: str,
        mime_type: str,
        duration: int,
        declared_size: int | None = None,
    ) -> dict[str, Any]:
        """An audio file a user sent; returns the Audio object for a user message."""
        meta = {"duration": duration, "file_name": file_name, "mime_type": mime_type}
        suffix = file_name.rsplit(".", 1)[-1] if "." in file_name else "bin"
        return self._register(content, "music", suffix, meta, declared_size)

    def add_photo(
        self,
        content: bytes,
        *,
        width: int = 1280,
        height: int = 960,
        thumbnail: bytes | None = None,
        declared_size: int | None = None,
    ) -> list[dict[str, Any]]:
        """A photo a user sent, as Telegram delivers it: the sizes it made, smallest first (a 90 px
        thumbnail from `thumbnail`'s bytes, then the photo itself); returns the PhotoSize list."""
        sizes = []
        if thumbnail is not None:
            scale = 90 / max(width, height)
            small = {"width": max(1, round(width * scale)), "height": max(1, round(height * scale))}
            sizes.append(self._register(thumbnail, "photos", "jpg", small, None))
        sizes.append(
            self._register(content, "photos", "jpg", {"width": width, "height": height}, declared_size)
        )
        return sizes

    # ---------------------------------------------------------------- inspection

    def calls_of(self, method: str, chat_id: int | None = None) -> list[Call]:
        return [
            c
            for c in self.calls
            if c.method.lower() == method.lower() and (chat_id is None or c.params.get("chat_id") == chat_id)
        ]

    def bot_messages(self, chat_id: int, message_thread_id: int | None = None) -> list[SentMessage]:
        return [
            m
            for (cid, _), m in sorted(self._sent.items())
            if cid == chat_id
            and not m.deleted
            and (message_thread_id is None or m.message_thread_id == message_thread_id)
        ]

    def bot_texts(self, chat_id: int, message_thread_id: int | None = None) -> list[str]:
        """The texts of the bot's messages in the chat (or topic) as they show now, oldest first."""
        return [m.text or "" for m in self.bot_messages(chat_id, message_thread_id)]

    async def wait_for_text(self, expected: str, chat_id: int, timeout: float = 15.0) -> None:  # noqa: ASYNC109
        """Until one of the bot's messages in the chat shows exactly `expected`."""
        await self.wait_until(lambda: expected in self.bot_texts(chat_id), timeout=timeout)

    def chat_actions(self, chat_id: int) -> list[str]:
        return list(self._actions.get(chat_id, []))

    def drafts(self, chat_id: int) -> list[dict[str, Any]]:
        return list(self._drafts.get(chat_id, []))

    def commands_for(
        self, language_code: str | None = None, scope: dict[str, Any] | None = None
    ) -> list[dict]:
        return self.commands.get(self._commands_key(scope, language_code), [])

    def flood_count(self) -> int:
        """How many calls were answered with 429 (flood control or scripted)."""
        return self._too_many_requests

    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates not yet confirmed by a getUpdates offset."""
        return list(self._updates)

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 15.0) -> None:  # noqa: ASYNC109
        """Polls ``predicate`` every 10 ms; the explicit timeout gives a diagnostic instead of a bare hang.

        (15 s by default: with flood control on, a few messages to one chat take seconds, as on Telegram.)"""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                recent = ", ".join(f"{c.method}->{c.status}" for c in self.calls[-15:]) or "none"
                name = getattr(predicate, "__name__", repr(predicate))
                raise AssertionError(
                    f"condition {name} not met within {timeout}s; last API calls: {recent}; "
                    f"unconfirmed updates: {len(self._updates)}"
                )
            await asyncio.sleep(0.01)

    # ---------------------------------------------------------------- scripted failures

    def fail_next(
        self,
        method: str,
        *,
        error_code: int,
        description: str,
        retry_after: int | None = None,
        times: int = 1,
        chat_id: int | None = None,
        when: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        """The next `times` calls of `method` (to `chat_id`, and for which `when(params)` holds) fail."""
        error = ApiError(error_code, description, retry_after)
        self._failures.append(_Failure(method.lower(), error, times, chat_id, when))

    def _take_failure(self, method: str, params: dict[str, Any]) -> ApiError | None:
        for failure in self._failures:
            if failure.when is not None and not failure.when(params):
                continue
            if failure.method == method and failure.chat_id in (None, params.get("chat_id")):
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                return failure.error
        return None

    # ---------------------------------------------------------------- HTTP plumbing

    def drop_next(self, method: str, *, times: int = 1, chat_id: int | None = None) -> None:
        """The next `times` calls of `method` (to `chat_id`) get no answer: the connection is dropped
        before the call is handled (aiogram raises TelegramNetworkError)."""
        self._drops.append(_Failure(method.lower(), ApiError(0, "connection dropped"), times, chat_id))

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._read_params(request)
        call = Call(method, params, time.monotonic())
        self.calls.append(call)
        for drop in self._drops:
            if drop.method == method.lower() and drop.chat_id in (None, params.get("chat_id")):
                drop.times -= 1
                if drop.times <= 0:
                    self._drops.remove(drop)
                call.status = -1
                if request.transport is not None:
                    request.transport.abort()
                return web.Response(status=500)
        try:
            result = await self._dispatch(request.match_info["token"], method.lower(), params)
            call.status = 200
            return web.json_response({"ok": True, "result": result})
        except ApiError as e:
            call.status = e.error_code
            if e.error_code == 429:
                self._too_many_requests += 1
            return web.json_response(e.payload(), status=e.error_code)

    async def _dispatch(self, token: str, method: str, params: dict[str, Any]) -> Any:
        if token != self.token:
            raise ApiError(401, "Unauthorized")
        # Scripted failures come first so that tests can also script methods the fake does not implement.
        if (failure := self._take_failure(method, params)) is not None:
            raise failure
        handler = self._handlers.get(method)
        if handler is None:
            raise ApiError(404, "Not Found")
        for key in JSON_FIELDS & params.keys():
            if isinstance(params[key], str):
                raise bad_request(f"can't parse {key} JSON object")
        chat_id = params.get("chat_id")
        if method in BLOCKABLE_METHODS and chat_id in self._blocked:
            if isinstance(chat_id, int) and chat_id < 0:
                raise ApiError(403, "Forbidden: bot was kicked from the group chat")
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        counted = method in SENDING_METHODS and isinstance(chat_id, int)
        if counted:
            self.flood.check(chat_id)
        result = handler(params)
        if inspect.isawaitable(result):
            result = await result
        if counted:
            self.flood.consume(chat_id)
        return result

    async def _read_params(self, request: web.Request) -> dict[str, Any]:
        raw: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json" and request.can_read_body:
            try:
                body = await request.json()
            except ValueError:
                body = None
            if isinstance(body, dict):
                raw.update(body)
        elif request.method == "POST":
            raw.update(await request.post())
        files = {k: self._file_field(v) for k, v in raw.items() if isinstance(v, web.FileField)}
        params: dict[str, Any] = {}
        for key, value in raw.items():
            if key in files:
                continue
            if isinstance(value, str) and value.startswith("attach://"):
                params[key] = files.pop(value[len("attach://") :], value)
            else:
                params[key] = self._decode_value(key, value)
        params.update(files)  # parts uploaded directly under the parameter name
        return params

    @staticmethod
    def _file_field(value: web.FileField) -> dict[str, Any]:
        content = value.file.read()
        mime = mimetypes.guess_type(value.filename or "")[0] or "application/octet-stream"
        return {"file_name": value.filename, "mime_type": mime, "content": content}

    @staticmethod
    def _decode_value(key: str, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if key in JSON_FIELDS:
            try:
                return json.loads(value)
            except ValueError:
                return value  # reported as a 400 by _dispatch
        if key in INT_FIELDS:
            try:
                return int(value)
            except ValueError:
                return value
        if key in BOOL_FIELDS:
            return value.lower() in ("true", "1")
        return value

    async def _handle_file(self, request: web.Request) -> web.Response:
        stored = self._files_by_path.get(request.match_info["path"])
        if request.match_info["token"] != self.token or stored is None:
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        return web.Response(body=stored.content, content_type=stored.document.get("mime_type"))

    def _wake_pollers(self) -> None:
        # Replacing the event wakes every waiter exactly once without a clear() race.
        event, self._update_event = self._update_event, asyncio.Event()
        event.set()

    # ---------------------------------------------------------------- chats and messages

    def _chat(
        self, chat_id: int, *, chat_type: str | None = None, first_name: str = "User", is_forum: bool = False
    ) -> dict[str, Any]:
        chat = self._chats.get(chat_id)
        if chat is None or (chat_type is not None and chat["type"] != chat_type):
            chat_type = chat_type or ("private" if chat_id > 0 else "supergroup")
            chat = {"id": chat_id, "type": chat_type}
            if chat_type == "private":
                chat["first_name"] = first_name
            else:
                chat["title"] = f"Group {chat_id}"
            self._chats[chat_id] = chat
        if is_forum and chat["type"] == "supergroup":
            chat["is_forum"] = True
        return chat

    def _seen(self, user: dict[str, Any], chat_id: int) -> None:
        """A user wrote in a chat: they are known, and in a group they are (at least) a member of it."""
        self._users[user["id"]] = dict(user)
        if chat_id < 0:
            self._members.setdefault(chat_id, {}).setdefault(user["id"], {"status": "member"})

    def _new_message_id(self, chat_id: int) -> int:
        self._last_message_id[chat_id] = self._last_message_id.get(chat_id, 0) + 1
        return self._last_message_id[chat_id]

    def _find_message(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        msg = self._messages.get(chat_id, {}).get(message_id)
        return {k: v for k, v in msg.items() if k != "reply_to_message"} if msg else None

    @staticmethod
    def _chat_id(params: dict[str, Any]) -> int:
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, int):
            raise bad_request("chat not found" if chat_id else "chat_id is empty")
        return chat_id

    def _reply_target(self, chat_id: int, params: dict[str, Any]) -> dict[str, Any] | None:
        reply = params.get("reply_parameters") or {}
        if not isinstance(reply, dict):
            raise bad_request("can't parse reply parameters JSON object")
        message_id = reply.get("message_id", params.get("reply_to_message_id"))
        if message_id is None:
            return None
        target = self._find_message(int(reply.get("chat_id", chat_id)), int(message_id))
        allow = reply.get("allow_sending_without_reply", params.get("allow_sending_without_reply"))
        if target is None and not allow:
            raise bad_request("message to be replied not found")
        return target

    @staticmethod
    def _check_markup(markup: Any) -> dict[str, Any] | None:
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        for row in markup.get("inline_keyboard", []):
            for button in row:
                if not button.get("text"):
                    raise bad_request("BUTTON_TEXT_INVALID")
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= 64:
                    raise bad_request("BUTTON_DATA_INVALID")
                if len(button) < 2:
                    raise bad_request("text buttons are unallowed in the inline keyboard")
        return markup

    def _store_bot_message(
        self, chat_id: int, params: dict[str, Any], content: dict[str, Any], sent: SentMessage
    ) -> dict[str, Any]:
        reply_to = self._reply_target(chat_id, params)
        sent.reply_to_message_id = reply_to["message_id"] if reply_to else None
        msg: dict[str, Any] = {
            "message_id": sent.message_id,
            "from": self.bot_user,
            "chat": dict(self._chat(chat_id)),
            "date": sent.date,
            **content,
        }
        if (thread := params.get("message_thread_id")) is not None:
            msg.update(message_thread_id=thread, is_topic_message=True)
        if reply_to:
            msg["reply_to_message"] = reply_to
        # Only inline keyboards are echoed in Message.reply_markup; reply keyboards are not.
        if sent.reply_markup and "inline_keyboard" in sent.reply_markup:
            msg["reply_markup"] = sent.reply_markup
        if params.get("link_preview_options"):
            msg["link_preview_options"] = params["link_preview_options"]
        self._messages.setdefault(chat_id, {})[sent.message_id] = msg
        self._sent[(chat_id, sent.message_id)] = sent
        return msg

    def _honoured(self, entities: list[dict[str, Any]], params: dict[str, Any]) -> list[dict[str, Any]]:
        """Telegram keeps the first 100 entities and silently drops the rest; the fake notes the loss."""
        kept, lost = ignored_entities(entities)
        if lost:
            self.ignored_entities.append((int(params.get("chat_id") or 0), lost))
        return kept

    def _editable(self, params: dict[str, Any]) -> tuple[SentMessage, dict[str, Any]]:
        if "inline_message_id" in params:
            raise bad_request("MESSAGE_ID_INVALID")
        chat_id = self._chat_id(params)
        message_id = params.get("message_id")
        sent = self._sent.get((chat_id, message_id)) if isinstance(message_id, int) else None
        if sent is None or sent.deleted:
            if isinstance(message_id, int) and message_id in self._messages.get(chat_id, {}):
                raise bad_request("message can't be edited")
            raise bad_request("message to edit not found")
        return sent, self._messages[chat_id][sent.message_id]

    # ---------------------------------------------------------------- method handlers

    def _get_me(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook_url:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = int(params.get("offset") or 0)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = max(float(params.get("timeout") or 0), 0.0)
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]
        # A newer getUpdates terminates an older waiting one with 409, like the real server.
        self._poll_generation += 1
        generation = self._poll_generation
        self._wake_pollers()
        deadline = time.monotonic() + timeout
        while True:
            if generation != self._poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
            if self._updates or self._closing:
                return self._updates[:limit]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            event = self._update_event
            try:
                async with asyncio.timeout(remaining):
                    await event.wait()
            except TimeoutError:
                pass

    def _delete_webhook(self, params: dict[str, Any]) -> bool:
        self.webhook_url = ""
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _set_webhook(self, params: dict[str, Any]) -> bool:
        url = str(params.get("url") or "")
        if url and not self.local_server:
            # api.telegram.org: HTTPS only, on one of four ports (a local server takes any URL).
            if not url.startswith("https://"):
                raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
            if (urlsplit(url).port or 443) not in (80, 88, 443, 8443):
                raise bad_request("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")
        elif url and not url.startswith(("http://", "https://")):
            raise bad_request("bad webhook: Wrong HTTP URL specified")
        self.webhook_url = url
        return True

    def _get_webhook_info(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }

    @staticmethod
    def _commands_key(scope: Any, language_code: Any) -> tuple[str, str]:
        return json.dumps(scope or {"type": "default"}, sort_keys=True), str(language_code or "")

    def _set_my_commands(self, params: dict[str, Any]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise bad_request("can't parse commands JSON object")
        if len(commands) > 100:
            raise bad_request("BOT_COMMANDS_TOO_MUCH")
        for cmd in commands:
            name, description = str(cmd.get("command", "")), str(cmd.get("description", ""))
            if not re.fullmatch(r"[a-z0-9_]{1,32}", name):
                raise bad_request("BOT_COMMAND_INVALID")
            if not description.strip():
                raise bad_request("command description is empty")
            if len(description) > 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        key = self._commands_key(params.get("scope"), params.get("language_code"))
        self.commands[key] = [{"command": c["command"], "description": c["description"]} for c in commands]
        return True

    def _get_my_commands(self, params: dict[str, Any]) -> list[dict[str, str]]:
        return self.commands.get(self._commands_key(params.get("scope"), params.get("language_code")), [])

    def _delete_my_commands(self, params: dict[str, Any]) -> bool:
        self.commands.pop(self._commands_key(params.get("scope"), params.get("language_code")), None)
        return True

    def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._chat_id(params)
        text, entities = parse_formatted(
            str(params.get("text") or ""), params.get("entities"), params.get("parse_mode")
        )
        entities = self._honoured(entities, params)
        if not text:
            raise bad_request("message text is empty")
        if utf16_len(text) > MAX_TEXT:
            raise bad_request("message is too long")
        markup = self._check_markup(params.get("reply_markup"))
        content: dict[str, Any] = {"text": text}
        if entities:
            content["entities"] = entities
        sent = SentMessage(
            message_id=0,
            chat_id=chat_id,
            text=text,
            entities=entities,
            reply_markup=markup,
            reply_to_message_id=None,
            message_thread_id=params.get("message_thread_id"),
            history=[(text, entities)],
            date=int(time.time()),
        )
        self._reply_target(chat_id, params)  # validate before a message id is consumed
        sent.message_id = self._new_message_id(chat_id)
        return self._store_bot_message(chat_id, params, content, sent)

    def _edit_message_text(self, params: dict[str, Any]) -> dict[str, Any]:
        sent, msg = self._editable(params)
        if sent.text is None:
            raise bad_request("there is no text in the message to edit")
        text, entities = parse_formatted(
            str(params.get("text") or ""), params.get("entities"), params.get("parse_mode")
        )
        entities = self._honoured(entities, params)
        if not text:
            raise bad_request("message text is empty")
        if utf16_len(text) > MAX_TEXT:
            raise bad_request("MESSAGE_TOO_LONG")
        markup = self._check_markup(params.get("reply_markup"))
        if (text, entities, markup) == (sent.text, sent.entities, sent.reply_markup):
            raise bad_request(
                "message is not modified: specified new message content and reply markup "
                "of the existing message are exactly the same"
            )
        sent.text, sent.entities, sent.reply_markup = text, entities, markup
        sent.history.append((text, entities))
        msg["text"] = text
        msg.pop("entities", None)
        if entities:
            msg["entities"] = entities
        return self._apply_markup(msg, markup)

    def _edit_message_reply_markup(self, params: dict[str, Any]) -> dict[str, Any]:
        sent, msg = self._editable(params)
        markup = self._check_markup(params.get("reply_markup"))
        if markup == sent.reply_markup or (not markup and not sent.reply_markup):
            raise bad_request(
                "message is not modified: specified new message content and reply markup "
                "of the existing message are exactly the same"
            )
        sent.reply_markup = markup
        return self._apply_markup(msg, markup)

    @staticmethod
    def _apply_markup(msg: dict[str, Any], markup: dict[str, Any] | None) -> dict[str, Any]:
        msg.pop("reply_markup", None)
        if markup and "inline_keyboard" in markup:
            msg["reply_markup"] = markup
        msg["edit_date"] = int(time.time())
        return msg

    def _delete_message(self, params: dict[str, Any]) -> bool:
        chat_id = self._chat_id(params)
        message_id = params.get("message_id")
        if not isinstance(message_id, int) or self._messages.get(chat_id, {}).pop(message_id, None) is None:
            raise bad_request("message to delete not found")
        if (sent := self._sent.get((chat_id, message_id))) is not None:
            sent.deleted = True
        return True

    def _send_chat_action(self, params: dict[str, Any]) -> bool:
        chat_id = self._chat_id(params)
        action = params.get("action")
        if action not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        self._actions.setdefault(chat_id, []).append(str(action))
        return True

    def _answer_callback_query(self, params: dict[str, Any]) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        if query_id not in self._pending_callbacks:
            raise bad_request("query is too old and response timeout expired or query ID is invalid")
        if len(str(params.get("text") or "")) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        self._pending_callbacks.discard(query_id)
        self.callback_answers.append(dict(params))
        return True

    def _send_message_draft(self, params: dict[str, Any]) -> bool:
        chat_id = self._chat_id(params)
        if chat_id <= 0:
            raise bad_request("can't send drafts to this chat")
        draft_id = params.get("draft_id")
        if not isinstance(draft_id, int) or draft_id == 0:
            raise bad_request("DRAFT_ID_INVALID")
        text, entities = parse_formatted(
            str(params.get("text") or ""), params.get("entities"), params.get("parse_mode")
        )
        entities = self._honoured(entities, params)
        if utf16_len(text) > MAX_TEXT:
            raise bad_request("message is too long")
        self._drafts.setdefault(chat_id, []).append(
            {
                "draft_id": draft_id,
                "text": text,
                "entities": entities,
                "message_thread_id": params.get("message_thread_id"),
                "can_stop": bool(params.get("can_stop")),
                "keep_on_stop": bool(params.get("keep_on_stop")),
                "at": time.monotonic(),
            }
        )
        return True

    def _get_chat(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(self._chat_id(params))
        gifts = dict.fromkeys(
            (
                "unlimited_gifts",
                "limited_gifts",
                "unique_gifts",
                "premium_subscription",
                "gifts_from_channels",
            ),
            False,
        )
        return {**chat, "accent_color_id": 0, "max_reaction_count": 11, "accepted_gift_types": gifts}

    def _get_chat_member(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._chat_id(params)
        user_id = params.get("user_id")
        if chat_id not in self._chats:
            raise bad_request("chat not found")
        if not isinstance(user_id, int):
            raise bad_request("user_id is empty" if user_id in (None, "") else "invalid user_id specified")
        if user_id == self.bot_id:
            return {"status": "member", "user": self.bot_user}
        user = self._users.get(user_id)
        if user is None:
            raise bad_request("user not found")
        public = {
            key: user[key] for key in ("id", "is_bot", "first_name", "last_name", "username") if key in user
        }
        if chat_id > 0:  # a private chat has one member besides the bot: its user
            if user_id != chat_id:
                raise bad_request("user not found")
            return {"status": "member", "user": public}
        fields = dict(self._members.get(chat_id, {}).get(user_id, {"status": "left"}))
        status = fields.pop("status")
        base: dict[str, Any] = {}
        if status == "creator":
            base = {"is_anonymous": False}
        elif status == "administrator":
            base = {"is_anonymous": False, **ADMIN_RIGHTS}
        elif status == "restricted":
            base = {"is_member": True, "until_date": 0, **RESTRICTED_RIGHTS}
        elif status == "kicked":
            base = {"until_date": 0}
        return {"status": status, "user": public, **base, **fields}

    def _send_document(self, params: dict[str, Any]) -> dict[str, Any]:
        self._chat_id(params)  # an unknown chat fails before the upload is stored
        doc = params.get("document")
        if isinstance(doc, dict) and "content" in doc:
            if not doc["content"]:
                raise bad_request("file must be non-empty")
            document = self.add_file(doc["content"], doc["file_name"] or "document", doc["mime_type"])
        elif isinstance(doc, str) and doc in self._files:
            document = dict(self._files[doc].document)
        elif doc:
            raise bad_request("wrong file identifier/HTTP URL specified")
        else:
            raise bad_request("there is no document in the request")
        return self._media_message(params, None, "document", document)

    def _uploaded(self, params: dict[str, Any], field: str, limit: int) -> bytes:
        value = params.get(field)
        if isinstance(value, dict) and "content" in value:
            content: bytes = value["content"]
            if not content:
                raise bad_request("file must be non-empty")
            if len(content) > limit:
                raise ApiError(413, "Request Entity Too Large")
            return content
        if isinstance(value, str) and value in self._files:
            return self._files[value].content
        if value:
            raise bad_request("wrong file identifier/HTTP URL specified")
        raise bad_request(f"there is no {field} in the request")

    def _media_message(
        self, params: dict[str, Any], content: bytes | None, kind: str, media: Any
    ) -> dict[str, Any]:
        chat_id = self._chat_id(params)
        caption, entities = parse_formatted(
            str(params.get("caption") or ""), params.get("caption_entities"), params.get("parse_mode")
        )
        entities = self._honoured(entities, params)
        if utf16_len(caption) > MAX_CAPTION:
            raise bad_request("message caption is too long")
        markup = self._check_markup(params.get("reply_markup"))
        self._reply_target(chat_id, params)  # validate before a message id is consumed
        body: dict[str, Any] = {kind: media}
        if caption:
            body["caption"] = caption
        if entities:
            body["caption_entities"] = entities
        sent = SentMessage(
            message_id=self._new_message_id(chat_id),
            chat_id=chat_id,
            text=None,
            entities=entities,
            reply_markup=markup,
            reply_to_message_id=None,
            message_thread_id=params.get("message_thread_id"),
            history=[(None, entities)],
            date=int(time.time()),
            caption=caption or None,
            content=content,
            **{kind: media},
        )
        return self._store_bot_message(chat_id, params, body, sent)

    def _send_voice(self, params: dict[str, Any]) -> dict[str, Any]:
        content = self._uploaded(params, "voice", MAX_UPLOAD)
        # Telegram plays OGG/Opus (also MP3, M4A) as a voice message; anything else it refuses.
        if not (content.startswith(b"OggS") or content[:3] == b"ID3" or content[4:8] == b"ftyp"):
            raise bad_request("VOICE_MESSAGES_FORBIDDEN" if not content else "wrong file type")
        voice = self._register(content, "voice", "oga", {"duration": 1, "mime_type": "audio/ogg"}, None)
        return self._media_message(params, content, "voice", voice)

    def _send_photo(self, params: dict[str, Any]) -> dict[str, Any]:
        content = self._uploaded(params, "photo", MAX_PHOTO_UPLOAD)
        if not (content.startswith(b"\xff\xd8\xff") or content.startswith(b"\x89PNG\r\n\x1a\n")):
            raise bad_request("IMAGE_PROCESS_FAILED")
        size = self._register(content, "photos", "jpg", {"width": 1024, "height": 1024}, None)
        return self._media_message(params, content, "photo", [size])

    def _get_file(self, params: dict[str, Any]) -> dict[str, Any]:
        stored = self._files.get(str(params.get("file_id") or ""))
        if stored is None:
            raise bad_request("invalid file_id")
        if stored.size > MAX_DOWNLOAD:
            raise bad_request("file is too big")
        doc = stored.document
        return {
            "file_id": doc["file_id"],
            "file_unique_id": doc["file_unique_id"],
            "file_size": stored.size,
            "file_path": stored.file_path,
        }
