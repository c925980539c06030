"""How a conversation is written as text: one format for training and for inference.

A chat template's `[chat]` table (or a finetuned model's card, which records the table it was
trained with) gives the frames: `system` (a default system prompt, or a frame with $message),
`user` and `assistant` (each with $message), `reply` (the cue the model answers after) and
optional `stop` sequences. `scribe finetune` renders transcripts with it and `scribe chat` renders
prompts with it, so a model is asked in exactly the form it learned.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from scribe.engine.errors import InputError
from scribe.engine.prompting.framing import fill_framed
from scribe.engine.runtime.text_tokens import frame


@dataclass(frozen=True)
class ChatFormat:
    system: str = ""
    user: str = "\n\nUser: $message"
    assistant: str = "\n\nAssistant: $message"
    reply: str = "\n\nAssistant:"
    stop: tuple[str, ...] = ()
    # Written for the model at inference: the frames' own text marked as frame, so their
    # markers are control tokens and a marker typed in a message is text. Training text is not.
    framed: bool = False

    def for_prompt(self) -> ChatFormat:
        """This format as the model reads it at inference (see `framed`)."""
        return replace(self, framed=True)

    @classmethod
    def from_mapping(cls, data: dict[str, Any], stop: Sequence[str] = ()) -> ChatFormat:
        """A `[chat]` table or a card's "chat" entry; missing frames take the defaults, and
        stops default to the template's, else to the turn labels (see `derived_stops`)."""
        fmt = cls(
            system=str(data.get("system", "")),
            user=str(data.get("user", cls.user)),
            assistant=str(data.get("assistant", cls.assistant)),
            reply=str(data.get("reply", cls.reply)),
        )
        stops = tuple(data.get("stop", ())) or tuple(stop) or fmt.derived_stops()
        return ChatFormat(fmt.system, fmt.user, fmt.assistant, fmt.reply, tuple(stops))

    @classmethod
    def from_template(cls, name: str) -> ChatFormat:
        """The format of chat template `name` (built in or the user's)."""
        from scribe.engine.prompting.templates import get_template

        template = get_template(name)
        if not template.chat:
            raise InputError(
                f"template '{name}' has no [chat] table; pick a chat template with --chat-template"
            )
        return cls.from_mapping(template.chat, template.stop)

    @classmethod
    def for_model(cls, card: dict[str, Any], template: str = "chat") -> ChatFormat:
        """The format a model is asked in: its card's own `chat` entry (what fine-tuning
        recorded), else chat template `template`'s."""
        entry = card.get("chat")
        if isinstance(entry, dict) and entry:
            return cls.from_mapping(entry)
        return cls.from_template(template)

    def as_dict(self) -> dict[str, Any]:
        """What a model card records, so that chat reads back this very format."""
        return {
            "system": self.system,
            "user": self.user,
            "assistant": self.assistant,
            "reply": self.reply,
            "stop": list(self.stop),
        }

    def derived_stops(self) -> tuple[str, ...]:
        """Stop where the model starts writing the next turn's label ("\\nWriter:")."""
        stops = []
        for turn in (self.user, self.assistant):
            label = turn.split("$message")[0].strip()
            if label:
                stops.append("\n" + label)
        return tuple(stops)

    def system_text(self, system: str | None) -> str:
        """The system prompt as it opens the text; None means this format's default."""
        if "$message" in self.system:
            return self._fill(self.system, system) if system else ""
        if system is not None:
            return system
        return frame(self.system) if self.framed else self.system

    def user_turn(self, text: str) -> str:
        return self._fill(self.user, text)

    def assistant_turn(self, text: str) -> str:
        return self._fill(self.assistant, text)

    def reply_text(self) -> str:
        """The reply cue as the prompt ends with it."""
        return frame(self.reply) if self.framed else self.reply

    def user_label(self) -> str:
        """The user frame's text before the message ("\\n\\nUser:")."""
        return self.user.split("$message")[0].rstrip()

    def reply_cue(self) -> str:
        """What precedes an assistant message: `reply` when the assistant frame starts with it
        (the usual case), else the frame's text before $message."""
        if self.assistant_turn("").startswith(self.reply):
            return self.reply
        return self.assistant.split("$message")[0]

    def _fill(self, pattern: str, message: str) -> str:
        if self.framed:
            return fill_framed(pattern, {"message": message})
        return string.Template(pattern).safe_substitute(message=message)
