"""The language of a lead's message, told by its common words: pure, offline, no model.

A lead's message is a sentence or two ("Hola, me interesa la casa, ¿está disponible?"), too
short for a statistical detector to be sure of and long enough for its function words to
say: each language below has a list of words that are frequent in it and rare in the others
(articles, pronouns, prepositions, the words of an inquiry). The language with the most
distinct words wins when it has at least two and at least twice the runner-up's; otherwise
the message's language is unknown (``None``), and no ``language`` condition matches it.

Chosen over ``langdetect``/``lingua`` because it needs nothing installed, answers the same
every run (``langdetect`` is random unless seeded), and is right where a routing rule needs
it: Spanish, Portuguese, French or English inquiries of a few words.
"""

from __future__ import annotations

import re
import unicodedata

WORDS: dict[str, frozenset[str]] = {
    "en": frozenset(["the", "and", "is", "are", "you", "your", "i", "i'm", "im", "my", "me", "we", "would", "like", "interested", "in", "this", "that", "to", "for", "of", "with", "about", "please", "can", "could", "when", "is", "it", "available", "still", "see", "house", "home", "property", "looking", "thanks", "thank", "hello", "hi", "what", "how", "much", "schedule", "tour"]),
    "es": frozenset(["el", "la", "los", "las", "un", "una", "es", "está", "esta", "estoy", "son", "usted", "ustedes", "yo", "mi", "me", "nos", "quiero", "quisiera", "interesa", "interesado", "interesada", "casa", "propiedad", "apartamento", "departamento", "por", "para", "con", "sobre", "cuándo", "cuando", "cuanto", "cuánto", "disponible", "todavía", "aún", "ver", "visita", "gracias", "hola", "buenos", "buenas", "días", "tardes", "favor", "puedo", "podemos", "información", "informacion", "precio", "que", "qué", "del", "al", "muy", "pero", "también", "tengo"]),
    "pt": frozenset(["o", "a", "os", "as", "um", "uma", "é", "está", "estou", "são", "você", "vocês", "eu", "meu", "minha", "me", "nós", "quero", "gostaria", "interessa", "interessado", "interessada", "casa", "imóvel", "imovel", "apartamento", "por", "para", "com", "sobre", "quando", "quanto", "disponível", "disponivel", "ainda", "ver", "visita", "obrigado", "obrigada", "olá", "ola", "bom", "boa", "dia", "tarde", "favor", "posso", "podemos", "informação", "informações", "preço", "que", "do", "da", "ao", "muito", "mas", "também", "tenho"]),
    "fr": frozenset(["le", "la", "les", "un", "une", "est", "suis", "sont", "vous", "je", "mon", "ma", "me", "nous", "voudrais", "intéressé", "intéressée", "interesse", "maison", "propriété", "appartement", "par", "pour", "avec", "sur", "quand", "combien", "disponible", "encore", "voir", "visite", "merci", "bonjour", "bonsoir", "s'il", "plaît", "informations", "prix", "que", "qui", "du", "au", "très", "mais", "aussi", "j'ai"]),
}
#: words in more than one list count for none of them
_SHARED = frozenset(w for lang, ws in WORDS.items() for w in ws
                    if any(w in other for o, other in WORDS.items() if o != lang))
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


def detect(text: str | None) -> str | None:
    """The ISO 639-1 code of ``text``'s language (``en``, ``es``, ``pt``, ``fr``), or None."""
    if not text:
        return None
    words = {unicodedata.normalize("NFC", w.lower()) for w in _WORD.findall(text)}
    scores = sorted(((len((ws - _SHARED) & words), lang) for lang, ws in WORDS.items()),
                    reverse=True)
    (best, lang), (second, _) = scores[0], scores[1]
    if best >= 2 and best >= 2 * second:
        return lang
    return None
