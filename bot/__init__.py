"""A Telegram assistant on Yandex AI Studio: streamed answers, threads in Redis."""
