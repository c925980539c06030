"""The last reply's figures as a few words, for the status line and plain mode's note."""

from __future__ import annotations

from scribe.engine.chat.session import Reply
from scribe.engine.runtime.stream import StreamStats

# StreamStats.finish_reason as the user reads it.
ENDINGS = {
    "eos": "ended",
    "stop": "stop sequence",
    "length": "max tokens",
    "cancelled": "stopped",
}


def describe_stats(stats: StreamStats, stopped: bool = False) -> str:
    """`24.1 tok/s, ended`: the decoding speed (tokens after the first, over the time they
    took), or the token count when there is no speed to tell, and why the reply ended
    (`stopped`: the user stopped it, whatever the generator saw last)."""
    after_first = stats.new_tokens - 1
    if after_first > 0 and stats.decode_s > 0:
        speed = f"{after_first / stats.decode_s:.1f} tok/s"
    else:
        speed = f"{stats.new_tokens} token" + ("" if stats.new_tokens == 1 else "s")
    ending = "stopped" if stopped else ENDINGS.get(stats.finish_reason, stats.finish_reason)
    return f"{speed}, {ending}" if ending else speed


def describe_reply(reply: Reply) -> str | None:
    """`describe_stats` of a reply that has run; None if it has no figures (it failed)."""
    if reply.stats is None:
        return None
    return describe_stats(reply.stats, reply.message.status == "stopped")
