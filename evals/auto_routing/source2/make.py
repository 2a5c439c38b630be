import json
from sklearn.datasets import load_breast_cancer, load_wine, load_diabetes
_b, _w, _d = load_breast_cancer(), load_wine(), load_diabetes()

def _fmt(v, kind):
    return f"{v:.5f}" if kind == "d" else f"{v:g}"

def _rec(ds, kind, i, style):
    names = list(ds.feature_names)
    vals = [_fmt(v, kind) for v in ds.data[i]]
    if style == "prose":
        return ", ".join(f"{n} {v}" for n, v in zip(names, vals))
    if style == "lines":
        return "\n".join(f"{n}: {v}" for n, v in zip(names, vals))
    if style == "eq":
        return ", ".join(f"{n}={v}" for n, v in zip(names, vals))
    if style == "json":
        return json.dumps({n: float(v) for n, v in zip(names, vals)})
    if style == "csv":
        return ",".join(names) + "\n" + ",".join(vals)
    raise ValueError(style)

def BC(i, s): return _rec(_b, "b", i, s)
def WI(i, s): return _rec(_w, "w", i, s)
def DI(i, s): return _rec(_d, "d", i, s)

S_SIGNUPS = "340, 355, 362, 370, 368, 381, 395, 402, 399, 410, 422, 431, 429, 445"
S_TEMP = "20.1 20.4 21.0 21.3 21.9 22.4 22.2 22.8 23.5 23.9 24.1"
S_ODD = "5, 7, 9, 11, 13, 15, 17, 19, 21, 23"
S_AIR = "112, 118, 132, 129, 121, 135, 148, 148, 136, 119, 104, 118"
S_RATIO = "0.82; 0.85; 0.79; 0.91; 0.88; 0.95; 0.97; 1.02; 0.99; 1.05"
S_SALES = "1200 1185 1240 1302 1290 1333 1410 1398 1455 1502 1490 1560"
S_ZIG = "7,3,8,4,9,5,10,6,11,7,12"
S_VISITS = "832, 901, 877, 950, 1012, 640, 598, 845, 910, 889, 968, 1030, 655, 610"
S_KWH = "14.2, 13.8, 15.1, 16.0, 15.7, 17.3, 18.9, 18.2, 16.4, 15.0, 14.1, 13.9"
S_PRICE = "58 61 60 63 65 64 67 70 69 72 74 73"
S_STOCK = "101.2, 102.5, 101.9, 103.4, 104.0, 103.1, 105.6, 106.2, 105.8, 107.3"
S_RAIN = "88, 72, 65, 40, 22, 10, 8, 12, 30, 55, 79, 91, 85, 70"
S_CUPS = "45 52 49 61 58 66 63 70 72 69 77"
S_DOWN = "100, 98, 97, 95, 94, 92, 91, 89, 88, 86"
S_BACKLOG = "12.5, 13.1, 13.0, 13.8, 14.2, 14.0, 14.9, 15.3, 15.1, 15.8"
S_STEP = "4, 5, 7, 8, 10, 11, 13, 14, 16, 17"
S_TRI = "3, 6, 9, 12, 15, 18, 21, 24, 27, 30"
S_GROW = "10, 12, 15, 13, 17, 19, 18, 22, 24, 23, 27"
S_DIFF = "3, 5, 8, 12, 17, 23, 30, 38, 47, 57"

C1 = "407.96, 408.32, 409.41, 410.24, 411.24, 410.79, 408.71, 406.99, 405.51, 406.00, 408.02, 409.07"
C2 = ("399.98, 400.28, 401.54, 403.28, 403.96, 402.80, 401.31, 398.93, 397.63, 398.29, 400.16, 401.85, "
      "402.56, 404.12, 404.87, 407.45, 407.72, 406.83, 404.41, 402.27, 401.05, 401.59, 403.55, 404.45")
C3 = "316.43, 316.97, 317.58, 319.02, 320.03, 319.59, 318.18, 315.91, 314.16, 313.83, 315.00, 316.19"
C4 = "418.19, 419.28, 418.81, 420.23, 420.99, 420.99, 418.90, 417.19, 415.95, 415.78, 417.51, 418.95"
C5 = "385.54\n386.41\n387.04\n388.26\n389.46\n388.67\n387.05\n384.98\n383.70\n384.22\n385.65\n386.81\n387.54"

R = []
def E(inp, exp, form, lang):
    R.append({"input": inp, "expected": exp, "form": form, "lang": lang})

# ---------------- and-also ----------------
F = "and-also"
E("can you write a short birthday message for my coworker Dana and also tell me what language this is: 'Hyvää huomenta kaikille'", ["smollm2-chat", "langid"], F, "en")
E("Is this review happy or unhappy? \"Battery died after two days, total waste of money.\" Also, how would I say 'thank you for your patience' in Portuguese?", ["sentiment", "translate-en-pt"], F, "en")
E("set an alarm for 6:45 tomorrow and also give me 3 tips for falling asleep faster", ["intent", "smollm2-chat"], F, "en")
E(f"Here's our weekly signups: {S_SIGNUPS} — what comes next for the following 4 weeks? Also can you explain in two lines what a moving average is", ["fracast", "smollm2-chat"], F, "en")
E("oi! me diz o que significa em inglês 'estou morrendo de saudade de você' e também escreve uma legenda curta pra foto de praia 🏖️", ["translate-pt-en", "smollm2-chat"], F, "pt")
E("Preciso do vetor dessa frase pra minha busca semântica: 'entrega rápida e produto bem embalado'. E também, em que idioma está 'Dziękuję bardzo'?", ["minilm-embed", "langid"], F, "pt")
E("What cultivar is this wine?\n" + WI(0, "lines") + "\nAnd also write me a two-sentence tasting note that sounds fancy.", ["tabular-wine", "smollm2-chat"], F, "en")
E("my card got declined at the supermarket what do i do. also whats 'my card was declined' in portuguese", ["intent", "translate-en-pt"], F, "en")
E("Put these in order of relevance for 'how to remove rust from a bike chain':\n1. Soak the chain in white vinegar for a few hours, then scrub it with an old toothbrush.\n2. Mountain bikes usually have wider tyres than road bikes.\n3. A degreaser and a stiff brush remove light surface rust quickly.\nAlso, is this comment positive or negative: 'Tried the vinegar trick, chain looks brand new!'", ["minilm-rerank", "sentiment"], F, "en")
E("estimate disease progression for this patient " + DI(0, "json") + " and also summarise in one line what BMI measures", ["tabular-diabetes", "smollm2-chat"], F, "en")
E("Liga as luzes da sala e também me fala se esse tweet é positivo: 'Worst commute ever, train stuck for an hour'", ["intent", "sentiment"], F, "pt")
E("Hola, ¿en qué idioma está 'Ik hou van fietsen'? Y también, ¿cómo se dice 'see you tomorrow' en portugués?", ["langid", "translate-en-pt"], F, "es")
E(f"Monthly atmospheric CO2 at Mauna Loa (ppm): {C1}. Project the next 6 months, and also write a tweet about climate change awareness", ["patchtst-co2", "smollm2-chat"], F, "en")
E(f"Run a few different models on this and blend the results: {S_SALES}, 5 steps ahead. also whats my checking account balance", ["forecast-ensemble", "intent"], F, "en")
E("Bonjour ! Peux-tu me dire ce que veut dire en anglais 'o jantar está pronto' ? Et aussi, écris un petit poème sur l'automne.", ["translate-pt-en", "smollm2-chat"], F, "fr")
E("tumor measurements below, benign or malignant?\n" + BC(19, "csv") + "\nalso could you write a gentle message to my aunt telling her we're still waiting on the results", ["tabular-breast-cancer", "smollm2-chat"], F, "en")
E("Tô montando um buscador. Gera o embedding de 'como trocar a senha do wifi' e também coloca em ordem de relevância pra pergunta 'como trocar a senha do wifi':\n- Abra o painel do roteador em 192.168.0.1 e vá em Rede sem fio > Segurança.\n- Bolo de cenoura fica melhor com cobertura de chocolate.\n- Ligue para a operadora e peça a troca da senha pelo atendimento.", ["minilm-embed", "minilm-rerank"], F, "pt")
E("what language is 'Selamat pagi, apa kabar?' also reword this so it sounds less rude: 'send me the file now'", ["langid", "smollm2-chat"], F, "en")
E("Hey, is the mood of this message angry, calm or happy? 'Fine. Do whatever you want, I don't care anymore.' And also remind me to call my sister at 7pm", ["sentiment", "intent"], F, "en")
E(f"next 3 values pls: {S_ODD} and also a fun fact about octopuses 🐙", ["fracast", "smollm2-chat"], F, "en")
E("Bom dia! Como fica em português 'the meeting was moved to Thursday'? E também preciso reservar uma mesa pra quatro hoje às 20h", ["translate-en-pt", "intent"], F, "pt")
E("I need a vector representation of 'noise cancelling headphones under $100' for my similarity search. Also how do I say 'free shipping' in Portuguese?", ["minilm-embed", "translate-en-pt"], F, "en")
E("Qual o idioma de 'Tack så mycket för hjälpen'? Também quero saber o que quer dizer em inglês 'vou chegar atrasado, o trânsito tá horrível'", ["langid", "translate-pt-en"], F, "pt")
E("Play some lo-fi hip hop on spotify, and also give me a short pep talk for studying", ["intent", "smollm2-chat"], F, "en")
E(f"Estimate the next 8 points with an ensemble of models: {S_AIR}. Also, what does 'previsão do tempo' mean in English?", ["forecast-ensemble", "translate-pt-en"], F, "en")
E("Qual a classe desse vinho? " + WI(60, "json") + ". E também escreve uma mensagem de convite pra uma degustação no sábado", ["tabular-wine", "smollm2-chat"], F, "pt")

# ---------------- then ----------------
F = "then"
E("first tell me what language 'Kiitos paljon' is, then write a haiku about snow", ["langid", "smollm2-chat"], F, "en")
E("Check if this review is positive: 'The hotel staff were lovely but the room smelled of smoke and the wifi never worked.' then draft a polite apology email to the guest", ["sentiment", "smollm2-chat"], F, "en")
E("Passa pro inglês 'minha encomenda ainda não chegou' e depois cria um alarme pras 7h", ["translate-pt-en", "intent"], F, "pt")
E("book me a flight from Boston to Chicago next Friday, then tell me a joke about airports", ["intent", "smollm2-chat"], F, "en")
E(f"take this daily temperature log {S_TEMP} and predict the next 3 days, after that explain why the hottest days come weeks after the longest day", ["fracast", "smollm2-chat"], F, "en")
E("Order these by how well they answer 'best time to visit Japan':\n[1] Spring (late March to early May) brings cherry blossoms and mild weather.\n[2] Japanese yen coins have a hole in the 5 and 50 yen pieces.\n[3] Autumn, from October to November, offers colourful leaves and fewer crowds.\nthen write me a 5-day Kyoto itinerary", ["minilm-rerank", "smollm2-chat"], F, "en")
E("Primeiro me diz se esse comentário é negativo: 'Customer service hung up on me twice.' Depois escreve uma resposta educada pro cliente", ["sentiment", "smollm2-chat"], F, "pt")
E("predict progression for " + DI(5, "eq") + " then remind me to email dr. patel tomorrow at 9", ["tabular-diabetes", "intent"], F, "en")
E("what does 'boa sorte na prova amanhã' mean in english? afterwards tell me how to say 'you'll do great' in portuguese", ["translate-pt-en", "translate-en-pt"], F, "en")
E("D'abord, dis-moi en quelle langue est écrit 'Mi piace molto questa città', ensuite raconte-moi une blague.", ["langid", "smollm2-chat"], F, "fr")
E("Encode 'refund policy for damaged items' as a vector, then give me the vector for 'return a broken product' too", ["minilm-embed", "minilm-embed"], F, "en")
E(f"Atmospheric CO2 readings, monthly, ppm: {C2}. extend it 12 months, then write a paragraph for my class about the Keeling curve", ["patchtst-co2", "smollm2-chat"], F, "en")
E(f"Primeiro, quais seriam os próximos 5 valores: {S_RATIO}? Depois me explica o que é sazonalidade", ["fracast", "smollm2-chat"], F, "pt")
E("transfer $200 from savings to checking then tell me if this text sounds upset: 'why is my rent late AGAIN'", ["intent", "sentiment"], F, "en")
E("give me a catchy slogan for a bakery and then put 'fresh bread every morning' into portuguese", ["smollm2-chat", "translate-en-pt"], F, "en")
E("Here are the cell nucleus features:\n" + BC(0, "lines") + "\nTell me if it's malignant or benign, then summarize in plain words what 'worst concave points' means", ["tabular-breast-cancer", "smollm2-chat"], F, "en")
E("Primero dime qué idioma es 'Dobré ráno', luego escríbeme un correo corto para cancelar una cita", ["langid", "smollm2-chat"], F, "es")
E(f"combine a few forecasting models on {S_PRICE} for the next 4 steps, then give me a plain single-model prediction for the same series so I can compare", ["forecast-ensemble", "fracast"], F, "en")
E("Vê o clima de amanhã em Curitiba e depois escreve uma mensagem pra minha mãe dizendo que vou visitá-la no domingo", ["intent", "smollm2-chat"], F, "pt")
E("which language is 'Jó napot kívánok'? then give me three tips for learning languages on my own", ["langid", "smollm2-chat"], F, "en")
E("rate the tone of 'Honestly the best pizza I've had in years!!' then write a reply thanking the customer", ["sentiment", "smollm2-chat"], F, "en")
E("Me passa o vetor da frase 'tênis de corrida confortável' e depois o que quer dizer em inglês 'frete grátis para todo o Brasil'", ["minilm-embed", "translate-pt-en"], F, "pt")
E("wine analysis: " + WI(140, "eq") + ". what cultivar is it? afterwards tell me which foods pair well with it", ["tabular-wine", "smollm2-chat"], F, "en")
E("cancel my 3pm meeting then how do you say 'sorry, something came up' in portuguese", ["intent", "translate-en-pt"], F, "en")
E("start by sorting these reviews by how relevant they are to 'battery life':\n(a) The screen is bright and sharp even outdoors.\n(b) It easily lasts two days on a single charge.\n(c) Charging from zero to full takes about an hour.\nthen tell me whether this one is positive: 'Lasts two full days, I'm impressed.'", ["minilm-rerank", "sentiment"], F, "en")

# ---------------- first-second ----------------
F = "first-second"
E("First, what language is 'Doufám, že se brzy uvidíme'? Second, write a limerick about a cat.", ["langid", "smollm2-chat"], F, "en")
E("1st: is this tweet positive or negative 'just got promoted!!! 🎉' 2nd: set a timer for 25 minutes", ["sentiment", "intent"], F, "en")
E("Primeiro, passa pro português 'please keep the receipt'. Segundo, me diz qual é o saldo da minha conta corrente", ["translate-en-pt", "intent"], F, "pt")
E(f"Firstly, give the next 6 values of {S_ZIG}. Secondly, explain what a p-value is like I'm five.", ["fracast", "smollm2-chat"], F, "en")
E(f"First thing: monthly atmospheric CO2 at Mauna Loa in ppm, {C3}, project 12 months ahead. Second thing: project this unrelated sales series 3 steps: {S_SALES}", ["patchtst-co2", "fracast"], F, "en")
E("Primeiro: o que significa em inglês 'a reunião foi adiada para sexta'? Segundo: escreve um email curto avisando a equipe", ["translate-pt-en", "smollm2-chat"], F, "pt")
E("First, predict disease progression for this row:\n" + DI(50, "csv") + "\nSecond, give me 3 healthy breakfast ideas", ["tabular-diabetes", "smollm2-chat"], F, "en")
E("First, reorder these by relevance to 'symptoms of dehydration':\nA) Dark urine, dizziness and a dry mouth are common early signs.\nB) The Sahara is the largest hot desert in the world.\nC) Severe cases can cause confusion and a rapid heartbeat.\nSecond, what language is 'Tengo mucha sed'?", ["minilm-rerank", "langid"], F, "en")
E("Premièrement, comment dit-on 'good night, sleep well' en portugais ? Deuxièmement, mets la musique de Stromae dans le salon.", ["translate-en-pt", "intent"], F, "fr")
E("firstly make an embedding for 'cheap flights to lisbon' secondly book a hotel in lisbon for 2 nights from june 3", ["minilm-embed", "intent"], F, "en")
E("Primeiro, esse review é bom ou ruim? 'The blender is loud but it crushes ice perfectly, worth it.' Segundo, qual língua é 'Guten Appetit'?", ["sentiment", "langid"], F, "pt")
E(f"First, an ensemble prediction (mix several models) for the next 5 of {S_SIGNUPS}. Second, a short explanation of why ensembles usually help.", ["forecast-ensemble", "smollm2-chat"], F, "en")
E("First: which class is this wine?\n" + WI(170, "csv") + "\nSecond: what's 'dry red wine' in Portuguese?", ["tabular-wine", "translate-en-pt"], F, "en")
E("1st whats the weather in Lisbon this weekend, 2nd what does 'vamos à praia no sábado' mean in english", ["intent", "translate-pt-en"], F, "en")
E(f"Primeiro, qual será o próximo valor dessa série: {S_GROW}? Segundo, me conta uma curiosidade sobre o espaço", ["fracast", "smollm2-chat"], F, "pt")
E("First, is 'Ma come stai? Tutto bene?' Italian or Spanish? Second, how do you say 'everything is fine' in Portuguese", ["langid", "translate-en-pt"], F, "en")
E("First, run this biopsy record through the tumour model: " + BC(100, "json") + ". Second, turn the lights off in the bedroom.", ["tabular-breast-cancer", "intent"], F, "en")
E("Primero, ¿qué significa en inglés 'obrigado pela ajuda'? Segundo, escríbeme un poema corto sobre el mar.", ["translate-pt-en", "smollm2-chat"], F, "es")
E("First, does this message sound annoyed? 'I've asked three times now.' Second, write a friendlier version of it.", ["sentiment", "smollm2-chat"], F, "en")
E("Primeiro, gera o vetor da frase 'melhor pizzaria de São Paulo'. Segundo, ordena esses trechos pela relevância pra 'melhor pizzaria de São Paulo':\n1. A pizzaria do Bixiga ganhou o prêmio de melhor margherita da cidade.\n2. O trânsito na Marginal Pinheiros está lento hoje.\n3. Guia com as 10 pizzarias mais bem avaliadas de São Paulo.", ["minilm-embed", "minilm-rerank"], F, "pt")
E("first, report my card as lost. second, whats 'I lost my wallet' in portuguese", ["intent", "translate-en-pt"], F, "en")
E("Firstly, what language is this: 'Ní neart go cur le chéile'. Secondly, is this review favourable: 'Meh. It was okay, nothing special.' Thirdly, tell me a joke.", ["langid", "sentiment", "smollm2-chat"], F, "en")
E("Primeiro, me diz em inglês 'pode deixar na portaria'. Segundo, agenda uma reunião com o Pedro na quinta às 10h", ["translate-pt-en", "intent"], F, "pt")
E(f"First: atmospheric co2 monthly means (ppm) {C4} — next 6 months? Second: combine several models on this series of daily visitors, 7 days ahead: {S_VISITS}", ["patchtst-co2", "forecast-ensemble"], F, "en")

# ---------------- numbered ----------------
F = "numbered"
E("Can you help with a few things:\n1. what language is 'Bom dia, tudo bem?'\n2. write a thank-you note for my neighbour\n3. set a reminder to water the plants at 6pm", ["langid", "smollm2-chat", "intent"], F, "en")
E("- is this review good or bad: 'Arrived broken, seller ignored my emails.'\n- how do I say 'I want a refund' in portuguese", ["sentiment", "translate-en-pt"], F, "en")
E("Preciso de duas coisas:\n1) o que significa em inglês 'a conta de luz veio alta esse mês'\n2) uma dica pra economizar energia em casa", ["translate-pt-en", "smollm2-chat"], F, "pt")
E(f"todo:\n1. next 4 values of {S_KWH}\n2. explain overfitting in one paragraph", ["fracast", "smollm2-chat"], F, "en")
E("1. Order these passages by relevance to 'how to boil an egg':\n(a) Place eggs in boiling water for 7 to 9 minutes, then cool them in ice water.\n(b) Chickens were domesticated thousands of years ago.\n(c) Start eggs in cold water and bring to a gentle boil.\n2. Give me the vector for 'soft boiled egg'", ["minilm-rerank", "minilm-embed"], F, "en")
E("Lista:\n1. me acorda às 5h30\n2. escreve uma frase motivacional pra segunda-feira\n3. qual idioma é 'Buongiorno a tutti'", ["intent", "smollm2-chat", "langid"], F, "pt")
E("two things:\n1) what's the disease progression estimate for this patient:\n" + DI(120, "lines") + "\n2) what's 'blood pressure' in Portuguese?", ["tabular-diabetes", "translate-en-pt"], F, "en")
E("Deux demandes :\n1. en quelle langue est 'Hvordan har du det?'\n2. que signifie en anglais 'estou com fome'", ["langid", "translate-pt-en"], F, "fr")
E(f"• monthly CO2 concentration (atmospheric, ppm): {C1} → give me the next year\n• a short poem about the ocean", ["patchtst-co2", "smollm2-chat"], F, "en")
E("1. is this positive? 'Love the new update, so much faster'\n2. is this positive? 'The update broke my login, thanks a lot'", ["sentiment", "sentiment"], F, "en")
E("1 - põe em português 'out of stock'\n2 - escreve a descrição de um produto: caneca térmica 500ml, aço inox", ["translate-en-pt", "smollm2-chat"], F, "pt")
E("Please:\n1. Tell me the wine class for: " + WI(30, "prose") + "\n2. Turn on the kitchen lights", ["tabular-wine", "intent"], F, "en")
E(f"1) blend several models to predict the next 6: {S_RAIN}\n2) what language is 'Merhaba, nasılsın?'", ["forecast-ensemble", "langid"], F, "en")
E("a few quick ones:\n- weather tomorrow in denver\n- a fun fact about bees\n- 'obrigado, até amanhã' in english", ["intent", "smollm2-chat", "translate-pt-en"], F, "en")
E("Tarefas:\n1. me dá o embedding de 'aluguel de apartamento perto do metrô'\n2. esse comentário é negativo? 'The landlord never fixed the heater.'", ["minilm-embed", "sentiment"], F, "pt")
E("1. tumour features: " + BC(250, "eq") + " — benign or malignant?\n2. explain what a biopsy is in simple words", ["tabular-breast-cancer", "smollm2-chat"], F, "en")
E("Dos cosas:\n1. ¿cómo se dice 'where is the train station?' en portugués?\n2. ¿qué idioma es 'Dzień dobry'?", ["translate-en-pt", "langid"], F, "es")
E(f"1. {S_TRI} → next 2?\n2. transfer 50 euros to Maria", ["fracast", "intent"], F, "en")
E(f"1. quais os próximos meses de CO2 atmosférico dessa série mensal em ppm: {C4}\n2. me explica efeito estufa em 3 frases", ["patchtst-co2", "smollm2-chat"], F, "pt")
E("- rewrite 'pls fix asap' as a professional email line\n- what's the mood of 'can't wait for the weekend!!'\n- play jazz in the living room", ["smollm2-chat", "sentiment", "intent"], F, "en")
E("1) sort by relevance to 'python list comprehension':\n- [x * 2 for x in nums] builds a new list by doubling each element.\n- Pythons are non-venomous snakes found in Africa and Asia.\n- List comprehensions can include an if clause to filter items.\n2) what does 'não entendi nada' mean in english", ["minilm-rerank", "translate-pt-en"], F, "en")
E("Oi, pode fazer:\n1. o vetor de 'cadeira de escritório ergonômica'\n2. o vetor de 'cadeira gamer barata'", ["minilm-embed", "minilm-embed"], F, "pt")
E("1. predict the progression for this one: " + DI(300, "json") + "\n2. remind me to take my meds at 8", ["tabular-diabetes", "intent"], F, "en")
E("1. What language is 'Saluton, kiel vi fartas?'\n2. Is this review positive: 'The plot twist was predictable and the acting was wooden.'", ["langid", "sentiment"], F, "en")
E("1. passa pro inglês 'feliz aniversário, amiga'\n2. passa pro português 'happy anniversary, love'", ["translate-pt-en", "translate-en-pt"], F, "pt")

# ---------------- question-after-instruction ----------------
F = "question-after-instruction"
E("Write a two-line poem about coffee. What language is 'Café com leite, por favor'?", ["smollm2-chat", "langid"], F, "en")
E(f"Predict the next 3 numbers in {S_CUPS} what does 'obrigado pela paciência' mean", ["fracast", "translate-pt-en"], F, "en")
E("Escreve uma mensagem de bom dia pro grupo da família. Como se diz 'see you at lunch' em português?", ["smollm2-chat", "translate-en-pt"], F, "pt")
E("Turn the thermostat down to 19 degrees. is this tweet positive 'traffic was a nightmare but the concert was worth it'?", ["intent", "sentiment"], F, "en")
E("Give me a vector for 'wireless ergonomic keyboard' — which language is 'Klavye çok güzel'?", ["minilm-embed", "langid"], F, "en")
E("Predict the cultivar for " + WI(100, "json") + " Which dishes go with a light, fruity wine?", ["tabular-wine", "smollm2-chat"], F, "en")
E("Me acorda às 6h amanhã. O que quer dizer 'I'm running late' em português?", ["intent", "translate-en-pt"], F, "pt")
E("sort these by relevance for 'cheap vegan protein':\n1. Lentils and chickpeas cost little and pack about 18 g of protein per cooked cup.\n2. Vegan leather is made from plastics or plant fibres.\n3. Tofu and tempeh are affordable soy-based protein sources.\nis 'Tofu is surprisingly tasty' a positive comment?", ["minilm-rerank", "sentiment"], F, "en")
E(f"Extend this monthly atmospheric CO2 record (ppm) by 6 months: {C3}. Why does CO2 drop every northern summer?", ["patchtst-co2", "smollm2-chat"], F, "en")
E("Écris une courte invitation pour un anniversaire. Que veut dire 'você vem para a festa?' en anglais ?", ["smollm2-chat", "translate-pt-en"], F, "fr")
E("Give the breast cancer model this:\n" + BC(400, "csv") + "\nhow much should I trust a single model's answer on something like this?", ["tabular-breast-cancer", "smollm2-chat"], F, "en")
E(f"Descobre os próximos 4 valores: {S_STOCK}. Qual idioma é esse: 'Hoe gaat het met je?'", ["fracast", "langid"], F, "pt")
E("Book a taxi to the airport for 5am whats the portuguese for 'departure gate'", ["intent", "translate-en-pt"], F, "en")
E("Rewrite this to sound more confident: 'I think maybe I could lead the project?' Is the original sentence negative, neutral or positive?", ["smollm2-chat", "sentiment"], F, "en")
E("Gera o vetor de 'curso de inglês online'. O que significa 'curso gratuito com certificado' em inglês?", ["minilm-embed", "translate-pt-en"], F, "pt")
E(f"Combine multiple models to project {S_BACKLOG} 6 steps out. Did my last order ship yet?", ["forecast-ensemble", "intent"], F, "en")
E("Estimate the progression score: " + DI(400, "eq") + " What foods help keep blood sugar stable?", ["tabular-diabetes", "smollm2-chat"], F, "en")
E("Escríbeme un chiste sobre programadores. ¿En qué idioma está 'Bonne nuit les enfants'?", ["smollm2-chat", "langid"], F, "es")
E("Put 'the package was left at the door' into Portuguese. Is 'Left at the door in the rain, everything soaked.' a negative review?", ["translate-en-pt", "sentiment"], F, "en")
E("Transfere R$100 pra conta da Júlia. Você pode me explicar como funciona o Pix?", ["intent", "smollm2-chat"], F, "pt")
E("order these help articles by relevance to 'reset my password':\n[1] How to change your profile picture\n[2] Forgot your password? Use the 'Reset' link on the login page\n[3] Resetting your password from the mobile app\nwhat language is 'Passwort vergessen'", ["minilm-rerank", "langid"], F, "en")
E(f"Me dá uma ideia de nome pra uma cafeteria. E como fica o CO2 atmosférico nos próximos 12 meses com base nessa série mensal em ppm: {C2}?", ["smollm2-chat", "patchtst-co2"], F, "pt")
E("Play the latest Taylor Swift album. who wrote Pride and Prejudice?", ["intent", "smollm2-chat"], F, "en")
E("Qual a classe desse vinho:\n" + WI(150, "lines") + "\nQual a temperatura ideal pra servir vinho tinto?", ["tabular-wine", "smollm2-chat"], F, "pt")
E("Say 'have a safe trip' in Portuguese what does 'boa viagem' mean in English", ["translate-en-pt", "translate-pt-en"], F, "en")

# ---------------- one-sentence ----------------
F = "one-sentence"
E("is this review positive and how do you say it in Portuguese: 'Great value, would buy again'", ["sentiment", "translate-en-pt"], F, "en")
E(f"predict the next 3 of {S_STEP} and tell me how to say 'ok' in Portuguese", ["fracast", "translate-en-pt"], F, "en")
E("what language is 'Obrigada pela ajuda' and what does it mean in English", ["langid", "translate-pt-en"], F, "en")
E("qual a língua de 'Gracias por todo' e me escreve um poema curto sobre amizade", ["langid", "smollm2-chat"], F, "pt")
E("set a timer for 10 minutes and tell me a joke while I wait", ["intent", "smollm2-chat"], F, "en")
E("give me the vector for 'red running shoes' plus the vector for 'crimson sneakers'", ["minilm-embed", "minilm-embed"], F, "en")
E("me fala se esse tweet é negativo 'my flight got cancelled again 😡' e o que significa 'voo cancelado' em inglês", ["sentiment", "translate-pt-en"], F, "pt")
E("what class is the wine with " + WI(10, "prose") + " and what grape varieties grow in northern Italy", ["tabular-wine", "smollm2-chat"], F, "en")
E("what's the balance on my savings account and what's a good way to start an emergency fund", ["intent", "smollm2-chat"], F, "en")
E("en quelle langue est 'Ich bin müde' et comment dit-on 'I am tired' en portugais ?", ["langid", "translate-en-pt"], F, "fr")
E(f"Give me the atmospheric CO2 for the next 6 months from this monthly ppm series {C1} as well as a one-line explanation of ppm", ["patchtst-co2", "smollm2-chat"], F, "en")
E(f"quais os próximos 5 números de {S_DOWN} e o que significa 'tendência de queda' em inglês", ["fracast", "translate-pt-en"], F, "pt")
E("how does this customer feel 'I've been waiting 40 minutes for a reply' and what should I write back to calm them down", ["sentiment", "smollm2-chat"], F, "en")
E("is the tumour with " + BC(300, "prose") + " malignant and what does 'fractal dimension' mean for a cell nucleus", ["tabular-breast-cancer", "smollm2-chat"], F, "en")
E("order these by relevance to 'electric car range' and tell me what language 'Die Reichweite hängt stark von der Temperatur ab' is:\n1. Most new EVs travel 400 to 500 km on a full charge.\n2. Cold weather can cut an electric car's range by up to 30%.\n3. The first cars were built in the late 19th century.", ["minilm-rerank", "langid"], F, "en")
E("aumenta o volume da música e me diz como se fala 'turn it up' em português", ["intent", "translate-en-pt"], F, "pt")
E(f"use several models together to project {S_PRICE} 4 steps ahead plus give me one sentence on why averaging models reduces variance", ["forecast-ensemble", "smollm2-chat"], F, "en")
E("what's the progression score for " + DI(200, "prose") + " and why are these values so small", ["tabular-diabetes", "smollm2-chat"], F, "en")
E("¿qué significa 'saudade' en inglés y me escribes una frase bonita con esa palabra?", ["translate-pt-en", "smollm2-chat"], F, "es")
E("gera o embedding de 'notebook para programar' e me diz se essa review é boa: 'Keyboard is great, screen is dim.'", ["minilm-embed", "sentiment"], F, "pt")
E("what's the mood of 'ugh mondays' and what language is 'Lunedì di nuovo'", ["sentiment", "langid"], F, "en")
E("book a table for 2 at an italian place tonight and what wine goes with carbonara", ["intent", "smollm2-chat"], F, "en")
E(f"como fica o CO2 atmosférico dos próximos 12 meses dessa série mensal em ppm {C4} e por que ele sobe todo ano", ["patchtst-co2", "smollm2-chat"], F, "pt")
E("what does 'a gente se vê amanhã' mean in english and how would I answer 'see you tomorrow too' in portuguese", ["translate-pt-en", "translate-en-pt"], F, "en")
E("tell me if 'Absolutely loved the staff, they went above and beyond' is positive as well as a nice reply thanking them", ["sentiment", "smollm2-chat"], F, "en")
E("me acorda às 7 e me diz como vai estar o tempo amanhã", ["intent", "intent"], F, "pt")

# ---------------- lines ----------------
F = "lines"
E("hey\nwhat language is this: 'Sawubona'\nand a short caption for my hiking photo pls", ["langid", "smollm2-chat"], F, "en")
E("Review: 'Shipping took forever and the box was crushed.'\nIs that positive or negative?\n\nSeparately: how do I say 'the box was crushed' in Portuguese?", ["sentiment", "translate-en-pt"], F, "en")
E("Bom dia!\n\nQuero saber o que significa em inglês: 'a entrega foi remarcada para segunda'.\n\nE marca um lembrete pra segunda às 9h: receber encomenda.", ["translate-pt-en", "intent"], F, "pt")
E(f"series: {S_VISITS}\nnext 5 please\n\nwrite a motivational quote for my team", ["fracast", "smollm2-chat"], F, "en")
E("Query: how to keep basil alive indoors\n1. Give basil 6 hours of sunlight a day and water when the top soil is dry.\n2. Basil is a key ingredient in pesto.\n3. Pinch off flower buds so the plant keeps producing leaves.\nOrder those by relevance.\n\nDifferent question — what language is 'Albahaca fresca'?", ["minilm-rerank", "langid"], F, "en")
E(BC(7, "lines") + "\nbenign or malignant?\n\nCancel my 8am appointment tomorrow.", ["tabular-breast-cancer", "intent"], F, "en")
E("Oi\nessa frase é positiva? 'The new café downtown is adorable'\nqual a língua de 'Un café, s'il vous plaît'", ["sentiment", "langid"], F, "pt")
E(f"Atmospheric CO2, monthly means in ppm:\n{C5}\nWhat are the next 12 months?\n\nAnd write a short tweet about rising CO2", ["patchtst-co2", "smollm2-chat"], F, "en")
E("Bonjour,\nQue veut dire 'estou procurando um apartamento' en anglais ?\nRéserve-moi un taxi pour 18h.", ["translate-pt-en", "intent"], F, "fr")
E("vector for: 'quiet hotel near the beach'\nvector for: 'noisy hostel downtown'", ["minilm-embed", "minilm-embed"], F, "en")
E(WI(120, "csv") + "\nwhich cultivar?\n\ntell me a bit about the history of Barolo wine", ["tabular-wine", "smollm2-chat"], F, "en")
E(f"série mensal de vendas: {S_AIR}\nquero os próximos 3 meses usando vários modelos combinados\n\nqual o idioma de 'Спасибо за всё'", ["forecast-ensemble", "langid"], F, "pt")
E("Turn off all the lights\nWhat's the Portuguese for 'good night'?", ["intent", "translate-en-pt"], F, "en")
E("Text 1: 'I can't believe they cancelled the show, I'm gutted.'\nHow does this person feel?\nText 2: 'Eu não acredito que cancelaram a série.'\nWhat does text 2 mean in English?", ["sentiment", "translate-pt-en"], F, "en")
E("Preciso de um email pedindo férias pro meu chefe\n\nE me diz quanto tenho na poupança", ["smollm2-chat", "intent"], F, "pt")
E(DI(77, "json") + "\nprogression?\nwhat's a normal blood pressure for a 50 year old", ["tabular-diabetes", "smollm2-chat"], F, "en")
E("Hola\n¿Qué idioma es 'Terima kasih'?\n¿Y cómo se dice 'thank you very much' en portugués?", ["langid", "translate-en-pt"], F, "es")
E(f"next 4 values:\n{S_BACKLOG}\n\nquery 'ergonomic chair back pain', put these in order:\n- Chairs with adjustable lumbar support reduce lower back strain.\n- The office moved to the third floor last year.\n- Set the seat height so your knees are level with your hips.", ["fracast", "minilm-rerank"], F, "en")
E("Liga o ar-condicionado no 22\n\nEscreve uma piada sobre calor", ["intent", "smollm2-chat"], F, "pt")
E("Embedding needed: 'how to file taxes as a freelancer'\n\nAnd this review — positive or negative? 'The accountant was quick and very clear.'", ["minilm-embed", "sentiment"], F, "en")
E("Como se diz em português:\n'Please fasten your seatbelt'\n\nQual a língua disso: 'Kapag may tiyaga, may nilaga'", ["translate-en-pt", "langid"], F, "pt")
E("Weather in Rome on Saturday?\nWhat does 'vou levar guarda-chuva' mean in English?\nWrite a packing list for a rainy weekend", ["intent", "translate-pt-en", "smollm2-chat"], F, "en")
E(BC(50, "json") + "\nis this malignant\n\nhow do I say 'the results will be ready next week' in portuguese", ["tabular-breast-cancer", "translate-en-pt"], F, "en")
E(f"CO2 atmosférico mensal (ppm):\n{C3}\nPrevê os próximos 6 meses\n\nOutra série, visitas diárias no site: {S_VISITS}\nos próximos 7 dias", ["patchtst-co2", "fracast"], F, "pt")
E("Good afternoon!\nCould you give me a short summary of what photosynthesis is?\nAnd how would you say 'photosynthesis is fascinating' in Portuguese?", ["smollm2-chat", "translate-en-pt"], F, "en")

# ---------------- single-tricky ----------------
F = "single-tricky"
E("write a poem about salt and pepper", ["smollm2-chat"], F, "en")
E("translate 'buy bread, then call mum' into Portuguese", ["translate-en-pt"], F, "en")
E("rank these for 'best budget laptop':\n1. The Acer Aspire 5 offers solid performance for under $500.\n2. Laptops were first sold commercially in the 1980s.\n3. Chromebooks are a cheap option for browsing and documents.", ["minilm-rerank"], F, "en")
E(BC(150, "lines") + "\nIs this tumour benign or malignant?", ["tabular-breast-cancer"], F, "en")
E("detect the language and give me its ISO code: 'Habari za asubuhi'", ["langid"], F, "en")
E("summarise and shorten this paragraph: 'Our team met on Monday to discuss the quarterly results. Sales grew by 8%, mostly thanks to the new product line, while costs stayed flat. We agreed to hire two more support staff and revisit pricing next quarter.'", ["smollm2-chat"], F, "en")
E("Escreve uma história curta sobre um gato que primeiro perde o chapéu e depois encontra ele no telhado", ["smollm2-chat"], F, "pt")
E("How do you say 'first open the box, second remove the cover, and also keep the screws' in Portuguese?", ["translate-en-pt"], F, "en")
E("Is this review positive? 'First the delivery was late, then the item was wrong, and also the support was rude.'", ["sentiment"], F, "en")
E("O que quer dizer em inglês: 'Primeiro lave as mãos. Depois seque bem e também passe álcool.'", ["translate-pt-en"], F, "pt")
E("Write an email to my landlord saying the heater is broken and also that the kitchen sink leaks", ["smollm2-chat"], F, "en")
E("Remind me to buy milk and eggs on the way home", ["intent"], F, "en")
E(f"Use an ensemble — ARIMA, exponential smoothing and a small neural net, averaged — to predict the next 6 points of {S_KWH}", ["forecast-ensemble"], F, "en")
E("Em que idioma está isso e qual o código ISO dele: 'Dia dhuit, conas atá tú?'", ["langid"], F, "pt")
E("Here's the wine data: " + WI(80, "json") + "\nWhich of the three cultivars is it?", ["tabular-wine"], F, "en")
E("Find the passages most relevant to 'symptoms of burnout' and put them in order:\n- Chronic exhaustion and cynicism about work are hallmark signs.\n- Burnout was officially recognised by the WHO in 2019.\n- Candles burn longer if you trim the wick.", ["minilm-rerank"], F, "en")
E(f"Monthly atmospheric CO2 (ppm) below — continue it for 12 more months, keeping the seasonal cycle:\n{C4}", ["patchtst-co2"], F, "en")
E("Explain, in simple words and with an example, what inflation is", ["smollm2-chat"], F, "en")
E("Monta uma lista de compras pro churrasco de sábado dividida em:\n1. carnes\n2. bebidas\n3. acompanhamentos", ["smollm2-chat"], F, "pt")
E("Patient record:\n" + DI(333, "lines") + "\nWhat is the predicted disease progression one year after baseline?", ["tabular-diabetes"], F, "en")
E("Comment dit-on en portugais : 'I'll call you and then we'll decide together' ?", ["translate-en-pt"], F, "fr")
E("give me a vector for this sentence: 'first come, first served, and then the rest'", ["minilm-embed"], F, "en")
E(f"What's the next value in this series, and the one after that? {S_DIFF}", ["fracast"], F, "en")
E("Esse comentário é positivo ou negativo? 'Loved the beach, hated the hotel, and the food was just okay.'", ["sentiment"], F, "pt")

with open("dev2.jsonl", "w") as f:
    for r in R:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
print(len(R))
