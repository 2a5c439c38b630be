"""Decomposition keeps every ask: one test per form a request with several asks takes.

Process-free: ``split_request`` is the gateway's own splitter. The requests here are written for
these tests (not taken from evals/auto_routing/, whose held-out splits score the whole router).
"""

from __future__ import annotations

import pytest

from colabhive.auto.split import pieces_of, split_request


def kinds(text: str) -> list[str]:
    return [p.kind for p in split_request(text)]


def texts(text: str) -> list[str]:
    return [p.text for p in split_request(text)]


def payloads(text: str) -> list[dict]:
    return [p.payload for p in split_request(text)]


@pytest.mark.parametrize("text", [
    "Give me a synonym for 'happy' and also tell me what language 'tack så mycket' is",
    "Give me a synonym for 'happy'. Also, what language is 'tack så mycket'?",
    "Write a limerick about a goat; also tell me what language 'tack så mycket' is",
])
def test_and_also(text: str) -> None:
    parts = split_request(text)
    assert len(parts) == 2
    assert "goat" in parts[0].text or "happy" in parts[0].text
    assert parts[1].payload == {"text": "tack så mycket"}


@pytest.mark.parametrize("text", [
    "Put 'see you soon' into Portuguese, then write a two-line poem about the harbour",
    "First put 'see you soon' into Portuguese, then write a two-line poem about the harbour",
    "Put 'see you soon' into Portuguese and then write a two-line poem about the harbour",
    "Put 'see you soon' into Portuguese. After that, write a two-line poem about the harbour",
])
def test_then(text: str) -> None:
    parts = split_request(text)
    assert len(parts) == 2
    assert parts[0].payload == {"text": "see you soon"}
    assert "harbour" in parts[1].text


def test_first_second_third() -> None:
    text = ("First, is 'the soup was lukewarm' a complaint? Second, what language is 'dobrý den'? "
            "Third, predict the next 2 values of 3, 5, 7, 9, 11, 13, 15, 17, 19")
    assert kinds(text) == ["text", "text", "series"]
    assert payloads(text)[2] == {"series": [3.0, 5, 7, 9, 11, 13, 15, 17, 19], "horizon": 2}


def test_numbered_list_of_asks() -> None:
    text = ("Two things please:\n1. What language is 'kiitos paljon'?\n"
            "2) Suggest three names for a bakery")
    parts = split_request(text)
    assert [p.text[:4] for p in parts] == ["1. W", "2) S"]  # the header is neither ask
    assert parts[0].payload == {"text": "kiitos paljon"}


def test_numbered_asks_inline() -> None:
    assert len(split_request("1) write a haiku about fog 2) tell me if 'worst hotel ever' is negative")) == 2


def test_numbered_passages_under_a_query_stay_one_ranking() -> None:
    text = ("Which of these answers 'how do I descale a kettle' best?\n1. Boil water with vinegar, then rinse.\n"
            "2. Kettles were invented in the 1890s.\n3. Lemon juice also removes limescale.")
    (part,) = split_request(text)
    assert part.kind == "ranking" and len(part.payload["passages"]) == 3


def test_inline_passages_that_start_with_verbs_stay_one_ranking() -> None:
    text = ("Order these tips by how well they answer 'how to fall asleep faster': 1. Keep the room cool. "
            "2. Buy a bigger television. 3. Avoid screens for an hour before bed.")
    assert kinds(text) == ["ranking"]


def test_question_after_instruction() -> None:
    text = "Put 'the bill, please' into Portuguese. Which language is 'grazie mille'?"
    assert payloads(text) == [{"text": "the bill, please"}, {"text": "grazie mille"}]


def test_a_follow_up_about_the_same_text_is_one_ask() -> None:
    assert len(split_request("Here is a comment: 'love the new update'. Is it positive?")) == 1


def test_questions_inside_a_payload_after_a_colon_are_not_asks() -> None:
    (part,) = split_request("Translate into Portuguese: Where is the station? I am lost.")
    assert part.payload == {"text": "Where is the station? I am lost."}


def test_one_sentence_two_asks_share_the_payload() -> None:
    text = "tell me whether this review is positive and put it into Portuguese: 'Fast delivery, great price'"
    parts = split_request(text)
    assert len(parts) == 2
    assert [p.payload for p in parts] == [{"text": "Fast delivery, great price"}] * 2
    assert parts[1].joined == "and"  # a guess the planner may undo when both go to one expert


def test_one_sentence_series_and_text() -> None:
    text = "predict the next 3 values of 10, 12, 11, 13, 12, 14, 13, 15 and translate 'thank you' to Portuguese"
    assert kinds(text) == ["series", "text"]


def test_lines_each_an_ask() -> None:
    text = "What language is 'mange tak'?\nWrite a slogan for a bike shop\nIs 'meh, it works' positive?"
    assert len(split_request(text)) == 3


def test_data_lines_then_their_question_are_one_ask() -> None:
    text = "Patient:\nage: 0.03\nsex: 0.05\nbmi: 0.06\nbp: 0.02\ns1: -0.04\nWhat is the progression?"
    assert len(split_request(text)) == 1


def test_a_csv_table_is_not_split() -> None:
    text = "Classify this wine:\nalcohol,malic_acid,ash,magnesium,hue\n13.2,1.78,2.14,100,1.05"
    assert len(split_request(text)) == 1


def test_portuguese_connectors() -> None:
    text = "Traduza para o inglês 'bom dia, pessoal' e também diga em que língua está 'hyvää yötä'"
    assert payloads(text) == [{"text": "bom dia, pessoal"}, {"text": "hyvää yötä"}]
    assert len(split_request("Primeiro me diga o que quer dizer 'saudade', depois escreva um poema sobre isso")) == 2


def test_a_then_inside_one_ask_does_not_split() -> None:
    assert len(split_request("If the sky is red at night then is the next day sunny?")) == 1
    assert len(split_request("Which result should come first for 'cheap flights'? 1. Fares from 40 euros. "
                             "2. Lisbon has seven hills.")) == 1


def test_separators_inside_quotes_do_not_split() -> None:
    (part,) = split_request("Translate to Portuguese: 'Buy bread, then call mum. Also feed the cat.'")
    assert part.payload == {"text": "Buy bread, then call mum. Also feed the cat."}


def test_a_single_plain_request_is_one_part() -> None:
    for text in ("Wake me up at six", "Write a poem about cats and dogs",
                 "Give me three tips for staying focused while working from home"):
        assert pieces_of(text)[0].text == text and len(split_request(text)) == 1


def test_a_long_repetitive_request_splits_in_linear_time_into_its_parts() -> None:
    """The planner caps the parts (limits.max_auto_parts): the split must still finish for any
    text up to max_text_chars, which is what the 422 then reports."""
    assert len(split_request("translate to portuguese: hello. " * 600)) == 600
    assert len(split_request("x" * 20_000)) == 1
