"""The console chat (`python -m bot chat`): the program this bot grew from, kept as an operator's tool.

Same settings, store and model client as the bot, no Telegram: `chat.ConsoleChat` drives the turn
runner, `streamer.ConsoleStreamer` is its `Streamer`, `screen` draws on a terminal or writes plain text.
"""
