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
class SettingsTexts:
    """What the bot says about a chat's own assistant: modes, instructions, model."""

    admins_only: str
    admin_check_failed: str
    stale_list: str
    applies_next: str
    current_mark: str
    mode_title: str  # {mode}
    mode_entry: str  # {mark}, {title}, {description}
    mode_set: str  # {mode}, {applies}
    mode_unknown: str  # {name}
    model_title: str  # {model}
    model_default: str  # {model}
    model_set: str  # {model}, {applies}
    model_unknown: str  # {name}
    model_no_choice: str  # {model}
    instructions_none: str
    instructions_show: str  # {mode}, {text}
    instructions_set: str  # {mode}
    instructions_cleared: str
    instructions_too_long: str  # {limit}
    overview: str  # {mode}, {description}, {model}, {temperature}, {instructions}
    own_none: str
    reset_done: str  # {mode}, {model}


@dataclass(frozen=True, slots=True)
class UsageTexts:
    """/usage for everyone, /stats for admins."""

    title: str
    questions: str  # {count}
    tokens: str  # {count}
    rate: str  # {limit}, {left}
    budget: str  # {limit}, {left}
    no_limits: str
    admin_exempt: str
    stats_title: str
    stats_chats: str  # {today}, {week}
    stats_users: str
    stats_answers: str
    stats_tokens: str
    stats_stopped: str
    stats_failures: str  # {failures}
    stats_no_failures: str
    stats_knowledge: str  # {count}, {size}
    stats_knowledge_unknown: str
    stats_refused: str
    failure_names: dict[FailureKind, str]


@dataclass(frozen=True, slots=True)
class ConsoleTexts:
    """The console chat (`python -m bot chat`)."""

    banner: str  # {thread}, {model}, {store}
    help: str
    leave_hint: str
    thread_title: str  # {thread}
    unknown_command: str  # {command}
    models_none: str
    thinking: str


@dataclass(frozen=True, slots=True)
class MediaTexts:
    """What the bot says about voice notes, spoken answers, photos and pictures."""

    heard: str  # {text}
    no_words: str
    voice_too_long: str  # {seconds}, {limit}
    too_big: str
    download_failed: str
    speech_errors: dict[str, str]  # by SpeechErrorKind value
    voice_on: str
    voice_off: str
    voice_cut: str
    voice_failed: str  # {reason}
    photo_question: str
    no_vision: str
    image_usage: str
    image_drawing: str  # {prompt}
    image_too_long: str  # {limit}, {length}
    image_stopped: str
    image_errors: dict[str, str]  # by ImageErrorKind value


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
    retry_button: str
    retrying: str
    retry_nothing: str
    retry_not_last: str
    commands: dict[str, str]
    kb: KnowledgeTexts
    settings: SettingsTexts
    usage: UsageTexts
    console: ConsoleTexts
    media: MediaTexts


ENGLISH = Texts(
    language="en",
    start=(
        "Hi! I am an AI assistant. Write me a question and I will answer, watching my answer grow "
        "as I write it. I remember our conversation, so follow-up questions work.\n\n"
        "/history — show our conversation\n/reset — start a new conversation\n"
        "/mode — choose how I answer\n/help — all commands"
    ),
    help=(
        "Write a question as a normal message and I will answer it in this chat.\n\n"
        "/history — show the stored conversation\n"
        "/reset — forget it and start a new one (the settings below stay)\n"
        "/stop — stop the answer being written\n"
        "/retry — answer the last question again, in place of its answer (or press ↻ under it)\n\n"
        "This chat's assistant (in groups only admins may change it):\n"
        "/mode — choose how I answer: a mode (assistant, translator, editor, …)\n"
        "/instructions TEXT — add instructions of your own on top of the mode; "
        "/instructions shows them, /instructions reset removes them\n"
        "/model — choose the model\n"
        "/settings — show all of it; /settings reset restores the defaults\n"
        "Changes apply from the next question.\n\n"
        "Voice messages and audio are answered like written questions; photos too (the caption is the "
        "question) when the owner has set a vision model.\n"
        "/voice — spoken answers on or off in this chat\n"
        "/image PROMPT (or /draw) — draw a picture\n\n"
        "/usage — your questions and tokens today, and what your limits leave\n"
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
    retry_button="↻ Retry",
    retrying="Answering it again.",
    retry_nothing="There is nothing to answer again yet: ask me a question first.",
    retry_not_last="Only the last answer can be answered again.",
    commands={
        "start": "What this bot does",
        "help": "How to use the bot",
        "history": "Show the stored conversation",
        "reset": "Start a new conversation",
        "stop": "Stop the answer being written",
        "retry": "Answer the last question again",
        "mode": "Choose the assistant's mode",
        "instructions": "This chat's own instructions",
        "model": "Choose the model",
        "settings": "This chat's settings",
        "usage": "Your questions and tokens today",
        "stats": "Bot statistics (admins)",
        "kb": "Knowledge base: list, search (owner)",
        "voice": "Spoken answers on or off",
        "image": "Draw a picture: /image PROMPT",
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
    settings=SettingsTexts(
        admins_only="In groups only the chat's admins can change the assistant's settings.",
        admin_check_failed="I could not check your permissions with Telegram just now. Please try again.",
        stale_list="This list is out of date. Send the command again.",
        applies_next="It applies from the next question.",
        current_mark="✓",
        mode_title="Mode of this chat: {mode}",
        mode_entry="{mark} {title} — {description}",
        mode_set="Mode: {mode}. {applies}",
        mode_unknown="There is no mode “{name}”. Send /mode to choose one.",
        model_title="Model of this chat: {model}",
        model_default="Default: {model}",
        model_set="Model: {model}. {applies}",
        model_unknown="“{name}” is not one of the models you can choose. Send /model to see them.",
        model_no_choice="This bot offers no other models: this chat uses {model}.",
        instructions_none=(
            "This chat has no instructions of its own. /instructions TEXT adds them on top of the mode."
        ),
        instructions_show=(
            "Instructions of this chat, on top of the mode “{mode}”:\n\n{text}\n\n"
            "/instructions reset removes them."
        ),
        instructions_set="Saved: they apply from the next question, on top of the mode “{mode}”.",
        instructions_cleared="Removed this chat's own instructions.",
        instructions_too_long="Instructions can be at most {limit} characters long.",
        overview=(
            "Settings of this chat\n"
            "Mode: {mode} — {description}\n"
            "Model: {model}\n"
            "Temperature: {temperature}\n"
            "Own instructions: {instructions}\n\n"
            "/mode, /model and /instructions change them; /settings reset restores the defaults. "
            "/reset erases only the conversation."
        ),
        own_none="none",
        reset_done=(
            "Restored the defaults: mode “{mode}”, model {model}, no instructions of its own. "
            "The conversation is kept."
        ),
    ),
    usage=UsageTexts(
        title="Your usage today (UTC)",
        questions="Questions: {count}",
        tokens="Tokens: {count}",
        rate="Questions per minute: at most {limit}, {left} left this minute.",
        budget="Tokens per day: at most {limit}, {left} left until 00:00 UTC.",
        no_limits="No limits are set.",
        admin_exempt="You are an admin of the bot: no limits apply to you.",
        stats_title="Bot statistics (UTC days)",
        stats_chats="Active chats: {today} today, {week} in 7 days",
        stats_users="Active users: {today} today, {week} in 7 days",
        stats_answers="Answers: {today} today, {week} in 7 days",
        stats_tokens="Tokens: {today} today, {week} in 7 days",
        stats_stopped="Stopped answers: {today} today, {week} in 7 days",
        stats_failures="Failures in 7 days: {failures}",
        stats_no_failures="Failures in 7 days: none",
        stats_knowledge="Knowledge base: {count} document(s), {size}",
        stats_knowledge_unknown="Knowledge base: unavailable right now",
        stats_refused="Sorry, the statistics are for the bot's admins only.",
        failure_names={
            FailureKind.RATE_LIMITED: "service busy",
            FailureKind.TIMEOUT: "timeouts",
            FailureKind.UNAVAILABLE: "service unavailable",
            FailureKind.REJECTED: "requests refused",
            FailureKind.ERROR: "other errors",
        },
    ),
    console=ConsoleTexts(
        banner=(
            "Console chat · thread “{thread}” · model {model} · store {store}\n"
            "Type a question. /help lists the commands; Ctrl-C stops an answer; exit or Ctrl-D leaves."
        ),
        help=(
            "/history — the whole thread\n"
            "/reset — forget it and start a new one\n"
            "/retry — answer the last question again\n"
            "/stop — stop the answer being written (or Ctrl-C)\n"
            "/mode [NAME] — the modes, or switch to one\n"
            "/model [NAME|default] — the models, or switch to one\n"
            "/instructions [TEXT|reset] — this thread's own instructions\n"
            "/settings [reset] — this thread's settings\n"
            "exit or Ctrl-D — print the whole thread and leave"
        ),
        leave_hint="(exit or Ctrl-D leaves; Ctrl-C stops a running answer)",
        thread_title="Thread “{thread}”",
        unknown_command="Unknown command {command}: /help lists them.",
        models_none="ALLOWED_MODELS is empty: this thread uses {model}.",
        thinking="thinking…",
    ),
    media=MediaTexts(
        heard="🎤 {text}",
        no_words="I couldn't make out any words in this recording. Please try again, or write the question.",
        voice_too_long=(
            "This recording is {seconds} s long; I listen to {limit} s at most. Please send a shorter one."
        ),
        too_big="This file is larger than 20 MB, the most Telegram lets a bot download.",
        download_failed="I couldn't download this file from Telegram. Please send it again.",
        speech_errors={
            "auth": (
                "Speech recognition is not available to this bot right now; the owner "
                "has to check its settings."
            ),
            "quota": "The speech service is busy right now. Please try again in a minute.",
            "bad_audio": "I couldn't make out this audio. Please record it again.",
            "unsupported_audio": "I can't take this audio format: please send a voice message, MP3 or WAV.",
            "audio_too_long": "This recording is too long for me: 5 minutes and 10 MB at most, please.",
            "bad_text": "This answer has nothing to read aloud.",
            "text_too_long": "This answer is too long to read aloud.",
            "unavailable": "The speech service is not responding. Please try again later.",
            "timeout": "The speech service took too long to answer. Please try again.",
        },
        voice_on=(
            "🔊 Spoken answers are on in this chat: each answer also comes as a "
            "voice message. /voice turns them off."
        ),
        voice_off="Spoken answers are off in this chat. /voice turns them on.",
        voice_cut="🔊 Read aloud up to here; the whole answer is in the text above.",
        voice_failed="I couldn't read the answer aloud: {reason} The text answer is complete.",
        photo_question="Describe this image.",
        no_vision="Sorry, I can't look at pictures here. Please describe it in words.",
        image_usage="Describe the picture after the command, e.g. /image a red fox in the snow, watercolour.",
        image_drawing="🎨 Drawing: {prompt}",
        image_too_long="Please describe the picture in at most {limit} characters (this has {length}).",
        image_stopped="⏹ Stopped: the picture will not be drawn.",
        image_errors={
            "auth": (
                "Drawing pictures is not available to this bot right now; the owner "
                "has to check its settings."
            ),
            "quota": (
                "Too many pictures are being drawn right now (the service allows 500 a "
                "minute, 5,000 a day). Please try again later."
            ),
            "refused": (
                "I can't draw that: the picture service refused this description. "
                "Please describe it differently."
            ),
            "empty_prompt": "Please describe the picture you want.",
            "prompt_too_long": "Please describe the picture in at most 500 characters.",
            "unavailable": "The picture service is not responding. Please try again later.",
            "timeout": "Drawing took too long, so I gave up. Please try again.",
            "failed": "The picture could not be drawn. Please try again.",
        },
    ),
)

RUSSIAN = Texts(
    language="ru",
    start=(
        "Привет! Я ИИ-ассистент. Напишите вопрос — я отвечу, и вы увидите, как ответ пишется. "
        "Я помню наш разговор, поэтому можно задавать уточняющие вопросы.\n\n"
        "/history — показать разговор\n/reset — начать новый разговор\n"
        "/mode — выбрать, как я отвечаю\n/help — все команды"
    ),
    help=(
        "Напишите вопрос обычным сообщением, и я отвечу в этом чате.\n\n"
        "/history — показать сохранённый разговор\n"
        "/reset — забыть его и начать новый (настройки ниже сохраняются)\n"
        "/stop — остановить ответ\n"
        "/retry — ответить на последний вопрос заново, вместо прежнего ответа (или кнопка ↻ под ним)\n\n"
        "Ассистент этого чата (в группах менять его могут только администраторы):\n"
        "/mode — выбрать, как я отвечаю: режим (ассистент, переводчик, редактор, …)\n"
        "/instructions ТЕКСТ — добавить свои указания поверх режима; "
        "/instructions показывает их, /instructions reset удаляет\n"
        "/model — выбрать модель\n"
        "/settings — показать всё это; /settings reset возвращает настройки по умолчанию\n"
        "Изменения действуют со следующего вопроса.\n\n"
        "На голосовые сообщения и аудио я отвечаю как на письменные вопросы; на фото тоже (подпись — "
        "вопрос), если владелец задал модель, которая видит картинки.\n"
        "/voice — голосовые ответы в этом чате: вкл/выкл\n"
        "/image ОПИСАНИЕ (или /draw) — нарисовать картинку\n\n"
        "/usage — ваши вопросы и токены за сегодня и сколько осталось до лимитов\n"
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
    retry_button="↻ Заново",
    retrying="Отвечаю заново.",
    retry_nothing="Отвечать заново пока не на что: сначала задайте вопрос.",
    retry_not_last="Заново можно ответить только на последний вопрос.",
    commands={
        "start": "Что умеет этот бот",
        "help": "Как пользоваться ботом",
        "history": "Показать сохранённый разговор",
        "reset": "Начать новый разговор",
        "stop": "Остановить ответ",
        "retry": "Ответить на последний вопрос заново",
        "mode": "Выбрать режим ассистента",
        "instructions": "Свои указания для этого чата",
        "model": "Выбрать модель",
        "settings": "Настройки этого чата",
        "usage": "Ваши вопросы и токены за сегодня",
        "stats": "Статистика бота (администраторы)",
        "kb": "База знаний: список, поиск (владелец)",
        "voice": "Голосовые ответы: вкл/выкл",
        "image": "Нарисовать картинку: /image ОПИСАНИЕ",
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
    settings=SettingsTexts(
        admins_only="В группах менять настройки ассистента могут только администраторы чата.",
        admin_check_failed="Не удалось проверить ваши права в Telegram. Попробуйте ещё раз.",
        stale_list="Этот список устарел. Отправьте команду ещё раз.",
        applies_next="Действует со следующего вопроса.",
        current_mark="✓",
        mode_title="Режим этого чата: {mode}",
        mode_entry="{mark} {title} — {description}",
        mode_set="Режим: {mode}. {applies}",
        mode_unknown="Режима «{name}» нет. Отправьте /mode, чтобы выбрать.",
        model_title="Модель этого чата: {model}",
        model_default="По умолчанию: {model}",
        model_set="Модель: {model}. {applies}",
        model_unknown="«{name}» нет среди доступных моделей. Отправьте /model, чтобы их увидеть.",
        model_no_choice="Других моделей в этом боте нет: этот чат использует {model}.",
        instructions_none="У этого чата нет своих указаний. /instructions ТЕКСТ добавит их поверх режима.",
        instructions_show=(
            "Указания этого чата поверх режима «{mode}»:\n\n{text}\n\n/instructions reset удалит их."
        ),
        instructions_set="Сохранено: действуют со следующего вопроса поверх режима «{mode}».",
        instructions_cleared="Свои указания этого чата удалены.",
        instructions_too_long="Указания могут быть длиной не больше {limit} символов.",
        overview=(
            "Настройки этого чата\n"
            "Режим: {mode} — {description}\n"
            "Модель: {model}\n"
            "Температура: {temperature}\n"
            "Свои указания: {instructions}\n\n"
            "/mode, /model и /instructions меняют их; /settings reset возвращает настройки по умолчанию. "
            "/reset стирает только разговор."
        ),
        own_none="нет",
        reset_done=(
            "Настройки по умолчанию восстановлены: режим «{mode}», модель {model}, без своих указаний. "
            "Разговор сохранён."
        ),
    ),
    usage=UsageTexts(
        title="Ваше использование за сегодня (UTC)",
        questions="Вопросов: {count}",
        tokens="Токенов: {count}",
        rate="Вопросов в минуту: не больше {limit}, в эту минуту осталось {left}.",
        budget="Токенов в день: не больше {limit}, осталось {left} до 00:00 UTC.",
        no_limits="Лимиты не заданы.",
        admin_exempt="Вы администратор бота: лимиты на вас не действуют.",
        stats_title="Статистика бота (дни по UTC)",
        stats_chats="Активных чатов: {today} сегодня, {week} за 7 дней",
        stats_users="Активных пользователей: {today} сегодня, {week} за 7 дней",
        stats_answers="Ответов: {today} сегодня, {week} за 7 дней",
        stats_tokens="Токенов: {today} сегодня, {week} за 7 дней",
        stats_stopped="Остановленных ответов: {today} сегодня, {week} за 7 дней",
        stats_failures="Сбоев за 7 дней: {failures}",
        stats_no_failures="Сбоев за 7 дней: нет",
        stats_knowledge="База знаний: документов — {count}, {size}",
        stats_knowledge_unknown="База знаний: сейчас недоступна",
        stats_refused="Извините, статистика доступна только администраторам бота.",
        failure_names={
            FailureKind.RATE_LIMITED: "сервис перегружен",
            FailureKind.TIMEOUT: "таймауты",
            FailureKind.UNAVAILABLE: "сервис недоступен",
            FailureKind.REJECTED: "отклонённые запросы",
            FailureKind.ERROR: "другие ошибки",
        },
    ),
    console=ConsoleTexts(
        banner=(
            "Консольный чат · тред «{thread}» · модель {model} · хранилище {store}\n"
            "Напишите вопрос. /help — список команд; Ctrl-C останавливает ответ; exit или Ctrl-D — выход."
        ),
        help=(
            "/history — весь тред\n"
            "/reset — забыть его и начать новый\n"
            "/retry — ответить на последний вопрос заново\n"
            "/stop — остановить ответ (или Ctrl-C)\n"
            "/mode [ИМЯ] — режимы или переключиться на режим\n"
            "/model [ИМЯ|default] — модели или переключиться на модель\n"
            "/instructions [ТЕКСТ|reset] — свои указания этого треда\n"
            "/settings [reset] — настройки этого треда\n"
            "exit или Ctrl-D — напечатать весь тред и выйти"
        ),
        leave_hint="(exit или Ctrl-D — выход; Ctrl-C останавливает ответ)",
        thread_title="Тред «{thread}»",
        unknown_command="Неизвестная команда {command}: /help — список команд.",
        models_none="ALLOWED_MODELS пуст: этот тред использует {model}.",
        thinking="думаю…",
    ),
    media=MediaTexts(
        heard="🎤 {text}",
        no_words="Не удалось разобрать ни одного слова в записи. Попробуйте ещё раз или напишите вопрос.",
        voice_too_long=(
            "Запись длится {seconds} с, а я слушаю не больше {limit} с. Пришлите, пожалуйста, покороче."
        ),
        too_big="Файл больше 20 МБ — это предел, который Telegram даёт ботам скачивать.",
        download_failed="Не удалось скачать файл из Telegram. Пришлите его, пожалуйста, ещё раз.",
        speech_errors={
            "auth": "Распознавание речи сейчас недоступно боту; владельцу нужно проверить настройки.",
            "quota": "Сервис речи сейчас перегружен. Попробуйте через минуту.",
            "bad_audio": "Не удалось разобрать эту запись. Запишите её, пожалуйста, ещё раз.",
            "unsupported_audio": (
                "Этот формат звука я не принимаю: пришлите голосовое сообщение, MP3 или WAV."
            ),
            "audio_too_long": "Запись слишком длинная: не больше 5 минут и 10 МБ, пожалуйста.",
            "bad_text": "В этом ответе нечего прочитать вслух.",
            "text_too_long": "Этот ответ слишком длинный, чтобы прочитать его вслух.",
            "unavailable": "Сервис речи не отвечает. Попробуйте позже.",
            "timeout": "Сервис речи отвечал слишком долго. Попробуйте ещё раз.",
        },
        voice_on=(
            "🔊 Голосовые ответы в этом чате включены: каждый ответ придёт ещё и "
            "голосовым сообщением. /voice выключает их."
        ),
        voice_off="Голосовые ответы в этом чате выключены. /voice включает их.",
        voice_cut="🔊 Прочитано до этого места; весь ответ — в тексте выше.",
        voice_failed="Не удалось прочитать ответ вслух: {reason} Текстовый ответ полный.",
        photo_question="Опиши это изображение.",
        no_vision="Извините, здесь я не могу смотреть картинки. Опишите, пожалуйста, словами.",
        image_usage="Опишите картинку после команды, например: /image рыжая лиса в снегу, акварель.",
        image_drawing="🎨 Рисую: {prompt}",
        image_too_long="Опишите картинку не длиннее {limit} символов (сейчас {length}).",
        image_stopped="⏹ Остановлено: картинки не будет.",
        image_errors={
            "auth": "Рисовать картинки бот сейчас не может; владельцу нужно проверить настройки.",
            "quota": (
                "Сейчас рисуется слишком много картинок (сервис позволяет 500 в минуту "
                "и 5000 в день). Попробуйте позже."
            ),
            "refused": "Это нарисовать не могу: сервис отклонил описание. Опишите картинку иначе.",
            "empty_prompt": "Опишите, пожалуйста, какую картинку нарисовать.",
            "prompt_too_long": "Опишите картинку не длиннее 500 символов.",
            "unavailable": "Сервис картинок не отвечает. Попробуйте позже.",
            "timeout": "Рисование заняло слишком много времени, я его прервал. Попробуйте ещё раз.",
            "failed": "Картинку нарисовать не удалось. Попробуйте ещё раз.",
        },
    ),
)

LANGUAGES = {texts.language: texts for texts in (ENGLISH, RUSSIAN)}


def texts_for(language_code: str | None) -> Texts:
    """Russian for `ru`, `ru-RU`…; English for everything else, including unknown."""
    if language_code:
        return LANGUAGES.get(language_code.split("-")[0].lower(), ENGLISH)
    return ENGLISH
