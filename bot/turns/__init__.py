"""The turn logic: one question in, one streamed answer out, both kept in the thread.

It knows the model side (`bot.assistant`) and the stores (`bot.threads`), and sees whatever shows the
answer (Telegram, a terminal) only through the `Streamer` protocol of `bot.turns.streaming`.
"""
