"""The Telegram side: handlers, the reply streamer, rendering and texts."""
