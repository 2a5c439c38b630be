import json, math, random
from sklearn import datasets as D

_DS = {"wine": D.load_wine(), "bc": D.load_breast_cancer(), "dia": D.load_diabetes()}
_rng = random.Random(424242)
_idx = {}
for k, ds in _DS.items():
    order = list(range(len(ds.data)))
    _rng.shuffle(order)
    _idx[k] = order

FEATURES = {k: list(ds.feature_names) for k, ds in _DS.items()}

def _v(x):
    s = f"{x:.5g}"
    return s

def tab(kind, fmt="prose"):
    """Return a real sklearn row of `kind` formatted as `fmt`."""
    ds = _DS[kind]
    i = _idx[kind].pop()
    names = list(ds.feature_names)
    if fmt.endswith("_sp"):
        names = [n.replace("_", " ") for n in names]
        fmt = fmt[:-3]
    vals = [_v(x) for x in ds.data[i]]
    if fmt == "prose":
        return ", ".join(f"{n} {v}" for n, v in zip(names, vals))
    if fmt == "colon":
        return "\n".join(f"{n}: {v}" for n, v in zip(names, vals))
    if fmt == "eq":
        return ", ".join(f"{n}={v}" for n, v in zip(names, vals))
    if fmt == "semi":
        return "; ".join(f"{n}: {v}" for n, v in zip(names, vals))
    if fmt == "json":
        return json.dumps({n: float(v) for n, v in zip(names, vals)})
    if fmt == "csv":
        return ",".join(names) + "\n" + ",".join(vals)
    raise ValueError(fmt)

def ser(n, base, trend=0.0, amp=0.0, period=12, noise=0.0, dec=0, sep=", ", floor=None):
    out = []
    ph = _rng.uniform(0, 2 * math.pi)
    for t in range(n):
        v = base + trend * t + amp * math.sin(2 * math.pi * t / period + ph) + _rng.gauss(0, noise)
        if floor is not None:
            v = max(floor, v)
        out.append(f"{v:.{dec}f}")
    return sep.join(out)

def co2(year, month=1, n=18, sep=", "):
    out = []
    y, m = year, month
    for _ in range(n):
        t = (y - 1960) + (m - 1) / 12
        lvl = 317 + 0.85 * t + 0.01278 * t * t
        seas = 3.0 * math.cos(2 * math.pi * (m - 5) / 12)
        v = lvl + seas + _rng.gauss(0, 0.15)
        out.append(f"{v:.2f}")
        m += 1
        if m > 12:
            m, y = 1, y + 1
    return sep.join(out)
