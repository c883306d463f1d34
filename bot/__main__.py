"""`python -m bot`: check the settings, then run the bot (`python -m bot kb`: the knowledge base CLI;
`python -m bot chat`: the console chat).

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
    if args[:1] == ["chat"]:
        from bot.console.cli import main as chat_main

        return chat_main(args[1:])
    try:
        settings = load_settings()
    except SettingsError as error:
        print(error, file=sys.stderr)
        return EXIT_BAD_CONFIG

    from bot.assistant.token_sources import CredentialError
    from bot.factory import build_app
    from bot.logs import configure_logging
    from bot.runners import BotService
    from bot.startup import StartupFailed

    redactor = configure_logging(
        settings.log_level,
        settings.secrets(),
        log_format=settings.log_format,
        chat_ids=settings.log_chat_ids,
    )
    service = BotService(build_app(settings, on_secret=redactor.add), freeze_heap=True)
    try:
        # WEBHOOK_URL chooses the mode; the settings check has made sure WEBHOOK_SECRET comes with it.
        asyncio.run(service.run_webhook() if settings.webhook_url else service.run_polling())
    except CredentialError:
        return EXIT_BAD_CONFIG  # logged in one line at start-up: which credential, and why
    except StartupFailed as failed:
        return failed.exit_code  # logged in one line: what is wrong and what to check
    return 0


if __name__ == "__main__":
    sys.exit(main())
