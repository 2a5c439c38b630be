"""Reading the monolith's free-text answers leniently, for bench/expert_vs_monolith.py.

Every parser gives the general model the benefit of the doubt: the first label it names,
a language by name or code, numbers wherever they are. A stricter reading would only make
the monolith look worse.
"""

from __future__ import annotations

import re

__all__ = ["parse_cultivar", "parse_forecast", "parse_label", "parse_language", "parse_translation"]

LANG_NAMES = {
    "english": "en", "portuguese": "pt", "spanish": "es", "french": "fr", "german": "de", "italian": "it",
    "dutch": "nl", "polish": "pl", "swedish": "sv", "finnish": "fi", "turkish": "tr",
}
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")


def _norm(s: str) -> str:
    return re.sub(r"[\s\-]+", "_", s.lower())


def parse_label(text: str, labels: list[str]) -> str | None:
    """The label named earliest in the answer (the longest one at that place); '_' ≈ space ≈ '-'."""
    t = _norm(text)
    best: tuple[int, int, str] | None = None
    for lab in labels:
        m = re.search(rf"(?<![a-z0-9]){re.escape(_norm(lab))}(?![a-z0-9])", t)
        if m and (best is None or (m.start(), -len(lab)) < (best[0], best[1])):
            best = (m.start(), -len(lab), lab)
    return best[2] if best else None


def parse_language(text: str, codes: list[str]) -> str | None:
    """A language name anywhere wins (so 'It is German' is German); else the first ISO code."""
    low = text.lower()
    named = [(m.start(), code) for name, code in LANG_NAMES.items()
             for m in [re.search(rf"\b{name}\b", low)] if m]
    if named:
        return min(named)[1]
    m = re.search(rf"\b({'|'.join(codes)})\b", low)
    return m.group(1) if m else None


def parse_cultivar(text: str) -> str | None:
    m = re.search(r"cultivar[\s_-]*([123])\b", text.lower()) or re.search(r"\b([123])\b", text)
    return f"cultivar_{m.group(1)}" if m else None


def parse_translation(text: str) -> str:
    """The first non-empty line, without a 'Translation:' lead-in or surrounding quotes."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = re.sub(r"^(?:portuguese|portugu[eê]s|translation|tradu[cç][aã]o)\s*(?:\([^)]*\))?\s*:\s*", "", line,
                  flags=re.I)
    return line.strip().strip("'\"‘’“”«»").strip()


def parse_forecast(text: str, horizon: int) -> list[float] | None:
    """The first ``horizon`` numbers (list markers like '1.' at a line start and an echoed "next 8 values"
    dropped); fewer are padded with the last one given, so a short answer is still scored, not failed."""
    cleaned = re.sub(r"(?m)^\s*\d{1,2}[.)]\s+", "", text)
    cleaned = re.sub(r"\b(?:next|following)\s+\d+\s+(?:values|steps|points)\b", "", cleaned, flags=re.I)
    nums = [float(x) for x in _NUMBER.findall(cleaned.replace(",", " , "))]
    if not nums:
        return None
    nums = nums[:horizon]
    return nums + [nums[-1]] * (horizon - len(nums))
