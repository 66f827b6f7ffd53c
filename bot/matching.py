"""Matching a user's question to the best knowledge-base entry, or abstaining.

Pure and synchronous (no telegram import), deterministic: the same question against the same
knowledge base always gives the same result.

How a question is scored:
1. Both sides go through `tokenize` and `TextNormalizer`: accents, case, typographic quotes,
   number formats (47.500 / 47,500 / 47500), a light stemmer, synonyms and topic aliases are
   folded to one canonical form.
2. Query words the knowledge base does not know are corrected to the closest known word with
   the same first letter (rapidfuzz `fuzz.ratio`), so "lazda" and "aliexpres" still match.
3. An inverted index picks candidate entries sharing the question's rarer words; each gets the
   signals in FEATURES (rapidfuzz `token_set_ratio` / `token_sort_ratio` on content words,
   IDF coverage, precision, question-type and number mismatches, a topic the question names
   and the entry never does, what the words the entry does not explain usually mean, ...), and
   a weighted sum ranks them.
4. A logistic model over the best entry's signals and its margin over the runner-up gives the
   probability that it is right; below the threshold the matcher abstains with suggestions.
   Weights and threshold come from scripts/tune_matcher.py, measured on the question sets.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import json
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from rapidfuzz import fuzz, process

from bot import word_evidence
from bot.knowledge import Entry, KnowledgeBase

MAX_QUESTION_CHARS = 500  # longer questions are cut: the cost of one question stays bounded
MAX_PARTS = 3  # a question is answered in at most this many parts
MAX_SPLIT_CHARS = 200  # longer messages are rambling, not a list of questions: never split

# Function words and chat filler: they carry no topic, so they never count as evidence.
STOP_WORDS = frozenset("""
a about above after again against all also am an and any anyway are aren as at be because been many
before being between both but by can could did didn do does doesn doing don down during each else
even ever few for from further get got gonna had has have having he her here hers him his how i if
in into is isn it its itself just kind know let like ll me mean might more much must my
myself no nor not of off oh ok okay on once only or other our ours out over own please pls plz
re really s same say says said she should so some such t tell than thank thanks that the their
theirs them then there these they thing things think this those through thx to too u ur under
until up us ve very want was wasn we were weren what whats whatever which while who whom whose
when where why will with won would wouldn y yeah yes you your yours basically btw
hey hi hello lol sooo soo nah bro guys pls literally right wait wondering question
quick curious anyone somebody someone explain info details deets give
according article says said mentioned mention
bruh ngl tho tryna yo wat dumb sorry kinda sorta wanna gotta idk imo tbh fr lmao omg wdym dude
folks honestly stuff something anything everything go goes going went gone happen happens
happened happening make makes made making lately r abt frm bc cuz coz im
th st nd rd per correct true innit whos hows wheres whys remember reading read supposedly teh dis
probably sharply massively hugely drastically dramatically decided decide
tf af wtf w lowkey highkey fam smh ikr iirc afaik lmk rly srsly ya yall yup nope hmm um uh
ehh ah lemme ppl ask huh wen whn wher whr sound sounds seem seems seemed supposed
isnt wasnt doesnt didnt dont arent werent hasnt havent wont cant
mcuh muhc hwo waht whta wht hte adn taht thier wich whcih whihc wehn whne
que es el la los las de del y en un una por para con se lo al hay tiene tener tienen esta
estan era fue son su sus mi como muy mas pero si ya le les da dan hace
""".split())

# Question words are kept apart: they say what kind of fact is wanted.
QUESTION_TYPES = {
    "who": "who", "whom": "who", "whose": "who", "quien": "who", "quién": "who",
    "when": "when", "cuando": "when", "cuándo": "when", "wen": "when", "whn": "when",
    "wehn": "when", "whne": "when",
    "where": "where", "donde": "where", "dónde": "where", "wher": "where", "whr": "where",
    "why": "why", "porque": "why",
}
_HOW_MANY_WORDS = frozenset({"cuanto", "cuanta", "cuantos", "cuantas"})
_HOW_MANY = re.compile(r"\bhow (?:many|much|big|large|high)\b|\bwhat (?:percentage|share|"
                       r"amount|number)\b|\bcuant[oa]s?\b")
_HOW_LONG = re.compile(r"\bhow long\b")
_WHAT_YEAR = re.compile(r"\b(?:what|which) (?:year|month|date|day)\b|\bsince when\b")
# "which 10 cities", "name the six countries", "which brazilian cities": the places or brands
# counted, named one by one (a count does not answer it)
_WHICH_N = re.compile(r"\b(?:which|what|name|list)(?: the| all| those| these)? (?:\d+|two|three|"
                      r"four|five|six|seven|eight|nine|ten)\b"
                      r"|\b(?:which|what|name|list)(?: the| all| those| these| other| exact"
                      r"| specific)?(?: \w+)? (?:cities|countries|brands|markets|towns|regions"
                      r"|locations|places)\b")

# "besides covid and competition, what else ...": what a question sets aside is not what it asks
# about, so those words (at most six, up to a comma or the next question word) are dropped
_ASIDE_END = (r"(?:what|who|whom|which|how|when|where|why|is|are|was|were|did|does|do|has|have|"
               r"had|can|could|would|will)\b")
_ASIDE_SPAN = re.compile(r"\b(?:besides|apart from|aside from|other than|except for|except)\s+"
                         rf"(?:(?!{_ASIDE_END})[^\s,?;:.!]+\s*){{1,6}}?"
                         rf"(?=[,?;:.!]|\s+{_ASIDE_END}|$)")

# Questions about the bot itself get the help text, not a fact about "who made" something.
_ABOUT_BOT = re.compile(r"\b(?:who|what) (?:are|r) (?:you|u|ya)\b|\bwho (?:made|built|created|"
                        r"wrote|programmed) (?:you|u|this bot|this)\b|\bwhat can (?:you|u) do\b"
                        r"|\bare (?:you|u) (?:an? )?(?:bot|human|real|ai|robot|person|llm|gpt|"
                        r"chat ?gpt)\b|\b(?:what|which) (?:model|llm|ai)\b.* (?:you|u)\b"
                        r"|\bhow do (?:you|u|i) (?:work|use)\b")

# "what's this article actually about?" asks for a summary, though every word of it is filler
_ABOUT_ARTICLE = re.compile(r"\W*(?:so |ok |okay |hey |and )?(?:what(?:'s|s| is| was))"
                            r" (?:this|the|that) (?:article|piece|post|story|text|update|thing)"
                            r"(?: \w+){0,2} about\W*")

_THANKS = frozenset({"thank", "thanks", "thx", "ty", "gracias", "cheers"})
GREETINGS = frozenset("hi hello hey hiya yo hola thanks thank thx ty cheers bye goodbye "
                      "morning evening howdy sup bot robot buddy mate gracias".split())

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'",
                              "\u201c": '"', "\u201d": '"', "\u00ab": '"', "\u00bb": '"'})
_THOUSANDS = re.compile(r"(?<=\d)[.,\u00a0 ](?=\d{3}(?!\d))")
_DECIMAL_COMMA = re.compile(r"(?<=\d),(?=\d{1,2}(?!\d))")
# Where a second question starts: after a question mark, at ";", "+" or "&", or at "and" / "also"
# / "plus" followed by a question word. A short "topic:" head applies to every part.
_QUESTION_START = (r"(?:who|whom|whose|what|whats|what's|when|where|why|how|which|is|are|was|were|"
                   r"does|did|do|will|can|since|from)\b")
_PART_SPLIT = re.compile(r"\?+\s+(?=\S)|\s*;\s*|\s+[+&]\s+|\s*,?\s+(?:and|also|plus)\s+"
                         rf"(?:also\s+)?(?={_QUESTION_START})", re.I)
_PART_PREFIX = re.compile(r"^([^:?]{2,40}):\s+(?=\S)")
_YEAR = re.compile(r"(?:19|20)\d\d")
# "may" is left out: far more often a verb than a month
_MONTHS = ("january february march april june july august september october november december"
           .split())
# "lazada was bought in 2014, right?": a claim the user checks, which the article's figure answers
_CHECKED_CLAIM = re.compile(r"[,\s](?:right|correct|yeah|yea|yes|no|true|innit|huh"
                            r"|is that (?:so|true|right)"
                            r"|(?:is|was|does|did|has|have|are|were)n'?t (?:it|he|she|they))\W*$")
_TOKEN = re.compile(r"\d+(?:\.\d+)?|[a-z0-9]+")
_LEADING_COMMAND = re.compile(r"^\s*/([a-z0-9_]+)(?:@\w+)?\b")
_MENTION = re.compile(r"@\w+")
_CURRENCY = {"€": " eur ", "$": " usd ", "¥": " rmb ", "%": " percent "}
# Units glued to a number ("1.6bn", "10cities") are split off so the number stands alone.
# "aug2022", "nov2022": a month glued to its year
_GLUED_YEAR = re.compile(r"\b(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|"
                         r"aug(?:ust)?|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
                         r"(?=(?:19|20)\d\d\b)")
_GLUED_UNIT = re.compile(r"(?<![a-z\d.])(\d+(?:\.\d+)?)(bn|bln|mn|mln|m|k|b|billion|million|"
                         r"percent|eur|usd|rmb|pct|st|nd|rd|th|s)\b")


def fold(text: str) -> str:
    """Lower case without accents or typographic quotes; keeps everything else."""
    if text.isascii():  # the common case, and ten times faster
        return text.replace("`", "'").lower()
    text = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return text.casefold()


def tokenize(text: str) -> list[str]:
    """Fold, unify number formats and split into word and number tokens."""
    return tokenize_folded(fold(text))


def tokenize_folded(text: str) -> list[str]:
    text = _LEADING_COMMAND.sub(lambda m: m.group(1) if m.group(1) not in _BOT_COMMANDS else "",
                                text)
    text = _MENTION.sub(" ", text)
    text = re.sub(r"'s\b", "", text)
    text = _THOUSANDS.sub("", text)
    text = _DECIMAL_COMMA.sub(".", text)
    for symbol, word in _CURRENCY.items():
        text = text.replace(symbol, word)
    text = _GLUED_UNIT.sub(r"\1 \2", text)
    text = _GLUED_YEAR.sub(r"\1 ", text)
    return [_NUMBER_WORDS.get(t) or stem(t.rstrip(".")) for t in _TOKEN.findall(text)]


_BOT_COMMANDS = frozenset({"start", "ask", "help"})
# "six countries" and "6 countries", "fifth CEO" and "5th CEO" are one fact ("one" stays a word:
# "one business unit" is not a count anybody asks about).
_NUMBER_WORDS = {w: str(n) for n, w in enumerate(
    "_ _ two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty".split()) if n >= 2}
_NUMBER_WORDS |= {w: str(n) for n, w in enumerate(
    "_ first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth".split())
    if n >= 2}
_NUMBER_WORDS |= {"dos": "2", "tres": "3", "cinco": "5", "seis": "6", "diez": "10"}
_KEEP_S = ("ss", "us", "is", "os", "as")


@functools.lru_cache(maxsize=65536)
def stem(token: str) -> str:
    """A light English suffix stripper, so invest/invests/invested/investing meet.

    Deliberately crude and applied to both sides alike: it only has to be consistent.
    Stop words, numbers and short words are left alone.
    """
    if len(token) <= 3 or token in STOP_WORDS or not token.isalpha():
        return token
    if token.endswith("ies") and len(token) > 4:
        token = token[:-3] + "y"
    elif token.endswith("s") and not token.endswith(_KEEP_S):
        token = token[:-1]
    for suffix in ("ing", "ed"):
        if token.endswith(suffix) and len(token) - len(suffix) >= 3:
            token = token[: -len(suffix)]
            if len(token) > 3 and token[-1] == token[-2] and token[-1] not in "lsz":
                token = token[:-1]
            break
    if len(token) > 3 and token.endswith("e"):
        token = token[:-1]
    return token


# words that set the topic right after them aside: "not the lazada money", "apart from lazada"
# (stemmed, as question tokens are)
_SET_ASIDE = frozenset(map(stem, ("not", "except", "besides", "apart", "excluding", "without",
                                  "beyond", "ignoring", "aside")))


class TextNormalizer:
    """Folds synonyms to one canonical word sequence, longest phrase first."""

    def __init__(self, groups: list[tuple[str, ...]]):
        self._phrases: dict[tuple[str, ...], tuple[str, ...]] = {}
        for group in _merge_groups(groups):
            canonical = group[0]
            for member in group:
                self._phrases.setdefault(member, canonical)
        self._max_len = max((len(p) for p in self._phrases), default=1)

    @property
    def members(self) -> frozenset[tuple[str, ...]]:
        return frozenset(self._phrases)

    def canonical(self, tokens: list[str]) -> list[str]:
        out: list[str] = []
        i = 0
        while i < len(tokens):
            for size in range(min(self._max_len, len(tokens) - i), 0, -1):
                replacement = self._phrases.get(tuple(tokens[i:i + size]))
                if replacement is not None:
                    out.extend(replacement)
                    i += size
                    break
            else:
                out.append(tokens[i])
                i += 1
        return out


def _merge_groups(groups: list[tuple[str, ...]]) -> list[tuple[tuple[str, ...], ...]]:
    """Groups that share a member are one group (curators write them in different files);
    the first group's first member stays the canonical form."""
    merged: list[list[tuple[str, ...]]] = []
    for group in groups:
        members = [t for t in (tuple(tokenize(m)) for m in group) if t]
        hits = [g for g in merged if any(m in g for m in members)]
        target = hits[0] if hits else []
        if not hits:
            merged.append(target)
        for other in hits[1:]:
            target.extend(m for m in other if m not in target)
            merged.remove(other)
        target.extend(m for m in members if m not in target)
    return [tuple(g) for g in merged if g]


def question_type(folded: str) -> str | None:
    if _HOW_MANY.search(folded):
        return "how_many"
    if _HOW_LONG.search(folded):
        return "how_long"
    if _WHICH_N.search(folded):
        return "which_n"
    if _WHAT_YEAR.search(folded):
        return "when"
    for word in re.findall(r"[a-z]+", folded):
        if word in _HOW_MANY_WORDS:
            return "how_many"
        kind = QUESTION_TYPES.get(word)
        if kind:
            return kind
    return None


FEATURES = ("token_set", "token_sort", "coverage", "answer_coverage", "precision",
            "known_coverage", "type_mismatch", "number_mismatch", "unknown", "missing_known",
            "length", "phrasing_coverage", "gap", "typed_coverage", "unexplained_evidence",
            "other_topic", "year_mismatch")
TIE_BREAK = FEATURES.index("token_sort")

@dataclass(frozen=True, slots=True)
class WordEvidence:
    """What a question word that the best entry does not explain says about that entry.

    Log-odds, learned from the knowledge base itself by `learn_word_evidence`: negative for
    words that mark a near miss ("price", "breakdown", another company's name), positive for
    filler that paraphrases bring along ("idea", "heard"); `unseen` for any other word.
    """

    words: Mapping[str, float] = field(default_factory=dict)
    unseen: float = 0.0
    knowledge: str = ""  # the `phrasings_fingerprint` of the knowledge base it was learned from

    def of(self, word: str) -> float:
        return self.words.get(word, self.unseen)


@functools.cache
def shipped_word_evidence() -> WordEvidence:
    """The table scripts/tune_matcher.py wrote for the bundled knowledge base."""
    return WordEvidence(MappingProxyType(word_evidence.WORDS), word_evidence.UNSEEN,
                        word_evidence.KNOWLEDGE)


def phrasings_fingerprint(kb: KnowledgeBase) -> str:
    """Changes when what the word evidence learns from does: entries, phrasings, keywords,
    synonyms or topic aliases."""
    entries = [(e.id, e.topic, e.gap, e.questions, e.keywords)
               for e in sorted(kb.entries.values(), key=lambda e: e.id)]
    topics = [(t.id, t.aliases) for t in sorted(kb.topics.values(), key=lambda t: t.id)]
    text = json.dumps([entries, topics, kb.synonyms], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class MatchConfig:
    """Weights and thresholds, chosen on the six tuning question sets by scripts/tune_matcher.py.

    `rank_weights` order the entries (one weight per FEATURES item); `confidence_weights`
    (FEATURES of the best entry, then its margin over the runner-up, then a bias) give the
    probability that the best entry is right, and below `confidence_threshold` we abstain.
    """

    rank_weights: tuple[float, ...] = (0.2, 0.0, 0.0, 0.4, 0.3, 0.0, -0.2, -0.2, 0.0, -0.05, 0.0,
                                       0.0, 0.0, 0.1, 0.1, -0.2, 0.0)
    confidence_weights: tuple[float, ...] = (
        -0.01319, 0.03986, -0.00928, 0.01483, 0.01242, 0.01888, -0.00595, -0.01387, -0.05728,
        -0.00903, 0.03402, -0.00962, 0.0, 0.00461, 0.16286, -0.04064, -0.0534, -0.0, -2.4837)
    confidence_threshold: float = 0.675
    # entries scored per question (None scans them all); at 12, ties in the index, broken by
    # load order, let a known gap's phrasings push the right fact out of the candidates
    candidate_limit: int | None = 30
    common_postings: int = 2000  # words in more entries than this don't generate candidates
    fuzzy_limit: int | None = 6  # candidates that also get the (costlier) rapidfuzz signals
    suggestion_floor: float = 35.0
    typo_cutoff: float = 80.0
    word_evidence: WordEvidence = field(default_factory=shipped_word_evidence)


@dataclass(frozen=True, slots=True)
class Suggestion:
    entry_id: str
    question: str
    score: float


@dataclass(frozen=True, slots=True)
class MatchResult:
    question: str
    entry: Entry | None
    score: float
    answered: bool
    suggestions: tuple[Suggestion, ...] = ()
    kind: str = "answer"  # answer | gap | abstain | greeting | thanks | help | empty
    best_id: str | None = None
    margin: float = 0.0
    also: tuple[Entry, ...] = ()  # entries answering the other parts of a two-part question


@dataclass(frozen=True, slots=True)
class _Doc:
    entry: Entry
    phrasings: tuple[str, ...]
    phrasing_postings: Mapping[str, tuple[int, ...]]  # word -> its phrasings' positions
    qvocab: frozenset[str]  # words of the phrasings, keywords and topic
    vocab: frozenset[str]  # ... and of the answer and its quotes
    types: frozenset[str]
    phrasing_types: tuple[str, ...]  # each phrasing's question type

    def unexplained(self, words: set[str]) -> set[str]:
        """The question words none of this entry's phrasings, keywords or topic use."""
        return {t for t in words if t not in self.qvocab}


@dataclass(slots=True)
class _Prepared:
    tokens: list[str]
    content: list[str]
    qtype: str | None
    text: str = ""
    folded: str = ""
    checks_claim: bool = False


class Matcher:
    """Built once per knowledge base; `match` is cheap and has no side effects."""

    def __init__(self, kb: KnowledgeBase, config: MatchConfig | None = None):
        self.kb = kb
        self.config = config or MatchConfig()
        groups = [tuple(g) for g in kb.synonyms]
        for topic in kb.topics.values():
            groups.append((topic.id, *topic.aliases))
        self.normalizer = TextNormalizer(groups)
        docs = []
        phrasing_words: list[tuple[frozenset[str], ...]] = []  # for the precision weights
        for entry in kb.entries.values():
            phrasings, vocab, types = [], set(), []
            for q in entry.questions:
                tokens = self.normalizer.canonical(tokenize(q))
                content = self._content(tokens)
                phrasings.append(" ".join(content))
                vocab.update(content)
                types.append(question_type(fold(q)) or question_type(" ".join(tokens)) or "what")
            for text in entry.keywords:
                vocab.update(self._content(self.normalizer.canonical(tokenize(text))))
            vocab.update(self.normalizer.canonical(tokenize(entry.topic)))
            qvocab = frozenset(vocab)
            # A gap's answer restates the nearby fact it is not about: only its phrasings count.
            for text in () if entry.gap else (entry.answer, *(c.quote for c in entry.citations)):
                vocab.update(self._content(self.normalizer.canonical(tokenize(text))))
            words = tuple(frozenset(p.split()) for p in phrasings)
            phrasing_postings: dict[str, list[int]] = {}
            for j, one_phrasing in enumerate(words):
                for token in one_phrasing:
                    phrasing_postings.setdefault(token, []).append(j)
            docs.append(_Doc(entry, tuple(phrasings),
                             {t: tuple(js) for t, js in phrasing_postings.items()}, qvocab,
                             frozenset(vocab), frozenset(types), tuple(types)))
            phrasing_words.append(words)
        self._docs = tuple(docs)
        df = Counter(t for d in docs for t in d.vocab)
        n = len(docs)
        self._idf = {t: math.log((n + 1) / (c + 0.5)) for t, c in df.items()}
        # Inverted index: word -> the entries whose words include it. Candidate entries for a
        # question come from here, so the cost of a question follows the entries that share
        # its words, not the size of the knowledge base.
        postings: dict[str, list[int]] = {}
        for i, doc in enumerate(docs):
            for token in doc.vocab:
                postings.setdefault(token, []).append(i)
        self._postings = {t: tuple(ids) for t, ids in postings.items()}
        self._phrasing_weight = tuple(
            tuple(sum(self._idf[t] for t in sorted(words)) or 1.0 for words in doc_words)
            for doc_words in phrasing_words)
        self._unknown_idf = math.log((n + 1) / 0.5)
        self._months = frozenset(t for month in _MONTHS for t in self._content(
            self.normalizer.canonical(tokenize(month))))
        self._vocab_set = frozenset(self._idf)
        synonym_words = {t for phrase in self.normalizer.members for t in phrase}
        # Words never corrected: known ones, function words and any synonym's own words.
        self._known = self._vocab_set | STOP_WORDS | synonym_words
        self._vocab_by_initial: dict[str, list[str]] = {}
        for word in sorted(self._vocab_set | synonym_words):
            self._vocab_by_initial.setdefault(word[0], []).append(word)
        self._topic_words = {tuple(self.normalizer.canonical(tokenize(t))): t
                             for t in kb.topics}
        # topic names a question can be "about"; not the umbrella one most entries use
        self._topic_tokens = frozenset(w for words in self._topic_words if len(words) == 1
                                       for w in words if 2 * len(postings.get(w, ())) < n)
        self._starters = self._starter_suggestions()

    @staticmethod
    def _content(tokens: list[str]) -> list[str]:
        return [t for t in tokens if t not in STOP_WORDS]

    def _correct(self, token: str) -> str:
        """Closest known word for an unknown one ("lazda" -> "lazada")."""
        if token in self._known or len(token) < 4 or not token.isalpha():
            return token
        cutoff = self.config.typo_cutoff if len(token) >= 5 else 85.0
        # Typos seldom hit the first letter; requiring it keeps ordinary words that the
        # knowledge base happens not to use ("using") from turning into known ones ("single").
        close = process.extract(token, self._vocab_by_initial.get(token[0], ()),
                                scorer=fuzz.ratio, processor=None, score_cutoff=cutoff, limit=5)
        if not close:
            return token
        # on a tie the word more entries use wins: "alibab" is "alibaba", not a phrasing's typo
        return max(close, key=lambda c: (c[1], len(self._postings.get(c[0], ())), c[0]))[0]

    def prepare(self, question: str) -> _Prepared:
        text = question[:MAX_QUESTION_CHARS]
        folded = fold(text)
        if _ABOUT_ARTICLE.fullmatch(folded):
            raw = tokenize_folded("summary")
        else:
            # a question of nothing but what it sets aside keeps its words
            raw = tokenize_folded(_ASIDE_SPAN.sub(" ", folded)) or tokenize_folded(folded)
        tokens = self.normalizer.canonical([self._correct(t) for t in raw])
        # correct again after folding synonyms: a corrected word may complete a phrase
        tokens = self.normalizer.canonical(tokens)
        qtype = question_type(folded) or question_type(" ".join(tokens))
        return _Prepared(tokens, self._content(tokens), qtype, text, folded,
                         bool(_CHECKED_CLAIM.search(folded)))

    def match(self, question: str, topic: str | None = None) -> MatchResult:
        """The best entry for the question, or an abstention with suggestions.

        A question in several parts ("how many lockers and who else targets Brazil?") is also
        matched part by part: an answer gets the other parts' entries in `also`, and a question
        the whole of which matches nothing confidently is answered when every part is.
        """
        result = self._match_one(question, topic)
        if result.kind not in {"answer", "abstain"}:
            return result
        parts = self.parts(question)
        if len(parts) < 2:
            return result
        subs = [self._match_one(part, topic) for part in parts]
        found: list[Entry] = []
        for sub in subs:
            if sub.answered and sub.entry is not None and sub.entry not in found:
                found.append(sub.entry)
        if result.answered and result.entry is not None:
            # answers in the order the parts ask them; the whole question's match leads only
            # when no part found it
            ordered = found if result.entry in found else [result.entry, *found]
            first = ordered[0]  # an answer's suggestions and best_id follow its entry
            return replace(result, entry=first, suggestions=self.related(first),
                           best_id=first.id, also=tuple(ordered[1:MAX_PARTS]))
        if found and all(sub.answered for sub in subs if sub.kind != "empty"):
            first = found[0]
            score = min(sub.score for sub in subs if sub.answered)
            return MatchResult(question, first, score, True, self.related(first),
                               best_id=first.id, margin=result.margin,
                               also=tuple(found[1:MAX_PARTS]))
        return result

    def parts(self, question: str) -> list[str]:
        """A question split where a new question starts; each part keeps the topics named
        elsewhere in it ("cainiao brazil: how many lockers and how many distribution centres")."""
        text = " ".join(question.split())
        if len(text) > MAX_SPLIT_CHARS:
            return []
        prefix = ""
        head = _PART_PREFIX.match(text)
        if head:
            prefix, text = head.group(1), text[head.end():]
        parts = [p.strip() for p in _PART_SPLIT.split(text) if p and p.strip()]
        if len(parts) < 2:
            return []
        topics = [t for t in self.prepare(question).content if t in self.kb.topics]
        out = []
        for part in parts[:MAX_PARTS]:
            own = set(self.prepare(part).content)
            if not own - set(self.kb.topics):
                continue  # "... and when?" leans on the other part: it can't stand alone
            part = f"{prefix} {part}".strip()
            if topics and not set(self.prepare(part).content) & set(self.kb.topics):
                part = " ".join(dict.fromkeys(topics)) + " " + part
            out.append(part)
        return out if len(out) > 1 else []

    def _match_one(self, question: str, topic: str | None = None) -> MatchResult:
        prepared = self.prepare(question)
        if topic is not None and prepared.content:
            # "/miravia coupon" means "miravia coupon": the topic is part of the question
            topic_words = self.normalizer.canonical(tokenize(topic))
            if not set(topic_words) & set(prepared.content):
                prepared.tokens = topic_words + prepared.tokens
                prepared.content = topic_words + prepared.content
        if not prepared.tokens:
            return MatchResult(question, None, 0.0, False, self._starters, kind="empty")
        if _ABOUT_BOT.search(prepared.folded):
            return MatchResult(question, None, 0.0, False, self._starters, kind="help")
        words = set(prepared.tokens)
        if set(prepared.content) <= GREETINGS:  # nothing but small talk (or nothing at all)
            kind = ("thanks" if words & _THANKS else "greeting" if words & GREETINGS
                    else "empty")
            return MatchResult(question, None, 0.0, False, self._starters, kind=kind)
        overview = self._overview(prepared, topic)
        if overview is not None:
            return MatchResult(question, overview, 100.0, True, self.related(overview),
                               best_id=overview.id, margin=100.0)
        ranked = self.rank(prepared, topic)
        if not ranked:
            return MatchResult(question, None, 0.0, False, self._starters_for(topic),
                               kind="abstain")
        (best_score, best, best_features) = ranked[0]
        margin = best_score - ranked[1][0] if len(ranked) > 1 else 100.0
        confidence = self.confidence(best_features, margin)
        score = round(100 * confidence, 1)
        if confidence >= self.config.confidence_threshold:
            # a known gap is not an answer: the entry says what the article does not give
            return MatchResult(question, best.entry, score, not best.entry.gap,
                               self.related(best.entry), kind="gap" if best.entry.gap else
                               "answer", best_id=best.entry.id, margin=round(margin, 1))
        suggestions = tuple(
            Suggestion(d.entry.id, d.entry.questions[0], round(s, 1))
            for s, d, _ in ranked[:3] if s >= self.config.suggestion_floor
        )
        return MatchResult(question, None, score, False, suggestions or self._starters_for(topic),
                           kind="abstain", best_id=best.entry.id, margin=round(margin, 1))

    def confidence(self, features: tuple[float, ...], margin: float) -> float:
        """Probability that the best-ranked entry answers the question (logistic model)."""
        w = self.config.confidence_weights
        z = sum(a * b for a, b in zip(w, (*features, margin), strict=False)) + w[-1]
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    def rank(self, prepared: _Prepared, topic: str | None = None
             ) -> list[tuple[float, _Doc, tuple[float, ...]]]:
        """All entries (of one topic, if given) with their scores and signals, best first."""
        w = self.config.rank_weights
        ranked = [(sum(a * b for a, b in zip(w, f, strict=True)), doc, f)
                  for doc, f in self.features(prepared, topic)]
        # on a tie the fact wins over a known gap, then the closer wording (short questions
        # saturate the other signals), then the first id: stable across runs
        ranked.sort(key=lambda item: (-item[0], item[1].entry.gap, -item[2][TIE_BREAK],
                                      item[1].entry.id))
        return ranked

    def candidates(self, prepared: _Prepared, topic: str | None = None) -> list[int]:
        """The entries worth scoring: those sharing the question's rarer words, best first.

        Words found in very many entries ("alibaba") are left out of the search while rarer
        ones exist, so a question never walks a long posting list; an entry that shares no
        word with the question could not win anyway (its coverage would be zero).
        """
        limit = self.config.candidate_limit
        words = sorted(set(prepared.content) & self._vocab_set,
                       key=lambda t: (len(self._postings[t]), t))
        if not words:
            return []
        common = self.config.common_postings
        rare = [t for t in words if len(self._postings[t]) <= common] or words[:1]
        score: dict[int, float] = {}
        for token in rare:
            weight = self._idf[token]
            for i in self._postings[token][: max(common, limit)]:
                score[i] = score.get(i, 0.0) + weight
        if topic is not None:
            score = {i: v for i, v in score.items() if self._docs[i].entry.topic == topic}
        if limit is None or len(score) <= limit:
            return sorted(score, key=lambda i: (-score[i], i))
        return heapq.nsmallest(limit, score, key=lambda i: (-score[i], i))

    def features(self, prepared: _Prepared, topic: str | None = None
                 ) -> list[tuple[_Doc, tuple[float, ...]]]:
        """Per candidate entry, each signal on a 0-100 scale, in FEATURES order.

        Word-overlap signals are computed for every candidate; the rapidfuzz signals, which
        cost the most, only for the `fuzzy_limit` candidates that overlap best.
        """
        content = prepared.content
        if self.config.candidate_limit is None:  # the full scan, for comparison
            ids = [i for i, d in enumerate(self._docs) if topic is None or d.entry.topic == topic]
        else:
            ids = self.candidates(prepared, topic)
        if not ids or not content:
            return []
        idf = [self._idf.get(t, self._unknown_idf) for t in content]
        total = sum(idf) or 1.0
        known_total = sum(w for t, w in zip(content, idf, strict=True) if t in self._vocab_set)
        query_words = set(content)
        ordered = sorted(query_words)  # a fixed order: float sums, and so ties, alike in every run
        qtype = prepared.qtype
        lexical = []
        for i in ids:
            doc = self._docs[i]
            cov = cova = missing = 0.0
            for token, weight in zip(content, idf, strict=True):
                if token in doc.vocab:
                    cova += weight
                    if token in doc.qvocab:
                        cov += weight
                elif token in self._vocab_set and weight > missing:
                    # the rarest known word this entry does not explain: a near-miss
                    # question ("who is the CEO of Cainiao") names something known elsewhere
                    missing = weight
            hits = [0.0] * len(doc.phrasings)
            for token in ordered:
                for j in doc.phrasing_postings.get(token, ()):
                    hits[j] += self._idf[token]
            weights = self._phrasing_weight[i]
            prec = max(h / w for h, w in zip(hits, weights, strict=True))
            # the share of the question that one single phrasing explains, and that one
            # phrasing of the question's own type explains: "how many users" is not answered
            # by an entry whose "how many" phrasings are all about countries
            single = max(hits) / total
            typed = max((h for h, t in zip(hits, doc.phrasing_types, strict=True)
                         if qtype is None or t == qtype), default=0.0) / total
            lexical.append((cova + prec * total, i, cov, cova, prec, missing, single, typed))
        if self.config.fuzzy_limit is not None and self.config.candidate_limit is not None:
            lexical = heapq.nlargest(self.config.fuzzy_limit, lexical,
                                     key=lambda item: (item[0], -item[1]))
        docs = [self._docs[item[1]] for item in lexical]
        query = " ".join(content)
        choices = [p for d in docs for p in d.phrasings]
        owners = [k for k, d in enumerate(docs) for _ in d.phrasings]
        best_set = [0.0] * len(docs)
        best_sort = [0.0] * len(docs)
        for scorer, best in ((fuzz.token_set_ratio, best_set), (fuzz.token_sort_ratio, best_sort)):
            for _, score, index in process.extract(query, choices, scorer=scorer,
                                                   processor=None, limit=None):
                owner = owners[index]
                if score > best[owner]:
                    best[owner] = float(score)
        unknown = 100 * (total - known_total) / total
        # a figure, year or month the entry never names is seldom a slip ("singles day figures
        # in 2023", "the december quarter"), unless the user is checking a claim, which the
        # entry's own figure corrects
        numbers: set[str] = set()
        years: set[str] = set()
        if not prepared.checks_claim:
            numbers = {t for t in content if t[0].isdigit()}
            years = {t for t in numbers if _YEAR.fullmatch(t)} | (query_words & self._months)
        length = 100.0 * min(len(query_words), 10) / 10
        named_topics = self.named_topics(prepared)
        out = []
        evidence = self.config.word_evidence
        for k, (_, _, cov, cova, prec, missing, single, typed) in enumerate(lexical):
            doc = docs[k]
            # the most telling word this entry's phrasings do not explain ("price" in "miravia
            # price", "names" in "which 6 countries, names please"): 0 when they explain all
            telling = min(map(evidence.of, doc.unexplained(query_words)), default=0.0)
            mismatch = 100.0 if prepared.qtype and prepared.qtype not in doc.types else 0.0
            number_mismatch = 100.0 if numbers - doc.vocab else 0.0
            # "does alibaba own 100% of trendyol": a lazada entry does not answer it
            other_topic = 100.0 if named_topics - doc.vocab else 0.0
            year_mismatch = 100.0 if years - doc.vocab else 0.0
            known = 100 * cova / known_total if known_total else 0.0
            out.append((doc, (best_set[k], best_sort[k], 100 * cov / total, 100 * cova / total,
                              100 * prec, known, mismatch, number_mismatch, unknown,
                              100 * missing / self._unknown_idf, length, 100 * single,
                              100.0 if doc.entry.gap else 0.0, 100 * typed, 10 * telling,
                              other_topic, year_mismatch)))
        return out

    def named_topics(self, prepared: _Prepared) -> set[str]:
        """The topics a question is about: "... not the lazada money", "apart from lazada" name
        Lazada only to set it aside."""
        tokens = prepared.tokens
        return {token for k, token in enumerate(tokens) if token in self._topic_tokens
                and not _SET_ASIDE & set(tokens[max(0, k - 2):k])}

    def related(self, entry: Entry) -> tuple[Suggestion, ...]:
        return tuple(Suggestion(r, self.kb.entries[r].questions[0], 0.0)
                     for r in entry.related if r in self.kb.entries)[:3]

    def best_entries(self, question: str, limit: int = 5) -> list[Entry]:
        """The entries most likely to answer, best first (inline mode lists them)."""
        prepared = self.prepare(question)
        overview = self._overview(prepared, None)
        picks = [overview] if overview is not None else []
        if prepared.content:
            for score, doc, _ in self.rank(prepared):
                if len(picks) >= limit or score < self.config.suggestion_floor:
                    break
                if doc.entry not in picks:
                    picks.append(doc.entry)
        return picks

    def _overview(self, prepared: _Prepared, topic: str | None) -> Entry | None:
        """A question that names only a topic ("what is lazada", "miravia?") gets its overview:
        every entry of the topic would match it equally, so ranking can not choose."""
        topic_id = self._topic_words.get(tuple(dict.fromkeys(prepared.content)))
        if topic_id is None or (topic is not None and topic_id != topic):
            return None
        overview = self.kb.topics[topic_id].overview
        return self.kb.entries.get(overview) if overview else None

    def _starters_for(self, topic: str | None) -> tuple[Suggestion, ...]:
        if topic is None or topic not in self.kb.topics:
            return self._starters
        return tuple(Suggestion(i, self.kb.entries[i].questions[0], 0.0)
                     for i in self.kb.offered(topic)[:3])

    def _starter_suggestions(self) -> tuple[Suggestion, ...]:
        """Fallback 'did you mean': each topic's first follow-up, so suggestions are never empty."""
        picks = []
        for topic in self.kb.topics.values():
            ids = self.kb.offered(topic.id)
            if ids:
                picks.append(Suggestion(ids[0], self.kb.entries[ids[0]].questions[0], 0.0))
        return tuple(picks[:3])


def phrasing_fold(seed: int, entry_id: str, question: str, folds: int) -> int:
    """A phrasing's fold follows from its own text, so editing one entry leaves every other
    phrasing in its fold: a shuffled list moved them all, and the evidence with them."""
    digest = hashlib.blake2b(f"{seed}\0{entry_id}\0{question}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big") % folds


def learn_word_evidence(kb: KnowledgeBase, config: MatchConfig | None = None, *,
                        folds: int = 5, alpha: float = 3.0,
                        seeds: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8)) -> WordEvidence:
    """Learn from the knowledge base itself which unexplained words mark a near miss.

    Every phrasing is matched against the base without it (in `folds` rounds). A fact's
    phrasing that lands on its own entry shows the words that entry leaves unexplained to be
    harmless; a phrasing that lands on the wrong fact, above all a known gap's ("which 6
    countries, the names?" landing on the count), shows them to mark a near miss. The result is
    each word's log-odds of the two, smoothed by `alpha`; no question set is involved. Counts
    are averaged over one split into folds per seed: with one split, which phrasings happen to
    be held out together moved the tuned objective by about 0.01. A phrasing's fold is drawn
    from its own text (`phrasing_fold`), so a curator's edit moves only its own phrasings.
    """
    config = replace(config or MatchConfig(), word_evidence=WordEvidence())
    harmless: Counter[str] = Counter()
    telling: Counter[str] = Counter()
    right = wrong = 0
    phrasings = [(e.id, j, q) for e in kb.entries.values() for j, q in enumerate(e.questions)]
    for seed in seeds:
        fold_of = [phrasing_fold(seed, entry_id, question, folds)
                   for entry_id, _, question in phrasings]
        for k in range(folds):
            held = [item for item, f in zip(phrasings, fold_of, strict=True) if f == k]
            out = {(entry_id, j) for entry_id, j, _ in held}
            entries = {e.id: replace(e, questions=tuple(q for j, q in enumerate(e.questions)
                                                        if (e.id, j) not in out)
                                     or e.questions[:1])
                       for e in kb.entries.values()}
            matcher = Matcher(replace(kb, entries=MappingProxyType(entries)), config)
            for entry_id, _, question in held:
                prepared = matcher.prepare(question)
                ranked = matcher.rank(prepared)
                if not ranked or ranked[0][1].entry.gap:
                    continue  # a gap on top is an honest "not in the article" either way
                top = ranked[0][1]
                words = top.unexplained(set(prepared.content))
                if not kb.entries[entry_id].gap and top.entry.id == entry_id:
                    harmless.update(words)
                    right += 1
                else:
                    telling.update(words)
                    wrong += 1
    runs = len(seeds)

    def log_odds(word: str) -> float:
        return (math.log((harmless[word] / runs + alpha) / (right / runs + 2 * alpha))
                - math.log((telling[word] / runs + alpha) / (wrong / runs + 2 * alpha)))

    return WordEvidence({w: round(log_odds(w), 3) for w in sorted(harmless | telling)},
                        round(log_odds(""), 3), phrasings_fingerprint(kb))
