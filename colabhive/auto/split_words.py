"""The words and marks the splitter reads (``split.py``): verbs that start an instruction,
question openers, politeness, connectors between asks, list marks and ranking cues.

They are separators and sentence shapes a person would see, in English and Portuguese (some
Spanish and French); none names a task, so a new family needs nothing here.
"""

from __future__ import annotations

import re

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
traduce dime escribe predice clasifica identifica ordena explica resume dame
traduis traduisez dis écris prédis classe identifie explique résume donne
""".split())
_QUESTION = re.compile(
    r"^(?:¿|what|what's|whats|which|how|is|are|does|do|did|can|could|would|will|should|who|where|when|why|"
    r"qual|quais|o que|como|em que|quanto|quantos|quantas|onde|quando|por que|é|está|existe|"
    r"qué|cuál|cómo|dónde|cuándo|quel|quelle|quels|quelles|comment|est-ce)\b", re.I)
_POLITE = re.compile(
    r"^(?:(?:please|pls|plz|kindly|now|also|and|then|next|finally|lastly|afterwards|ok|okay|hey|hi|so|"
    r"first(?:ly)?|second(?:ly)?|third(?:ly)?|primeiro|segundo|terceiro|me|por favor|agora|também|depois|e|"
    r"ent[ãa]o|por último|finalmente|"
    r"can you|could you|would you|will you|can u|could u|i'd like you to|i want you to|i need you to|"
    r"você pode|pode|poderia|you can|help me|me ajude a|gostaria que)\b[\s,:]*)+", re.I)
_WANTS = re.compile(r"^(?:i need|i want|i'd like|i would like|i wanna|we need|preciso|quero|gostaria|necesito|quiero|"
                    r"je veux|j'ai besoin)\b", re.I)
_POINTS_BACK = re.compile(r"\b(?:it|this|that|these|those|they|them|its|the (?:text|review|sentence|message|"
                          r"comment|tweet|line|phrase|result|same)|isso|isto|ele|ela|esse|essa|este|esta)\b", re.I)
_LIST_ITEM = re.compile(r"(?m)^\s*(?:\d{1,2}[.)]|\((?:\d{1,2}|[a-hA-H])\)|\[\d{1,2}\]|[a-hA-H][.)]|[-*•])\s+")
_ORDINAL = re.compile(
    r"(?:^|(?<=[.;!?:,]\s)|(?<=[.;!?:,]\s\s)|(?<=\n))(?:and\s+)?(?:first(?:ly)?|second(?:ly)?|third(?:ly)?|"
    r"fourth(?:ly)?|finally|lastly|primeiro|segundo|terceiro|por fim|por último)\b\s*[,:]?\s*", re.I)
_THEN = re.compile(r"(?:[,;]?\s+and then\b|[,;]\s*then\b|\.\s+then\b|\s+then\s+(?=\w+\b)|[,;.]?\s+after that\b[,:]?|"
                   r"[,;.]?\s+afterwards\b[,:]?|[,;.]?\s+e depois\b|[,;.]?\s+em seguida\b|[,;.]\s+depois\b[,:]?)\s*",
                   re.I)
_ALSO = re.compile(r"(?:[,;]?\s+and also\b|[.;!?]\s+also\b[,:]?|[,;]\s+also\b[,:]?|[.;!?]\s+plus\b[,:]?|"
                   r"[,;]?\s+as well as\b|[.;!?]\s+in addition\b[,:]?|[.;!?]\s+additionally\b[,:]?|"
                   r"[,;]?\s+e também\b|[.;!?]\s+além disso\b[,:]?|[,;]?\s+y también\b|[,;]?\s+et aussi\b)\s*", re.I)
_AND_VERB = re.compile(r"(?:,\s*|\s+)(?:and|plus|e|y|et)\s+(?=(?:please\s+|also\s+|me\s+)?(?:then\s+)?(\w+)\b)", re.I)
_AND_QUESTION = frozenset("what which how is does can could who where when why qual quais como onde quando qué cómo".split())
_SENTENCE = re.compile(r"(?<=[.!?\ue001])\s+(?=\S)")
_RANK_CUES = re.compile(r"\b(?:rank|order|sort|reorder|relevan|best (?:match|answer|fit)|most (?:useful|relevant|helpful)|"
                        r"which (?:of (?:these|the following)|one|passage|answer|option)|match(?:es)? (?:my|the) "
                        r"(?:question|query)|ordene|ordena|classe|mais relevante)", re.I)
