"""The code blocks of a reply's Markdown, for F4: fenced (``` or ~~~) and indented (four spaces
or a tab, after a blank line), in the order they appear."""

from __future__ import annotations

import re

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
INDENT = re.compile(r"^(?: {4}|\t)")


def code_blocks(text: str) -> list[str]:
    """Each block's text (its lines, each ending in a newline): a fenced one without its fences
    (an unclosed one runs to the end), an indented one without its indent; blank lines at a
    block's end are not part of it."""
    blocks: list[str] = []
    lines = text.splitlines()
    index, previous_blank = 0, True
    while index < len(lines):
        line = lines[index]
        fence = FENCE.match(line)
        if fence:
            marker = fence.group(1)
            body: list[str] = []
            index += 1
            while index < len(lines) and not lines[index].lstrip(" ").startswith(marker):
                body.append(lines[index])
                index += 1
            blocks.append(_text(body))
            index, previous_blank = index + 1, False
            continue
        if previous_blank and INDENT.match(line) and line.strip():
            body = []
            while index < len(lines) and (INDENT.match(lines[index]) or not lines[index].strip()):
                body.append(INDENT.sub("", lines[index], count=1))
                index += 1
            while body and not body[-1].strip():
                body.pop()
            blocks.append(_text(body))
            previous_blank = True
            continue
        previous_blank = not line.strip()
        index += 1
    return blocks


def _text(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)
