"""Settings, start-up errors and secret redaction."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from bot.config import SettingsError, load_settings
from bot.logs import SecretRedactor

REQUIRED = {"bot_token": "123:abc", "yandex_api_key": "key-123456", "yandex_folder_id": "b1gfolder"}


def test_bare_model_name_becomes_a_uri() -> None:
    settings = load_settings(_env_file=None, **REQUIRED)
    assert settings.model_uri == "gpt://b1gfolder/yandexgpt-5.1"
    full = load_settings(_env_file=None, **REQUIRED, yandex_model="gpt://other/qwen3-235b-a22b-fp8")
    assert full.model_uri == "gpt://other/qwen3-235b-a22b-fp8"


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(_env_file=None, bot_token="nonsense", temperature=3, stream_mode="fax")
    message = str(caught.value)
    for name in ("BOT_TOKEN", "YANDEX_FOLDER_ID", "TEMPERATURE", "STREAM_MODE"):
        assert name in message
    assert "nonsense" not in message


def test_a_missing_credential_is_reported() -> None:
    with pytest.raises(SettingsError, match="YANDEX_API_KEY or YANDEX_IAM_TOKEN"):
        load_settings(_env_file=None, bot_token="1:x", yandex_folder_id="f")


def test_python_m_bot_exits_2_with_a_clear_message(tmp_path) -> None:
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("BOT_", "YANDEX_", "REDIS_"))
    }
    result = subprocess.run(
        [sys.executable, "-m", "bot"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "BOT_TOKEN" in result.stderr and "YANDEX_FOLDER_ID" in result.stderr
    assert "Traceback" not in result.stderr


def test_secrets_never_reach_the_log(caplog: pytest.LogCaptureFixture) -> None:
    redactor = SecretRedactor(["123456:SECRET-TOKEN", "api-key-secret"])
    logger = logging.getLogger("test.redaction")
    logger.addFilter(redactor)
    try:
        with caplog.at_level(logging.INFO, logger="test.redaction"):
            logger.info("calling https://api.telegram.org/bot%s/getMe", "123456:SECRET-TOKEN")
            try:
                raise RuntimeError("header Bearer api-key-secret rejected")
            except RuntimeError:
                logger.exception("failed")
    finally:
        logger.removeFilter(redactor)
    assert "SECRET" not in caplog.text and "api-key-secret" not in caplog.text
    assert "bot***/getMe" in caplog.text


def test_url_quoted_secrets_are_redacted_too() -> None:
    # aiohttp and httpx exceptions print the request URL, where a bot token's ':' may be quoted.
    redactor = SecretRedactor(["123456:SECRET-TOKEN", "key with/slash+plus"])
    redactor.add("t1.live+token/value")
    text = (
        "ClientResponseError: 502, url='https://api.telegram.org/bot123456%3ASECRET-TOKEN/getUpdates' "
        "key=key%20with%2Fslash%2Bplus q=key+with%2Fslash%2Bplus path=key%20with/slash%2Bplus "
        "token=t1.live%2Btoken%2Fvalue"
    )
    redacted = redactor.redact(text)
    assert "SECRET" not in redacted and "slash" not in redacted and "live" not in redacted, redacted
    assert "bot***/getUpdates" in redacted


def test_modes_file_and_allowed_models(tmp_path) -> None:
    modes = tmp_path / "modes.yaml"
    modes.write_text("modes:\n  - name: only\n    description: d\n    instructions: Be brief.\n")
    settings = load_settings(
        _env_file=None, **REQUIRED, modes_file=str(modes), allowed_models=" yandexgpt-5-lite, gpt://x/y ,"
    )
    assert [mode.name for mode in settings.modes.modes] == ["only"]
    assert settings.allowed_models == ("yandexgpt-5-lite", "gpt://x/y")
    assert settings.complete_model_uri("yandexgpt-5-lite") == "gpt://b1gfolder/yandexgpt-5-lite"
    assert settings.complete_model_uri("gpt://x/y") == "gpt://x/y"
    default = load_settings(_env_file=None, **REQUIRED, assistant_instructions="Own words.", modes_file="")
    assert default.modes.source == "built-in" and default.modes.default.instructions == "Own words."


def test_a_bad_modes_file_is_a_settings_error_among_the_others(tmp_path) -> None:
    modes = tmp_path / "modes.toml"
    modes.write_text("[[modes]]\nname = 'x'\n")
    with pytest.raises(SettingsError) as caught:
        load_settings(_env_file=None, **REQUIRED, modes_file=str(modes), temperature=5, allowed_models="a b")
    message = str(caught.value)
    assert "MODES_FILE" in message and "'description' is required" in message
    assert "TEMPERATURE" in message and "ALLOWED_MODELS" in message


def test_python_m_bot_exits_2_on_a_bad_modes_file(tmp_path) -> None:
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("BOT_", "YANDEX_", "REDIS_"))
    }
    env.update(BOT_TOKEN="1:x", YANDEX_API_KEY="k", YANDEX_FOLDER_ID="f", MODES_FILE=str(tmp_path / "m.yml"))
    (tmp_path / "m.yml").write_text(
        "modes:\n  - name: x\n    description: d\n    instructions: i\n    tone: warm\n"
    )
    for command in (["bot"], ["bot", "chat", "--once", "hi"]):
        result = subprocess.run(
            [sys.executable, "-m", *command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2, result.stderr
        assert "MODES_FILE" in result.stderr and "unknown key 'tone'" in result.stderr
        assert "Traceback" not in result.stderr


def test_live_tokens_and_anything_shaped_like_a_yandex_credential_are_redacted() -> None:
    redactor = SecretRedactor(["static-secret-value"])
    redactor.add("live-token-value-1")
    iam = "t1.9euelZqVkJiOm5eVnZGXypvNmJKek-3rnpWakpaWz5OSyZzIy8aTmJaOyZXl8_dDEldh-e9XPz1Y.Cl5D7rpjI4V5"
    text = (
        f"static-secret-value live-token-value-1 Bearer {iam} Api-Key AQVNzKx3yq5JvHkYmN0aBcD1e2F3g4H5i6J7 "
        "oauth y0_AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA and a t1.short"
    )
    assert redactor.redact(text) == "*** *** Bearer *** Api-Key *** oauth *** and a t1.short"
    # Only recent live tokens are remembered one by one (older ones have long expired).
    for index in range(40):
        redactor.add(f"rotated-token-{index:03d}")
    assert redactor.redact("rotated-token-039") == "***"
    assert redactor.redact("rotated-token-000") == "rotated-token-000"
    assert redactor.redact("static-secret-value") == "***"


def test_media_settings_are_checked_at_start() -> None:
    settings = load_settings(_env_file=None, **REQUIRED, yandex_vision_model="gemma-3-27b-it")
    assert settings.vision_model_uri == f"gpt://{settings.yandex_folder_id}/gemma-3-27b-it"
    assert load_settings(_env_file=None, **REQUIRED).vision_model_uri is None
    assert load_settings(_env_file=None, **REQUIRED, speech_language="auto").speech_language is None
    assert load_settings(_env_file=None, **REQUIRED, speech_language="ru").speech_language == "ru"
    with pytest.raises(SettingsError) as error:
        load_settings(
            _env_file=None, **REQUIRED, speech_language="xx", voice_max_seconds=301, tts_max_chars=9
        )
    message = str(error.value)
    assert all(name in message.upper() for name in ("SPEECH_LANGUAGE", "VOICE_MAX_SECONDS", "TTS_MAX_CHARS"))
    with pytest.raises(SettingsError, match="YANDEX_GRPC_INSECURE"):
        load_settings(_env_file=None, **REQUIRED, yandex_grpc_insecure=True)
    local = load_settings(
        _env_file=None, **REQUIRED, yandex_grpc_insecure=True, yandex_grpc_endpoint="127.0.0.1:50051"
    )
    assert local.yandex_grpc_insecure
