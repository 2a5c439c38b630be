"""Where one request holds several asks, and which text belongs to which.

A request is cut at the separators people use between asks: blank lines, one ask per line,
numbered or bulleted lists of asks, "first … second …", "then" / "after that", "and also" /
"Also, …", "… and <verb> …" inside one sentence, and a new question or instruction after a
finished one. Payloads are masked first (quoted text, JSON objects, runs of numbers), so a
separator inside what a user wants translated never cuts the request.

A question begun inside an instruction's sentence is cut too ("write a slogan for a bike shop
what language is 'fahrrad'?", "translate 'x', is 'y' negative?"), lowercase or not, and an
ask before a ranking's query ("Give me a vector for 'x' and rank these: 1. … 2. …").

What is *not* cut: a list whose items are passages under one query (a ranking), a list of
items that are not asks under one instruction ("Translate these into Portuguese:\n- hello\n-
goodbye" is one ask whose text is the list), a table's lines, a payload after a colon, a
verb that only sets up the next ("Read this review and tell me …"), and a follow-up sentence
that only points back at the text before it ("… 'great phone'. Is it positive?"). Greeting
and sign-off lines ("Hi!", "Thanks!") are dropped: they are not asks. A part that names no
payload of its own but points at one ("tell me if this review is positive and put it into
Portuguese: '…'") gets its sibling's.

Chat drops marks, and the rules read what is left: a payload ends a sentence ("… 'x' Depois
escreve …"), a direct question after "and" or after a finished instruction needs no "?" ("book a
taxi for 5am whats the portuguese for 'gate'"), an ask named without a verb after "also" / "as
well as" / "plus" / "then" is one ("… and also a fun fact about owls"). Paragraphs, lines and list items
are read by ``split_lines.py``; the words by ``split_words.py``.

Every rule is a separator a person would see; none is a task word, so a new family needs
nothing here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .parse import _QUOTED, Part, classify_shape
from .split_lines import (
    _asks_somewhere, _bare, _has_payload, _inline_list, _is_ask, _is_header, _lines, _named_ask, _own_payload, _words,
)
from .split_words import (
    _ALSO, _AND_QUESTION, _AND_VERB, _EMBEDS, _INLINE_MARK, _LIST_ITEM, _MID_QUESTION, _ORDINAL, _PLEASANTRY,
    _HANDS_OVER, _HORIZON, _POINTS_BACK, _WANTS, _PREPARE, _QUESTION, _RANK_CUES, _SENTENCE, _THEN, _WH, _is_verb, _without_pleasantries,
)

__all__ = ["Piece", "pieces_of", "split_request"]

@dataclass(slots=True)
class Piece:
    text: str
    """The ask as written, payloads restored."""
    joined_by: str
    """What separated it from the piece before: "start", "line", "list", "ordinal", "then",
    "also", "and", "sentence"."""


class _Masked:
    """The request with its payloads replaced by placeholders, and the way back."""

    def __init__(self, text: str) -> None:
        self.saved: list[str] = []
        number = r"[-+]?(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?"  # no trailing ".": that ends a sentence
        pattern = re.compile(rf"{_QUOTED.pattern}|\{{[^{{}}]*\}}|(?:{number}(?:[ \t]*[,;][ \t]*|[ \t]+)){{7,}}{number}")
        self.text = pattern.sub(self._keep, text)

    def _keep(self, m: re.Match[str]) -> str:
        self.saved.append(m.group(0))
        tail = " " if m.group(0).endswith((" ", "\n")) else ""
        return f"\ue000{len(self.saved) - 1}\ue001{tail}"

    def restore(self, text: str) -> str:
        return re.sub("\ue000(\\d+)\ue001", lambda m: self.saved[int(m.group(1))], text)


def _cut(pieces: list[tuple[str, str]], pattern: re.Pattern[str], how: str,
         strict: bool = False) -> list[tuple[str, str]]:
    """Cut at an explicit connector when what follows it is an ask (``strict``: and what
    precedes it too; "if it rains then …" is one ask)."""
    out: list[tuple[str, str]] = []
    for text, joined in pieces:
        parts = pattern.split(text)
        if len(parts) == 1 or how != "ordinal" and "\n" in text and _LIST_ITEM.search(text):
            out.append((text, joined))
            continue
        kept = [p for p in parts if p is not None and p.strip(" .,;:")]
        first_asks = bool(kept) and (_asks_somewhere(kept[0]) or _own_payload(kept[0])
                                     or _MID_QUESTION.search(kept[0]) is not None)  # "… what do i do. also …"
        joins = how in ("also", "then")
        later_ask = len(kept) >= 2 and all(
            (_is_ask(p) or _own_payload(p) or joins and (_named_ask(p) or _wanted_too(kept[0], p)))
            and (_words(p) >= 2 or joins and "\ue000" in p and _words(p) >= (how == "then")) for p in kept[1:]) \
            and (how != "also" or first_asks)  # not "Given bmi plus the six serum values, …"
        counted = how == "ordinal" and len(kept) >= 2 and len(pattern.findall(text)) >= 2 \
            and not _ask_before(text, pattern)  # "First … Second …", not "most relevant first"
        if not counted and (not later_ask or (strict and not _asks_somewhere(kept[0]))
                            or len(_bare(kept[0]).split()) < 2):
            out.append((text, joined))
            continue
        out.append((kept[0], joined))
        out.extend((p, how) for p in kept[1:])
    return out


def _wanted_too(first: str, later: str) -> bool:
    """"quero cancelar a reserva e também saber se vai chover": after a want, a second infinitive
    after "also" / "then" is a second thing wanted."""
    return _WANTS.match(_bare(first)) is not None and re.match(r"[a-zà-ÿ]+(?:ar|er|ir|re)\b", _bare(later)) is not None


def _ranking(text: str) -> bool:
    """A query over marked passages: its items and sentences are passages, never asks."""
    from .parse import passages_of

    masked = re.sub("\ue000\\d+\ue001", "Q", text)
    mark = _LIST_ITEM.search(masked) or _INLINE_MARK.search(masked)
    return mark is not None and bool(_RANK_CUES.search(masked[: mark.start()])) and passages_of(text) is not None


def _ask_before(text: str, pattern: re.Pattern[str]) -> bool:
    """The first ordinal comes after an ask of its own ("… come first for …"), not after a
    finished sentence ("I need two things. First, …")."""
    m = pattern.search(text)
    return m is not None and len(_bare(text[: m.start()]).split()) >= 3 \
        and not text[: m.start()].rstrip().endswith((".", "!", "?", ":", ";"))


def _cut_and(pieces: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """"… and <verb> …": a second instruction in the same sentence."""
    out: list[tuple[str, str]] = []
    for text, joined in pieces:
        last, cur_joined = 0, joined
        for m in _AND_VERB.finditer(text):
            verb = m.group(2).lower()
            before, after = text[last:m.start()], text[m.end():]
            asks_again = _is_verb(verb) or m.group(1) is not None or _you_do(text, m) or verb in _AND_QUESTION and (
                after.rstrip().endswith("?") and not _embeds(before) or _question_again(before, after))
            if asks_again and len(_bare(after).split()) >= 2 and _whole_ask(before) \
                    and not _of_its_answer(before, after) and not _horizon(before, after) \
                    and (m.group(1) is None or _is_ask(before)):  # not "my package never came and I want …"
                out.append((before, cur_joined))
                last, cur_joined = m.end(), "and"
        out.append((text[last:], cur_joined))
    return out


def _horizon(before: str, after: str) -> bool:
    """"blend both models on this series and give me 12 months ahead: …", "<series> e projeta 6
    meses": the clause after "and" is how far the first one should go: one ask."""
    return _HORIZON.match(_bare(after)) is not None


_TARGETS = re.compile(r"(\ue000\d+\ue001\s+(?:to|into|in|em|en|para|pro|pra|al|au)\s+([\wÀ-ÿ]+))"
                      r"(\s*,?\s+(?:and|e|y|et)\s+)(?=\ue000\d+\ue001\s+(?:to|into|in|em|en|para|pro|pra|al|au)\s+([\wÀ-ÿ]+))",
                      re.I)


def _cut_targets(pieces: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """"translate 'x' to portuguese and 'y' to english": two texts, each with a target of its own
    (different ones): two asks, the verb shared."""
    out: list[tuple[str, str]] = []
    for text, joined in pieces:
        m = _TARGETS.search(text)
        if m is None or m.group(2).lower() == m.group(4).lower():
            out.append((text, joined))
            continue
        out += [(text[: m.end(1)], joined), (text[m.end(3):], "also")]  # "also": kept though it has no verb
    return out


def _you_do(text: str, m: re.Match[str]) -> bool:
    """"… y me escribes una frase": a request in the second person after "me" ("me dices", "me
    mandas"), the way Spanish chat asks."""
    verb = m.group(2).lower()
    return text[max(0, m.start(2) - 3):m.start(2)].lower() == "me " and verb.endswith("s") and _is_verb(verb[:-1])


def _of_its_answer(before: str, after: str) -> bool:
    """"detect the language and give me its ISO code: '…'": the clause after "and" asks for a
    property of the first one's answer (a possessive pointing back), and neither has the text
    yet: one ask, whose payload comes at the end. So is "… and give me the ISO code: '…'", a
    thing asked for (not an action on "it") with the text after it."""
    if _own_payload(before):
        return False
    head = " ".join(after.split()[:6])
    return re.search(r"\b(?:its|dele|dela|their)\b", head, re.I) is not None \
        or re.match(r"(?:give|tell|show)\s+(?:me|us)\s+the\b[^:]{0,200}:\s*\S", after, re.I) is not None


def _question_again(before: str, after: str) -> bool:
    """"… and what wine goes with carbonara": a direct question after an ask, "?" or not (chat
    drops it), when it is a sentence of its own (four words: not "… and why") and the ask before
    is not itself an embedded question the "and" continues ("tell me what X is and how it works")."""
    return len(_bare(after[:300]).split()) >= 4 and _is_ask(before) and not _embeds(before)


def _embeds(before: str) -> bool:
    """It opens an embedded question ("explain what inflation is"), which an "and how …" continues."""
    bare = _bare(before[:300])
    return re.match(rf"(?:[\w']+\s+){{1,3}}{_WH}\b", bare, re.I) is not None and not _QUESTION.match(bare)


def _whole_ask(before: str) -> bool:
    """What precedes an "and" is an ask of its own: three words, or a verb and its payload
    ("summarize 'X'"), and not a verb that only sets up the next one ("Read this review and …")."""
    bare = _bare(before[:300])
    if _PREPARE.match(bare) and (not _own_payload(before) or _HANDS_OVER.match(bare)):
        return False
    return len(bare.split()) >= (2 if "\ue000" in before else 3)


def _cut_mid_question(pieces: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """A question begun inside an instruction's sentence, with no full stop between them
    ("write a slogan for a bike shop what language is 'fahrrad'?", "translate 'x', is 'y'
    negative?"): the question runs to its "?", and a question word right after a verb or a
    pronoun ("tell me what language 'x' is") is an embedded question, not a new one."""
    out: list[tuple[str, str]] = []
    for text, joined in pieces:
        last, cur_joined = 0, joined
        for m in _MID_QUESTION.finditer(text):
            before, after = text[last:m.start()], text[m.end():m.end() + 1000]  # windows: linear on long text
            words = re.findall(r"[\wÀ-ÿ']+", before[-80:].lower())
            embedded = not words or words[-1] in _EMBEDS or _is_verb(words[-1])
            if (not embedded and text.find(":", last, m.start()) < 0 and re.match(r"[^.!?]*[?\ue000]", after)
                    and _is_ask(before) and _whole_ask(before)):
                out.append((before, cur_joined))
                last, cur_joined = m.end(), "sentence"
        out.append((text[last:], cur_joined))
    return out


def _cut_sentences(pieces: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """A new ask after a finished one: split when both are asks, the later one does not just
    point back at the earlier one's text, and, inside a payload after a colon, it brings its own."""
    out: list[tuple[str, str]] = []
    for text, joined in pieces:
        if "\n" in text and _LIST_ITEM.search(text):  # a list's lines were judged by _lines
            out.append((text, joined))
            continue
        sentences = _with_payloads(_SENTENCE.split(text))
        cur, cur_joined, anchored = sentences[0], joined, False
        for s in sentences[1:]:
            opens = (_QUESTION.match(_bare(s)) is not None or _is_verb(_bare(s).split(" ")[0])) and _words(s) >= 3 \
                and not re.match(r"(?:and|or|e|ou|y|o|et)\s", s)  # "take this log <numbers> and predict …": _cut_and
            if cur.rstrip().endswith("\ue001") and not _own_payload(s) and not (opens and _is_ask(cur)):
                # "Is 'great phone' Positive?"; but "Rewrite 'x' Is the original negative?" asks again
                cur += " " + s
                continue
            in_payload = re.search(r":\s*\S", cur) is not None and "\ue000" not in cur.split(":", 1)[1] \
                and not cur.rstrip().rstrip(".")[-1:].isdigit()  # data values, then a question (full stop or not)
            own = _has_payload(s)
            # its first clause points back ("Is it positive?"), not a later one ("how do I lock my account, I think it …")
            refers = _POINTS_BACK.search(re.split(r"[,;]", re.sub(r"\ue000\d+\ue001", " ", s))[0]) is not None
            bare = _bare(s)
            capital = re.match(r"[¿\"'“«\ue000A-ZÀ-Ý]", s) is not None or _is_verb(bare.split(" ")[0]) \
                or _QUESTION.match(bare) is not None and not re.match(r"[\w']+\s*:", bare)  # not "are: age: …"
            new = own or (not refers or anchored) and not in_payload
            if _is_ask(cur) and _is_ask(s) and new and capital:
                out.append((cur, cur_joined))
                cur, cur_joined, anchored = s, "sentence", False
            else:  # "I got this message: 'x'. What language is it?": the next ask about it is a sibling
                anchored = anchored or not _is_ask(cur) and _has_payload(cur) and _is_ask(s)
                cur += " " + s
        out.append((cur, cur_joined))
    return out


def _with_payloads(sentences: list[str]) -> list[str]:
    """A sentence that is only a payload belongs to the question before it ("Is it positive? 'Great!'")."""
    out: list[str] = []
    for s in sentences:
        if out and re.fullmatch(r"(?:\ue000\d+\ue001[\s.!?]*)+", s):
            out[-1] += " " + s
        else:
            out.append(s)
    return out


def _unless_ranking(cut: Callable[[list[tuple[str, str]]], list[tuple[str, str]]], m: _Masked,
                    pieces: list[tuple[str, str]]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for p in pieces:
        out += _ask_before_ranking(cut, p) if _ranking(m.restore(p[0])) else cut([p])
    return out


def _ask_before_ranking(cut: Callable[[list[tuple[str, str]]], list[tuple[str, str]]],
                        piece: tuple[str, str]) -> list[tuple[str, str]]:
    """A ranking whose query line starts with another ask ("Give me a vector for 'x' and order
    these by relevance: 1. …"): only the query line is cut, the last piece keeps the passages,
    and only when the ranking cue is in that last piece ("Pick the most relevant results and
    order them: …" is one ranking). When the cue is in the first piece only and the last brings
    its own text ("order these by relevance to 'x' and tell me what language 'y' is: 1. …"),
    the passages go back to the ranking."""
    text, joined = piece
    mark = _LIST_ITEM.search(text) or _INLINE_MARK.search(text)
    if mark is None:
        return [piece]
    head = cut([(text[: mark.start()], joined)])
    cued = [bool(_RANK_CUES.search(h)) for h, _ in head]
    if len(head) == 2 and cued == [True, False] and "\ue000" in head[1][0]:
        return [(head[0][0].rstrip() + ":\n" + text[mark.start():].lstrip("\n"), head[0][1]),
                (head[1][0].rstrip().rstrip(":"), head[1][1])]
    if len(head) < 2 or not cued[-1] or any(cued[:-1]):
        return [piece]
    return head[:-1] + [(head[-1][0] + text[mark.start():], head[-1][1])]


def pieces_of(text: str) -> list[Piece]:
    """The asks in ``text``, in order, with what separated each from the one before."""
    m = _Masked(text)
    pieces = _lines(_without_pleasantries(m.text))
    pieces = [q for p, j in pieces for q in ([(p, j)] if "\n" in p else _retag(_inline_list(p), j))]
    for cut in (lambda ps: _cut(ps, _ORDINAL, "ordinal"), lambda ps: _cut(ps, _THEN, "then", strict=True),
                lambda ps: _cut(ps, _ALSO, "also"), _cut_and, _cut_targets, _cut_mid_question,
                _cut_sentences):
        pieces = _unless_ranking(cut, m, pieces)
    merged: list[tuple[str, str]] = []
    for k, (p, j) in enumerate(pieces):
        announces = k + 1 < len(pieces) and _is_header(p) and pieces[k + 1][1] in ("line", "list", "ordinal")
        if not p.strip(" \n\t.,;:-") or _PLEASANTRY.match(p) or announces:
            continue
        named = j in ("also", "then") and (_named_ask(p) or "\ue000" in p and (j == "then") <= _words(p) <= 4
                                           or bool(merged) and _wanted_too(merged[-1][0], p))
        if merged and not (_is_ask(p) or named) and j not in ("line", "list", "ordinal"):
            merged[-1] = (merged[-1][0] + " " + p, merged[-1][1])
        elif merged and not _is_ask(merged[-1][0]) and merged[-1][1] == "start":
            merged[-1] = (merged[-1][0] + "\n" + p, "start")
        else:
            merged.append((p, j))
    return [Piece(m.restore(p).strip(" \n\t,;"), j) for p, j in merged] or [Piece(text.strip(), "start")]


def _retag(pieces: list[tuple[str, str]], joined: str) -> list[tuple[str, str]]:
    return [(p, joined if i == 0 else j) for i, (p, j) in enumerate(pieces)]


def split_request(text: str) -> list[Part]:
    """The parts of a request, each with the payload it carries or shares with a sibling."""
    pieces = pieces_of(text)
    parts = [classify_shape(p.text) for p in pieces]
    for piece, part in zip(pieces, parts):
        part.joined = piece.joined_by
    if len(parts) > 1:
        _share_payloads(pieces, parts)
    return parts


_SAME_DATA = re.compile(r"\b(?:the same|those same|these same|a mesma|la misma|les mêmes) "
                        r"(?:series|data|numbers|values|"
                        r"readings|row|record|measurements|série|dados|serie|datos|valores|données)\b", re.I)
"""An explicit pointer at a sibling's data, whatever its shape (a series, a record)."""


def _share_payloads(pieces: list[Piece], parts: list[Part]) -> None:
    """A text part with nothing to work on but a pointer ("this review", "it") takes the
    nearest sibling's payload: the next one's first (the text usually comes last), else the
    one before. Only "the same series / data" takes a series or a record (an "explain why it
    rises" after a forecast is a question, not a second forecast)."""
    own = [p.kind != "text" or _has_payload(_Masked(p.text).text) for p in parts]
    for i, (piece, part) in enumerate(zip(pieces, parts)):
        if own[i] or part.kind != "text" or not _POINTS_BACK.search(piece.text):
            continue
        same = _SAME_DATA.search(piece.text)
        for j in [*range(i + 1, len(parts)), *range(i - 1, -1, -1)]:
            if own[j] and parts[j].kind == "text":
                part.payload = dict(parts[j].payload)
                break
            if same and own[j] and parts[j].kind != "ranking":  # "… then a plain forecast for the same series"
                part.kind, part.payload = parts[j].kind, dict(parts[j].payload)
                break
