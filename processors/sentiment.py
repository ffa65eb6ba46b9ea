"""Sentiment of a chat message, English or Portuguese: a score in [-1, 1] (below 0 is negative).

A lexicon of e-commerce and support vocabulary in both languages, matched without
accents and case, with two- and three-word phrases taking precedence over single words,
negation ("não", "nunca", "nem", "not", "never", "no", "n't") flipping the next three
words, and intensifiers ("muito", "very", ...) and "!" strengthening. The score is
tanh of the summed polarity, so it saturates. Validation: tests/processors/test_sentiment.py
measures ROC AUC against the Olist review scores (1-2 negative, 4-5 positive).
"""

from __future__ import annotations

import math
import re
import unicodedata

NEGATIVE_THRESHOLD = -0.05

_POSITIVE = """
good great excellent perfect love loved awesome amazing thanks thank thx helpful fast quick quickly happy pleased
recommend recommended satisfied wonderful fantastic nice beautiful easy resolved solved best works fine glad
bom boa otimo otima excelente perfeito perfeita adorei amei gostei recomendo satisfeito satisfeita rapido rapida
rapidez lindo linda maravilhoso maravilhosa parabens obrigado obrigada agradeco tranquilo certinho conforme
qualidade top eficiente pontual antes adequado super confiavel confianca facil chegou_antes entregue_antes
""".split()  # noqa: SIM905 - a word list reads best as text
_NEGATIVE = """
bad terrible awful horrible worst broken damaged late delay delayed never refund missing wrong angry disappointed
disappointing useless poor problem issue waiting cancel cancelled scam rude slow unacceptable annoyed frustrated
ruim pessimo pessima horrivel lixo atraso atrasado atrasada atrasou demora demorou defeito defeituoso quebrado
quebrada errado errada faltando falta faltou reembolso devolucao devolver cancelar cancelado cancelei enganosa
enganoso decepcionado decepcionada decepcao insatisfeito insatisfeita problema reclamacao fraude nunca absurdo
descaso pior golpe danificado danificada aguardando espera esperando vergonha
""".split()  # noqa: SIM905 - a word list reads best as text
_PHRASES = {
    "nao chegou": -2.5, "nao recebi": -2.5, "ainda nao": -1.5, "nao recomendo": -3.0, "never arrived": -2.5,
    "not received": -2.5, "still waiting": -2.0, "no one": -1.0, "nobody answers": -2.0, "wrong item": -2.5,
    "veio errado": -2.5, "produto errado": -2.5, "veio quebrado": -2.5, "nao veio": -2.5, "nao entregue": -2.5,
    "chegou antes": 2.0, "antes do prazo": 2.5, "dentro do prazo": 1.5, "no prazo": 1.5, "bem embalado": 1.5,
    "super recomendo": 3.0, "recomendo muito": 3.0, "muito bom": 2.5, "muito boa": 2.5, "tudo certo": 2.0,
    "tudo ok": 1.5, "thank you": 2.0, "well done": 2.0, "on time": 1.5, "as described": 1.5, "nao gostei": -2.5,
    "problem solved": 2.0, "fora do prazo": -2.0, "nao funciona": -2.5, "doesn't work": -2.5, "not working": -2.5,
}
_NEGATORS = {"nao", "nunca", "nem", "not", "never", "no", "dont", "didnt", "doesnt", "isnt", "wasnt", "cant", "won't"}
_INTENSIFIERS = {"muito": 1.5, "very": 1.5, "super": 1.5, "really": 1.4, "totally": 1.4, "bem": 1.2, "so": 1.2,
                 "extremamente": 1.8, "extremely": 1.8, "demais": 1.4, "absolutely": 1.5}
_PT_HINTS = {"nao", "que", "muito", "produto", "para", "com", "uma", "chegou", "recomendo", "entrega", "prazo"}
_WORD = re.compile(r"[a-z0-9']+")
_LEXICON = {**{w: 1.0 for w in _POSITIVE}, **{w: -1.0 for w in _NEGATIVE}}
_PHRASE_WORDS = {tuple(p.split()): v for p, v in _PHRASES.items()}
_MAX_PHRASE = max(len(k) for k in _PHRASE_WORDS)


def _fold(text: str) -> str:
    """Lower case without accents, so 'Péssimo' and 'pessimo' match."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).replace("n't", " not")


def detect_language(text: str) -> str:
    words = _WORD.findall(_fold(text))
    return "pt" if sum(w in _PT_HINTS for w in words) >= max(1, len(words) // 8) else "en"


def sentiment(text: str, language: str | None = None) -> float:
    """Polarity in [-1, 1]; 0.0 when the text carries no sentiment words. ``language`` is accepted for
    callers that know it; the lexicon covers both languages at once."""
    words = _WORD.findall(_fold(text))
    total = 0.0
    negate = 0
    boost = 1.0
    i = 0
    while i < len(words):
        value = None
        for size in range(min(_MAX_PHRASE, len(words) - i), 1, -1):
            value = _PHRASE_WORDS.get(tuple(words[i:i + size]))
            if value is not None:
                i += size
                break
        else:
            word = words[i]
            i += 1
            if word in _NEGATORS:
                negate = 3
                continue
            if word in _INTENSIFIERS:
                boost = _INTENSIFIERS[word]
                continue
            value = _LEXICON.get(word)
            if negate:
                negate -= 1
        if value is not None:
            total += -value * 0.8 if negate and abs(value) <= 1.0 else value * boost
            negate = 0
            boost = 1.0
    if total and "!" in text:
        total *= 1.2
    return math.tanh(total / 2)


def is_negative(score: float) -> bool:
    return score < NEGATIVE_THRESHOLD
