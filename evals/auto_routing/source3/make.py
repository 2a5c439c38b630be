"""Generator for heldout3/dev3.jsonl.

Every request below is hand-written.  The script only fills payloads:
  [[bc:ROW:STYLE]]    a real row of sklearn load_breast_cancer
  [[wine:ROW:STYLE]]  a real row of sklearn load_wine
  [[diab:ROW:STYLE]]  a real row of sklearn load_diabetes (standardised, 5 decimals)
  [[ser:KIND:SEED:LEN:SEP]]  a synthetic numeric series (KIND in seasonal, weekly,
                      trend, random, co2; SEP in comma, space, semicolon, ptsemi)
STYLE is one of prose, colon, eq, json, csv.

Run with an interpreter that has scikit-learn and numpy:
    python make.py   -> writes dev3.jsonl next to this file
"""
import json
import math
import os
import random
import re

from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

HERE = os.path.dirname(os.path.abspath(__file__))

F = {
    "EN": "forecast-ensemble",
    "FR": "fracast",
    "IN": "intent",
    "LI": "langid",
    "EM": "minilm-embed",
    "RR": "minilm-rerank",
    "CO": "patchtst-co2",
    "SE": "sentiment",
    "CH": "smollm2-chat",
    "BC": "tabular-breast-cancer",
    "DI": "tabular-diabetes",
    "WI": "tabular-wine",
    "EP": "translate-en-pt",
    "PE": "translate-pt-en",
}

DATA = {
    "bc": load_breast_cancer(),
    "wine": load_wine(),
    "diab": load_diabetes(),
}


def fmt_value(kind, v):
    if kind == "diab":
        return f"{v:.5f}"
    return f"{float(v):g}"


def record(kind, row, style):
    d = DATA[kind]
    names = [str(n) for n in d.feature_names]
    vals = [fmt_value(kind, v) for v in d.data[row]]
    pairs = list(zip(names, vals))
    if style == "colon":
        return "\n".join(f"{n}: {v}" for n, v in pairs)
    if style == "eq":
        return ", ".join(f"{n}={v}" for n, v in pairs)
    if style == "json":
        return json.dumps({n: float(v) for n, v in pairs})
    if style == "csv":
        return ",".join(names) + "\n" + ",".join(vals)
    if style == "prose":
        if kind == "bc":
            body = ", ".join(f"a {n} of {v}" for n, v in pairs[:-1])
            return f"{body} and a {pairs[-1][0]} of {pairs[-1][1]}."
        if kind == "wine":
            body = ", ".join(f"{n} {v}" for n, v in pairs[:-1])
            return f"{body}, and {pairs[-1][0]} {pairs[-1][1]}."
        body = ", ".join(f"{n} is {v}" for n, v in pairs[:-1])
        return f"{body} and {pairs[-1][0]} is {pairs[-1][1]}."
    raise ValueError(style)


def series(kind, seed, n, sep):
    assert 10 <= n <= 24, n
    rnd = random.Random(seed)
    out = []
    if kind == "co2":
        base = rnd.uniform(395, 418)
        phase = rnd.randrange(12)
        for t in range(n):
            m = (t + phase) % 12
            season = 3.1 * math.sin(2 * math.pi * (m - 1.5) / 12) + 0.6 * math.sin(4 * math.pi * m / 12)
            out.append(round(base + 0.2 * t + season + rnd.gauss(0, 0.12), 2))
    elif kind == "seasonal":
        base = rnd.choice([80, 140, 300, 1200, 45])
        amp = base * rnd.uniform(0.12, 0.3)
        slope = base * rnd.uniform(-0.004, 0.012)
        phase = rnd.randrange(12)
        for t in range(n):
            v = base + slope * t + amp * math.sin(2 * math.pi * (t + phase) / 12) + rnd.gauss(0, base * 0.03)
            out.append(round(v, 1) if base < 100 else int(round(v)))
    elif kind == "weekly":
        base = rnd.choice([220, 540, 75])
        for t in range(n):
            bump = [0.8, 0.9, 0.95, 1.0, 1.2, 1.5, 1.1][t % 7]
            out.append(int(round(base * bump + rnd.gauss(0, base * 0.05))))
    elif kind == "trend":
        base = rnd.uniform(10, 500)
        slope = rnd.uniform(0.5, 6) * rnd.choice([1, 1, -1])
        for t in range(n):
            out.append(round(base + slope * t + rnd.gauss(0, abs(slope) * 0.8), 1))
    elif kind == "random":
        v = rnd.uniform(20, 90)
        for _ in range(n):
            v += rnd.gauss(0.2, 1.5)
            out.append(round(v, 2))
    else:
        raise ValueError(kind)
    if sep == "comma":
        return ", ".join(str(x) for x in out)
    if sep == "space":
        return " ".join(str(x) for x in out)
    if sep == "semicolon":
        return "; ".join(str(x) for x in out)
    if sep == "ptsemi":  # decimal comma, Brazilian spreadsheet style
        return "; ".join(str(x).replace(".", ",") for x in out)
    raise ValueError(sep)


def fill(text):
    def rep(m):
        parts = m.group(1).split(":")
        if parts[0] in ("bc", "wine", "diab"):
            return record(parts[0], int(parts[1]), parts[2])
        if parts[0] == "ser":
            return series(parts[1], int(parts[2]), int(parts[3]), parts[4])
        raise ValueError(m.group(0))
    return re.sub(r"\[\[([^\]]+)\]\]", rep, text)


ITEMS = []


def R(form, lang, codes, text):
    ITEMS.append({"form": form, "lang": lang, "codes": codes.split(), "text": text})


# --------------------------------------------------------------------------- single
S = "single"
R(S, "en", "IN", "set an alarm for 6:15 tmrw, i have a flight to catch")
R(S, "pt", "IN", "qual é o meu saldo na conta corrente?")
R(S, "en", "CH", "why do cats purr? just curious")
R(S, "pt", "PE", "Traduz isso pro inglês por favor: 'O pedido chegou quebrado e ninguém responde meus e-mails.'")
R(S, "en", "LI", "what langauge is this? \"Ik heb geen idee waar mijn sleutels zijn\"")
R(S, "en", "WI", "Which cultivar does this wine come from? [[wine:10:eq]]")
R(S, "fr", "SE", "Bonjour, est-ce que vous pouvez me dire si ce commentaire est plutôt positif ou négatif ? « Honestly the hotel was fine, nothing special, staff a bit slow »")
R(S, "es", "EP", "¿cómo se dice en portugués 'We will send the invoice by Friday'?")
R(S, "en", "EM", "give me a 384-d vector for this sentence so i can index it: 'refund policy for damaged items'")
R(S, "pt", "FR", "quais seriam os próximos 6 valores dessa série? [[ser:seasonal:1:18:comma]]")
R(S, "en", "CO", "Monthly CO2 readings at our station, in ppm: [[ser:co2:2:24:comma]] -- where is it heading over the next year?")
R(S, "en", "RR", "query: how do I reset my router\npassages:\n- Unplug the router for 30 seconds and plug it back in.\n- Our routers come in three colours.\n- Hold the reset button for 10 seconds until the lights blink.\nwhich one answers it best?")
R(S, "pt", "IN", "quero falar com um atendente humano, agora")
R(S, "en", "DI", "diabetes progression estimate for this patient pls: [[diab:5:eq]]")
R(S, "pt", "BC", "Tumor benigno ou maligno? Seguem as medidas:\n[[bc:20:colon]]")
R(S, "en", "CH", "write a two-line birthday message for my coworker Dana, she loves hiking")
R(S, "pt", "EP", "Como fica em português: 'Please keep your seatbelt fastened while the sign is on.'")
R(S, "en", "IN", "my card got declined at the supermarket, why??")
R(S, "fr", "IN", "Réveille-moi à 7h30 demain stp")
R(S, "pt", "LI", "que língua é essa? 'Det er koldt i dag'")
R(S, "en", "EN", "blend both of your models on this monthly series and give me 12 months ahead: [[ser:seasonal:3:24:comma]]")
R(S, "es", "CH", "explícame en pocas palabras qué es la inflación, porfa")
R(S, "pt", "SE", "Vê se esse review tá positivo: 'The battery dies after two hours, total waste of money.'")

# --------------------------------------------------------------------------- single-tricky
T = "single-tricky"
R(T, "en", "EP", "Translate to Portuguese: 'First preheat the oven, then add the eggs and mix for two minutes.'")
R(T, "pt", "PE", "Passa pro inglês: 'Primeiro você desliga o aparelho e depois liga de novo, e aí vê se a luz acende.'")
R(T, "en", "SE", "how does this review come across? \"First the waiter ignored us, then the food was cold, and also they overcharged us.\"")
R(T, "en", "CH", "write a short poem about coffee and rain")
R(T, "en", "RR", "Which of these answers 'how long does shipping take'?\n1. Shipping takes 3-5 business days.\n2. You can return items within 30 days.\n3. We ship to 40 countries.")
R(T, "pt", "WI", "[[wine:40:colon]]\nde qual cultivar é esse vinho?")
R(T, "en", "BC", "[[bc:7:csv]]\nmalignant or benign?")
R(T, "en", "LI", "What language is this in: 'Je voudrais un café et un croissant, puis l'addition s'il vous plaît'")
R(T, "en", "IN", "book a table for two at 8 tonight and make it somewhere quiet")
R(T, "pt", "EP", "Como se diz em português: 'Open the app and then tap on Settings'")
R(T, "en", "CH", "compare cats and dogs as pets in 3 bullet points")
R(T, "fr", "PE", "Mets en anglais : « Primeiro a gente almoça, depois vamos ao museu e à praia. »")
R(T, "en", "SE", "Is this positive? 'I loved the first half and then hated the ending.'")
R(T, "es", "LI", "¿En qué idioma está esto? 'Ich habe Hunger und dann Durst'")
R(T, "en", "FR", "units sold per month, first 2023 then 2024: [[ser:seasonal:6:24:comma]] - what comes after?")
R(T, "pt", "DI", "Dados do paciente abaixo, e depois me diz a progressão em um ano:\n[[diab:30:json]]")
R(T, "en", "CH", "write a haiku about Lisbon and Porto")
R(T, "en", "IN", "transfer $50 to Mike and put 'rent' as the memo")
R(T, "pt", "RR", "Qual trecho responde melhor 'como cancelo minha assinatura'?\n- Para cancelar, vá em Conta > Assinatura > Cancelar.\n- Nossa assinatura custa R$ 29,90.\n- E então, gostou do app? Avalie na loja.")
R(T, "en", "EM", "Get me a vector for: 'red shoes and blue socks, then a hat'")
R(T, "en", "CH", "summarize this in one line: 'The meeting was moved to Thursday. Then the budget review was postponed, and also the new hire starts Monday.'")
R(T, "fr", "SE", "Tu peux me dire si cet avis est positif ? « Great product, and then the customer service was also excellent. »")
R(T, "pt", "CO", "CO2 mensal em ppm: [[ser:co2:7:24:ptsemi]] e agora, quanto vai dar nos próximos 12 meses?")

# --------------------------------------------------------------------------- and-also
A = "and-also"
R(A, "en", "IN LI", "what's the weather in Chicago tomorrow, and also can you tell me what language this is: 'Hoje está um dia lindo'")
R(A, "pt", "PE SE", "Traduz pro inglês 'a reunião foi adiada' e também me diz se essa frase é positiva: 'The staff were super friendly'")
R(A, "en", "DI CH", "need the progression estimate for\n[[diab:12:colon]]\nalso, what's a good snack for someone with type 2 diabetes?")
R(A, "es", "IN EP", "Pon una alarma a las 6 y además dime cómo se dice en portugués 'see you tomorrow'")
R(A, "en", "WI CH", "is this wine class 0, 1 or 2? [[wine:80:json]] and also write me a one-sentence tasting note for a fruity red")
R(A, "pt", "FR CH", "me ajuda com duas coisas: o que vem depois nessa série [[ser:trend:8:14:comma]] e também qual é a capital da Austrália")
R(A, "en", "SE IN", "tell me the mood of this tweet 'ugh mondays, coffee machine broke again' and also what's my credit card limit")
R(A, "fr", "LI IN", "Quelle est la langue de ce texto « Vi ses imorgon » et aussi, peux-tu me réserver un vol pour Lyon vendredi ?")
R(A, "en", "EM EM", "encode 'late delivery complaint' as a vector for our search index, and also the same for 'package arrived damaged'")
R(A, "pt", "BC CH", "Esse tumor é maligno? [[bc:50:eq]] Aproveitando, também quero saber o que significa 'mean concave points'")
R(A, "en", "IN IN", "play some jazz and also remind me to call mom at 5")
R(A, "pt", "EP EP", "bota em português 'your order has shipped' e também 'thank you for your patience'")
R(A, "en", "CO LI", "CO2 ppm from our sensor, monthly: [[ser:co2:9:20:comma]]. what do the next 6 months look like? also, separate thing, what language is 'Dziękuję bardzo'?")
R(A, "es", "SE LI", "quiero saber si esta reseña es buena o mala: 'Decent pasta, terrible parking.' y también en qué idioma está 'Grazie mille per tutto'")
R(A, "en", "RR IN", "order these by how well they match 'cheap flights to rome':\n- Rome flights from $49 this week\n- The history of the Roman Empire\n- Best pizza places in Naples\nand also, can you freeze my debit card, I lost it")
R(A, "pt", "DI CH", "Qual a progressão do diabetes pra esse paciente\n[[diab:77:csv]]\ne também, como funciona a insulina?")
R(A, "en", "CH EP", "explain what a Roth IRA is in simple terms, and also put 'where is the bathroom' into portuguese")
R(A, "fr", "FR LI", "Donne-moi la suite de cette série [[ser:seasonal:10:15:semicolon]] et aussi la langue de « Hvala lijepa »")
R(A, "pt", "IN IN", "quero cancelar minha reserva do hotel e também saber se vai chover em Recife amanhã")
R(A, "en", "SE EM", "sentiment of 'Not bad at all, would buy again' -- and also give me its vector for clustering")
R(A, "pt", "BC PE", "Me fala se é benigno [[bc:120:json]] e também traduz pro inglês 'o resultado sai em três dias'")
R(A, "en", "WI WI", "run this wine sample\n[[wine:150:csv]]\nand also this one: [[wine:3:eq]]")

# --------------------------------------------------------------------------- then
N = "then"
R(N, "en", "LI CH", "Tell me what language 'Kiitos paljon' is, then give me a fun fact about Finland")
R(N, "pt", "LI IN", "Vê qual o idioma de 'Merci beaucoup' e depois me coloca um alarme pras 8")
R(N, "en", "SE IN", "check if this customer note is angry: \"Third time I'm asking for my refund.\" then transfer me to a real person")
R(N, "es", "DI CH", "Dime la progresión a un año de este paciente [[diab:101:eq]] y luego explícame qué es el índice de masa corporal")
R(N, "en", "CO FR", "give me the next 12 months for this CO2 series (ppm) [[ser:co2:11:24:space]], then do the same for our monthly electricity bill: [[ser:seasonal:12:18:comma]]")
R(N, "pt", "PE EP", "coloca em inglês 'preciso remarcar minha consulta' e depois em português 'the package is at the front desk'")
R(N, "en", "IN IN", "what's my checking balance, then pay my electric bill")
R(N, "fr", "WI CH", "Dis-moi si ce vin est de classe 0, 1 ou 2\n[[wine:60:colon]]\nensuite explique-moi ce que sont les flavanoïdes")
R(N, "en", "RR CH", "sort these by relevance to 'python list comprehension':\n* [x*2 for x in nums] builds a new list\n* Pythons are non-venomous snakes\n* List comprehensions replace simple for-loops\nthen write me a limerick about coding")
R(N, "pt", "FR IN", "Analisa essa série de vendas [[ser:seasonal:13:20:comma]] e projeta 6 meses, depois me diz que horas são em Tóquio")
R(N, "en", "BC IN", "Here's a biopsy record, tell me benign/malignant: The sample has [[bc:200:prose]] Then, separately, what's the weather in Boston")
R(N, "pt", "SE CH", "Me diz se esse comentário é positivo 'Arrived on time, works perfectly' e em seguida me explica o que é NPS")
R(N, "en", "EM LI", "turn 'wireless earbuds noise cancelling' into numbers for my search index, then tell me what language 'Auriculares inalámbricos' is")
R(N, "es", "EN LI", "Mira esta serie mensual [[ser:seasonal:14:24:comma]] y combina los dos modelos para los próximos 12 meses, luego dime qué idioma es 'Bom dia a todos'")
R(N, "en", "EP IN", "translate 'the contract expires in march' to portuguese, then book me an uber to the airport")
R(N, "pt", "PE CH", "Pega essa frase 'Adorei o atendimento, voltarei com certeza' e passa pro inglês, depois me recomenda um livro de ficção científica")
R(N, "en", "IN IN", "start a timer for 10 minutes then add milk to my shopping list")
R(N, "fr", "DI LI", "Évalue ce dossier patient [[diab:200:json]] puis dis-moi dans quelle langue est écrit « Dank je wel »")
R(N, "en", "FR CH", "predict the next values of [[ser:trend:15:12:comma]], after that write a thank-you note to my landlord")
R(N, "pt", "SE PE", "Me diz se o review é bom ou ruim: 'Worst customer service ever, never again.' Depois traduz pra mim 'ninguém me atendeu'")
R(N, "en", "BC CH", "look at these nuclei measurements\n[[bc:300:colon]]\nand tell me the diagnosis, then explain what 'fractal dimension' means in this context")
R(N, "pt", "EN IN", "roda os dois modelos juntos nessa série de CO2 [[ser:co2:16:24:comma]] e depois me diz a cotação do dólar hoje")

# --------------------------------------------------------------------------- first-second
FS = "first-second"
R(FS, "en", "LI IN", "First, what language is 'Tack så mycket'? Second, set a reminder to water the plants at 6pm.")
R(FS, "pt", "WI CH", "Primeiro: esse vinho é de qual cultivar? [[wine:100:eq]] Segundo: que prato combina com vinho tinto?")
R(FS, "en", "SE CH", "firstly, the mood of 'the update broke everything lol' please. secondly, a short apology email for a late delivery")
R(FS, "es", "EP IN", "Primero, pásame al portugués 'the meeting starts at nine'. Segundo, ¿cuál es mi saldo?")
R(FS, "en", "FR EM", "to start, project this series 10 steps: [[ser:weekly:17:21:comma]]. after that, give me an embedding of 'weekly store visits'")
R(FS, "pt", "BC CH", "Primeiro me diz se esses dados indicam câncer maligno: [[bc:33:json]]. Depois, me explica em termos simples o que é 'texture' nessas medidas.")
R(FS, "fr", "EP IN", "D'abord, mets en portugais « I'll be late tonight ». Ensuite, réserve une table pour quatre ce soir.")
R(FS, "en", "DI CH", "1st: progression for a patient whose [[diab:150:prose]]\n2nd: what lifestyle changes actually help with blood sugar?")
R(FS, "pt", "LI PE", "Pra começar, qual a língua disso: 'Selamat pagi'? Em seguida, traduz 'bom apetite' pro inglês")
R(FS, "en", "RR IN", "First off, which passage fits 'side effects of ibuprofen' best:\n(a) Ibuprofen may cause stomach upset and heartburn.\n(b) Ibuprofen was discovered in the 1960s.\n(c) Take with food to reduce irritation.\nSecond, what's the weather like in Denver this weekend?")
R(FS, "pt", "CO FR", "Primeiro, CO2 da estação (ppm): [[ser:co2:18:24:comma]] -- quero 24 meses à frente. Segundo, a mesma coisa mas pra essa série de visitas: [[ser:trend:19:15:comma]]")
R(FS, "en", "SE LI", "first of all, is this review positive or negative: 'Shipping was quick, but the shirt shrank after one wash.' second of all, what language is 'Obrigado pela ajuda'")
R(FS, "es", "WI CH", "Para empezar, dime si este vino es de la clase 0, 1 o 2: [[wine:120:json]]. Después, escríbeme un brindis corto para una boda.")
R(FS, "en", "IN EP", "First -- cancel my 3pm meeting. Second -- how do I say 'I'm allergic to peanuts' in Portuguese?")
R(FS, "pt", "EM PE", "Primeiramente, quero a representação numérica (vetor) da frase 'atraso na entrega' pra busca semântica. Em segundo lugar, 'atraso na entrega' em inglês.")
R(FS, "en", "BC BC", "first: malignant or benign? [[bc:400:eq]]\nsecond: malignant or benign?\n[[bc:401:csv]]")
R(FS, "fr", "SE IN", "Premièrement, peux-tu me dire si ce message est positif : « Meh, it's okay I guess. » Deuxièmement, quelle heure est-il à New York ?")
R(FS, "en", "EN CH", "first, combine your forecasters on this monthly series and give me 6 steps: [[ser:seasonal:20:24:comma]]. second, what's an ARIMA model in plain words")
R(FS, "pt", "IN CH", "Primeiro, quanto tá o dólar hoje? Depois, me escreve uma mensagem de bom dia pro grupo da família")
R(FS, "en", "LI RR", "to begin with, what language is 'Ni hao, wo jiao Li'? and after that, pick the passage most relevant to 'best time to visit Japan':\n- Cherry blossom season in spring draws crowds.\n- Japan uses the yen.\n- Autumn offers mild weather and colourful leaves.")
R(FS, "pt", "DI IN", "Primeiro passo: diabetes, paciente abaixo, progressão em um ano.\n[[diab:250:colon]]\nSegundo passo: me lembra de tomar o remédio às 22h.")
R(FS, "en", "EP PE", "firstly can you say 'we are closed on sundays' in portuguese; secondly put 'o boleto vence amanhã' into english")

# --------------------------------------------------------------------------- numbered
NU = "numbered"
R(NU, "en", "IN LI CH", "1. what's the weather in Seattle\n2. what language is 'Buongiorno a tutti'\n3. write a tweet announcing our new café")
R(NU, "pt", "SE EP", "1) Essa avaliação é positiva? 'Great value for the price.'\n2) Passa pra português: 'Great value for the price.'")
R(NU, "en", "WI WI", "two things:\n1. wine class for\n[[wine:20:colon]]\n2. wine class for [[wine:170:json]]")
R(NU, "es", "IN CH", "1. Ponme una alarma a las 5:45\n2. Explícame qué es el CO2 equivalente")
R(NU, "en", "CO FR", "1) next 12 months of CO2 (ppm) given [[ser:co2:21:24:comma]]\n2) next 5 values of [[ser:trend:22:10:comma]]")
R(NU, "pt", "LI LI EM", "1 - qual idioma: 'Xin chào'\n2 - qual idioma: 'Sawubona'\n3 - me dá o vetor de 'olá mundo'")
R(NU, "en", "BC CH", "1. benign or malignant: [[bc:150:json]]\n2. explain what 'worst perimeter' measures")
R(NU, "fr", "PE SE", "1) Traduis en anglais : « Onde fica a estação de metrô? »\n2) Dis-moi si c'est positif : « Terrible app, crashes constantly. »")
R(NU, "en", "IN IN SE", "1. transfer 300 to savings\n2. what's my routing number\n3. sentiment of 'we appreciate your business' -- positive or neutral?")
R(NU, "pt", "DI CH", "1. Progressão do paciente: [[diab:300:eq]]\n2. Me manda um resumo do que é o teste de glicemia")
R(NU, "en", "RR IN", "1) rerank these for 'how to make cold brew':\n   - Steep coarse grounds in cold water for 12-18 hours.\n   - Espresso requires high pressure.\n   - Cold brew is less acidic.\n2) book a flight to Austin for next Friday")
R(NU, "pt", "EN IN", "1) Combina os dois modelos e prevê 12 meses: [[ser:seasonal:23:24:comma]]\n2) Qual a previsão do tempo pra amanhã em BH?")
R(NU, "en", "PE SE", "1. 'Esse produto é ótimo, recomendo' in English\n2. 'This product is great, I recommend it' -- good or bad vibe?")
R(NU, "es", "LI IN CH", "1) ¿Qué idioma es 'Takk for maten'?\n2) Reserva un hotel en Madrid para el sábado\n3) ¿Por qué el cielo es azul?")
R(NU, "en", "EM EM", "1. embedding for 'return policy electronics'\n2. embedding for 'warranty claim process'")
R(NU, "pt", "BC IN", "1) Diagnóstico:\n[[bc:250:colon]]\n2) Cadê meu cartão novo? Já faz 10 dias que pedi")
R(NU, "en", "FR CH", "1) project the next 6 steps: [[ser:random:24:16:space]]\n2) give me a catchy name for a bakery")
R(NU, "fr", "LI EP", "1. Quelle langue : « Hyvää huomenta »\n2. Mets en portugais : « The train leaves at noon »")
R(NU, "pt", "SE IN PE", "1 — Essa frase é negativa? 'I waited an hour and nobody came.'\n2 — Quero falar com o gerente\n3 — Como se diz 'obrigado pela paciência' em inglês?")
R(NU, "en", "DI CH", "1. [[diab:60:json]] -> progression?\n2. what does s5 mean in the diabetes dataset")
R(NU, "pt", "RR IN", "1) Qual desses textos responde 'como emitir segunda via do boleto':\n a) Acesse o app, vá em Pagamentos > Segunda via.\n b) O boleto pode ser pago em lotéricas.\n c) Nosso horário é das 8h às 18h.\n2) Quanto tá rendendo a poupança de vocês hoje?")
R(NU, "en", "CO IN", "1. co2 ppm [[ser:co2:25:18:comma]] -- 12 months ahead please\n2. what's the temperature outside right now")

# --------------------------------------------------------------------------- question-after-instruction
Q = "question-after-instruction"
R(Q, "en", "EP CH", "Translate this into Portuguese: 'Your appointment has been confirmed.' By the way, how many calories are in an avocado?")
R(Q, "pt", "WI CH", "Analisa esse vinho: [[wine:130:eq]]. E quanto tempo um vinho tinto dura depois de aberto?")
R(Q, "en", "FR IN", "Give me the next 8 numbers in this series [[ser:trend:26:14:comma]]. Is it going to snow in Denver tonight?")
R(Q, "es", "LI CH", "Dime de qué idioma es esto: 'Eu adoro viajar'. ¿Y sabes cuál es la montaña más alta de Sudamérica?")
R(Q, "en", "SE IN", "Score the mood of this review: 'Absolutely love it, five stars.' Can you also tell me what my last transaction was?")
R(Q, "pt", "DI CH", "Calcula a progressão desse paciente:\n[[diab:333:csv]]\nDiabetes tipo 2 tem cura?")
R(Q, "en", "CH LI", "Rewrite this more politely: 'send me the report now'. What language is 'Hola, ¿qué tal?' by the way?")
R(Q, "fr", "BC CH", "Donne-moi le diagnostic pour ces mesures : [[bc:222:prose]] Et c'est quoi un adénome ?")
R(Q, "en", "PE IN", "Write the english version of 'Vou chegar atrasado, desculpa'. Is there a way to change my PIN?")
R(Q, "pt", "RR CH", "Ordena esses trechos por relevância pra 'como trocar o óleo do carro':\n- Troque o óleo a cada 10 mil km.\n- O carro elétrico não usa óleo de motor.\n- Use a chave de filtro para remover o filtro antigo.\nAliás, por que o óleo do motor escurece com o tempo?")
R(Q, "en", "EN CH", "Blend the two models for this series and give me 18 months: [[ser:seasonal:27:24:comma]]. How accurate is that kind of prediction usually?")
R(Q, "pt", "EM IN", "Me dá o vetor dessa frase: 'cliente insatisfeito com atraso'. Você consegue pedir uma pizza pra mim?")
R(Q, "en", "RR CH", "Pick the best-matching passage for 'symptoms of dehydration':\n1. Thirst, dark urine and dizziness are common signs.\n2. Water covers 71% of Earth.\n3. Drink more fluids in hot weather.\nWhat's a normal resting heart rate?")
R(Q, "es", "PE IN", "Pásame esto al inglés: 'Preciso de ajuda com minha conta'. ¿Me puedes decir si mañana llueve en Sevilla?")
R(Q, "en", "BC CH", "Tell me if this is benign: [[bc:350:json]]. What's the survival rate for stage 1 breast cancer?")
R(Q, "pt", "CO CH", "Faz a projeção de 12 meses do CO2 (ppm): [[ser:co2:28:24:space]]. O que causa a oscilação anual do CO2?")
R(Q, "en", "WI CH", "Classify this wine:\n[[wine:5:csv]]\nWhere is the Douro valley?")
R(Q, "fr", "SE IN", "Dis-moi ce que ressent l'auteur de ce message : « I can't believe how rude the staff was. » Tu peux annuler ma commande d'hier ?")
R(Q, "pt", "CH LI", "Escreve um parágrafo curto convidando a equipe pro happy hour de sexta. Qual o idioma de 'Hyvää viikonloppua'?")
R(Q, "en", "FR IN", "Extend this by 4: [[ser:random:29:11:comma]]. how do i lock my account, i think it got hacked?")
R(Q, "pt", "EP IN", "Passa pro português: 'Please confirm your email address.' Quando vence a fatura do meu cartão?")
R(Q, "en", "DI CH", "Estimate disease progression for this one: [[diab:400:prose]] Does metformin cause weight loss?")

# --------------------------------------------------------------------------- one-sentence
O = "one-sentence"
R(O, "en", "SE LI", "tell me if this is upbeat and what language it's in: 'what a gorgeous morning!'")
R(O, "pt", "WI CH", "me diz se esse vinho é classe 0, 1 ou 2 e o que é prolina [[wine:140:eq]]")
R(O, "en", "IN IN", "wake me at 6 and turn off the bedroom lights")
R(O, "es", "LI EP", "dime en qué idioma está 'Mulțumesc frumos' y cómo se dice 'good luck' en portugués")
R(O, "en", "PE SE", "can you put 'o voo foi cancelado' into english and check whether 'The flight got cancelled and nobody told us' sounds negative")
R(O, "pt", "FR CH", "quero a projeção dessa série [[ser:seasonal:30:18:comma]] e uma explicação rápida do que é sazonalidade")
R(O, "en", "BC CH", "what's the diagnosis for [[bc:444:eq]] and what does 'mean smoothness' even mean")
R(O, "fr", "LI IN", "Peux-tu me dire quelle langue c'est « Ευχαριστώ » et me mettre un rappel pour demain 9h ?")
R(O, "en", "EM EM", "give me vectors for 'blue denim jacket' and 'navy jean jacket' so I can compare them")
R(O, "pt", "DI CH", "qual a progressão desse paciente [[diab:11:json]] e qual a diferença entre diabetes tipo 1 e tipo 2?")
R(O, "en", "CO SE", "i need the next 12 months of this CO2 record in ppm [[ser:co2:31:24:comma]] plus a quick check on whether the review 'Not worth the hype' is negative")
R(O, "pt", "SE EP", "me fala se 'Super comfortable shoes' é positivo e passa pro português também")
R(O, "en", "RR IN", "could you order these passages by how well they answer 'how to boil an egg' -- 'Place eggs in boiling water for 9 minutes.' / 'Eggs are rich in protein.' / 'Cool them in ice water after boiling.' -- and also tell me what's on my calendar today")
R(O, "es", "SE IN", "quiero saber si este comentario es negativo 'The app keeps logging me out' y transferir 50 euros a Lucía")
R(O, "en", "EN CH", "run both models together on [[ser:seasonal:32:24:space]] for 12 steps and write a one-line caption for the chart")
R(O, "pt", "LI CH", "me diz o idioma de 'Köszönöm szépen' e me conta uma curiosidade sobre a Hungria")
R(O, "en", "BC BC", "is this tumour benign [[bc:500:csv]] and is this other one benign [[bc:501:json]]")
R(O, "fr", "FR IN", "Donne-moi la suite de [[ser:trend:33:13:comma]] et dis-moi quel temps il fera à Paris demain")
R(O, "en", "EP PE", "translate 'the store opens at 10' to portuguese and 'a loja abre às 10' to english")
R(O, "pt", "WI IN", "vê qual a cultivar desse vinho [[wine:55:colon]] e me lembra de comprar queijo amanhã")
R(O, "en", "RR LI", "what's the best passage for 'refund timeline' among 'Refunds take 5-7 days.', 'We accept Visa and Mastercard.', 'Contact support for refunds over $500.' and what language is 'Reembolso em até 7 dias'")
R(O, "pt", "EM SE", "me dá o vetor de 'pedido cancelado' e diz se 'Order cancelled without notice, very annoying' é negativo")

# --------------------------------------------------------------------------- lines
L = "lines"
R(L, "en", "IN LI CH", "weather in Miami saturday\nlanguage of 'Shukran jazilan'\nshort joke about accountants")
R(L, "pt", "DI CH", "Progressão: [[diab:123:eq]]\nE me explica o que é bmi nesse contexto")
R(L, "en", "PE SE", "'Ótimo atendimento, voltarei' -> english\n'The food was cold' -> positive or negative?")
R(L, "es", "IN IN", "Alarma a las 7\nRecordatorio: llamar al dentista el lunes")
R(L, "en", "WI EM", "[[wine:90:csv]]\n^ which cultivar\nalso need a vector for 'dry red wine with cherry notes'")
R(L, "pt", "FR CH", "série: [[ser:seasonal:34:20:comma]] - próximos 6\nqual a capital do Canadá?")
R(L, "en", "CO IN", "co2 ppm monthly: [[ser:co2:35:24:comma]] next 12 please\nwhat's my savings balance")
R(L, "fr", "LI LI", "Quelle langue : « Dobrý den »\nQuelle langue : « Dzień dobry »")
R(L, "en", "BC CH", "benign/malignant for:\n[[bc:60:colon]]\nwrite a short encouraging note for a friend going through chemo")
R(L, "pt", "RR IN", "ordem de relevância pra 'como declarar imposto de renda':\n- Use o programa da Receita Federal.\n- O IR é um imposto federal.\n- Declare até 31 de maio.\nme coloca um lembrete pra declarar até dia 20")
R(L, "en", "EP PE IN", "'see you at the station' in portuguese\n'nos vemos na estação' in english\nhow's traffic to downtown right now")
R(L, "pt", "SE LI", "é positivo? 'Love the new design!'\nqual idioma? 'Liebe das neue Design!'")
R(L, "en", "EN FR", "combine the forecasters on this, 12 ahead: [[ser:seasonal:36:24:comma]]\nseparately, next 12 of this one with just the regular zero-shot model: [[ser:seasonal:37:16:comma]]")
R(L, "es", "WI CH", "Vino: [[wine:160:json]]\n¿Qué clase es?\nY ¿qué uva se usa en el Rioja?")
R(L, "en", "IN IN SE", "pause the music\nadd eggs to my shopping list\nis 'Meh.' negative or neutral?")
R(L, "pt", "BC BC", "Diagnóstico dessas medidas:\n[[bc:90:eq]]\nDiagnóstico dessas outras:\n[[bc:91:json]]")
R(L, "en", "EM LI", "embedding: 'quarterly revenue report'\nlang: 'Relatório trimestral de receitas'")
R(L, "pt", "PE IN", "Põe em inglês: 'Não consigo acessar minha conta'\nQuero falar com alguém do suporte")
R(L, "en", "FR FR", "next values: [[ser:weekly:38:14:space]]\nnext values: [[ser:trend:39:12:space]]")
R(L, "fr", "DI CH", "Analyse ce patient : [[diab:222:colon]]\nEt donne-moi trois idées de repas pauvres en sucre")
R(L, "pt", "EP SE", "Traduz pro português: 'Thanks for reaching out'\nE essa aqui é positiva? 'Thanks for reaching out, but this didn't help at all.'")
R(L, "en", "IN CH", "what time is it in Sydney\ngive me three name ideas for a golden retriever")


def main():
    rows = []
    for it in ITEMS:
        rows.append({
            "input": fill(it["text"]),
            "expected": [F[c] for c in it["codes"]],
            "form": it["form"],
            "lang": it["lang"],
        })
    with open(os.path.join(HERE, "dev3.jsonl"), "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} requests")


if __name__ == "__main__":
    main()
