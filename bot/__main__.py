"""`python -m bot`: check the settings, then run the bot (`python -m bot kb`: the CLI).

With WEBHOOK_URL set the bot runs in webhook mode, otherwise with long polling.
"""

from __future__ import annotations

import asyncio
import sys

from bot.config import SettingsError, load_settings

EXIT_BAD_CONFIG = 2


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["kb"]:
        from bot.cli import main as cli_main

        return cli_main(args)
    try:
        settings = load_settings()
    except SettingsError as error:
        print(error, file=sys.stderr)
        return EXIT_BAD_CONFIG

    from bot.app import App
    from bot.logs import configure_logging

    secrets = [settings.bot_token.get_secret_value(), settings.yandex_credential]
    if settings.redis_url is not None:
        secrets.append(settings.redis_url.get_secret_value())
    if settings.webhook_secret is not None:
        secrets.append(settings.webhook_secret.get_secret_value())
    configure_logging(settings.log_level, secrets)
    app = App(settings)
    # WEBHOOK_URL chooses the mode; the settings check has made sure WEBHOOK_SECRET comes with it.
    asyncio.run(app.run_webhook() if settings.webhook_url else app.run_polling())
    return 0


if __name__ == "__main__":
    sys.exit(main())
