"""Checks heldout3/dev3.jsonl and prints its counts.  Exit status 1 on any failure.

    python validate.py [path]
"""
import collections
import json
import os
import re
import sys

CATALOG = {
    "forecast-ensemble", "fracast", "intent", "langid", "minilm-embed", "minilm-rerank",
    "patchtst-co2", "sentiment", "smollm2-chat", "tabular-breast-cancer",
    "tabular-diabetes", "tabular-wine", "translate-en-pt", "translate-pt-en",
}
FORMS = ["single", "single-tricky", "and-also", "then", "first-second", "numbered",
         "question-after-instruction", "one-sentence", "lines"]
LANGS = {"en", "pt", "es", "fr"}

FEATURES = {
    "tabular-breast-cancer": [
        "mean radius", "mean texture", "mean perimeter", "mean area", "mean smoothness",
        "mean compactness", "mean concavity", "mean concave points", "mean symmetry",
        "mean fractal dimension", "radius error", "texture error", "perimeter error",
        "area error", "smoothness error", "compactness error", "concavity error",
        "concave points error", "symmetry error", "fractal dimension error", "worst radius",
        "worst texture", "worst perimeter", "worst area", "worst smoothness",
        "worst compactness", "worst concavity", "worst concave points", "worst symmetry",
        "worst fractal dimension"],
    "tabular-wine": [
        "alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols",
        "flavanoids", "nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue",
        "od280/od315_of_diluted_wines", "proline"],
    "tabular-diabetes": ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"],
}
SERIES_FUNCS = {"fracast", "patchtst-co2", "forecast-ensemble"}
CATALOG_WORDS = re.compile(
    r"sentiment|classif|translat|tradu|forecast|rank|embedding|intent|language identification",
    re.I)
ENSEMBLE_WORDS = re.compile(
    r"\bboth\b|two models|\bcombin|\bblend|ensemble|forecasters|\bmodels\b|modelos|modèles",
    re.I)
# one number: 12, -3.5, or decimal-comma 412,31; separators: "; ", ", " (comma + space), spaces
# (not the 2 of "CO2", not a list marker such as "2)", never across a line break)
NUM = r"(?<![\w.,])-?\d+(?:[.,]\d+)?(?![\w)%:])"
RUN = re.compile(rf"{NUM}(?:(?:[ \t]*;[ \t]*|,[ \t]+|[ \t]+){NUM})+")


def feature_count(text, name):
    pat = re.escape(name)
    if re.fullmatch(r"[a-z0-9_]+", name):
        pat = rf"(?<![A-Za-z0-9_]){pat}(?![A-Za-z0-9_])"
    return len(re.findall(pat, text, re.I))


def series_runs(text):
    runs = []
    for m in RUN.finditer(text):
        runs.append(len(re.findall(NUM, m.group(0))))
    return runs


def main(path):
    errors = []
    rows = []
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh, 1):
            try:
                rows.append((i, json.loads(line)))
            except json.JSONDecodeError as e:
                errors.append(f"line {i}: invalid JSON ({e})")
    seen = {}
    for i, r in rows:
        where = f"line {i}"
        if not isinstance(r, dict) or set(r) != {"input", "expected", "form", "lang"}:
            errors.append(f"{where}: fields must be exactly input/expected/form/lang")
            continue
        text, exp, form, lang = r["input"], r["expected"], r["form"], r["lang"]
        if not isinstance(text, str) or not text.strip():
            errors.append(f"{where}: empty input")
            continue
        if text in seen:
            errors.append(f"{where}: duplicate input of line {seen[text]}")
        seen[text] = i
        if not isinstance(exp, list) or not exp:
            errors.append(f"{where}: expected must be a non-empty list")
            continue
        for name in exp:
            if name not in CATALOG:
                errors.append(f"{where}: unknown function {name!r}")
        if form not in FORMS:
            errors.append(f"{where}: unknown form {form!r}")
        if lang not in LANGS:
            errors.append(f"{where}: unknown lang {lang!r}")
        if form in ("single", "single-tricky") and len(exp) != 1:
            errors.append(f"{where}: {form} must have exactly 1 part")
        if form not in ("single", "single-tricky") and len(exp) < 2:
            errors.append(f"{where}: {form} must have at least 2 parts")
        c = collections.Counter(exp)
        for func, names in FEATURES.items():
            if c[func]:
                missing = [n for n in names if feature_count(text, n) < c[func]]
                if missing:
                    errors.append(f"{where}: {func} x{c[func]} lacks features {missing}")
        k = sum(c[f] for f in SERIES_FUNCS)
        if k:
            good = [n for n in series_runs(text) if 10 <= n <= 24]
            if len(good) < k:
                errors.append(f"{where}: needs {k} series of 10-24 numbers, found runs {series_runs(text)}")
        if c["patchtst-co2"] and not re.search(r"co2|co₂", text, re.I):
            errors.append(f"{where}: patchtst-co2 item does not say CO2")
        if c["forecast-ensemble"] and not ENSEMBLE_WORDS.search(text):
            errors.append(f"{where}: forecast-ensemble item does not ask for several models")

    data = [r for _, r in rows if isinstance(r, dict) and "form" in r]
    forms = collections.Counter(r["form"] for r in data)
    langs = collections.Counter(r["lang"] for r in data)
    nparts = collections.Counter(len(r["expected"]) for r in data)
    funcs = collections.Counter(f for r in data for f in r["expected"])
    with_words = [r for r in data if CATALOG_WORDS.search(r["input"])]
    free = 1 - len(with_words) / max(1, len(data))

    for f in FORMS:
        if forms[f] < 20:
            errors.append(f"form {f}: only {forms[f]} requests (need >= 20)")
    if langs["pt"] < 45:
        errors.append(f"only {langs['pt']} pt requests (need >= 45)")
    if langs["es"] < 10 or langs["fr"] < 10:
        errors.append(f"need >= 10 es and >= 10 fr (have {langs['es']}, {langs['fr']})")
    if free < 0.75:
        errors.append(f"only {free:.1%} free of catalog words (need >= 75%)")

    print(f"requests: {len(data)}")
    print("forms:", ", ".join(f"{f} {forms[f]}" for f in FORMS))
    print("parts per request:", ", ".join(f"{k}: {nparts[k]}" for k in sorted(nparts)))
    print("languages:", ", ".join(f"{k} {langs[k]}" for k in ("en", "pt", "es", "fr")))
    print(f"parts: {sum(funcs.values())}")
    for f in sorted(CATALOG):
        print(f"  {f:24s} {funcs[f]}")
    print(f"free of catalog words: {len(data) - len(with_words)}/{len(data)} ({free:.1%})")
    if errors:
        print(f"\nFAILED ({len(errors)}):")
        for e in errors:
            print("  " + e)
        return 1
    print("\nOK")
    return 0


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "dev3.jsonl")))
