"""fracast and patchtst-co2 (task forecasting) through a real gateway and node.

Accuracy is judged on held-out points the test loads itself from statsmodels, against a
seasonal-naive forecast computed here too, so neither the recipe's eval file nor its
metrics are taken on trust. Calls go out concurrently, so the answers checked are batched
ones, and one of them is compared with the same call made alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from conftest import serving
from hivectl import HiveProcess, ok, post_all
from test_bad_input import assert_error

FUNCTIONS = ["fracast", "patchtst-co2"]
MAX_HORIZON = {"fracast": 96, "patchtst-co2": 24}  # the manifests' options.max_horizon


@pytest.fixture(scope="module")
def fc_hive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HiveProcess]:
    with serving(tmp_path_factory, "forecast", FUNCTIONS) as h:
        yield h



def _co2_monthly() -> np.ndarray:
    import statsmodels.api as sm

    weekly = sm.datasets.co2.load_pandas().data["co2"].interpolate()
    return weekly.resample("MS").mean().to_numpy()


def _realgdp() -> np.ndarray:
    import statsmodels.api as sm

    return sm.datasets.macrodata.load_pandas().data["realgdp"].to_numpy()



def _mae_ratio(h: HiveProcess, fn: str, y: np.ndarray, held_out: int, horizon: int, period: int, step: int) -> float:
    """Model MAE over seasonal-naive MAE on rolling origins in the last ``held_out`` points."""
    origins = range(len(y) - held_out, len(y) - horizon + 1, step)
    bodies = [{"series": y[:o].tolist(), "horizon": horizon} for o in origins]
    outs = [ok(r) for r in post_all(h, fn, bodies)]
    truth = np.stack([y[o : o + horizon] for o in origins])
    naive = np.stack([[y[o - period + k % period] for k in range(horizon)] for o in origins])
    pred = np.array([o["forecast"] for o in outs])
    assert pred.shape == truth.shape
    alone = ok(h.call(fn, **bodies[0]))  # the same call outside a batch gives the same answer
    np.testing.assert_allclose(alone["forecast"], outs[0]["forecast"], rtol=1e-5, atol=1e-3)
    return float(np.abs(pred - truth).sum() / np.abs(naive - truth).sum())


def test_patchtst_beats_seasonal_naive_on_held_out_co2(fc_hive: HiveProcess) -> None:
    """The recipe held out the last 10 years (measured ratio 0.27); those are scored here."""
    ratio = _mae_ratio(fc_hive, "patchtst-co2", _co2_monthly(), held_out=120, horizon=24, period=12, step=6)
    assert ratio < 0.5, ratio


def test_fracast_beats_seasonal_naive_on_realgdp(fc_hive: HiveProcess) -> None:
    """Zero-shot on 12 years of quarterly US GDP it never trained for (measured 0.31)."""
    ratio = _mae_ratio(fc_hive, "fracast", _realgdp(), held_out=48, horizon=8, period=4, step=2)
    assert ratio < 0.6, ratio


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_quantiles_are_monotone_and_as_requested(fc_hive: HiveProcess, fn: str) -> None:
    y = _co2_monthly()[:300]
    levels = [0.9, 0.05, 0.5, 0.25, 0.999, 0.001, 0.75, 0.1]  # unsorted, and beyond both models' tables
    out = ok(fc_hive.call(fn, series=y.tolist(), horizon=12, quantiles=levels))
    assert set(out) == {"forecast", "quantiles", "model"}
    assert fn in out["model"]
    assert list(out["quantiles"]) == [str(p) for p in sorted(levels)]  # lowest first, keyed as sent
    table = np.array(list(out["quantiles"].values()))
    assert table.shape == (len(levels), 12) and np.isfinite(table).all()
    assert (np.diff(table, axis=0) >= 0).all(), table  # never crossed, at any step
    assert (table[-1] - table[0] > 0).all()  # and a real spread
    point = np.array(out["forecast"])
    assert ((table[0] <= point) & (point <= table[-1])).all()
    if fn == "fracast":  # its point forecast is its median
        np.testing.assert_allclose(out["quantiles"]["0.5"], point, rtol=1e-6)


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_default_quantiles_and_shortest_series(fc_hive: HiveProcess, fn: str) -> None:
    """16 values (less than either model's context) still forecast, near the series' level."""
    y = _co2_monthly()[-16:]
    out = ok(fc_hive.call(fn, series=y.tolist(), horizon=MAX_HORIZON[fn]))
    assert list(out["quantiles"]) == ["0.1", "0.5", "0.9"]
    assert len(out["forecast"]) == MAX_HORIZON[fn]
    assert all(len(v) == MAX_HORIZON[fn] for v in out["quantiles"].values())
    assert abs(out["forecast"][0] - y[-12]) < 5, out["forecast"][:3]  # a season on, within a few ppm


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_horizon_beyond_the_manifest_is_422(fc_hive: HiveProcess, fn: str) -> None:
    body = {"series": [float(i % 7) for i in range(40)], "horizon": MAX_HORIZON[fn] + 1}
    err = assert_error(fc_hive.post(f"/v1/fn/{fn}", body), 422, "invalid_input", "horizon")
    assert str(MAX_HORIZON[fn]) in err["message"]


SERIES = [float(i % 12) for i in range(40)]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"series": SERIES[:15], "horizon": 4}, "series"),
        ({"series": SERIES, "horizon": 0}, "horizon"),
        ({"series": SERIES}, "horizon"),
        ({"series": SERIES[:-1] + ["x"], "horizon": 4}, f"series[{len(SERIES) - 1}]"),
        ({"series": SERIES[:3] + [1e31] + SERIES[4:], "horizon": 4}, "series[3]"),
        ({"series": SERIES, "horizon": 4, "quantiles": [0.5, 1.0]}, "quantiles[1]"),
        ({"series": SERIES, "horizon": 4, "quantiles": [0.5, 0.5]}, "quantiles"),
        ({"series": SERIES, "horizon": 4, "extra": 1}, "extra"),
    ],
    ids=["too-short", "zero-horizon", "no-horizon", "string", "huge", "level-1", "repeated-level", "unknown"],
)
def test_bad_input_is_422_naming_the_field(fc_hive: HiveProcess, body: dict[str, Any], field: str) -> None:
    assert_error(fc_hive.post("/v1/fn/patchtst-co2", body), 422, "invalid_input", field)


def test_at_levels_reproduces_a_normal_table_and_never_crosses() -> None:
    """Interpolation in normal scores: levels read off a Gaussian table are Gaussian, inside
    and beyond its outer levels, and a crossed table comes out sorted."""
    from statistics import NormalDist

    from colabhive.runners.forecasting import at_levels

    dist = NormalDist(10.0, 2.0)
    known = [0.1, 0.2, 0.5, 0.8, 0.9]
    wanted = [0.001, 0.05, 0.1, 0.3, 0.5, 0.65, 0.9, 0.99]
    got = at_levels(known, np.array([[dist.inv_cdf(p) for p in known]]), wanted)[0]
    np.testing.assert_allclose(got, [dist.inv_cdf(p) for p in wanted], rtol=1e-9)
    crossed = np.array([[3.0, 1.0, 2.0, 5.0, 4.0]])
    out = at_levels(known, crossed, wanted)[0]
    assert (np.diff(out) >= 0).all(), out


@pytest.mark.parametrize("token", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_non_finite_values_are_422(fc_hive: HiveProcess, token: bytes) -> None:
    """JSON has no NaN or infinity; what some encoders write for them is refused, not forecast."""
    values = b", ".join([b"1.5"] * 20 + [token] + [b"2.5"] * 5)
    r = fc_hive.post("/v1/fn/fracast", b'{"series": [' + values + b'], "horizon": 4}')
    assert_error(r, 422, "invalid_input")
