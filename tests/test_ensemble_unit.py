"""The combination rules and the manifest checks of ensembles, without processes.

The rules are pinned on hand-made member answers whose right combination is worked out
here by hand; the manifest checks on small manifest directories written per test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from colabhive.ensemble import EnsembleError, combine, weights_for
from colabhive.errors import ConfigError
from colabhive.manifests import load_manifests


def _cls(label: str, dist: dict[str, float]) -> dict:
    top = sorted(dist.items(), key=lambda kv: -kv[1])
    return {"label": label, "score": dist[label], "top": [{"label": k, "score": v} for k, v in top]}


A = _cls("positive", {"positive": 0.6, "neutral": 0.3, "negative": 0.1})
B = _cls("positive", {"positive": 0.55, "negative": 0.4, "neutral": 0.05})
C = _cls("negative", {"negative": 0.95, "positive": 0.04, "neutral": 0.01})


def test_vote_is_the_majority_label_even_against_a_confident_minority() -> None:
    out = combine("classification", "vote", [A, B, C], [1, 1, 1])
    assert out["label"] == "positive"  # two votes to one, although C is far more confident
    # the score stays a probability: the mean of the members' probabilities for that label
    assert out["score"] == pytest.approx((0.6 + 0.55 + 0.04) / 3, abs=1e-6)
    assert [t["label"] for t in out["top"]] == ["negative", "positive", "neutral"]


def test_mean_follows_the_averaged_distribution_not_the_head_count() -> None:
    out = combine("classification", "mean", [A, B, C], [1, 1, 1])
    # negative: (0.1 + 0.4 + 0.95) / 3 = 0.483 beats positive: (0.6 + 0.55 + 0.04) / 3 = 0.397
    assert out["label"] == "negative"
    assert out["score"] == pytest.approx(1.45 / 3, abs=1e-6)


def test_a_tied_vote_goes_to_the_label_with_most_probability_whatever_the_order() -> None:
    for members in ([A, C], [C, A]):
        assert combine("classification", "vote", members, [1, 1])["label"] == "negative"  # 0.525 vs 0.32


def test_score_weighted_lets_the_better_evaluated_member_decide() -> None:
    weights, why = weights_for([(0.9, False), (0.3, False)])
    assert weights == [0.9, 0.3] and "evaluation" in why
    assert combine("classification", "score_weighted", [A, C], weights)["label"] == "positive"
    weights, _ = weights_for([(0.3, False), (0.9, False)])
    assert combine("classification", "score_weighted", [A, C], weights)["label"] == "negative"


def test_weights_invert_lower_is_better_and_fill_in_the_unevaluated() -> None:
    weights, _ = weights_for([(0.25, True), (0.5, True)])
    assert weights == pytest.approx([4.0, 2.0])  # half the error, twice the weight
    weights, why = weights_for([(0.8, False), None])
    assert weights == [0.8, 0.8] and "mean weight" in why
    weights, why = weights_for([None, None])
    assert weights == [1.0, 1.0] and why.startswith("equal")


def test_forecasts_average_step_by_step_including_quantiles() -> None:
    f1 = {"forecast": [10.0, 20.0], "quantiles": {"0.1": [8.0, 18.0], "0.9": [12.0, 22.0]}, "model": "a"}
    f2 = {"forecast": [14.0, 30.0], "quantiles": {"0.1": [10.0, 20.0], "0.9": [16.0, 40.0]}, "model": "b"}
    out = combine("forecasting", "mean", [f1, f2], [1, 1])
    assert out["forecast"] == [12.0, 25.0]
    assert out["quantiles"] == {"0.1": pytest.approx([9.0, 19.0]), "0.9": pytest.approx([14.0, 31.0])}
    weighted = combine("forecasting", "score_weighted", [f1, f2], [3.0, 1.0])
    assert weighted["forecast"] == pytest.approx([11.0, 22.5])
    with pytest.raises(EnsembleError, match="vote"):
        combine("forecasting", "vote", [f1, f2], [1, 1])


def test_tabular_rows_combine_one_by_one() -> None:
    p1 = {"predictions": [{"label": "benign", "probabilities": {"malignant": 0.3, "benign": 0.7}},
                          {"value": 100.0}][:1]}
    p2 = {"predictions": [{"label": "malignant", "probabilities": {"malignant": 0.9, "benign": 0.1}}]}
    (row,) = combine("tabular", "mean", [p1, p2], [1, 1])["predictions"]
    assert row["label"] == "malignant"
    assert row["probabilities"] == pytest.approx({"malignant": 0.6, "benign": 0.4})
    r1, r2 = {"predictions": [{"value": 100.0}, {"value": 50.0}]}, {"predictions": [{"value": 200.0}, {"value": 70.0}]}
    assert combine("tabular", "mean", [r1, r2], [1, 1])["predictions"] == [{"value": 150.0}, {"value": 60.0}]
    with pytest.raises(EnsembleError, match="voted"):
        combine("tabular", "vote", [r1, r2], [1, 1])
    with pytest.raises(EnsembleError, match="kind of prediction"):
        combine("tabular", "mean", [p1, {"predictions": [{"value": 1.0}]}], [1, 1])


def _write(d: Path, name: str, body: str) -> None:
    (d / f"{name}.toml").write_text(f'name = "{name}"\n' + body)


def test_manifest_checks_name_every_broken_ensemble(tmp_path: Path) -> None:
    _write(tmp_path, "a", 'task = "echo"\n')
    _write(tmp_path, "b", 'task = "echo"\n')
    _write(tmp_path, "echo-pair", 'task = "echo"\n[ensemble]\nmembers = ["a", "b"]\ncombine = "mean"\n')
    _write(tmp_path, "ghost", 'task = "forecasting"\n[ensemble]\nmembers = ["a", "nope"]\ncombine = "vote"\n'
           "quorum = 3\n")
    with pytest.raises(ConfigError) as exc:
        load_manifests([tmp_path])
    text = str(exc.value)
    assert "echo-pair.toml: task: an ensemble of 'echo' outputs cannot be combined" in text
    assert "ghost.toml: ensemble.combine: 'vote' does not apply to forecasting outputs" in text
    assert "ghost.toml: ensemble.quorum: quorum 3 exceeds the 2 members" in text
    assert "ghost.toml: ensemble.members.1: no manifest declares 'nope'" in text
    assert "ghost.toml: ensemble.members.0: 'a' is a echo function" in text


def test_an_ensemble_of_ensembles_or_of_itself_is_refused(tmp_path: Path) -> None:
    for n in ("x", "y"):
        _write(tmp_path, n, f'task = "language"\n[source]\npackage = "py3langid"\n')
    _write(tmp_path, "xy", 'task = "language"\n[ensemble]\nmembers = ["x", "y"]\ncombine = "vote"\n')
    _write(tmp_path, "nest", 'task = "language"\n[ensemble]\nmembers = ["xy", "nest"]\ncombine = "vote"\n')
    with pytest.raises(ConfigError) as exc:
        load_manifests([tmp_path])
    text = str(exc.value)
    assert "nest.toml: ensemble.members.0: 'xy' is an ensemble; list its members instead" in text
    assert "nest.toml: ensemble.members.1: an ensemble cannot include itself" in text
    assert "xy.toml" not in text  # the plain ensemble is fine
