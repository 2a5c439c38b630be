"""Reading a free-text request: where it splits into parts, what each part's payload is.

Structured payloads are recognised before any model looks at the text: a run of numbers is
a series (forecasting), ``name=value`` pairs are a record (tabular), numbered passages
with a question are a ranking. Everything else is text, and its payload is what the
request quotes, or what follows its first colon; failing both, the whole request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Part", "horizon_of", "passages_of", "record_of", "series_of", "split_request", "text_payload"]

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_SERIES = re.compile(rf"(?:{_NUMBER}\s*[,;]?\s*){{8,}}")
_PAIR = re.compile(rf"([A-Za-z][\w /()'-]*?)\s*[=:]\s*({_NUMBER})(?=\s*(?:[,;\n]|$))")
_QUOTED = re.compile(r"[\"“«'‘]([^\"”»’]{2,})[\"”»’]")
_PASSAGE = re.compile(r"(?:^|\s)(?:\[(\d{1,2})\]|\((\d{1,2})\)|(\d{1,2})[.)])\s+")
_HORIZON = re.compile(r"\b(?:next|following|coming)\s+(\d{1,3})\b|\b(\d{1,3})\s+(?:steps|values|points|periods|"
                      r"months|weeks|days|hours|quarters|years)\b", re.I)
_SPLIT = re.compile(r"\n\s*\n|\n(?=\s*(?:\d+[.)]|[-*•])\s)|;\s+(?=[A-Z])|\s+(?:Also|Then|And then|Additionally),\s+")


@dataclass(slots=True)
class Part:
    text: str
    kind: str = "text"
    """text | series | record | ranking (what the payload looks like, before any model)."""
    payload: dict[str, Any] = field(default_factory=dict)


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
    quoted = _QUOTED.search(head)
    query = quoted.group(1) if quoted else head.rsplit(":", 1)[0]
    passages = [p for p in passages if p]
    return (query.strip(), passages) if query.strip() and len(passages) >= 2 else None


def text_payload(text: str) -> str:
    """What to classify or translate: the quoted part, else what follows the first colon."""
    quoted = _QUOTED.findall(text)
    if quoted:
        return max(quoted, key=len).strip()
    head, sep, tail = text.partition(":")
    out = tail if sep and tail.strip() and len(head) < 120 else text
    return out.strip().strip("'\"‘’“”«»").strip() or text.strip()


def classify_shape(text: str) -> Part:
    if (series := series_of(text)) is not None and record_of(text) is None:
        return Part(text, "series", {"series": series, "horizon": horizon_of(text)})
    if (record := record_of(text)) is not None:
        return Part(text, "record", {"record": record})
    if (ranked := passages_of(text)) is not None:
        return Part(text, "ranking", {"query": ranked[0], "passages": ranked[1]})
    return Part(text, "text", {"text": text_payload(text)})


def split_request(text: str) -> list[Part]:
    """Independent requests inside one: blank lines, list items, "; Next…", "Also, …".

    Conservative on purpose: a single request must stay one part, so only clear
    separators split, and a piece too short to be a request rejoins its neighbour.
    """
    pieces = [p.strip() for p in _SPLIT.split(text) if p and p.strip()]
    merged: list[str] = []
    for p in pieces:
        if merged and len(p) < 12:
            merged[-1] += " " + p
        else:
            merged.append(p)
    return [classify_shape(p) for p in merged or [text.strip()]]
