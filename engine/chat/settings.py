"""A chat session's settings: its model, template, system prompt and generation options."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from scribe.engine.chat.engine import ChatEngine
from scribe.engine.errors import InputError, ScribeError
from scribe.engine.prompting.chat_format import ChatFormat
from scribe.engine.prompting.chat_window import TokenCounter, reply_reserve
from scribe.engine.prompting.templates import Template, get_template
from scribe.engine.runtime.options import GenerationOptions, configured_options, parse_option

if TYPE_CHECKING:
    from scribe.engine.chat.session import Message, Settings

CHAT_TEMPLATE = "chat"
NO_TEMPLATE = ("none", "off", "chat")


class SettingsMixin:
    """ChatSession's settings; each change is saved with the conversation (`_save_settings`)."""

    # Set up by ChatSession.__init__ and provided by its other parts.
    settings: Settings
    loader: Callable[[str | None], ChatEngine]
    engine: ChatEngine | None
    _lock: threading.RLock
    _counter: TokenCounter | None
    _chat_template: Template
    _template: Template | None
    require_engine: Callable[[], ChatEngine]
    _save_settings: Callable[..., None]

    # -- model ----------------------------------------------------------------------------
    def load_model(self, spec: str | None = None) -> ChatEngine:
        """Load (blocking: call from a worker) and switch to the model; saved per conversation."""
        engine = self.loader(spec)
        with self._lock:
            self.engine = engine
            self._counter = TokenCounter(engine.encode)
            self.settings.model = spec
            self._save_settings("model")
        return engine

    @property
    def model_name(self) -> str:
        if self.engine is not None:
            return self.engine.name
        return self.settings.model or "default"

    @property
    def chat_format(self) -> ChatFormat:
        """The model card's own chat format when it has one, else the chat template's."""
        card = self.engine.card.get("chat") if self.engine is not None else None
        if isinstance(card, dict) and card:
            return ChatFormat.from_mapping(card)
        return ChatFormat.from_mapping(self._chat_template.chat, self._chat_template.stop)

    # -- template, system prompt, options -------------------------------------------------
    @property
    def template(self) -> Template | None:
        return self._template

    def set_template(self, name: str | None, values: dict[str, str] | None = None) -> None:
        """Frame the next user turns with a template (None, "none" or "chat": plain chat)."""
        values = dict(values or {})
        if name is None or name in NO_TEMPLATE:
            if values:
                raise InputError("plain chat takes no key=value; name a template to use them")
            self._template, self.settings.template, self.settings.template_values = None, None, {}
        else:
            self._template = _checked_template(name, values)
            self.settings.template, self.settings.template_values = name, values
        self._save_settings("template", "template_values")

    def set_system(self, text: str | None) -> None:
        self.settings.system = text
        self._save_settings("system")

    def set_option(self, name: str, value: str) -> tuple[str, Any]:
        key, typed = parse_option(name, value)
        self.settings.options = {**self.settings.options, key: typed}
        self._save_settings("options")
        return key, typed

    def system_prompt(self) -> str:
        return self.chat_format.system_text(self.settings.system)

    def options(self, template: Template | None = None) -> GenerationOptions:
        """Chat defaults, then the template's options, then the user's overrides."""
        template = template if template is not None else self._template
        options = self._chat_template.apply_options(configured_options(GenerationOptions()))
        stops = list(self.chat_format.stop)
        if template is not None:
            options = options.updated(**template.options)
            stops = list(template.stop) + [s for s in stops if s not in template.stop]
        options = options.updated(stop=tuple(stops) or None)
        return options.updated(**self.settings.options)

    def reserve(self) -> int:
        engine = self.require_engine()
        return reply_reserve(self.options().max_new_tokens, engine.n_positions)

    # -- the template a user turn was sent with -------------------------------------------
    def _template_for(self, user: Message) -> Template | None:
        """The template a user turn was framed with; None if it had none, or it is gone."""
        name = user.meta.get("template")
        if not name:
            return None
        if self._template is not None and self._template.name == name:
            return self._template
        try:
            return get_template(name)
        except ScribeError:
            return None

    def _template_meta(self) -> dict[str, Any]:
        """What a new user turn records of the template framing it."""
        if self._template is None:
            return {}
        return {"template": self._template.name, "values": dict(self.settings.template_values)}


def _checked_template(name: str, values: dict[str, str]) -> Template:
    """The template `name`, once `values` are known to fill it; an InputError names what not."""
    template = get_template(name)
    if template.chat:
        raise InputError(f"'{name}' is a chat format, not a template; use /template none")
    unknown = sorted(set(values) - set(template.variables) - {"input"})
    if unknown:
        known = ", ".join(v for v in template.variables if v != "input") or "none"
        raise InputError(
            f"template '{name}' has no variable '{unknown[0]}'; its variables: {known}"
        )
    template.render({**values, "input": ""})  # names a missing variable now, not later
    return template
