# A slim image that runs the bot as an unprivileged user. Configuration (secrets included) comes from the
# environment at run time; nothing secret is baked into the image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY bot ./bot
RUN pip install . && useradd --system --uid 10001 --home-dir /app bot

USER bot
# The webhook server (only used when WEBHOOK_URL is set).
EXPOSE 8080
CMD ["python", "-m", "bot"]
