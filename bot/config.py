"""Every knob of the bot, read from the environment (and `.env`) and checked once at start."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    Field,
    InstanceOf,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.assistant.modes import ModeBook, builtin_modes, load_modes
from bot.assistant.speech import recognition_language
from bot.assistant.yandex_sdk import DEFAULT_GRPC_ENDPOINT

OFFICIAL_BOT_API = "https://api.telegram.org"


def is_official_bot_api(url: str) -> bool:
    """Whether `url` is Telegram's own Bot API server (which wants HTTPS webhooks), not a local one."""
    host = (urlsplit(url.strip()).hostname or "").lower().rstrip(".")
    return host == "api.telegram.org"


# Telegram's rule for setWebhook's secret_token.
WEBHOOK_SECRET_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,256}")

DEFAULT_INSTRUCTIONS = (
    "You are a helpful, friendly assistant in a Telegram chat. Answer clearly and concisely, "
    "in the language of the user's question. Use Markdown for structure when it helps "
    "(lists, bold, code blocks). If you do not know something, say so instead of guessing."
)


class YandexAuth(StrEnum):
    """Which credential every Yandex call uses (YANDEX_AUTH); unset: the static secret that is set."""

    API_KEY = "api_key"  # YANDEX_API_KEY, sent as `Api-Key <key>`
    IAM_TOKEN = "iam_token"  # YANDEX_IAM_TOKEN as given: it dies within 12 hours and cannot be renewed
    OAUTH = "oauth"  # YANDEX_OAUTH_TOKEN exchanged for IAM tokens, renewed before they expire
    METADATA = "metadata"  # the VM's / container's service account through the metadata service
    YC = "yc"  # the `yc` CLI profile (YC_PROFILE), for local development


class StreamMode(StrEnum):
    """How an answer is shown while the model writes it."""

    EDIT = "edit"  # one reply message, edited as text arrives
    DRAFT = "draft"  # Telegram's native drafts in private chats (edit elsewhere)
    AUTO = "auto"  # draft in private chats, edit elsewhere


IdList = Annotated[frozenset[int], NoDecode]


def complete_model_uri(model: str, folder_id: str) -> str:
    """Yandex wants `gpt://<folder>/<model>`; a bare model name is completed with the folder."""
    if "://" in model:
        return model
    return f"gpt://{folder_id}/{model}"


class Settings(BaseSettings):
    """The bot's configuration. Field names are the environment variable names (case-insensitive)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # Telegram
    bot_token: SecretStr
    telegram_api_url: str = OFFICIAL_BOT_API
    telegram_timeout: Annotated[float, Field(gt=0)] = 30.0
    # How long an answer waits out Telegram's flood bans of its chat (in all) before giving up showing it;
    # the answer is in the thread either way.
    telegram_max_flood_wait: Annotated[float, Field(ge=0, le=86400)] = 300.0

    # Yandex AI Studio
    yandex_api_key: SecretStr | None = None
    yandex_iam_token: SecretStr | None = None
    yandex_auth: YandexAuth | None = None
    yandex_oauth_token: SecretStr | None = None
    # The names Yandex's SDK and CLI read, so one environment serves both.
    yc_metadata_addr: str = "169.254.169.254"
    yc_profile: str | None = None
    yandex_iam_url: str = "https://iam.api.cloud.yandex.net/iam/v1/tokens"
    yandex_folder_id: str
    yandex_base_url: str = "https://ai.api.cloud.yandex.net/v1"
    yandex_model: str = "yandexgpt-5.1"
    yandex_timeout: Annotated[float, Field(gt=0)] = 60.0
    yandex_max_retries: Annotated[int, Field(ge=0, le=10)] = 2
    # The folder's quota of concurrent generations (Yandex's default: 10), kept by all processes together.
    yandex_max_concurrent_generations: Annotated[int, Field(ge=1, le=1000)] = 10
    # How long an answer keeps retrying Yandex's 429 (quota exhausted) before the user is told.
    yandex_rate_limit_wait_seconds: Annotated[float, Field(ge=0, le=600)] = 30.0
    yandex_data_logging: bool = False
    assistant_instructions: str = DEFAULT_INSTRUCTIONS
    temperature: Annotated[float, Field(ge=0, le=1)] = 0.3
    max_output_tokens: Annotated[int, Field(ge=1, le=32000)] = 2000

    # Yandex SDK (gRPC: SpeechKit, YandexART), with the same credential and folder as the text model.
    yandex_grpc_endpoint: str = DEFAULT_GRPC_ENDPOINT  # the SDK's endpoint discovery
    yandex_grpc_insecure: bool = False  # plaintext channels: local test servers only
    yandex_grpc_timeout: Annotated[float, Field(gt=0, le=600)] = 30.0
    # Voice questions and spoken answers (SpeechKit)
    speech_language: str | None = None  # unset or "auto": SpeechKit detects it
    voice_max_seconds: Annotated[int, Field(ge=1, le=300)] = 300
    voice_replies: bool = False  # spoken answers on in every chat that has not chosen
    tts_voice: str | None = None  # SpeechKit's voice (e.g. alena, filipp, john); unset: its default
    tts_max_chars: Annotated[int, Field(ge=50, le=5000)] = 1000
    # Photo questions: a vision-capable model; unset, photos are politely refused
    yandex_vision_model: str | None = None
    vision_unavailable_text: str | None = None  # the refusal, instead of the built-in one
    # Pictures on request (YandexART)
    image_timeout: Annotated[float, Field(gt=0, le=600)] = 120.0

    # Per-chat assistant: MODES_FILE is read and checked at start (a bad file stops the bot like any bad
    # setting); unset, the built-in modes apply. ALLOWED_MODELS are what /model offers.
    modes_file: Annotated[InstanceOf[ModeBook] | None, NoDecode] = None
    allowed_models: Annotated[tuple[str, ...], NoDecode] = ()

    # Threads
    redis_url: SecretStr | None = None
    redis_prefix: str = "tgbot:"
    history_max_messages: Annotated[int, Field(ge=1)] = 30
    history_max_chars: Annotated[int, Field(ge=200)] = 16000
    thread_ttl_days: Annotated[float, Field(gt=0)] = 30.0
    turn_lease_seconds: Annotated[float, Field(ge=5)] = 30.0
    # A process's heartbeat TTL, and how often every process looks for answers of dead ones: a crashed
    # answer is closed within about their sum.
    process_heartbeat_seconds: Annotated[float, Field(ge=2, le=120)] = 8.0
    recovery_sweep_seconds: Annotated[float, Field(gt=0, le=300)] = 5.0

    burst_seconds: Annotated[float, Field(ge=0, le=10)] = 1.5
    queue_notice_seconds: Annotated[float, Field(ge=0)] = 5.0
    shutdown_grace_seconds: Annotated[float, Field(ge=0)] = 20.0

    # Per-user limits (admins are exempt)
    rate_limit_per_minute: Annotated[int, Field(ge=0)] = 20
    daily_token_budget: Annotated[int, Field(ge=0)] = 0

    # Streaming
    stream_mode: StreamMode = StreamMode.EDIT
    stream_interval: Annotated[float, Field(gt=0)] = 1.0
    stream_group_interval: Annotated[float, Field(gt=0)] = 3.0

    # Knowledge base (retrieval over the owner's documents)
    yandex_vector_store_id: str | None = None
    file_search_max_results: Annotated[int, Field(ge=1, le=50)] = 5
    web_search: bool = False
    web_search_domains: Annotated[tuple[str, ...], NoDecode] = ()
    web_search_region: str | None = None

    # Who may use the bot
    allowed_user_ids: IdList = frozenset()
    allowed_chat_ids: IdList = frozenset()
    admin_user_ids: IdList = frozenset()

    # Webhook mode (WEBHOOK_URL set) and health checks
    webhook_url: str | None = None
    # Validated even when unset: it is required exactly when WEBHOOK_URL is set.
    webhook_secret: Annotated[SecretStr | None, Field(validate_default=True)] = None
    webhook_host: str = "0.0.0.0"
    webhook_port: Annotated[int, Field(ge=0, le=65535)] = 8080  # 0: any free port (tests)
    webhook_path: str = "/telegram/webhook"
    health_host: str = "127.0.0.1"
    health_port: Annotated[int | None, Field(ge=0, le=65535)] = None
    update_dedupe_ttl_seconds: Annotated[int, Field(ge=60)] = 86400

    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"
    # Chat ids are personal data: in log lines only when the owner asks for them.
    log_chat_ids: bool = False

    @field_validator("allowed_user_ids", "allowed_chat_ids", "admin_user_ids", mode="before")
    @classmethod
    def _id_list(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return frozenset(int(part) for part in value.replace(";", ",").split(",") if part.strip())
            except ValueError:
                raise ValueError("must be comma-separated numeric Telegram ids") from None
        return value

    @field_validator("web_search_domains", mode="before")
    @classmethod
    def _domain_list(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("modes_file", mode="before")
    @classmethod
    def _read_modes(cls, value: object) -> object:
        if isinstance(value, str | Path):
            if not str(value).strip():
                return None  # MODES_FILE= (empty): the built-in modes
            return load_modes(Path(str(value).strip()).expanduser())
        return value

    @field_validator("allowed_models", mode="before")
    @classmethod
    def _model_list(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list | tuple):
            for name in value:
                if not isinstance(name, str) or not name or any(char.isspace() for char in name):
                    raise ValueError("must be comma-separated model names or gpt:// URIs, without spaces")
            return tuple(dict.fromkeys(value))  # in the owner's order, each once
        return value

    @field_validator("speech_language")
    @classmethod
    def _speech_language(cls, value: str | None) -> str | None:
        if value is None or not value.strip() or value.strip().lower() == "auto":
            return None
        recognition_language(value)  # ValueError names the language SpeechKit does not know
        return value.strip()

    @field_validator("yandex_folder_id")
    @classmethod
    def _folder_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @field_validator("webhook_url")
    @classmethod
    def _webhook_https(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not value.strip():
            return None  # WEBHOOK_URL= (empty) means polling, like leaving it out
        if value is None or value.startswith("https://"):
            return value
        local_server = not is_official_bot_api(str(info.data.get("telegram_api_url") or OFFICIAL_BOT_API))
        if value.startswith("http://") and local_server:
            return value  # a local Bot API server delivers over plain HTTP, to any address and port
        if value.startswith("http://"):
            raise ValueError(
                "must be an https:// URL: api.telegram.org delivers webhooks over HTTPS only "
                "(http:// works with a local Bot API server, TELEGRAM_API_URL)"
            )
        raise ValueError("must be an https:// URL (or http:// with a local Bot API server)")

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            value = None
        if value is None:
            if info.data.get("webhook_url"):
                raise ValueError("is required when WEBHOOK_URL is set (Telegram sends it with every update)")
            return None
        if not WEBHOOK_SECRET_PATTERN.fullmatch(value.get_secret_value()):
            raise ValueError("must be 1-256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule)")
        return value

    @field_validator("webhook_path")
    @classmethod
    def _absolute_path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with /")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        # Catching a pasted wrong value here beats a 401 later. aiogram's validate_token makes the same
        # check, but importing aiogram costs seconds, and the console chat and the kb CLI read these
        # settings without needing Telegram at all.
        token = value.get_secret_value()
        bot_id, colon, secret = token.partition(":")
        if not colon or not bot_id.isdigit() or not secret or any(char.isspace() for char in token):
            raise ValueError("does not look like a bot token (expected '<digits>:<secret>' from @BotFather)")
        return value

    @model_validator(mode="after")
    def _insecure_only_locally(self) -> Self:
        if self.yandex_grpc_insecure and self.yandex_grpc_endpoint == DEFAULT_GRPC_ENDPOINT:
            raise ValueError(
                "YANDEX_GRPC_INSECURE is for local test servers: set YANDEX_GRPC_ENDPOINT to one"
            )
        return self

    @model_validator(mode="after")
    def _one_credential(self) -> Self:
        kind = self.yandex_auth_kind
        if kind is None:
            raise ValueError(
                "set YANDEX_API_KEY or YANDEX_IAM_TOKEN, or YANDEX_AUTH=metadata, yc or oauth "
                "(with YANDEX_OAUTH_TOKEN)"
            )
        needed = {
            YandexAuth.API_KEY: ("YANDEX_API_KEY", self.yandex_api_key),
            YandexAuth.IAM_TOKEN: ("YANDEX_IAM_TOKEN", self.yandex_iam_token),
            YandexAuth.OAUTH: ("YANDEX_OAUTH_TOKEN", self.yandex_oauth_token),
        }
        if kind in needed and needed[kind][1] is None:
            raise ValueError(f"YANDEX_AUTH={kind.value} needs {needed[kind][0]}")
        return self

    @property
    def yandex_auth_kind(self) -> YandexAuth | None:
        """YANDEX_AUTH, or else the kind of the static secret that is set (an API key first)."""
        if self.yandex_auth is not None:
            return self.yandex_auth
        if self.yandex_api_key is not None:
            return YandexAuth.API_KEY
        if self.yandex_iam_token is not None:
            return YandexAuth.IAM_TOKEN
        if self.yandex_oauth_token is not None:
            return YandexAuth.OAUTH
        return None

    def secrets(self) -> list[str]:
        """Every secret value in the settings, for the log redaction."""
        values = [
            self.bot_token,
            self.yandex_api_key,
            self.yandex_iam_token,
            self.yandex_oauth_token,
            self.redis_url,
            self.webhook_secret,
        ]
        return [value.get_secret_value() for value in values if value is not None]

    @property
    def model_uri(self) -> str:
        """YANDEX_MODEL as the URI Yandex wants (see `complete_model_uri`)."""
        return self.complete_model_uri(self.yandex_model)

    @property
    def vision_model_uri(self) -> str | None:
        """YANDEX_VISION_MODEL as a URI (a bare name completed like YANDEX_MODEL); None when unset."""
        model = (self.yandex_vision_model or "").strip()
        return self.complete_model_uri(model) if model else None

    def complete_model_uri(self, model: str) -> str:
        """Any model name of the settings (YANDEX_MODEL, ALLOWED_MODELS, a mode's) as a `gpt://` URI."""
        return complete_model_uri(model, self.yandex_folder_id)

    @property
    def modes(self) -> ModeBook:
        """The modes chats pick from: MODES_FILE's, or the built-in set (its assistant follows
        ASSISTANT_INSTRUCTIONS)."""
        return self.modes_file or builtin_modes(self.assistant_instructions)

    @property
    def thread_ttl_seconds(self) -> int:
        return max(1, int(self.thread_ttl_days * 86400))


class SettingsError(Exception):
    """Raised with one readable message naming every configuration problem."""


def describe_validation_error(error: ValidationError) -> str:
    """Turn pydantic's error into lines a person can act on, naming the environment variables."""
    lines = []
    for item in error.errors():
        name = ".".join(str(part) for part in item["loc"]).upper() or "configuration"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "missing":
            message = "is required but not set"
        lines.append(f"  {name}: {message}")
    return "Invalid configuration:\n" + "\n".join(lines)


def load_settings(**overrides: object) -> Settings:
    """Read the settings; raise SettingsError (never a traceback-worthy error) when they are wrong."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise SettingsError(describe_validation_error(error)) from None
