"""Build all.jsonl, validate it, split into dev/test, write README counts."""
import json, re, random, sys, difflib
from collections import Counter, defaultdict
sys.path.insert(0, "/work/heldout")
from build_compound import ROWS
from helpers import FEATURES

CATALOG = ["smollm2-chat", "intent", "sentiment", "langid", "translate-en-pt", "translate-pt-en",
           "minilm-embed", "minilm-rerank", "fracast", "patchtst-co2", "forecast-ensemble",
           "tabular-breast-cancer", "tabular-wine", "tabular-diabetes"]
FORMS = ["and-also", "then", "first-second", "numbered", "question-after-instruction", "one-sentence", "lines"]
TABKIND = {"tabular-wine": "wine", "tabular-breast-cancer": "bc", "tabular-diabetes": "dia"}
SERIES_FNS = {"fracast", "patchtst-co2", "forecast-ensemble"}
CATWORDS = re.compile(r"sentiment|classif|translat|tradu[zcçz]|forecast|\brank|rerank|embedding|language identification|\bintent", re.I)
HERE = "/work/heldout"

def write(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")

def read(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f]

write(f"{HERE}/all.jsonl", ROWS)

# ---------------- validation ----------------
errors = []
rows = read(f"{HERE}/all.jsonl")
NUMRUN = re.compile(r"-?\d+(?:\.\d+)?(?:\s*[,; ]\s*-?\d+(?:\.\d+)?){9,}")

def feat_count(text, kind, name):
    low = text.lower()
    variants = {name.lower(), name.lower().replace("_", " ")}
    if kind == "dia":
        return len(re.findall(r"(?<![a-z0-9])" + re.escape(name) + r"(?![a-z0-9])", low))
    return sum(low.count(v) for v in variants)

for n, r in enumerate(rows, 1):
    for k in ("input", "expected", "form", "lang"):
        if k not in r:
            errors.append(f"line {n}: missing {k}")
    exp = r["expected"]
    if not exp or any(e not in CATALOG for e in exp):
        errors.append(f"line {n}: bad expected {exp}")
    if (r["form"] == "single") != (len(exp) == 1):
        errors.append(f"line {n}: form/len mismatch")
    if r["form"] != "single" and r["form"] not in FORMS:
        errors.append(f"line {n}: bad form {r['form']}")
    text = r["input"]
    for fn, kind in TABKIND.items():
        need = exp.count(fn)
        if need:
            for feat in FEATURES[kind]:
                if feat_count(text, kind, feat) < need:
                    errors.append(f"line {n}: {fn} missing feature {feat}")
    nser = sum(e in SERIES_FNS for e in exp)
    if nser:
        runs = NUMRUN.findall(text)
        if len(runs) < nser:
            errors.append(f"line {n}: needs {nser} series of >=10 numbers, found {len(runs)}")
    if "minilm-rerank" in exp:
        marks = re.findall(r"(?m)(?:^|\s)(?:\d+[.)]\s|\[\d+\]\s|\([a-z0-9]\)\s|[A-D]\)\s|- \S)", text)
        if len(marks) < 2:
            errors.append(f"line {n}: rerank passages not marked")
    if "patchtst-co2" in exp and not re.search(r"co2|co₂|carbon dioxide", text, re.I):
        errors.append(f"line {n}: co2 without CO2 mention")

# near-duplicates (numbers stripped)
ALLFEATS = sorted({f.lower().replace("_", " ") for v in FEATURES.values() for f in v} | {f.lower() for v in FEATURES.values() for f in v}, key=len, reverse=True)
def _norm(t):
    t = t.lower()
    for f in ALLFEATS:
        if len(f) > 3:
            t = t.replace(f, " ")
    return re.sub(r"[-\d.,;:\s\"{}=]+", " ", t)[:300]
norm = [_norm(r["input"]) for r in rows]
for i in range(len(rows)):
    for j in range(i + 1, len(rows)):
        if difflib.SequenceMatcher(None, norm[i], norm[j]).ratio() > 0.9:
            errors.append(f"near-duplicate lines {i+1} and {j+1}")

single_fn = Counter(r["expected"][0] for r in rows if r["form"] == "single")
all_fn = Counter(e for r in rows for e in r["expected"])
forms = Counter(r["form"] for r in rows)
langs = Counter(r["lang"] for r in rows)
nparts = Counter(len(r["expected"]) for r in rows)
catword = sum(bool(CATWORDS.search(r["input"])) for r in rows)

targets = {fn: 10 for fn in CATALOG}
targets.update({"smollm2-chat": 25, "intent": 25, "minilm-rerank": 12, "patchtst-co2": 12, "forecast-ensemble": 8})
for fn, t in targets.items():
    if single_fn[fn] < t:
        errors.append(f"single-ask {fn}: {single_fn[fn]} < {t}")
for f in FORMS:
    if forms[f] < 15:
        errors.append(f"form {f}: {forms[f]} < 15")
if langs["pt"] < 40:
    errors.append(f"pt requests {langs['pt']} < 40")
if catword > 0.25 * len(rows):
    errors.append(f"catalog words in {catword}/{len(rows)} > 25%")

print(f"rows: {len(rows)}  single: {forms['single']}  compound: {len(rows)-forms['single']}")
print(f"parts per request: {dict(sorted(nparts.items()))}")
print(f"requests using a catalog word: {catword} ({100*catword/len(rows):.1f}%)")
print("function        single-ask  all-parts")
for fn in CATALOG:
    print(f"  {fn:24s} {single_fn[fn]:4d} {all_fn[fn]:6d}")
print("forms:", dict(forms))
print("langs:", dict(langs))
if errors:
    print("ERRORS:")
    for e in errors:
        print("  ", e)
    sys.exit(1)
print("validation OK")

# ---------------- split ----------------
SEED = 20261204
rng = random.Random(SEED)
idx = list(range(len(rows)))
rng.shuffle(idx)
groups = defaultdict(list)
for i in idx:
    r = rows[i]
    key = "single:" + r["expected"][0] if r["form"] == "single" else "form:" + r["form"]
    groups[key].append(i)
dev, test = [], []
for key in sorted(groups):
    g = groups[key]
    k = max(1, round(len(g) / 3))
    dev += g[:k]
    test += g[k:]
rng.shuffle(dev)
rng.shuffle(test)
write(f"{HERE}/dev.jsonl", [rows[i] for i in dev])
write(f"{HERE}/test.jsonl", [rows[i] for i in test])
print(f"dev: {len(dev)}  test: {len(test)}")

# ---------------- counts table for README ----------------
def counts(rs):
    return (Counter(r["expected"][0] for r in rs if r["form"] == "single"),
            Counter(e for r in rs for e in r["expected"]),
            Counter(r["form"] for r in rs), Counter(r["lang"] for r in rs))
splits = {"all": rows, "dev": [rows[i] for i in dev], "test": [rows[i] for i in test]}
C = {k: counts(v) for k, v in splits.items()}
out = []
out.append("| | all | dev | test |\n|---|---:|---:|---:|")
out.append(f"| requests | {len(rows)} | {len(dev)} | {len(test)} |")
out.append("\n**Single-ask requests per function / all parts per function** (single / parts)\n")
out.append("| function | all | dev | test |\n|---|---:|---:|---:|")
for fn in CATALOG:
    out.append(f"| {fn} | " + " | ".join(f"{C[s][0][fn]} / {C[s][1][fn]}" for s in splits) + " |")
out.append("\n**Per form**\n")
out.append("| form | all | dev | test |\n|---|---:|---:|---:|")
for f in ["single"] + FORMS:
    out.append(f"| {f} | " + " | ".join(str(C[s][2][f]) for s in splits) + " |")
out.append("\n**Per language of the request**\n")
out.append("| lang | all | dev | test |\n|---|---:|---:|---:|")
for l, _ in langs.most_common():
    out.append(f"| {l} | " + " | ".join(str(C[s][3][l]) for s in splits) + " |")
table = "\n".join(out)
with open(f"{HERE}/counts.md", "w") as f:
    f.write(table + "\n")
print(table)
