import json, re, sys
from collections import Counter
CATALOG = {"smollm2-chat","intent","sentiment","langid","translate-en-pt","translate-pt-en","minilm-embed",
           "minilm-rerank","fracast","patchtst-co2","forecast-ensemble","tabular-breast-cancer","tabular-wine","tabular-diabetes"}
FEAT = {
 "tabular-breast-cancer": ["mean radius","mean texture","mean perimeter","mean area","mean smoothness","mean compactness","mean concavity","mean concave points","mean symmetry","mean fractal dimension","radius error","texture error","perimeter error","area error","smoothness error","compactness error","concavity error","concave points error","symmetry error","fractal dimension error","worst radius","worst texture","worst perimeter","worst area","worst smoothness","worst compactness","worst concavity","worst concave points","worst symmetry","worst fractal dimension"],
 "tabular-wine": ["alcohol","malic_acid","ash","alcalinity_of_ash","magnesium","total_phenols","flavanoids","nonflavanoid_phenols","proanthocyanins","color_intensity","hue","od280/od315_of_diluted_wines","proline"],
 "tabular-diabetes": ["age","sex","bmi","bp","s1","s2","s3","s4","s5","s6"],
}
FORMS = {"and-also":20,"then":20,"first-second":20,"numbered":20,"question-after-instruction":20,"one-sentence":20,"lines":20,"single-tricky":20}
LANGS = {"en","pt","es","fr"}
SERIES = {"fracast","patchtst-co2","forecast-ensemble"}
NUM = r"-?\d+(?:\.\d+)?"
RUN = re.compile(NUM + r"(?:[ \t]*[,;]?[ \t\n]*" + NUM + r"){9,}")
CAT_WORDS = re.compile(r"sentiment|classif|translat|tradu|forecast|\brank|embedding|intent|language identification", re.I)
errs = []; forms = Counter(); funcs = Counter(); langs = Counter(); nparts = Counter(); catw = 0
seen = set()
lines = open(sys.argv[1] if len(sys.argv) > 1 else "dev2.jsonl").read().splitlines()
for n, line in enumerate(lines, 1):
    try: r = json.loads(line)
    except Exception as e: errs.append(f"{n}: bad json {e}"); continue
    if set(r) != {"input","expected","form","lang"}: errs.append(f"{n}: fields {sorted(r)}")
    inp, exp = r["input"], r["expected"]
    if not isinstance(inp, str) or not inp.strip(): errs.append(f"{n}: empty input")
    if inp in seen: errs.append(f"{n}: duplicate")
    seen.add(inp)
    if not isinstance(exp, list) or not exp: errs.append(f"{n}: expected"); continue
    for f in exp:
        if f not in CATALOG: errs.append(f"{n}: unknown {f}")
    if r["form"] not in FORMS: errs.append(f"{n}: form {r['form']}")
    if r["lang"] not in LANGS: errs.append(f"{n}: lang {r['lang']}")
    if r["form"] == "single-tricky" and len(exp) != 1: errs.append(f"{n}: tricky not single")
    if r["form"] != "single-tricky" and len(exp) < 2: errs.append(f"{n}: compound with <2 parts")
    for f in exp:
        if f in FEAT:
            for name in FEAT[f]:
                if not re.search(r"(?<![a-z0-9_])" + re.escape(name) + r"(?![a-z0-9_])", inp):
                    errs.append(f"{n}: {f} missing {name}")
    ns = sum(1 for f in exp if f in SERIES)
    runs = RUN.findall(inp)
    need = 1 if (ns >= 2 and re.search(r"same series", inp)) else ns  # two asks on one shared series
    if ns and len(runs) < need: errs.append(f"{n}: needs {ns} series of >=10 numbers, found {len(runs)}")
    if "patchtst-co2" in exp and not re.search(r"co2", inp, re.I): errs.append(f"{n}: co2 not explicit")
    if "forecast-ensemble" in exp and not re.search(r"model|ensemble|blend|combin", inp, re.I): errs.append(f"{n}: ensemble not explicit")
    if CAT_WORDS.search(inp): catw += 1
    forms[r["form"]] += 1; langs[r["lang"]] += 1; nparts[len(exp)] += 1
    for f in exp: funcs[f] += 1
for f, t in FORMS.items():
    if forms[f] < t: errs.append(f"form {f}: {forms[f]} < {t}")
if langs["pt"] < 40: errs.append(f"pt {langs['pt']} < 40")
free = 1 - catw / len(lines)
if free < 0.70: errs.append(f"catalog-word-free {free:.2%} < 70%")
print("total", len(lines))
print("forms", dict(forms)); print("langs", dict(langs)); print("parts", dict(sorted(nparts.items())))
print("functions", dict(funcs.most_common()))
print(f"requests free of catalog words: {len(lines)-catw}/{len(lines)} = {free:.1%}")
print("ERRORS:" if errs else "OK: no errors"); [print(" ", e) for e in errs]
sys.exit(1 if errs else 0)
