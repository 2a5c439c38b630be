"""What one line or list item of a request is (an ask, a header, a payload, a label), and the
request cut at its paragraphs, lines and list items (``split.py`` cuts inside the lines).

Lines are read on the masked text (payloads are placeholders), so a line break inside a quoted
text never cuts it.
"""

from __future__ import annotations

import re

from .split_words import (
    _ANNOUNCES, _CONNECTOR_LINE, _FIELD, _HORIZON, _LABELLED, _LIST_ITEM, _POINTS_BACK, _POLITE, _QUESTION, _RANK_CUES,
    _SENTENCE, _WANTS, _is_record, _is_verb,
)


def _bare(text: str) -> str:
    """The piece without list marks, placeholders and politeness: what its first word is."""
    t = re.sub(r"\ue000\d+\ue001", " X ", text)
    t = _LIST_ITEM.sub("", t, count=1).strip(" \t\n-*•.,;:")
    return _POLITE.sub("", t).strip()


def _is_ask(text: str) -> bool:
    """An instruction or a question, not a statement or a passage. Only its start and its end
    are read, so asking it of a growing piece stays linear."""
    if len(text) > 600:
        text = text[:300] + " … " + text[-300:]
    t = _bare(text)
    if not t:
        return False
    if re.match(r"[\wÀ-ÿ]+\s+(?:\d{1,2}|[A-Za-z])\s*:", t) and not t.rstrip().endswith("?"):  # a label ("Text 2: …")
        return False
    if re.search(r"\?(?:\s*X)*$", t) or _QUESTION.match(t) or _WANTS.match(t):  # "… com isto? 'Great!'"
        return True
    first = re.match(r"[\wÀ-ÿ'-]+", t)
    you_do = re.match(r"\s*(?:y\s+|e\s+)?me\s+([\wÀ-ÿ]+)s\b", text, re.I)  # "me traduces …", "me mandas …"
    return bool(first) and _is_verb(first.group(0)) or you_do is not None and _is_verb(you_do.group(1))


def _asks_somewhere(text: str) -> bool:
    """Some sentence of it is an ask ("Diabetes baseline: {…}. Predict the progression")."""
    return any(_is_ask(ln) for s in _SENTENCE.split(text) for ln in s.split("\n"))  # a line is a sentence too


def _is_header(text: str) -> bool:
    """"Please do the following:", "I need two things." — it announces the asks after it and is none of them."""
    return text.rstrip().endswith(":") or _ANNOUNCES.search(text) is not None


def _has_payload(text: str) -> bool:
    return "\ue000" in text or bool(re.search(r":\s*\S", text))


def _own_payload(line: str) -> bool:
    """The line brings its own text to work on (a masked payload, or words after a colon)."""
    return "\ue000" in line or re.search(r":[ \t]*\S", line) is not None


def _follows_up(line: str) -> bool:
    """A question about what came before ("Is it positive?"): it points back and brings nothing."""
    return not _own_payload(line) and _POINTS_BACK.search(line) is not None


_IT = re.compile(r"\b(?:it|its|it's|they|them|ele|ela)\b", re.I)
"""A pointer at the data itself ("Which cultivar is it?"): the question the data was given for."""


def _done(cur: list[str]) -> bool:
    """The lines so far are a whole instruction with its data (a verb first, a payload below
    it): a later question about "something like this" is a new ask; one about "it" is still the
    question the data was given for."""
    return len(cur) >= 2 and _is_verb(_bare(cur[0]).split(" ")[0]) and not _QUESTION.match(_bare(cur[0]))


def _lines(masked: str) -> list[tuple[str, str]]:
    """Paragraphs, then lines that each are an ask; anything else stays with the line above.

    A new ask starts a new part only once the current one holds an ask: data lines first
    ("Wine measurements:" and a record), then "Which cultivar?" is one part. Items of a list
    under a ranking question are its passages; items marked unlike the list's own (the
    "(a) …" under "1. Order these …") are the passages of the item above. Under a header that
    counts asks ("two things:"), or with no line outside the list, every item is an ask, verb or
    not ("- a fun fact about bees"). A line opened by "and" / "also" after an ask is a new ask
    ("and a caption for my photo"), and so are lines of the same form each with its own text
    ("vector for: 'x'" twice), and a labelled text after an ask that has its own ("Text 2: '…'")."""
    out: list[tuple[str, str]] = []
    for para in re.split(r"\n\s*\n", masked):
        lines = [ln for ln in para.split("\n") if ln.strip()]
        if not lines:
            continue
        styles = [_mark_style(ln) for ln in lines]
        top = next((st for st in styles if st), None)
        listed = [st is not None and st == top for st in styles]
        sub = [st is not None and st != top for st in styles]
        ranking = any(_RANK_CUES.search(ln) for ln, item in zip(lines, listed) if not item) and any(listed)
        header = [ln for ln, st in zip(lines, styles) if st is None]
        some_ask = any(_is_ask(ln) or _own_payload(ln) for ln, i in zip(lines, listed) if i)
        counted = bool(header) and _is_header(header[0]) and _ANNOUNCES.search(header[0]) is not None
        items_ask = any(listed) and (not header and some_ask or counted)
        record = _is_record(lines)
        if _terse_asks(lines, styles, record):
            out.extend((ln, "line") for ln in lines)
            continue
        leads = [_lead(ln) for ln in lines]
        cur: list[str] = []
        holds_ask = False
        for k, (ln, item) in enumerate(zip(lines, listed)):
            field = record and _FIELD.match(ln) is not None
            near = (leads[k - 1] if k else None, leads[k + 1] if k + 1 < len(lines) else None)
            parallel = leads[k] is not None and leads[k] in near
            if sub[k]:
                ask = False
            elif item:
                ask = not ranking and (items_ask or _is_ask(ln) or _own_payload(ln))
            else:
                joins = (holds_ask and _named_ask(ln) or len(cur) >= 2 and _is_ask(ln)) \
                    and _CONNECTOR_LINE.match(ln) is not None  # "also, what's …" after a record too
                ask = _is_ask(ln) and not field or parallel or joins or _payload_then_ask(ln)
            labelled = not item and not sub[k] and _LABELLED.match(ln) is not None and holds_ask \
                and "\ue000" in "\n".join(cur) and not cur[-1].rstrip().endswith(":")
            again = not _follows_up(ln) or _done(cur) and _words(ln) >= 5 and not _IT.search(ln)
            if cur and (ask and (holds_ask or item or parallel or joins) and (item or again) or labelled):
                out.append(("\n".join(cur), "line"))
                cur, holds_ask = [], False
            cur.append(_LIST_ITEM.sub("", ln, count=1) if item and k + 1 < len(lines) and sub[k + 1] else ln)
            holds_ask = not labelled and (holds_ask or ask or _is_ask(ln) and not field and not sub[k])
        out.append(("\n".join(cur), "line"))
    return out


def _terse_asks(lines: list[str], styles: list[str | None], record: bool) -> bool:
    """Short lines, each a request in a few words with no verb ("weather in Miami saturday",
    "language of 'x'", "short joke about accountants"): one ask a line. Not a list, a record, a
    header and what it announces, or an instruction with its text on the lines below it."""
    if not 2 <= len(lines) <= 6 or record or any(styles):
        return False
    if _is_ask(lines[0]) and not _own_payload(lines[0]) or any(ln.rstrip().endswith((":", ".")) for ln in lines):
        return False  # an instruction over its text, a header, statements
    if any(_HORIZON.match(_bare(ln)) or _CONNECTOR_LINE.match(ln) for ln in lines[1:]):
        return False  # "<series>" then "the next 7 days": the line continues the one with the data
    words = [_words(ln) for ln in lines]
    return all(2 <= w <= 10 or "\ue000" in ln and w >= 1 for w, ln in zip(words, lines)) \
        and not any(_FIELD.match(ln) for ln in lines) and sum(_is_ask(ln) or "\ue000" in ln for ln in lines) < len(lines)


def _payload_then_ask(line: str) -> bool:
    """A line that brings its text and says after it what to do with it ("'x' -> english", "<series>
    next 12 please"): a whole ask, though no verb opens it."""
    if "\ue001" not in line:
        return False
    tail = line[line.rindex("\ue001") + 1:]
    return len(re.findall(r"[\wÀ-ÿ]+", tail)) >= 1 and not re.fullmatch(r"[\s\d.,;:%-]*", tail)


def _mark_style(line: str) -> str | None:
    """How a list line is marked: "1." and "(a)" and "-" are different lists ("1." and "1)" are one)."""
    m = _LIST_ITEM.match(line)
    if m is None:
        return None
    mark = m.group(0).strip()
    if mark[0] in "-*•":
        return "bullet"
    if mark[0] in "([":
        return "paren-" + ("digit" if mark[1].isdigit() else "letter")
    return "digit" if mark[0].isdigit() else "letter"


def _lead(line: str) -> str | None:
    """The words before a line's own text ("vector for" in "vector for: 'x'"), when it has one."""
    m = re.match(r"\s*([^\ue000:]{3,40}?)\s*:?\s*\ue000", line)
    return m.group(1).lower() if m else None


def _inline_list(text: str) -> list[tuple[str, str]]:
    """"1. … 2. …" or "1) … 2) …" inside one line, when every item is an ask."""
    marks = list(re.finditer(r"(?:^|(?<=\s))(\d{1,2})[.)]\s+", text))
    if len(marks) < 2 or [int(m.group(1)) for m in marks] != list(range(1, len(marks) + 1)):
        return [(text, "start")]
    items = [text[m.end(): marks[i + 1].start() if i + 1 < len(marks) else len(text)] for i, m in enumerate(marks)]
    head = text[: marks[0].start()]
    if _RANK_CUES.search(head) or not all(_is_ask(it) for it in items):
        return [(text, "start")]
    out = [(head, "start")] if _is_ask(head) and not _is_header(head) else []
    return out + [(it, "list") for it in items]


def _named_ask(text: str) -> bool:
    """What is wanted, named without a verb after an explicit "also" / "as well as" / "plus" / "then"
    ("… and also a fun fact about owls"): a determiner and two more words; not "… and also Spanish"."""
    return re.match(r"(?:a|an|the|some|one|another|um|uma|une|un|una|la|le|les|el|los|las|o|os|as)\s", _bare(text),
                    re.I) is not None \
        and _words(text) >= 3


def _words(text: str) -> int:
    """Words of its own, payloads not counted ("? 3, 5, 8, …" after "the one after that" has none)."""
    return len(re.findall(r"[\wÀ-ÿ']+", re.sub(r"\ue000\d+\ue001", " ", text)))
