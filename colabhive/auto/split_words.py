"""The words and marks the splitter reads (``split.py``): verbs that start an instruction,
question openers, politeness, connectors between asks, list marks and ranking cues; and the
line shapes built on them (a record's lines, greeting and sign-off lines).

They are separators and sentence shapes a person would see, in English and Portuguese (some
Spanish and French); none names a task, so a new family needs nothing here.
"""

from __future__ import annotations

import re
import unicodedata

_VERBS = frozenset("""
add analyse analyze answer arrange assess book brainstorm calculate cancel categorise categorize change check
classify compare compose compute convert count create decide describe detect determine draft embed encode
estimate evaluate explain extend extract figure find forecast generate get give guess help identify
judge label let list look make map name note order outline paraphrase pick play plot predict prepare produce
project provide put rank rate read recommend reorder rephrase reply report reserve respond return reword rewrite
run say schedule score send set show sort spell state suggest summarise summarize switch tag take tell
transfer translate turn vectorise vectorize wake work write average blend combine use rebook remind block freeze
lock unlock pay buy open close call text email message dial start stop pause resume skip cancel reschedule move
clear delete remove update track locate navigate drive hail reserve order convert define rate review proofread
shorten expand simplify fix correct improve polish condense paraphrase sum up break tag cluster group match
score sort rank reorder prioritise prioritize choose select filter retrieve fetch search lookup look detect
infer interpret decode render express phrase word note draft jot sketch imagine invent think come brainstorm
predict project extrapolate anticipate foresee continue estimate classify diagnose assess tell say show
traduza traduz traduzir diga escreva lembra lembre acorda acorde dá dê da ponha põe bota coloca manda mande
transfira pague compre cancele abra feche toca liga desliga reserva agenda marca mostra conta fala fale converte
prevê preveja projete estime resuma reescreva ordene classifique organize avalie analise compare combine
mostre explica explique cria crie gera gere sugere sugira recomende recomenda escreve preveja prever classifique identifique detecte ordene faça crie resuma
explique liste dê mostre calcule verifique analise informe indique coloque passe converta gere sugira
responda reescreva marque agende ligue desligue toque
faz faça fazer escreve diz dizer traduz calcula verifica classifica resume cria gera manda conta mostra
traduce dime escribe predice clasifica identifica ordena explica resume dame
traduis traduisez dis écris prédis classe identifie explique résume donne
passa passe cria vê descobre descubra transfere transferir envia envie chama pede procura procure busca acha ache
lembra avisa escolhe escolha anota anote
escribe haz pon reserva manda busca calcula cuenta recomienda envía llama pide elige traduce predice
écris écrivez fais faites donne réserve envoie trouve calcule raconte rédige propose recommande prévois
mets mettez évalue évaluez analyse analysez estime indique montre explique-moi prolonge continue prédis
mettre dire donner faire traduire réserver envoyer appeler trouver calculer prévoir annuler ajouter
analisa roda rode pega pegue projeta projete avalia estima combina junta compara continua completa manda
mira pasa pásame analiza evalúa estima proyecta combina compara continúa calcula pronostica dale
""".split())
_VERBS_PLAIN = frozenset(unicodedata.normalize("NFKD", v).encode("ascii", "ignore").decode() for v in _VERBS)
_CLITIC = re.compile(r"(?:me|nos|lo|la|los|las|le|les|te|se)$")


def _is_verb(word: str) -> bool:
    """An instruction's verb, also with a pronoun attached ("réserve-moi", "escríbeme", "dime")."""
    w = word.lower().split("-")[0]
    if w in _VERBS:
        return True
    plain = unicodedata.normalize("NFKD", w).encode("ascii", "ignore").decode()
    return plain in _VERBS_PLAIN or len(plain) > 4 and _CLITIC.sub("", plain) in _VERBS_PLAIN
_EMOJI = "\U0001F300-\U0001FAFF\u2600-\u27BF"
"""Emoji close a sentence in chat ("a tweet about coffee 😊 also can you …")."""
_QUESTION = re.compile(
    r"^(?:¿|what|what's|whats|which|how|is|are|does|do|did|can|could|would|will|should|who|where|when|why|"
    r"qual|quais|o que|como|em que|quanto|quantos|quantas|onde|quando|por que|é|está|existe|"
    r"qué|cuál|cómo|dónde|cuándo|en qué|quel|quelle|quels|quelles|en quel(?:le)?|comment|est-ce|que veut|"
    r"qu'est-ce|peux-tu|pouvez-vous|tu peux|vous pouvez|puedes|me puedes|podrías|você consegue|consegue|"
    r"dá pra|da pra|how's|hows|is there|are there)\b", re.I)
_POLITE = re.compile(
    r"^(?:(?:please|pls|plz|kindly|now|also|and|then|next|finally|lastly|afterwards|ok|okay|hey|hi|hello|so|btw|"
    r"oi|olá|ola|hola|bonjour|1st|2nd|3rd|step \d{1,2}|passo \d{1,2}|"
    r"first(?:ly)?|second(?:ly)?|third(?:ly)?|primeiro|segundo|terceiro|primero|segundo|d'abord|ensuite|me|por favor|agora|também|depois|e|"
    r"ent[ãa]o|por último|finalmente|to start|to begin|to finish|para empezar|para começar|pour commencer|"
    r"primeiramente|em primeiro lugar|em segundo lugar|en primer lugar|en segundo lugar|além disso|además|"
    r"can you|could you|would you|will you|can u|could u|pode me|can i get|can i have|i'd like you to|i want you to|i need you to|"
    r"você pode|pode|poderia|you can|help me|me ajude a|gostaria que)\b[\s,:]*)+", re.I)
_WANTS = re.compile(r"^(?:i (?:also |really )?(?:need|want|wanna)|i'd (?:also )?like|i would (?:also )?like|we need|preciso|quero|gostaria|necesito|quiero|"
                    r"je veux|j'ai besoin)\b", re.I)
_POINTS_BACK = re.compile(r"\b(?:it(?! (?:going|gonna) to\b)(?!\s+(?:rain|snow)\w*)|(?:this|that|these|those)(?! (?:weekend|week|morning|afternoon|evening|night|month|"
                          r"year|time|year's|season|summer|winter|spring|autumn|fall|kind|sort|type)\b)|they|them|its|the (?:text|review|sentence|message|"
                          r"comment|tweet|line|phrase|result|same)|isso|isto|ele|ela|esse|essa|este|esta)\b", re.I)
_LIST_ITEM = re.compile(r"(?m)^\s*(?:\d{1,2}[.)]|\d{1,2}[ \t]*[-–—]|\((?:\d{1,2}|[a-hA-H])\)|\[\d{1,2}\]|[a-hA-H][.)]|[-*•])\s+")
_INLINE_MARK = re.compile(r"(?:^|\s)\(?(?:\d{1,2}|[A-Ha-h])[.)]\s|\[\d{1,2}\]")
"""A passage's mark inside a line ("… : 1. … 2. …", "(a) …")."""
_ORDINAL = re.compile(
    r"(?:^|(?<=[.;!?:,\ue001]\s)|(?<=[.;!?:,]\s\s)|(?<=\n)|(?<=\d\s)(?=(?-i:[A-Z])\w+\s*[,:]))(?:and\s+)?"
    r"(?:first(?:ly)?|second(?:ly)?|third(?:ly)?|"
    r"fourth(?:ly)?|finally|lastly|1st|2nd|3rd|4th|step \d{1,2}|passo \d{1,2}|primeiro|segundo|terceiro|por fim|por último|primero|"
    r"premièrement|deuxièmement|troisièmement|enfin|d'abord|to start|para empezar|para começar|pour commencer|"
    r"primeiramente|em primeiro lugar|em segundo lugar|en primer lugar|en segundo lugar)\b\s*[,:]?\s*(?!\d)", re.I)
"""An ordinal that opens an ask (not "first 2023 then 2024"); after a record's last value too when capitalised
and marked ("… proline=710 Segundo: …")."""
_THEN = re.compile(r"(?:[,;]?\s+and then\b|[,;]\s*then\b|\.\s+then\b|\s+then\s+(?=\w+\b)|[,;.]?\s+after that\b[,:]?|"
                   r"[,;.]?\s+afterwards\b[,:]?|[,;.]?\s+e depois\b|[,;.]?\s+em seguida\b|(?:[,;.]|(?<=\ue001))\s+depois\b[,:]?|"
                   r"[,;.]?\s+(?:y )?(?:luego|después)\b[,:]?|[,;.]?\s+(?:et )?(?:ensuite|puis)\b[,:]?)\s*",
                   re.I)
_ALSO = re.compile(rf"(?:[,;]?\s+and also\b|(?<!\bi)(?<!\bwe)(?<!\byou)(?<!\bit)(?<!\bis)(?<!\bare)\s+also\s+(?=[a-z]+\s)|[,;.]?\s+(?:btw|by the way|one more thing)\b[,:]?|\s\+\s|[.;!?{_EMOJI}]\s+also\b[,:]?|\s+also\s+(?=(?:can|could|would) (?:you|u)\b)|[,;]\s+also\b[,:]?|[.;!?]\s+plus\b[,:]?|"
                   rf"[,;]?\s+as well as\b|\s+plus\s+(?=(?:a|an|the|some|another)\s)|[.;!?]\s+in addition\b[,:]?|[.;!?]\s+additionally\b[,:]?|"
                   rf"[,;]?\s+e também\b|[.;!?]\s+além disso\b[,:]?|[,;]?\s+y también\b|[,;]?\s+et aussi\b|"
                   rf"[,;]?\s+y además\b[,:]?|[,;]?\s+e ainda\b[,:]?|[.;!?]\s+de plus\b[,:]?)\s*", re.I)
_AND_VERB = re.compile(
    r"(?:,\s*|\s+)(?:and|plus|e|y|et)\s+(?=(?:(?:can|could|would|will)\s+(?:you|u)\s+)?(?:please\s+|also\s+|me\s+)?"
    r"(?:then\s+)?(?:(i\s+(?:also\s+)?(?:want|need|'d like|would like)|i'd\s+(?:also\s+)?like)\b\s*)?(\w+)\b)",
    re.I)
""""… and <verb>", "… and can you also <verb>", "… and I also want …" (group 1: a want, an ask whatever follows; group 2: the verb)."""
_AND_QUESTION = frozenset("what whats which how is does can could who where when why qual quais como onde quando qué cómo "
                           "por comment quel quelle pourquoi cuál".split())
_SENTENCE = re.compile(rf"(?<=[.!?\ue001{_EMOJI}])\s+(?=\S)|(?<=\d)\s+(?=(?:What|Which|How|Why|Who|Where|When|Is|Are|Can|"
                       rf"Could|Do|Does|Qual|Quais|Como|Onde|Quando)\b[^.!?\n]*\?)")
"""A sentence ends at its mark, after a payload, and where a capitalised question follows a
number with the full stop left out ("… s6=-0.009 What foods help?")."""
_RANK_CUES = re.compile(r"\b(?:rank|order|sort|reorder|relev[aâá]n|best (?:match|answer|fit)|most (?:useful|relevant|helpful)|"
                        r"which (?:of (?:these|the following)|one|passage|answer|option)|match(?:es)? (?:my|the) "
                        r"(?:question|query)|ordene|ordena|classe|mais relevante|qual (?:destas|destes|das|dos)\b|combina\w* melhor|"
                        r"responde\w* melhor|mais úte?is?|cuál de (?:estas|estos)|más relevante|lequel|laquelle|"
                        r"plus pertinent)", re.I)
_PLEASANTRY = re.compile(
    r"^\W*(?:(?:can|could) you help(?: me)?(?: with something| please)?|quick question|i have a question|"
    r"pode me ajudar|hi|hello|hey|hiya|yo|good (?:morning|afternoon|evening)|thanks|thank you|thx|tks|ty|cheers|regards|"
    r"best|bye|olá|ola|oi|bom dia|boa tarde|boa noite|buenos d[ií]as|buenas|obrigad[oa]|valeu|abraços?|hola|gracias|bonjour|salut|merci)"
    r"(?:[\s,]+(?:there|all|everyone|team|guys|folks|so much|a lot|in advance|again|very much|muito|pessoal|gente|"
    r"mate|!+))*[\W_]*$", re.I)
"""A line that only greets or thanks: not an ask, and never a part of its own."""
_ANNOUNCES = re.compile(r"\b(?:two|three|four|a few|some|a couple of|\d) (?:quick )?(?:things|questions|tasks|requests|favou?rs|ones)"
                        r"(?: (?:please|pls|for you|to do))?\W*$|\b(?:duas|três|algumas) (?:coisas|perguntas|tarefas)\W*$",
                        re.I)
"""The end of a header that announces the asks after it ("I need two things.")."""
_HORIZON = re.compile(
    r"(?:give me|get me|show me|dame|me d[aáê]|donne-moi|forecast|predict|project|extend|prev[eêé]\w*|projet\w*|proyect\w*)?"
    r"\s*(?:the next|os próximos|as próximas|los próximos|les)?\s*\d{1,3}\s+(?:more\s+)?(?:months?|steps?|weeks?|days?|years?|"
    r"values?|points?|periods?|quarters?|meses|pasos|passos|mois|semanas|dias|días|valores)\b", re.I)
"""How far ahead a forecast should go ("give me 12 months", "os próximos 7 dias"): part of the ask it follows."""
_CONNECTOR_LINE = re.compile(r"^\s*(?:and|also|plus|oh and|and also|e|e também|y|et|aussi)\b", re.I)
"""A line opened by a connector: it joins one more ask to the ones above."""
_LABELLED = re.compile(r"^\s*[\wÀ-ÿ][\wÀ-ÿ ]{0,20}:\s*\ue000\d+\ue001[\s.]*$")
"""A labelled text on a line of its own ("Text 2: '…'")."""
_FIELD = re.compile(r"^\s*([A-Za-zÀ-ÿ][\wÀ-ÿ ]{0,24}?)\s*:[ \t]*[^\s:][^:]{0,40}$")
"""A record's line ("Age: 34")."""
_PREPARE = re.compile(r"^(?:read|look at|have a look at|take|use|run|consider|go through|check out|leia|olhe|veja|pega|toma|prends|"
                      r"use|considere|pegue|lee|mira|lis|regarde)\b", re.I)
"""Verbs that only set up the ask after "and" ("Read this review and tell me if …"): one ask."""
_HANDS_OVER = re.compile(r"^(?:take|look at|have a look at|consider|go through|pegue|pega|toma|prends|considere|olhe|mira|regarde)\b", re.I)
"""Of those, the ones that never ask anything themselves, even with the data in them ("take this
log 20.1 20.4 … and predict the next 3")."""
_WH = r"(?:what|which|how|who|where|when|why|qual|quais|como|onde|quando|quanto|em que)"
_AUX = r"(?:is|are|was|were|do|does|did|can|could|would|should|will|é|está|são|se)"
_MID_QUESTION = re.compile(
    rf"(?:\s*,\s*|\s+)(?=(?:what's|whats|{_WH}(?:\s+[a-zà-ÿ]+)?\s+{_AUX}\b))|,\s*(?=(?:is|are|does|do|can|was)\s)",
    re.I)
"""A question begun inside an instruction's sentence ("Write a slogan for a bike shop what language is 'x'?")."""
_EMBEDS = frozenset("""me us him her them you i we know tell explain show say ask wonder see decide determine guess figure
find out identify check if whether and or but to of about on diga mostre explique sobre sei saber""".split())
"""Words after which a question word starts an embedded question ("tell me what language 'x' is")."""


def _is_record(lines: list[str]) -> bool:
    """Three or more "label: value" lines, most labels not verbs ("Name: Ana", "Age: 34"): a
    record, whose "Name:" line is no instruction."""
    labels = [m.group(1).lower() for ln in lines if (m := _FIELD.match(ln))]
    return len(labels) >= 3 and sum(not _is_verb(label) for label in labels) >= 2


def _without_pleasantries(masked: str) -> str:
    """The message without a greeting line above it ("Hi!") or a sign-off line below it
    ("Thanks!"): neither is an ask, nor part of one. A list item ("- thank you") or a line
    under a colon is a payload and stays."""
    lines = masked.split("\n")
    keep = [bool(ln.strip()) and not (_PLEASANTRY.match(ln) and not _LIST_ITEM.match(ln)) for ln in lines]
    first = next((i for i, k in enumerate(keep) if k), None)
    if first is None:
        return masked
    last = max(i for i, k in enumerate(keep) if k)
    while last + 1 < len(lines) and (not lines[last + 1].strip() or lines[last].rstrip().endswith(":")):
        last += 1  # blank lines, and a line that is the payload of the one above, stay
    return "\n".join(lines[first:last + 1])
