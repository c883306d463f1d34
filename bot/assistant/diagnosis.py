"""Failures that are the bot's set-up, not the moment, explained once in the log for whoever runs it.

Yandex refusing the credential (401/403) or the model (400 on the model URI: unparsable, unknown or
retired) will fail every question until the settings change. Each user is told so in plain words
(FailureKind.ACCESS_DENIED / MODEL_UNAVAILABLE); the owner gets one ERROR line naming the setting to fix
the first time it happens, instead of the same warning for every question.
"""

from __future__ import annotations

import logging

import openai

from bot.assistant.client import is_model_error
from bot.assistant.credentials import Credentials, describe_auth_failure

log = logging.getLogger(__name__)

# Named in the hint: the model Yandex's docs use in their examples, available to every folder.
EXAMPLE_MODEL = "yandexgpt-5.1"


class ServiceDiagnosis:
    """Logs each distinct set-up problem once per process (`observe` is given every failed request)."""

    def __init__(self, credentials: Credentials, *, model_setting: str, model_uri: str) -> None:
        self._credentials = credentials
        self._model_setting = model_setting
        self._model_uri = model_uri
        self._reported: set[tuple[int, str]] = set()

    def observe(self, error: Exception) -> None:
        if not isinstance(error, openai.APIStatusError):
            return
        line = self.explain(error)
        if line is None:
            return
        key = (error.status_code, _message(error))
        if key in self._reported:
            return
        self._reported.add(key)
        log.error("%s", line)

    def explain(self, error: openai.APIStatusError) -> str | None:
        """The one line for a set-up failure; None for any other error."""
        if error.status_code in (401, 403):
            return describe_auth_failure(error, self._credentials)
        if is_model_error(error):
            said = self._credentials.redact(_message(error))
            return (
                f"Yandex does not serve the model YANDEX_MODEL={self._model_setting} ({self._model_uri}): "
                f"HTTP 400 {said!r}. Set YANDEX_MODEL to a model name your folder can use (for example "
                f"{EXAMPLE_MODEL}, or a full gpt://<folder>/<model>[/latest] URI); retired models are "
                "refused like unknown ones."
            )
        return None


def _message(error: openai.APIStatusError) -> str:
    body = error.body
    if isinstance(body, dict):
        nested = body.get("error")
        if isinstance(nested, dict) and nested.get("message"):
            return str(nested["message"])
        if body.get("message"):
            return str(body["message"])
    return error.message
