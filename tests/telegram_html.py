"""A validator for Telegram's HTML parse mode, used to check every message the bot sends.

Telegram accepts only a few tags (b, strong, i, em, u, ins, s, strike, del, span with class
tg-spoiler, tg-spoiler, a with href, tg-emoji, code, pre, blockquote), properly nested, and only
the entities &lt; &gt; &amp; &quot; and numeric ones; a bare < or & is an error.
"""

from __future__ import annotations

import re

ALLOWED = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler",
           "a", "tg-emoji", "code", "pre", "blockquote"}
LIMIT = 4096
_TAG = re.compile(r"<(/?)([a-z-]+)((?:\s+[a-z-]+(?:=\"[^\"<>]*\")?)*)\s*>")
_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#\d{1,7}|#x[0-9a-fA-F]{1,6});")


def problems(text: str) -> list[str]:
    found = []
    if len(text) > LIMIT:
        found.append(f"{len(text)} characters, over {LIMIT}")
    stack: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "<":
            m = _TAG.match(text, i)
            if not m:
                found.append(f"bare '<' at {i}: {text[i:i + 20]!r}")
                i += 1
                continue
            closing, name, attrs = m.group(1), m.group(2), m.group(3)
            if name not in ALLOWED:
                found.append(f"tag <{name}> is not allowed")
            elif closing:
                if not stack or stack[-1] != name:
                    found.append(f"</{name}> closes {stack[-1] if stack else 'nothing'}")
                else:
                    stack.pop()
            else:
                if name == "a" and 'href="' not in attrs:
                    found.append("<a> without href")
                stack.append(name)
            i = m.end()
        elif ch == "&":
            m = _ENTITY.match(text, i)
            if not m:
                found.append(f"bare '&' at {i}: {text[i:i + 10]!r}")
                i += 1
            else:
                i = m.end()
        else:
            i += 1
    if stack:
        found.append(f"unclosed tags: {stack}")
    return found
