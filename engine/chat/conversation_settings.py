"""A conversation's settings: the model it asks for, its template, system prompt and generation
options, and the chat format and defaults they are read with."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scribe.engine.chat.conversations import ConversationRecord
from scribe.engine.chat.messages import Message
from scribe.engine.errors import InputError, ScribeError
from scribe.engine.prompting.chat_format import ChatFormat
from scribe.engine.prompting.templates import Template, get_template
from scribe.engine.runtime.options import GenerationOptions, configured_options, parse_option

CHAT_TEMPLATE = "chat"  # the chat format and defaults of a model whose card has none
NO_TEMPLATE = ("none", "off", "chat")


@dataclass
class Settings:
    model: str | None = None
    system: str | None = None  # None: the chat format's default
    template: str | None = None
    template_values: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)  # overrides, by field name

    def copy(self) -> Settings:
        """A copy whose mappings can change without changing these."""
        return Settings(
            self.model, self.system, self.template, dict(self.template_values), dict(self.options)
        )


class ConversationSettings:
    """The settings of the conversation being shown (`values`), the template framing its next
    user turns, and the chat format of the model loaded. Each change is handed to `save` (field
    name -> value), which keeps it with the conversation."""

    def __init__(self, initial: Settings, save: Callable[[dict[str, Any]], None]) -> None:
        self.initial = initial  # what `reset` goes back to
        self.values = initial.copy()
        self._save = save
        self._chat_template = get_template(CHAT_TEMPLATE)
        self.chat_format = ChatFormat.for_model({}, CHAT_TEMPLATE)
        self.template: Template | None = None
        if self.values.template:
            self.set_template(self.values.template, self.values.template_values)

    def _changed(self, *names: str) -> None:
        self._save({name: getattr(self.values, name) for name in names})

    # -- which conversation -----------------------------------------------------------------
    def reset(self) -> None:
        """The settings given at start-up, for a new conversation (the model kept)."""
        model = self.values.model
        self.values = self.initial.copy()
        self.values.model = model
        self.set_template(self.values.template, self.values.template_values)

    def restore(self, record: ConversationRecord) -> None:
        """The settings a saved conversation was left with; a template removed since is dropped
        (plain chat), and a conversation that names no model keeps the current one."""
        self.values = Settings(
            model=record.model if record.model is not None else self.values.model,
            system=record.system,
            options=dict(record.options),
        )
        try:
            self.set_template(record.template, record.template_values)
        except ScribeError:
            self.template = None

    def use_model(self, spec: str | None, card: dict[str, Any]) -> None:
        """The model `spec` was loaded: its card's chat format from now on."""
        self.chat_format = ChatFormat.for_model(card, CHAT_TEMPLATE)
        self.values.model = spec
        self._changed("model")

    # -- template, system prompt, options ---------------------------------------------------
    def set_template(self, name: str | None, values: dict[str, str] | None = None) -> None:
        """Frame the next user turns with a template (None, "none" or "chat": plain chat)."""
        values = dict(values or {})
        if name is None or name in NO_TEMPLATE:
            if values:
                raise InputError("plain chat takes no key=value; name a template to use them")
            self.template, self.values.template, self.values.template_values = None, None, {}
        else:
            self.template = _checked_template(name, values)
            self.values.template, self.values.template_values = name, values
        self._changed("template", "template_values")

    def set_system(self, text: str | None) -> None:
        self.values.system = text
        self._changed("system")

    def set_option(self, name: str, value: str) -> tuple[str, Any]:
        key, typed = parse_option(name, value)
        self.values.options = {**self.values.options, key: typed}
        self._changed("options")
        return key, typed

    def system_prompt(self) -> str:
        return self.chat_format.system_text(self.values.system)

    def options(self, template: Template | None = None) -> GenerationOptions:
        """Chat defaults, then the template's options, then the user's overrides."""
        template = template if template is not None else self.template
        options = self._chat_template.apply_options(configured_options(GenerationOptions()))
        stops = list(self.chat_format.stop)
        if template is not None:
            options = options.updated(**template.options)
            stops = list(template.stop) + [s for s in stops if s not in template.stop]
        options = options.updated(stop=tuple(stops) or None)
        return options.updated(**self.values.options)

    def cut_mode(self, template: Template | None) -> str:
        """How a turn too long for the window is cut: the template's way, else the chat's."""
        return template.cut if template is not None else self._chat_template.cut

    # -- the template a user turn was sent with ---------------------------------------------
    def template_for(self, user: Message) -> Template | None:
        """The template a user turn was framed with; None if it had none, or it is gone."""
        name = user.meta.get("template")
        if not name:
            return None
        if self.template is not None and self.template.name == name:
            return self.template
        try:
            return get_template(name)
        except ScribeError:
            return None

    def template_meta(self) -> dict[str, Any]:
        """What a new user turn records of the template framing it."""
        if self.template is None:
            return {}
        return {"template": self.template.name, "values": dict(self.values.template_values)}


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
