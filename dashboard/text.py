"""Values from a URL, a file or an error shown as text inside Streamlit's Markdown, never as Markdown.

`st.error`, `st.caption`, `st.markdown` and friends render their body as Markdown, so a link such as
``?user=![x](http://host/pixel)`` would make every viewer's browser fetch that image, and
``[click](http://host)`` would put a link inside an error box. Every id, title, spec, parameter
value or error message quoting input goes through `plain` (running text) or `code` (a code span).
"""

from __future__ import annotations

import re

# CommonMark lets a backslash escape any ASCII punctuation character. Escaped: what starts emphasis,
# code, strike-through or maths, links and images (``[``), HTML and autolinks (``<``), entities
# (``&``), e-mail autolinks (``@``), Streamlit's ``:material/icon:``, ``:smile:`` and ``:red[x]``
# (a ``:`` glued to the next character, which also breaks ``http://``), GFM's ``www.`` autolinks,
# and a leading character that would open a heading, list or quote. Ordinary punctuation - quotes,
# parentheses, ``=``, ``.``, a ``:`` before a space - stays as it is, so messages read the same in code.
_ALWAYS = re.compile(r"([\\`*_~$\[\]<&@|])|:(?=\S)|(?<![\w.])(www)\.", re.IGNORECASE)
_LINE_BREAKS = re.compile(r"\s*[\r\n]+\s*")


def _escape(match: re.Match) -> str:
    if match.group(1):
        return "\\" + match.group(1)
    if match.group(2):
        return match.group(2) + "\\."
    return "\\:"


def one_line(value) -> str:
    """`value` as a string on one line (a blank line would start a new Markdown paragraph)."""
    return _LINE_BREAKS.sub(" ", str(value)).strip()


def plain(value) -> str:
    """`value` escaped so that Markdown shows it character for character."""
    text = _ALWAYS.sub(_escape, one_line(value))
    # A first character that could open a block (``#``, ``>``, ``-``, ``+``, ``1.``) is escaped
    # too; digits cannot be, so an ordered-list start keeps its digit and escapes the dot.
    if text[:1] in ("#", ">", "-", "+", "="):
        text = "\\" + text
    return re.sub(r"^(\d+)([.)])(\s)", r"\1\\\2\3", text)


def code(value) -> str:
    """`value` as an inline code span whatever backticks it holds: the fence is one backtick
    longer than the longest run inside (CommonMark's rule), padded so that an edge backtick
    stays text."""
    text = one_line(value)
    if not text:
        return ""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    return f"{fence} {text} {fence}" if longest else f"{fence}{text}{fence}"
