"""Everything the bot says, in English and Russian, chosen by the user's Telegram language."""

from __future__ import annotations

from dataclasses import dataclass

from bot.assistant.events import FailureKind, FinishReason, Tool


@dataclass(frozen=True, slots=True)
class KnowledgeTexts:
    """What the bot says about the knowledge base (mostly to admins)."""

    admin_only: str
    private_only: str
    stages: dict[str, str]  # uploading, indexing, ready, failed (with {error})
    status_line: str  # {name}, {stage}
    too_big_for_telegram: str  # {name}
    empty: str
    list_title: str  # {count}
    entry: str  # {number}, {name}, {size}, {status}, {when}
    delete_button: str  # {number}
    deleted: str  # {name}
    gone: str
    search_usage: str
    search_none: str
    search_title: str  # {query}
    error: str  # {error}


@dataclass(frozen=True, slots=True)
class Texts:
    """One language's user-facing texts."""

    language: str
    start: str
    help: str
    only_text: str
    history_empty: str
    history_title: str
    you: str
    assistant: str
    incomplete_mark: str
    sources: str
    history_page: str
    history_older: str
    history_newer: str
    history_export: str
    history_exported: str
    history_file_caption: str
    history_gone: str
    history_unavailable: str
    reset_done: str
    failure_before_text: dict[FailureKind, str]
    failure_mid_stream: str
    empty_answer: str
    finish_notice: dict[FinishReason, str]
    internal_error: str
    tool_status: dict[Tool, str]
    stopped_notice: str
    interrupted_notice: str
    queued: str
    unanswered: str
    waiting_position: str  # {position}
    waiting_slot: str
    context_trimmed: str
    rate_limited: str
    token_budget_spent: str
    not_allowed: str
    stop_button: str
    stopping: str
    nothing_to_stop: str
    commands: dict[str, str]
    kb: KnowledgeTexts


ENGLISH = Texts(
    language="en",
    start=(
        "Hi! I am an AI assistant. Write me a question and I will answer, watching my answer grow "
        "as I write it. I remember our conversation, so follow-up questions work.\n\n"
        "/history — show our conversation\n/reset — start a new conversation\n/help — this help"
    ),
    help=(
        "Write a question as a normal message and I will answer it in this chat.\n\n"
        "/history — show the stored conversation\n"
        "/reset — forget it and start a new one\n"
        "/stop — stop the answer being written\n"
        "/help — this help"
    ),
    only_text="Sorry, I can only read text messages. Please write your question as text.",
    history_empty="The conversation is empty. Write me a question to start one.",
    history_title="Conversation history",
    you="You",
    assistant="Assistant",
    incomplete_mark="(incomplete)",
    sources="Sources",
    history_page="{page} of {pages}",
    history_older="◀ Older",
    history_newer="Newer ▶",
    history_export="📄 Export .md",
    history_exported="Exported",
    history_file_caption="The whole conversation as a Markdown file.",
    history_gone=(
        "This conversation is gone: it was reset or has expired. Send /history to see the current one."
    ),
    history_unavailable="I can no longer update this message. Send /history to see the conversation.",
    reset_done="Done: I forgot our conversation. Your next message starts a new one.",
    failure_before_text={
        FailureKind.RATE_LIMITED: "The AI service is busy right now. Please try again in a minute.",
        FailureKind.TIMEOUT: "The AI service took too long to answer. Please try again.",
        FailureKind.UNAVAILABLE: "The AI service is unavailable right now. Please try again later.",
        FailureKind.REJECTED: "The AI service could not process this request. Try rephrasing it.",
        FailureKind.ERROR: "Something went wrong while preparing the answer. Please try again.",
        FailureKind.ACCESS_DENIED: (
            "The AI service refused this bot's access, so I can't answer right now. "
            "The bot's owner needs to check its Yandex credentials."
        ),
        FailureKind.MODEL_UNAVAILABLE: (
            "The AI model this bot is set up to use is not available, so I can't answer right now. "
            "The bot's owner needs to change the model in its settings."
        ),
    },
    failure_mid_stream="⚠️ The answer was interrupted by an error and may be incomplete.",
    empty_answer="The model returned an empty answer. Please try rephrasing your question.",
    finish_notice={
        FinishReason.COMPLETED: "",
        FinishReason.MAX_OUTPUT_TOKENS: "✂️ The answer was cut at the length limit.",
        FinishReason.CONTENT_FILTER: "⚠️ The answer was stopped by the content filter.",
    },
    internal_error="Sorry, something went wrong on my side. Please try again.",
    tool_status={
        Tool.FILE_SEARCH: "🔎 Searching the knowledge base…",
        Tool.WEB_SEARCH: "🌐 Searching the web…",
    },
    stopped_notice="⏹ Stopped.",
    interrupted_notice="⚠️ Interrupted: the bot was restarted while writing this answer.",
    queued="⏳ I'll answer this as soon as I finish the current answer.",
    unanswered="⚠️ The bot was restarted before it could answer this. Please send it again.",
    waiting_position=(
        "⏳ Many questions are being answered right now. Yours is number {position} in line; "
        "I'll start as soon as it's its turn."
    ),
    waiting_slot="⏳ The AI service is busy right now. Your question is waiting for a free slot.",
    context_trimmed=(
        "ℹ️ This conversation has grown long: I now only see its recent part. /reset starts a fresh one."
    ),
    rate_limited="You are sending messages too fast. You can continue at {time}.",
    token_budget_spent="You have used today's limit of the AI service. You can continue at {time}.",
    not_allowed="Sorry, this bot is private. Ask its owner for access.",
    stop_button="⏹ Stop",
    stopping="Stopping the answer.",
    nothing_to_stop="Nothing to stop: no answer is being written right now.",
    commands={
        "start": "What this bot does",
        "help": "How to use the bot",
        "history": "Show the stored conversation",
        "reset": "Start a new conversation",
        "stop": "Stop the answer being written",
        "kb": "Knowledge base: list, search (owner)",
    },
    kb=KnowledgeTexts(
        admin_only="Only the bot's owner can add or manage documents.",
        private_only="Send documents to me in a private chat to add them to the knowledge base.",
        stages={
            "uploading": "⬆️ uploading…",
            "indexing": "⏳ indexing…",
            "ready": "✅ ready: I can answer from it now.",
            "failed": "❌ not added: {error}",
        },
        status_line="📄 {name}: {stage}",
        too_big_for_telegram=(
            "{name}: Telegram lets bots download files up to 20 MB. Add it from the server with "
            "`python -m bot kb add`."
        ),
        empty="The knowledge base is empty. Send me documents (pdf, docx, xlsx, txt, md, …) to add them.",
        list_title="Knowledge base: {count} document(s)",
        entry="{number}. {name} — {size}, {status}, added {when}",
        delete_button="🗑 Delete {number}",
        deleted="Deleted {name}.",
        gone="That document is no longer in the knowledge base.",
        search_usage="Usage: /kb search <what to look for>",
        search_none="Nothing in the documents matches that.",
        search_title="Best matching passages for “{query}”:",
        error="The knowledge base is unavailable right now: {error}",
    ),
)

RUSSIAN = Texts(
    language="ru",
    start=(
        "Привет! Я ИИ-ассистент. Напишите вопрос — я отвечу, и вы увидите, как ответ пишется. "
        "Я помню наш разговор, поэтому можно задавать уточняющие вопросы.\n\n"
        "/history — показать разговор\n/reset — начать новый разговор\n/help — справка"
    ),
    help=(
        "Напишите вопрос обычным сообщением, и я отвечу в этом чате.\n\n"
        "/history — показать сохранённый разговор\n"
        "/reset — забыть его и начать новый\n"
        "/stop — остановить ответ\n"
        "/help — эта справка"
    ),
    only_text="Извините, я понимаю только текстовые сообщения. Напишите, пожалуйста, вопрос текстом.",
    history_empty="Разговор пуст. Напишите вопрос, чтобы начать.",
    history_title="История разговора",
    you="Вы",
    assistant="Ассистент",
    incomplete_mark="(не завершён)",
    sources="Источники",
    history_page="{page} из {pages}",
    history_older="◀ Раньше",
    history_newer="Позже ▶",
    history_export="📄 Скачать .md",
    history_exported="Выгружено",
    history_file_caption="Весь разговор в файле Markdown.",
    history_gone=(
        "Этого разговора больше нет: его сбросили или он истёк. Отправьте /history, чтобы увидеть текущий."
    ),
    history_unavailable="Это сообщение уже нельзя обновить. Отправьте /history, чтобы увидеть разговор.",
    reset_done="Готово: я забыл наш разговор. Следующее сообщение начнёт новый.",
    failure_before_text={
        FailureKind.RATE_LIMITED: "Сервис ИИ сейчас перегружен. Попробуйте через минуту.",
        FailureKind.TIMEOUT: "Сервис ИИ слишком долго не отвечал. Попробуйте ещё раз.",
        FailureKind.UNAVAILABLE: "Сервис ИИ сейчас недоступен. Попробуйте позже.",
        FailureKind.REJECTED: "Сервис ИИ не смог обработать запрос. Попробуйте переформулировать.",
        FailureKind.ERROR: "Что-то пошло не так при подготовке ответа. Попробуйте ещё раз.",
        FailureKind.ACCESS_DENIED: (
            "Сервис ИИ отказал этому боту в доступе, поэтому сейчас я не могу ответить. "
            "Владельцу бота нужно проверить его ключи Yandex."
        ),
        FailureKind.MODEL_UNAVAILABLE: (
            "Модель ИИ, которую использует этот бот, недоступна, поэтому сейчас я не могу ответить. "
            "Владельцу бота нужно сменить модель в настройках."
        ),
    },
    failure_mid_stream="⚠️ Ответ прерван из-за ошибки и может быть неполным.",
    empty_answer="Модель вернула пустой ответ. Попробуйте переформулировать вопрос.",
    finish_notice={
        FinishReason.COMPLETED: "",
        FinishReason.MAX_OUTPUT_TOKENS: "✂️ Ответ обрезан: достигнут предел длины.",
        FinishReason.CONTENT_FILTER: "⚠️ Ответ остановлен фильтром содержимого.",
    },
    internal_error="Извините, у меня что-то сломалось. Попробуйте ещё раз.",
    tool_status={
        Tool.FILE_SEARCH: "🔎 Ищу в базе знаний…",
        Tool.WEB_SEARCH: "🌐 Ищу в интернете…",
    },
    stopped_notice="⏹ Остановлено.",
    interrupted_notice="⚠️ Прервано: бот перезапустился, пока писал этот ответ.",
    queued="⏳ Отвечу на это, как только закончу текущий ответ.",
    unanswered="⚠️ Бот перезапустился, не успев ответить на это. Пожалуйста, отправьте ещё раз.",
    waiting_position=(
        "⏳ Сейчас отвечаю на много вопросов. Ваш — {position}-й в очереди; "
        "начну, как только до него дойдёт очередь."
    ),
    waiting_slot="⏳ Сервис ИИ сейчас перегружен. Ваш вопрос ждёт свободного места.",
    context_trimmed=(
        "ℹ️ Разговор стал длинным: теперь я вижу только его последнюю часть. /reset начнёт новый."
    ),
    rate_limited="Вы отправляете сообщения слишком часто. Продолжить можно в {time}.",
    token_budget_spent="Вы израсходовали дневной лимит ИИ-сервиса. Продолжить можно в {time}.",
    not_allowed="Извините, это закрытый бот. Попросите доступ у владельца.",
    stop_button="⏹ Стоп",
    stopping="Останавливаю ответ.",
    nothing_to_stop="Останавливать нечего: сейчас ответ не пишется.",
    commands={
        "start": "Что умеет этот бот",
        "help": "Как пользоваться ботом",
        "history": "Показать сохранённый разговор",
        "reset": "Начать новый разговор",
        "stop": "Остановить ответ",
        "kb": "База знаний: список, поиск (владелец)",
    },
    kb=KnowledgeTexts(
        admin_only="Добавлять документы и управлять ими может только владелец бота.",
        private_only="Чтобы добавить документ в базу знаний, пришлите его мне в личном чате.",
        stages={
            "uploading": "⬆️ загружаю…",
            "indexing": "⏳ индексирую…",
            "ready": "✅ готово: теперь я могу отвечать по нему.",
            "failed": "❌ не добавлен: {error}",
        },
        status_line="📄 {name}: {stage}",
        too_big_for_telegram=(
            "{name}: Telegram даёт ботам скачивать файлы только до 20 МБ. Добавьте его на сервере "
            "командой `python -m bot kb add`."
        ),
        empty="База знаний пуста. Пришлите мне документы (pdf, docx, xlsx, txt, md, …), чтобы добавить их.",
        list_title="База знаний: документов — {count}",
        entry="{number}. {name} — {size}, {status}, добавлен {when}",
        delete_button="🗑 Удалить {number}",
        deleted="Удалён {name}.",
        gone="Этого документа уже нет в базе знаний.",
        search_usage="Использование: /kb search <что искать>",
        search_none="В документах ничего подходящего нет.",
        search_title="Лучшие фрагменты по запросу «{query}»:",
        error="База знаний сейчас недоступна: {error}",
    ),
)

LANGUAGES = {texts.language: texts for texts in (ENGLISH, RUSSIAN)}


def texts_for(language_code: str | None) -> Texts:
    """Russian for `ru`, `ru-RU`…; English for everything else, including unknown."""
    if language_code:
        return LANGUAGES.get(language_code.split("-")[0].lower(), ENGLISH)
    return ENGLISH
