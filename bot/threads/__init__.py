"""Conversations in Redis: which thread a chat is on, the thread's messages, and whose turn it is."""
