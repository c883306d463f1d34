"""Every Redis key the bot uses, in one place.

All keys live under `REDIS_PREFIX`, so several bots can share one Redis. `CATALOGUE` lists each key shape
with what it holds; the README's key table is checked against it by a test, so the two cannot drift apart.
A "chat key" is `ChatTarget.key`: the chat id, plus `:<topic>` for a forum topic (each has its own thread),
or `console:<name>` for a thread of the console chat (never a number, so never a Telegram chat's).
"""

from __future__ import annotations

from dataclasses import dataclass

# (shape, what it holds): the README's "Redis keys" table shows exactly these rows.
CATALOGUE: tuple[tuple[str, str], ...] = (
    ("chat:<chat key>:thread", "the id of the chat's current thread"),
    (
        "chat:<chat key>:settings",
        "hash: the chat's own mode, instructions, model and spoken answers (kept by /reset)",
    ),
    ("chat:<chat key>:retry", "the id of the message with the chat's ↻ button (its last answer)"),
    (
        "thread:<id>:messages",
        "the thread's messages, oldest first (JSON: role, text, time, status, citations, author)",
    ),
    ("thread:<id>:trimmed", "set once the user was told that only the recent part of the thread is sent"),
    ("turn:<chat key>", "the chat's turn lock (one answer at a time, with a renewed lease)"),
    ("answering", "hash: chat key → the answer being streamed there (for crash recovery)"),
    ("answering:owners", "hash: chat key → the id of the process streaming the answer there"),
    ("process:<id>:alive", "a bot process's heartbeat (short TTL): its journalled answers are still live"),
    ("stop", "pub/sub channel of stop requests (chat keys), so /stop reaches the streaming process"),
    ("update:<bot>:<update>", "an update id already handled (drops Telegram's re-deliveries)"),
    ("rate:<user>:<minute>", "questions the user asked in that minute"),
    ("tokens:<user>:<day>", "model tokens the user spent that UTC day"),
    ("questions:<user>:<day>", "questions the user asked that UTC day"),
    ("stats:<day>:totals", "hash: answers, tokens, stopped answers and failures by kind that UTC day"),
    ("stats:<day>:chats", "HyperLogLog of the chats (and topics) answered that UTC day"),
    ("stats:<day>:users", "HyperLogLog of the users answered that UTC day"),
    ("refused:<user>:<chat>", "a refusal already given today to someone not on the allow-lists"),
    ("kb:vector_store_id", "the knowledge base's vector store id, when the bot created the store"),
    ("kb:documents", "hash: file id → the document's name, size, status and upload time"),
    (
        "quota:queue",
        "sorted set: questions waiting for a generation slot → their arrival"
        " (microseconds, Telegram's order for a message)",
    ),
    ("quota:waiters", "sorted set: waiting questions → their process's heartbeat deadline"),
    ("quota:holders", "sorted set: questions holding a generation slot → their lease deadline"),
    (
        "quota:seq",
        "counter of arrivals, for callers of the quota that give no arrival time (the bot always does)",
    ),
    ("quota:moved", "pub/sub channel: the generation line moved (a slot freed, someone admitted or left)"),
    (
        "telegram:budget",
        "hash: the bot-wide token bucket of Telegram calls (tokens, time), shared by all processes",
    ),
    (
        "telegram:heads",
        "sorted set: each process's first caller waiting for the bot-wide budget → when it began (ms)",
    ),
    (
        "telegram:heads:seen",
        "hash: process → when its first waiting caller last asked (ms; one that stops asking is passed over)",
    ),
    (
        "telegram:chat:<chat>",
        "a chat's recent calls: a group's last minute (sorted set), a private chat's bucket (hash)",
    ),
    ("telegram:ban:<chat>", "set while Telegram's flood ban of that chat lasts (expires with it)"),
)


@dataclass(frozen=True, slots=True)
class RedisKeys:
    """Builds the bot's Redis keys under one prefix; each method is one row of `CATALOGUE`."""

    prefix: str

    def chat_thread(self, chat_key: str) -> str:
        return f"{self.prefix}chat:{chat_key}:thread"

    def chat_settings(self, chat_key: str) -> str:
        return f"{self.prefix}chat:{chat_key}:settings"

    def retry_button(self, chat_key: str) -> str:
        return f"{self.prefix}chat:{chat_key}:retry"

    def thread_messages(self, thread_id: str) -> str:
        return f"{self.prefix}thread:{thread_id}:messages"

    def thread_trimmed(self, thread_id: str) -> str:
        return f"{self.prefix}thread:{thread_id}:trimmed"

    def turn(self, chat_key: str) -> str:
        return f"{self.prefix}turn:{chat_key}"

    @property
    def answering(self) -> str:
        return f"{self.prefix}answering"

    @property
    def answering_owners(self) -> str:
        return f"{self.prefix}answering:owners"

    def process_alive(self, process_id: str) -> str:
        return f"{self.prefix}process:{process_id}:alive"

    @property
    def stop_channel(self) -> str:
        return f"{self.prefix}stop"

    def update(self, bot_id: int, update_id: int) -> str:
        return f"{self.prefix}update:{bot_id}:{update_id}"

    def rate(self, user_id: int, minute: int) -> str:
        return f"{self.prefix}rate:{user_id}:{minute}"

    def tokens(self, user_id: int, day: str) -> str:
        return f"{self.prefix}tokens:{user_id}:{day}"

    def questions(self, user_id: int, day: str) -> str:
        return f"{self.prefix}questions:{user_id}:{day}"

    def stats_totals(self, day: str) -> str:
        return f"{self.prefix}stats:{day}:totals"

    def stats_chats(self, day: str) -> str:
        return f"{self.prefix}stats:{day}:chats"

    def stats_users(self, day: str) -> str:
        return f"{self.prefix}stats:{day}:users"

    def refused(self, user_id: int | None, chat_id: int) -> str:
        return f"{self.prefix}refused:{user_id}:{chat_id}"

    @property
    def kb_vector_store_id(self) -> str:
        return f"{self.prefix}kb:vector_store_id"

    @property
    def kb_documents(self) -> str:
        return f"{self.prefix}kb:documents"

    @property
    def quota_queue(self) -> str:
        return f"{self.prefix}quota:queue"

    @property
    def quota_waiters(self) -> str:
        return f"{self.prefix}quota:waiters"

    @property
    def quota_holders(self) -> str:
        return f"{self.prefix}quota:holders"

    @property
    def quota_sequence(self) -> str:
        return f"{self.prefix}quota:seq"

    @property
    def quota_moved(self) -> str:
        return f"{self.prefix}quota:moved"

    @property
    def telegram_budget(self) -> str:
        return f"{self.prefix}telegram:budget"

    @property
    def telegram_heads(self) -> str:
        return f"{self.prefix}telegram:heads"

    @property
    def telegram_heads_seen(self) -> str:
        return f"{self.prefix}telegram:heads:seen"

    def telegram_chat(self, chat_id: int) -> str:
        return f"{self.prefix}telegram:chat:{chat_id}"

    def telegram_ban(self, chat_id: int) -> str:
        return f"{self.prefix}telegram:ban:{chat_id}"
