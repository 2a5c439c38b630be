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


# Varied, messy requests of each form, written for these tests: (request, how many asks).
_FORMS = {
    "several asks per line": [
        ("what language is 'merci beaucoup' and is 'terrible service' negative?", 2),
        ("translate 'good night' to portuguese. what language is 'gute nacht'?", 2),
        ("Write a haiku about rain! Is 'best pizza in town' positive?", 2),
        ("traduza 'bom dia' para o inglês. qual é a língua de 'buenas noches'?", 2),
        ("give me a slogan for a coffee shop pls. is 'the app keeps crashing' a complaint?", 2),
    ],
    "numbered or bulleted asks": [
        ("Hi!\n1) translate 'see you tomorrow' to portuguese\n2) write a tweet about mondays\nThanks!", 2),
        ("can you do these:\n- what language is 'tack så mycket'\n- suggest a name for my cat\n- is 'meh' positive?", 3),
        ("• traduza 'obrigado' para o inglês\n• escreva um slogan para uma padaria", 2),
        ("* summarize 'The meeting moved to Friday because the room was booked.'\n* tell me a joke about cats", 2),
        ("(1) translate 'where is the bus' to portuguese\n(2) what language is 'dankjewel'", 2),
        ("1 - write a limerick about socks\n2 - is 'worst purchase ever' negative?", 2),
        ("preciso de duas coisas:\n1. traduza 'bom apetite' para o inglês\n2. me diga se 'adorei o filme' é positivo", 2),
    ],
    "a list under one instruction": [  # the items are the payload of the one ask above them
        ("Translate these into Portuguese:\n- hello\n- goodbye\n- thank you", 1),
        ("Is each of these reviews positive or negative?\n1. great product\n2. broke after a day\n3. ok I guess", 1),
        ("Traduza para o inglês:\n• bom dia\n• boa noite", 1),
        ("rank these by relevance to 'best hiking boots':\n- waterproof leather boots\n- a history of shoes\n"
         "- lightweight trail boots for long hikes", 1),
        ("Which of these best answers 'how do I reset my router'?\n* Hold the reset button for 10 seconds.\n"
         "* Routers were invented in the 1970s.\n* Unplug it, wait 30 seconds, plug it back in.", 1),
        ("Qual destas respostas combina melhor com 'como dormir melhor'? 1. Evite telas à noite. "
         "2. O sono é estudado há séculos. 3. Mantenha o quarto escuro.", 1),
    ],
    "first … second …": [
        ("first translate 'good luck' to portuguese, second tell me what language 'bonne chance' is", 2),
        ("Primeiro, traduza 'boa sorte' para o inglês. Segundo, escreva um haiku sobre o mar.", 2),
        ("1st write a slogan for a gym, 2nd is 'never coming back' negative?", 2),
        ("Firstly, what language is 'hyvää päivää'? Secondly, write a short poem about snow. "
         "Finally, is 'love it!!' positive?", 3),
    ],
    "then / after that": [
        ("translate 'how much is it' to portuguese and then write a tweet about markets", 2),
        ("write a haiku about fog, after that tell me if 'so slow' is negative", 2),
        ("Traduza 'até logo' para o inglês e depois diga em que língua está 'hasta luego'", 2),
        ("tell me what language 'grazie' is. then write a slogan for a pizzeria pls", 2),
        ("summarize 'Prices rose 3% in May.' then translate 'good morning' to portuguese", 2),
    ],
    "and also / Also,": [
        ("write a joke about cats and also can you tell me what language 'danke' is", 2),
        ("Translate 'nice to meet you' to Portuguese. Also, is 'worst app ever' negative?", 2),
        ("hi can you write a slogan for a bakery? also is 'love this place' positive", 2),
        ("Escreva um poema sobre o outono e também diga se 'que filme chato' é negativo", 2),
        ("Write a tweet about coffee 😊 also can you translate 'thank you' to portuguese", 2),
    ],
    "… and <verb> … in one sentence": [
        ("translate 'good evening' to portuguese and write a haiku about the moon", 2),
        ("tell me if 'the food was cold' is negative and suggest a name for a cafe", 2),
        ("traduza 'bom dia' para o inglês e escreva um slogan para uma academia", 2),
        ("write a limerick about a frog and what language is 'kiitos'?", 2),
        ("summarize 'The bridge closes on Monday for repairs.' and how do you say 'bridge' in portuguese?", 2),
    ],
    "a question after an instruction": [
        ("Write a slogan for a bike shop what language is 'fahrrad'?", 2),
        ("translate 'see you' to portuguese, what language is 'à bientôt'?", 2),
        ("Escreva um haiku sobre café. Em que língua está 'buongiorno'?", 2),
        ("Hi, can you translate 'good night' to Portuguese? Also, is 'terrible wifi' negative?", 2),
        ("what language is 'dziękuję'? is 'amazing staff' positive?", 2),
        ("write a haiku about snow? is 'the hotel was dirty' a complaint", 2),
    ],
    "one ask with context": [
        ("Hi! I'm planning a trip to Lisbon next month. Can you translate 'where is the beach' to Portuguese?\n"
         "Thanks!", 1),
        ("My boss sent me this and I'm confused. What language is 'Tervetuloa taloon'?", 1),
        ("hey 👋\nis 'the delivery was late and the box was crushed' a complaint?\nthx", 1),
        ("Olá! Estou estudando inglês. Traduza 'onde fica a estação' para o inglês, por favor. Obrigado!", 1),
        ("Translate into Portuguese: Can you help me? Then we can go. Also, bring water.", 1),
        ("Classify this review: 'Great screen. But the battery? Terrible. Also the box was torn.'", 1),
        ("Wine sample:\nalcohol: 13.1\nmalic_acid: 2.1\nash: 2.4\nWhich cultivar is it?", 1),
        ("Forecast the next 4 values: 12, 15, 14, 18, 21, 19, 23, 25, 24, 28", 1),
        ("Read this review and tell me if it's good or bad: 'Arrived broken. Never again.'", 1),
        ("Look at these numbers and forecast the next 3: 5, 7, 9, 11, 13, 15, 17, 19", 1),
    ],
}


@pytest.mark.parametrize(("text", "n"), [case for cases in _FORMS.values() for case in cases])
def test_every_form_keeps_every_ask(text: str, n: int) -> None:
    assert len(split_request(text)) == n, [p.text for p in split_request(text)]


def test_a_list_under_one_instruction_is_its_payload() -> None:
    """Chosen: "Translate these into Portuguese:" and its items are ONE ask whose text is the list
    (the expert gets every item at once); items that are asks themselves are parts."""
    (part,) = split_request("Translate these into Portuguese:\n- hello\n- goodbye\n- thank you")
    assert part.text.endswith("- thank you")  # the pleasantry-like item is payload, not a sign-off


def test_greeting_and_sign_off_lines_are_never_parts() -> None:
    assert texts("Hi!\n1) translate 'see you tomorrow' to portuguese\n2) write a tweet about mondays\nThanks!") == [
        "1) translate 'see you tomorrow' to portuguese", "2) write a tweet about mondays"]
    assert texts("hey 👋\nis 'late again' a complaint?\nthx") == ["is 'late again' a complaint?"]
    assert texts("Olá pessoal!\n\nEscreva um haiku sobre o mar\nTraduza 'bom dia' para o inglês\n\nObrigado!") == [
        "Escreva um haiku sobre o mar", "Traduza 'bom dia' para o inglês"]


def test_an_ask_before_a_ranking_is_its_own_part() -> None:
    text = ("Give me an embedding of 'cheap flights' and rank these for 'flights to Rome':\n"
            "1. Rome fares from 40 euros.\n2. Rome has seven hills.")
    assert kinds(text) == ["text", "ranking"]
    assert kinds("Pick the most relevant results for 'flights to Rome' and order them: (1) Fares from 40 euros. "
                 "(2) Rome has seven hills.") == ["ranking"]


_MESSY = [  # more of every form, in real users' styles: (request, how many asks)
 ("Step 1: translate 'hello' to portuguese. Step 2: write a haiku about the moon.", 2),
 ("write a poem about dogs also translate 'good dog' to portuguese", 2),
 ("translate 'thanks' to portuguese and can you also tell me what language 'danke' is", 2),
 ("write a haiku about tea. oh and is 'so cozy' positive?", 2),
 ("Write a slogan for a gym. One more thing: what language is 'salut'?", 2),
 ("i need a name for my dog and i also want to know what language 'hund' is", 2),
 ("translate 'where is the hotel' to portuguese btw what language is 'hôtel'", 2),
 ("what language is 'kia ora' and what does it mean in english", 2),  # a language and a translation
 ("is 'the room was tiny' negative and why", 1),
 ("Write a poem about winter, make it rhyme", 1),
 ("Translate 'good morning' into Portuguese and Spanish", 1),
 ("Tell me if 'the food was great' is positive, then translate it to Portuguese.", 2),
 ("2 things: translate 'cheers' to portuguese + what language is 'skål'", 2),
 ("Hey there, quick one: what language is 'mahalo'?", 1),
 ("Good morning! I need two things. First, a haiku about coffee. Second, the Portuguese for 'good morning'.", 2),
 ("Write a tweet announcing our sale. Then write another one for next week.", 2),
 ("Can you help me? I need to translate 'the meeting is cancelled' to Portuguese.", 1),
 ("I got this message: 'Kiitos kaikesta'. What language is it? Can you translate it to Portuguese?", 2),
 ("Você pode traduzir 'good night' para o português? E também escrever um poema curto sobre a lua?", 2),
 ("Me diga se 'adorei o hotel' é positivo. Qual é a língua de 'grazie'?", 2),
 ("Preciso de ajuda: traduza 'bom dia' para o inglês", 1),
 ("faz um haiku sobre chuva e depois traduz 'chuva forte' pro inglês", 2),
 ("Sales last 8 months: 120, 130, 128, 140, 150, 149, 160, 170. Forecast the next 3 and explain the trend.", 2),
 ("Name: Ana\nAge: 34\nCity: Porto\nWrite a short bio for her.", 1),
 ("• what language is 'hej'\n• is 'ugh mondays' negative\n• write a haiku about friday", 3),
 ("1) Which language is 'salam'?\n2) Which language is 'shalom'?", 2),
]


@pytest.mark.parametrize(("text", "n"), _MESSY)
def test_messy_requests_keep_every_ask(text: str, n: int) -> None:
    assert len(split_request(text)) == n, [p.text for p in split_request(text)]
