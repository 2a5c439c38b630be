"""Reading a free-text part: what its payload is (where a request splits is `split.py`).

Structured payloads are recognised before any model looks at the text, by the task families
that take them (``TaskFamily.recognise``, built on the parsers here): a run of numbers is a
series, ``name=value`` pairs are a record, numbered passages with a question are a ranking.
Everything else is text, and its payload is what the request quotes, or what follows its
first colon; failing both, the whole request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Part", "horizon_of", "instruction_of", "passages_of", "record_for", "record_of", "series_of",
    "target_language", "text_payload", "wants_translation",
]

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_SERIES = re.compile(rf"(?:{_NUMBER}\s*[,;]?\s*){{8,}}")
_PAIR = re.compile(rf"([A-Za-z][\w /()'-]{{0,60}}?)\s*[=:]\s*({_NUMBER})(?=\s*(?:[,;\n]|$))")
_QUOTED = re.compile(
    r'"([^"]{2,})"|“([^”]{2,})”|«([^»]{2,})»|‘([^’]{2,})’|(?<![\w])\'((?:[^\']|(?<=\w)\'(?=\w)){2,}?)\'(?![\w])'
)
"""A quoted payload; an apostrophe inside a word ("What's") does not open a quote, nor close one
("'I've asked twice.'" is one payload)."""


def _quoted(text: str) -> list[str]:
    return [next(g for g in m.groups() if g) for m in _QUOTED.finditer(text)]
_PASSAGE = re.compile(
    r"(?:^|(?<=\s))(?:\[(?:\d{1,2}|[A-Ha-h]|[ivx]{1,4})\]|\((?:\d{1,2}|[A-Ha-h]|[ivx]{1,4})\)"
    r"|(?<![\d.\w])(?:(?:\d{1,2}|[A-H])[.)]|[a-h]\))|(?m:^)\s*[-*•])\s+"
)
_HORIZON = re.compile(r"\b(?:next|following|coming)\s+(\d{1,3})\b|\b(\d{1,3})\s+(?:steps|values|points|periods|"
                      r"months|weeks|days|hours|quarters|years)\b", re.I)


@dataclass(slots=True)
class Part:
    text: str
    kind: str = "text"
    """text | series | record | ranking (what the payload looks like, before any model)."""
    payload: dict[str, Any] = field(default_factory=dict)
    joined: str = "start"
    """What separated it from the part before (``split.Piece.joined_by``); "and" is a guess
    the planner undoes when both halves go to one expert or the first is unsure."""


def series_of(text: str) -> list[float] | None:
    m = max(_SERIES.finditer(text), key=lambda m: len(m.group(0)), default=None)
    if m is None:
        return None
    values = [float(v) for v in re.findall(_NUMBER, m.group(0))]
    return values if len(values) >= 8 else None


def record_of(text: str) -> dict[str, float] | None:
    pairs = {k.strip().lower(): float(v) for k, v in _PAIR.findall(text)}
    return pairs if len(pairs) >= 3 else None


def horizon_of(text: str, default: int = 6) -> int:
    m = _HORIZON.search(text)
    return int(m.group(1) or m.group(2)) if m else default


def passages_of(text: str) -> tuple[str, list[str]] | None:
    """A query and ≥ 2 numbered passages ("[1] … [2] …", "1. … 2. …"), or None."""
    marks = list(_PASSAGE.finditer(text))
    if len(marks) < 2:
        return None
    passages = [text[m.end(): (marks[i + 1].start() if i + 1 < len(marks) else len(text))].strip(" \n;,")
                for i, m in enumerate(marks)]
    head = text[: marks[0].start()]
    quoted = _quoted(head)
    query = quoted[0] if quoted else head.rsplit(":", 1)[0]
    passages = [p for p in passages if p]
    return (query.strip(), passages) if query.strip() and len(passages) >= 2 else None


def text_payload(text: str) -> str:
    """What to classify or translate: the quoted part, else what follows the first colon."""
    quoted = _quoted(text)
    if quoted:
        return max(quoted, key=len).strip()
    head, sep, tail = text.partition(":")
    out = tail if sep and tail.strip() and len(head) < 120 else text
    return out.strip().strip("'\"‘’“”«»").strip() or text.strip()


def instruction_of(text: str) -> str:
    """The request without its payload: what is asked, not what it is asked about.

    "Translate into Portuguese: The train leaves at nine" → "Translate into Portuguese".
    Quoted text, what follows a colon, bracketed passages and numbers go; a request with no
    separable payload is its own instruction.
    """
    out = _QUOTED.sub(" ", text)
    head, sep, tail = out.partition(":")
    if sep and len(head.split()) >= 2:
        out = head
    out = re.sub(rf"\[\d+\].*|{_NUMBER}", " ", out, flags=re.S)
    out = " ".join(out.split())
    return out if len(out.split()) >= 2 else text


def classify_shape(text: str) -> Part:
    """The first family (in hook order) that recognises a structured payload takes the part;
    anything else is text."""
    from ..families import all_families  # families build on this module's parsers

    for f in all_families():
        if f.auto_shape is not None and f.auto_shape != "text" and (payload := f.recognise(text)) is not None:
            return Part(text, f.auto_shape, payload)
    return Part(text, "text", {"text": text_payload(text)})


_TARGETS = {"pt": ("portuguese", "português", "portugues", "portugués", "portugais", "brazilian"),
            "en": ("english", "inglês", "ingles", "inglés", "anglais")}
"""The two languages' names in English, Portuguese, Spanish and French: an instruction in any of them."""
_TARGET = re.compile(r"\b(?:into|to|in|para(?:\s+o)?|em|pro|en|al|a|vers\s+l'|au)\s+(?:el\s+|l')?(" + "|".join(n for ns in _TARGETS.values() for n in ns)
                     + r")\b", re.I)
_PT_HINTS = re.compile(r"[ãõçáéíóúâêô]|\b(?:não|você|obrigad[oa]|onde|quanto|está|para|uma|com|que)\b", re.I)


_ARROW = re.compile(r"\b(en|pt)\s*(?:→|->|2|to)\s*(en|pt)\b", re.I)
_FROM = re.compile(r"\bfrom\s+(" + "|".join(n for ns in _TARGETS.values() for n in ns) + r")\b", re.I)
_TRANSLATE = re.compile(r"\b(?:translat\w*|tradu\w*|render\w*\s+(?:it\s+)?in|say\s+this\s+in|in\s+(?:portuguese|"
                        r"english)|en\s*(?:→|->)\s*pt|pt\s*(?:→|->)\s*en)\b",
                        re.I)


def _code(word: str) -> str:
    return next(code for code, names in _TARGETS.items() if word.lower() in names)


def wants_translation(text: str) -> bool:
    """The request asks for a translation (a verb, a target language, or an en→pt arrow)."""
    instr = instruction_of(text)
    return bool(_TRANSLATE.search(instr) or _TARGET.search(instr) or _ARROW.search(text))


_MODELS = r"(?:models?|forecasters?|experts?|classifiers?|predictors?)"
_ENSEMBLE = re.compile(
    r"\bensembles?\b|\bmodel[- ]averag|\b(?:vários|varios|diversos|múltiplos|plusieurs)\s+(?:[\w-]+\s+){0,2}"
    r"(?:modelos|modèles)\b|\bmodel(?:o|e)s\s+combinad[oa]s\b|\bcombin\w*\s+(?:[\w-]+\s+){0,3}model(?:o|e)s\b|"
    r"\b(?:committee|panel|mix|handful|bunch)\s+of\s+(?:[\w-]+\s+){0,2}"
    r"(?:models|forecasters|predictors)\b"
    rf"|\b(?:several|multiple|more than one|a couple of|two|three|many|different)\s+(?:[\w-]+\s+){{0,2}}{_MODELS}\b"
    r"|\b(?:combin|blend|pool|averag|merg|mix)\w*\b[^.:;]{0,60}"
    r"\b(?:models|forecasters|experts|classifiers|predictors|forecasts|predictions)\b",
    re.I,
)


def wants_ensemble(text: str) -> bool:
    """The request asks, in so many words, for several models' answers combined."""
    return bool(_ENSEMBLE.search(text))


def target_language(text: str, payload: str, payload_language: str | None = None) -> str:
    """The language a translation request wants: an en→pt arrow, a language named after
    into/to/para/em, the other one than a language named after "from", else the one the
    payload is not written in (``payload_language``: what the catalog's language identifier
    said; without it, Portuguese is recognised by its accents and commonest words)."""
    instr = instruction_of(text)
    if m := _ARROW.search(text):
        return m.group(2).lower()
    if m := _TARGET.search(instr):
        return _code(m.group(1))
    if m := _FROM.search(instr):
        return "en" if _code(m.group(1)) == "pt" else "pt"
    if payload_language in ("pt", "en"):
        return "en" if payload_language == "pt" else "pt"
    return "en" if len(_PT_HINTS.findall(payload)) >= 2 else "pt"


def _variants(name: str) -> list[str]:
    return sorted({name, name.replace("_", " "), name.replace(" ", "_")}, key=len, reverse=True)


def _flat_csv(text: str, features: list[str]) -> dict[str, float]:
    """A CSV header and its row whose line break was lost ("a,b,c 1.0,2.0,3.0", as a part's text
    may carry it): a run of feature-named cells, the last one followed by the first value, then
    one value cell per name."""
    names = {v.lower(): f for f in features for v in _variants(f)}
    cells = [c.strip().strip('"').lower() for c in re.split(r"[,;\t]", text)]
    number = re.compile(rf"({_NUMBER})")
    i = 0
    while i < len(cells):
        words = cells[i].split()
        first = next((names[" ".join(words[k:])] for k in range(max(0, len(words) - 4), len(words))
                      if " ".join(words[k:]) in names), None)
        if first is None:
            i += 1
            continue
        header, j = [first], i + 1
        while j < len(cells) and cells[j] in names:
            header.append(names[cells[j]])
            j += 1
        if j < len(cells) and (m := re.fullmatch(rf"(.+?)\s+({_NUMBER})", cells[j])) and m.group(1) in names:
            header.append(names[m.group(1)])
            values = [m.group(2)] + [c for c in cells[j + 1: j + len(header)] if number.fullmatch(c)]
            if len(header) >= 3 and len(values) == len(header):
                return {h: float(v) for h, v in zip(header, values)}
        i = j
    return {}


def record_for(text: str, features: list[str]) -> dict[str, float]:
    """The values of ``features`` a request carries: a JSON object, ``name=value`` /
    ``name: value`` / ``name value`` in prose, or a CSV header line with a row under it."""
    import json

    found: dict[str, float] = {}
    for m in re.finditer(r"\{[^{}]*\}", text):
        try:
            obj = json.loads(m.group(0))
        except ValueError:
            continue
        lower = {str(k).lower(): v for k, v in obj.items()}
        for f in features:
            for v in _variants(f.lower()):
                if isinstance(lower.get(v), (int, float)):
                    found[f] = float(lower[v])
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for i, ln in enumerate(lines[:-1]):
        cols = [c.strip().strip('"').lower() for c in re.split(r"[,;\t]", ln)]
        hits = [next((f for f in features if c in _variants(f.lower())), None) for c in cols]
        if sum(h is not None for h in hits) >= 3:
            values = re.findall(_NUMBER, lines[i + 1])
            if len(values) == len(cols):
                found.update({h: float(v) for h, v in zip(hits, values) if h is not None})
    if len(found) < len(features):
        found.update({f: v for f, v in _flat_csv(text, features).items() if f not in found})
    for f in features:
        if f in found:
            continue
        for v in _variants(f):
            m = re.search(rf"(?<![\w/]){re.escape(v)}(?![\w/])[\"']?\s*(?:[=:]|is|of)?\s*({_NUMBER})", text, re.I)
            if m:
                found[f] = float(m.group(1))
                break
    return found
