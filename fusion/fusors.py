"""Fusors: write one answer from N candidates (Fusion-of-N).

* :class:`LLMFusor` is the paper's method: a model sees the prompt and every usable candidate (shuffled,
  numbered, delimited) and writes the single best answer.
* :class:`ExtractiveFusor` works offline: sentence-level consensus fusion that only reuses candidate text.

Both take all of a run's candidates and use only the usable ones (``Candidate.ok``).
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass
from itertools import chain
from typing import Protocol, Sequence, runtime_checkable

from fusion.client import CompletionRequest, ModelClient, TokenCallback, maybe_await
from fusion.errors import InputError, NotEnoughCandidates, ProviderError
from fusion.selectors import consensus_ranking, consensus_scores, run_sync
from fusion.similarity import NgramProfile, chrf_from_counts, match_counts
from fusion.text import BLOCK_KINDS, Unit, content_terms, is_cjk, split_units, word_tokens
from fusion.types import Candidate, FusedOutput, Prompt


@runtime_checkable
class Fusor(Protocol):
    name: str

    async def afuse(
        self, prompt: Prompt, candidates: Sequence[Candidate], *, on_token: TokenCallback | None = None
    ) -> FusedOutput: ...


def fuse(fusor: Fusor, prompt: Prompt, candidates: Sequence[Candidate]) -> FusedOutput:
    """Synchronous wrapper around ``fusor.afuse``."""
    return run_sync(fusor.afuse(prompt, candidates))


def _usable_or_raise(candidates: Sequence[Candidate]) -> list[Candidate]:
    usable = [c for c in candidates if c.ok]
    if not usable:
        raise NotEnoughCandidates("There is no usable candidate to fuse: every one failed or is empty.")
    return usable


# ---------------------------------------------------------------------------------------------------------
# Fusor prompts


@dataclass(frozen=True)
class FusorPreset:
    name: str
    title: str
    description: str
    template: str


_FUSION_TEMPLATE = """\
You are given a user's prompt and {n} candidate responses to it, written independently of each other. \
Write the single best response to the prompt.

How to write it:
- Read every candidate critically. Keep the strongest, correct parts of each: accurate facts, sound \
reasoning, working code, useful details and clear structure.
- Discard whatever is weak, wrong, irrelevant or redundant. Say each thing once, even when several \
candidates say it.
- Where the candidates disagree, decide by what is correct, not by how many of them say it. If none of \
them is right, write the correct answer yourself.
- Answer in the language of the prompt, and follow the format, length and style the prompt asks for.
- The response must stand on its own: never mention the candidates or other responses, and never say \
that you compared, combined or fused anything.

Output only the response itself, with no preamble and no commentary.

<prompt>
{prompt}
</prompt>

<candidates>
{candidates}
</candidates>"""

_MOA_TEMPLATE = """\
You have been given a set of responses from different AI models to the user query below. Your task is \
to synthesize them into a single response of the highest quality. Evaluate the information in these \
responses critically: some of it may be biased, outdated or simply wrong. Do not just copy the given \
answers; write a refined, accurate and comprehensive reply to the query. Make it well structured and \
coherent, and hold it to the highest standards of accuracy and reliability.

Responses from the models:
{candidates}

User query:
{prompt}"""

_BLENDER_TEMPLATE = """\
Instruction:
{prompt}

Candidate responses ({n}):
{candidates}

Generate one fused response to the instruction that merges the strengths of the candidates above and \
fixes their weaknesses. Output only the fused response."""

PRESETS: dict[str, FusorPreset] = {
    "fusion": FusorPreset(
        "fusion",
        "Fusion-of-N (paper)",
        "The paper's fusor: write the single best answer, keeping the strong, correct parts of every "
        "candidate and discarding the weak or wrong ones; never mention the candidates.",
        _FUSION_TEMPLATE,
    ),
    "moa": FusorPreset(
        "moa",
        "Mixture-of-Agents aggregator",
        "Aggregate-and-synthesize in the style of Mixture-of-Agents: critically evaluate the models' "
        "responses and synthesize one refined, accurate, comprehensive reply.",
        _MOA_TEMPLATE,
    ),
    "blender": FusorPreset(
        "blender",
        "LLM-Blender GenFuser",
        "In the style of LLM-Blender's GenFuser: a terse instruction plus candidates, asking for one fused "
        "response that merges their strengths and fixes their weaknesses.",
        _BLENDER_TEMPLATE,
    ),
}

REQUIRED_PLACEHOLDERS = ("prompt", "candidates")
ALLOWED_PLACEHOLDERS = ("prompt", "candidates", "n")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_DELIMITER_NAMES = ("candidate", "candidates", "prompt")
_LOOKALIKE = re.compile(
    r"[<＜﹤〈‹](\s*/?\s*(?:candidates?|prompt))(?![\w-])",
    re.IGNORECASE,
)


def check_template(template: str) -> str:
    """Validate a custom fusor template: it must contain ``{prompt}`` and ``{candidates}``; ``{n}`` is also
    allowed. Any other ``{name}`` is refused, so a typo cannot silently reach the model."""
    if not isinstance(template, str) or not template.strip():
        raise InputError("The fusor template is empty: it must contain {prompt} and {candidates}.")
    names = set(_PLACEHOLDER.findall(template))
    missing = [p for p in REQUIRED_PLACEHOLDERS if p not in names]
    if missing:
        need = " and ".join("{" + p + "}" for p in missing)
        raise InputError(
            f"The fusor template must contain {need}: that is where the prompt and the numbered "
            "candidates go."
        )
    unknown = sorted(names - set(ALLOWED_PLACEHOLDERS))
    if unknown:
        bad = ", ".join("{" + u + "}" for u in unknown)
        raise InputError(
            f"The fusor template has unknown placeholder(s) {bad}; only {{prompt}}, {{candidates}} and {{n}} "
            "are filled in."
        )
    return template


def escape_delimiters(text: str) -> str:
    """Defang anything in untrusted text that looks like our block delimiters (``</candidate>``,
    ``< candidate id="9">``, ``</prompt>``, full-width ``＜``), so a candidate cannot close its block or
    forge another one. Only the opening bracket changes (to ``&lt;``)."""
    return _LOOKALIKE.sub(lambda m: "&lt;" + m.group(1), text)


def render_candidates(candidates_in_order: Sequence[Candidate]) -> str:
    blocks = []
    for pos, c in enumerate(candidates_in_order, start=1):
        blocks.append(f'<candidate id="{pos}">\n{escape_delimiters(c.text.strip())}\n</candidate>')
    return "\n\n".join(blocks)


def render_prompt_text(prompt: Prompt) -> str:
    text = escape_delimiters(prompt.text.strip())
    if prompt.system and prompt.system.strip():
        return f"[System instructions]\n{escape_delimiters(prompt.system.strip())}\n\n[User]\n{text}"
    return text


def render_fusor_prompt(template: str, prompt: Prompt, candidates_in_order: Sequence[Candidate]) -> str:
    """Fill a fusor template. Candidates are numbered 1..n in the order given, each inside
    ``<candidate id="k">...</candidate>``; look-alike delimiters inside the texts are escaped.

    The placeholders are filled in one pass over the template, so a ``{candidates}`` written inside a
    prompt or a candidate stays literal text.
    """
    check_template(template)
    values = {
        "prompt": render_prompt_text(prompt),
        "candidates": render_candidates(candidates_in_order),
        "n": str(len(candidates_in_order)),
    }
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


# ---------------------------------------------------------------------------------------------------------
# LLM fusor


class LLMFusor:
    """The paper's Fusion-of-N: a fusor model writes one answer from the prompt and all usable candidates.

    The candidates are shown in an order shuffled with ``random.Random(seed)``; with ``seed=None`` a fresh
    seed is drawn per call and recorded in ``FusedOutput.seed`` so the order can be reproduced. The seed
    only orders the candidates; it is not sent to the model. The model's text is kept as written apart from
    trimming white space. A failed call gives a ``FusedOutput`` with ``error`` set and empty text.
    """

    name = "llm"

    def __init__(
        self,
        client: ModelClient,
        model: str,
        *,
        preset: str = "fusion",
        template: str | None = None,
        seed: int | None = None,
        api_base: str | None = None,
        api_key: str | None = None,
        temperature: float = 0.3,
        max_tokens: int | None = 2048,
        timeout: float = 180.0,
        num_retries: int = 2,
    ) -> None:
        if not model or not model.strip():
            raise InputError("The LLM fusor needs a model name.")
        if template is not None:
            self.template = check_template(template)
            self.template_label = "custom"
        else:
            if preset not in PRESETS:
                raise InputError(f"Unknown fusor preset {preset!r}; choose one of: {', '.join(PRESETS)}.")
            self.template = PRESETS[preset].template
            self.template_label = preset
        self.client = client
        self.model = model
        self.preset = preset
        self.seed = seed
        self.api_base = api_base
        self._api_key = api_key  # passed beside the request, never inside it
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.num_retries = num_retries

    def __repr__(self) -> str:
        return f"LLMFusor(model={self.model!r}, template={self.template_label!r}, api_base={self.api_base!r})"

    @property
    def method(self) -> str:
        return f"llm:{self.model}"

    def shuffled(self, usable: Sequence[Candidate], seed: int) -> list[Candidate]:
        order = list(usable)
        random.Random(seed).shuffle(order)
        return order

    def build_request(self, prompt: Prompt, candidates_in_order: Sequence[Candidate]) -> CompletionRequest:
        content = render_fusor_prompt(self.template, prompt, candidates_in_order)
        return CompletionRequest.from_messages(
            self.model,
            [{"role": "user", "content": content}],
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            api_base=self.api_base,
            timeout=self.timeout,
            num_retries=self.num_retries,
        )

    async def afuse(
        self, prompt: Prompt, candidates: Sequence[Candidate], *, on_token: TokenCallback | None = None
    ) -> FusedOutput:
        usable = _usable_or_raise(candidates)
        seed = self.seed if self.seed is not None else random.SystemRandom().randrange(2**32)
        order = self.shuffled(usable, seed)
        request = self.build_request(prompt, order)
        out = FusedOutput(
            text="",
            method=self.method,
            model=self.model,
            template=self.template_label,
            order=[c.index for c in order],
            seed=seed,
        )
        started = time.perf_counter()
        try:
            completion = await self.client.complete(request, api_key=self._api_key, on_token=on_token)
        except ProviderError as exc:
            out.latency_s = time.perf_counter() - started
            out.error = str(exc) or exc.__class__.__name__
            return out
        out.latency_s = completion.latency_s if completion.latency_s else time.perf_counter() - started
        out.text = (completion.text or "").strip()
        if not out.text:
            out.error = "The fusor model returned an empty answer."
        return out


# ---------------------------------------------------------------------------------------------------------
# ---------------------------------------------------------------------------------------------------------
# Extractive fusor (offline)

_FORMAT_CHARS = re.compile(r"[*_`#>|~]+")
_CHECKBOX = re.compile(r"^\s*\[[ xX]\]\s+")
_ITEM_NUMBER = re.compile(r"\d+")

# Openers that make a sentence lean on the one before it ("This is why...", "So yes, ..."): taken out of
# its own answer, such a sentence points at something the fused text may not say.
_DEPENDENT_OPENERS = frozenset(
    """
this that these those it its they them their he she his her such so thus therefore hence also however but
and or then finally yes no here there another both instead otherwise again still too besides plus overall
dies diese dieser dieses das es sie also aber und dann daher deshalb außerdem trotzdem ja nein
esto eso esta este estos estas así pero y entonces además también sin embargo sí
""".split()
)
_DEPENDENT_PHRASES = (
    "in short",
    "in summary",
    "in conclusion",
    "to sum up",
    "for example",
    "for instance",
    "as a result",
    "on the other hand",
    "in addition",
    "that said",
    "short answer",
    "por ejemplo",
    "zum beispiel",
)
_FIRST_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
# "in three sentences", "at most 120 words": a length the prompt asks for, which additions must respect.
_NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve".split()
    )
}
_LENGTH_LIMIT = re.compile(
    r"\b(?:in|at most|no more than|up to|under|within|maximum of|max\.?|exactly|only)\s+"
    r"(\d{1,4}|" + "|".join(_NUMBER_WORDS) + r")\s+(sentences?|words?)\b",
    re.IGNORECASE,
)
_TRANSLATION = re.compile(r"translat|übersetz|traduc|tradu[zi]|翻訳|翻译|번역", re.IGNORECASE)
# Creative writing: a story is one voice; sentences from other stories do not belong in it.
_CREATIVE = re.compile(
    r"\b(?:story|stories|poem|poetry|haiku|limerick|lyrics|song|sonnet|fable|fairy tale|joke|fiction|"
    r"narrative|screenplay|rap|rhyme|verse)\b",
    re.IGNORECASE,
)


def _sim_text(unit: Unit) -> str:
    """What similarity is measured on: the unit's content, normalised, without markdown emphasis or a
    task-list checkbox."""
    text = unicodedata.normalize("NFKC", unit.content).casefold()
    if unit.kind == "code":
        return text
    return _FORMAT_CHARS.sub(" ", _CHECKBOX.sub("", text))


def _features(text: str) -> frozenset[str]:
    chars = "".join(text.split())
    if len(chars) < 3:
        return frozenset([chars]) if chars else frozenset()
    return frozenset(chars[i : i + 3] for i in range(len(chars) - 2))


def _dependent(unit: Unit) -> bool:
    """Whether the unit opens like a continuation ("This means...", "So yes, ...", "For example, ...")."""
    plain = _FORMAT_CHARS.sub(" ", _CHECKBOX.sub("", unit.content)).strip().casefold()
    if plain.startswith(_DEPENDENT_PHRASES):
        return True
    m = _FIRST_WORD.match(plain)
    return bool(m) and m.group().replace("’", "'").split("'")[0] in _DEPENDENT_OPENERS


_CLOSING = (
    "finally",
    "in short",
    "in summary",
    "in conclusion",
    "to sum up",
    "overall",
    "good luck",
    "hope this",
    "i hope",
    "remember",
    "enjoy",
    "bottom line",
    "all in all",
    "so ",
    "en resumen",
    "suerte",
    "¡suerte",
    "¡disfruta",
    "insgesamt",
    "viel erfolg",
    "zusammenfassend",
)


def _closing(unit: Unit) -> bool:
    """Whether a paragraph opens like the closing words of an answer ("Finally, ...", "Good luck!")."""
    plain = _FORMAT_CHARS.sub(" ", unit.content).strip().casefold()
    return plain.startswith(_CLOSING)


def _sentence_like(content: str) -> bool:
    """A list item that reads as a sentence on its own (capital or emphasis first, final punctuation), so
    it can stand as a paragraph where there is no list to join."""
    text = content.strip()
    if not text or text.endswith(":"):
        return False
    first = _FORMAT_CHARS.sub("", text)[:1]
    return (first.isupper() or is_cjk(first)) and text[-1] in ".!?。！？)"


def length_limit(prompt: Prompt) -> tuple[int, str] | None:
    """A length the prompt asks for ("in three sentences", "at most 120 words"): ``(n, "sentence" |
    "word")``, or None. English phrasing only; the smallest limit wins when there are several."""
    found: list[tuple[int, str]] = []
    for m in _LENGTH_LIMIT.finditer(prompt.text):
        raw = m.group(1).lower()
        n = int(raw) if raw.isdigit() else _NUMBER_WORDS[raw]
        if n > 0:
            found.append((n, "sentence" if m.group(2).lower().startswith("sentence") else "word"))
    return min(found) if found else None


@dataclass(eq=False)
class _U:
    """A unit of one candidate, with what similarity and support need."""

    uid: int
    cand: int  # position among the usable candidates
    pos: int  # position within its candidate
    unit: Unit
    tid: int  # id of the unit's similarity text; identical texts share one
    terms: dict[str, float]
    nums: frozenset[str]
    holders: int = 0  # other candidates that hold most of this unit's content terms
    support: float = 0.0  # mean share of its content terms found in each other candidate
    unsupported: frozenset[str] = frozenset()  # its numbers that no other candidate (nor the prompt) has

    @property
    def structural(self) -> bool:
        return self.unit.kind in ("heading", "rule")

    @property
    def lead_in(self) -> bool:
        """A sentence introducing what follows ("Here are some tips:")."""
        return self.unit.kind == "sentence" and self.unit.text.rstrip().endswith((":", "："))

    @property
    def prunable(self) -> bool:
        """Whether dropping this backbone unit as an outlier is safe: not code or tables (kept whole), not
        a step of a numbered list (a procedure with a hole is worse), not a lead-in."""
        if self.unit.kind in ("code", "table") or self.lead_in:
            return False
        return not (self.unit.kind == "item" and self.unit.marker.strip()[:1].isdigit())

    @property
    def addable(self) -> bool:
        """Only prose sentences and list items are taken from other candidates: their headings, code,
        tables and lead-ins would bring structure the backbone does not have."""
        return (self.unit.kind == "sentence" and not self.lead_in) or self.unit.kind == "item"

    @property
    def weight(self) -> int:
        """Size of the content in characters, a CJK character counting as two (it carries about a word)."""
        content = "".join(self.unit.content.split())
        return len(content) + sum(1 for ch in content if is_cjk(ch))


@dataclass(eq=False)
class _P:
    """A unit placed in the fused text: ``src`` gives the words, ``lay`` the place in a source whose white
    space and paragraph breaks are kept (the backbone unit a slot choice replaced, or ``src`` itself)."""

    src: _U
    lay: _U
    marker: str | None = None  # list marker to use instead of the unit's own ("" = no marker)
    brk: int | None = None  # break level to use instead of lay's
    added: bool = False

    @property
    def kind(self) -> str:
        if self.marker is None:
            return self.src.unit.kind
        return "item" if self.marker else "sentence"

    @property
    def text(self) -> str:
        if self.marker is None:
            return self.src.unit.text
        return self.marker + self.src.unit.content.lstrip()

    @property
    def reshaped(self) -> bool:
        """Whether its form differs from lay's in the source (so lay's white space may not fit)."""
        return self.marker is not None and self.marker != self.lay.unit.marker

    @property
    def structural(self) -> bool:
        return self.src.structural


class ExtractiveFusor:
    """Offline Fusion-of-N by sentence-level consensus; every sentence of the result comes from a candidate.

    1. Each usable candidate is split into units (:func:`fusion.text.split_units`: sentences, list items,
       headings, fenced code and tables kept whole; CJK punctuation understood). Each unit's content is a
       set of terms (:func:`fusion.text.content_terms`: stemmed content words, numbers weighted up, CJK
       character pairs), so that paraphrases still agree.
    2. *Support*: a unit is held by another candidate when that candidate contains at least
       ``support_threshold`` of its term weight (words the prompt already uses count half). A number that
       no other candidate and not the prompt contains is an *unsupported claim*.
    3. The backbone is the consensus (MBR) candidate (:class:`fusion.selectors.ConsensusSelector`'s pick).
    4. *Slots*: each other candidate is aligned to the backbone in order (sentence to sentence, item to
       item, by chrF). Where a majority of the pool holds a wording of the same sentence (symmetric chrF at
       least ``slot_threshold``), the wording that agrees most with the others in that slot is used (MBR
       per sentence). This is how a translation is fused from several systems; a wording with a number the
       rest of the slot lacks is never chosen.
    5. *Pruning*: with three or more candidates, when the pool mostly supports the backbone (at least
       ``min_supported_share`` of its content), its units that no other candidate holds are dropped as
       outliers. Code, tables, numbered steps and lead-ins are never dropped; near-duplicates are.
    6. *Supported additions*: units of the other candidates that at least a third of the others hold
       (:meth:`_Fusion.additions_need`), with no unsupported number, bringing content terms the fused text
       lacks (and not covered by any kept unit, ``redundancy_threshold``), best new supported content
       first.
    7. *Complementary additions*: when the candidates are not parallel wordings of one text (not a
       translation), paragraphs from the better half of the others by consensus rank may be added when
       they are new, on topic, free of unsupported numbers, do not lean on a sentence left out ("This
       means...", "So yes, ..."), and fit the length budget (``length_ratio`` times the longest
       candidate, and any "in N sentences" / "at most N words" the prompt asks for).
    8. Additions go after the kept unit matching their previous neighbour in their own candidate (else
       before the next one's match, else before a closing paragraph). Items join lists (taking the list's
       marker; numbered lists are renumbered); a sentence added between items becomes an item; an item
       with no list to join stands as a paragraph only if it reads as a sentence.

    With two usable candidates there is no majority to go by: the result is the backbone (minus
    near-duplicates). ``FusedOutput.order`` lists the usable candidates by consensus rank, backbone first.
    Never empty: if nothing survives, the consensus candidate is returned. One usable candidate gives its
    text; identical candidates give that text. Deterministic (no randomness; ties go to the lower index).
    """

    name = "extractive"

    def __init__(
        self,
        *,
        support_threshold: float = 0.5,
        redundancy_threshold: float = 0.4,
        duplicate_threshold: float = 0.85,
        min_supported_share: float = 0.6,
        min_added_chars: int = 20,
        slot_threshold: float = 0.45,
        novelty: float = 0.5,
        length_ratio: float = 1.25,
        complementary: bool = True,
    ) -> None:
        self.support_threshold = support_threshold
        self.min_added_chars = min_added_chars
        self.redundancy_threshold = redundancy_threshold
        self.duplicate_threshold = duplicate_threshold
        self.min_supported_share = min_supported_share
        self.slot_threshold = slot_threshold
        self.novelty = novelty
        self.length_ratio = length_ratio
        self.complementary = complementary

    async def afuse(
        self, prompt: Prompt, candidates: Sequence[Candidate], *, on_token: TokenCallback | None = None
    ) -> FusedOutput:
        # CPU-bound (well under a second for 16 answers of 800 words): off the event loop, so that a
        # selector or UI running concurrently is not blocked.
        out = await asyncio.to_thread(self.fuse_sync, prompt, list(candidates))
        if on_token is not None and out.text:
            # There is nothing to stream; one delta keeps streaming UIs uniform across fusors.
            await maybe_await(on_token(out.text))
        return out

    def fuse_sync(self, prompt: Prompt, candidates: Sequence[Candidate]) -> FusedOutput:
        started = time.perf_counter()
        usable = _usable_or_raise(candidates)
        if len(usable) == 1:
            return FusedOutput(
                usable[0].text.strip(),
                method=self.name,
                order=[usable[0].index],
                latency_s=time.perf_counter() - started,
            )
        texts = [c.text for c in usable]
        scores = consensus_scores(texts)
        ranking = consensus_ranking(scores, [c.index for c in usable])
        text = _Fusion(self, prompt, texts, ranking).run()
        if not text.strip():
            text = texts[ranking[0]].strip()
        return FusedOutput(
            text,
            method=self.name,
            order=[usable[r].index for r in ranking],
            latency_s=time.perf_counter() - started,
        )


class _Fusion:
    """One extractive fusion: the units of every candidate, their support, and a memo of similarities."""

    # A unit pair sharing less than this fraction of the reference unit's character trigrams cannot reach
    # the similarity thresholds in use (chrF at orders 3-6 would be too low), so chrF is not computed.
    PREFILTER = 0.2
    # Complementary additions must be at least this long (characters of content) and this new.
    MIN_COMPLEMENT_CHARS = 40
    # A slot's wording may miss at most this much more of the slot's majority terms than the best one.
    SLOT_RECALL_SLACK = 0.2
    COMPLEMENT_NOVELTY = 0.4

    def __init__(
        self, cfg: ExtractiveFusor, prompt: Prompt, texts: Sequence[str], ranking: Sequence[int]
    ) -> None:
        self.cfg = cfg
        self.prompt = prompt
        self.texts = texts
        self.ranking = list(ranking)
        self.rank_of = {k: r for r, k in enumerate(self.ranking)}
        self.translation = bool(_TRANSLATION.search(prompt.text))
        # Every candidate of a translation renders the same sentences: wordings align even when they
        # share few character n-grams (other word order, other politeness level in Japanese).
        self.slot_floor = cfg.slot_threshold / 2 if self.translation else cfg.slot_threshold
        # uids of backbone units with a wording aligned in another candidate: never pruned as outliers.
        self.aligned: set[int] = set()
        # uids of the other candidates' units aligned to a backbone unit: other wordings, never added.
        self.alternatives: set[int] = set()
        self.units: list[list[_U]] = []
        self.all: list[_U] = []
        tids: dict[str, int] = {}
        self._sim_texts: list[str] = []
        for k, text in enumerate(texts):
            row = []
            for pos, unit in enumerate(split_units(text)):
                st = _sim_text(unit)
                tid = tids.setdefault(st, len(tids))
                if tid == len(self._sim_texts):
                    self._sim_texts.append(st)
                terms = {} if unit.kind == "rule" else content_terms(unit.content)
                nums = frozenset(t[1:] for t in terms if t.startswith("#"))
                u = _U(len(self.all), k, pos, unit, tid, terms, nums)
                row.append(u)
                self.all.append(u)
            self.units.append(row)
        self._profiles: list[NgramProfile | None] = [None] * len(self._sim_texts)
        self._cover: dict[tuple[int, int], float] = {}
        self._near = self._candidate_pairs()
        self._by_tid: dict[int, list[_U]] = {}
        for u in self.all:
            self._by_tid.setdefault(u.tid, []).append(u)
        prompt_text = "\n".join(x for x in (prompt.system, prompt.text) if x)
        self.prompt_terms = set(content_terms(prompt_text))
        self.cand_terms = [set(chain.from_iterable(u.terms for u in row)) for row in self.units]
        # In how many candidates each term occurs.
        self.df: Counter[str] = Counter(chain.from_iterable(self.cand_terms))

    def _candidate_pairs(self) -> list[set[int]]:
        """For each text id x, the text ids y sharing at least PREFILTER of x's trigrams (so cover(x, y)
        may be high). Counting goes through an inverted index so that no pair is visited in Python."""
        feats = [_features(t) for t in self._sim_texts]
        postings: dict[str, list[int]] = {}
        for tid, fs in enumerate(feats):
            for f in fs:
                postings.setdefault(f, []).append(tid)
        near: list[set[int]] = []
        for tid, fs in enumerate(feats):
            if not fs:
                near.append(set())
                continue
            counts = Counter(chain.from_iterable(postings[f] for f in fs))
            need = self.PREFILTER * len(fs)
            near.append({y for y, c in counts.items() if c >= need and y != tid})
        return near

    def _profile(self, tid: int) -> NgramProfile:
        prof = self._profiles[tid]
        if prof is None:
            prof = self._profiles[tid] = NgramProfile(self._sim_texts[tid])
        return prof

    # -- similarity -------------------------------------------------------------------------------------

    def cover(self, x: _U, y: _U) -> float:
        """How much of unit x is found in unit y (chrF, y as hypothesis, x as reference)."""
        if x.structural != y.structural or (x.unit.kind == "code") != (y.unit.kind == "code"):
            return 0.0
        return self._cover_tid(x.tid, y.tid)

    def sym(self, x: _U, y: _U) -> float:
        """Symmetric agreement of two units: the mean of chrF both ways."""
        return (self.cover(x, y) + self.cover(y, x)) / 2

    def _cover_tid(self, tx: int, ty: int) -> float:
        if tx == ty:
            return 1.0
        if ty not in self._near[tx]:
            return 0.0
        got = self._cover.get((tx, ty))
        if got is None:
            px, py = self._profile(tx), self._profile(ty)
            shared = match_counts(px, py)
            got = chrf_from_counts(py, px, shared)
            self._cover[(tx, ty)] = got
            self._cover[(ty, tx)] = chrf_from_counts(px, py, shared)
        return got

    # -- support ------------------------------------------------------------------------------------------

    def _weights(self, u: _U) -> dict[str, float]:
        # Words the prompt already uses are the topic, which every answer repeats: they count half.
        return {
            t: w * (0.5 if t in self.prompt_terms and not t.startswith("#") else 1.0) for t, w in u.terms.items()
        }

    def compute_support(self) -> None:
        m = len(self.texts)
        threshold = self.cfg.support_threshold
        prompt_nums = {t for t in self.prompt_terms if t.startswith("#")}
        for u in self.all:
            weights = self._weights(u)
            total = sum(weights.values())
            if total <= 0 or m < 2:
                continue
            covs = []
            for j, terms in enumerate(self.cand_terms):
                if j != u.cand:
                    covs.append(sum(w for t, w in weights.items() if t in terms) / total)
            u.holders = sum(1 for c in covs if c >= threshold)
            u.support = sum(covs) / len(covs)
            u.unsupported = frozenset(
                n for n in u.nums if self.df["#" + n] <= 1 and "#" + n not in prompt_nums
            )

    def agreement(self, t: str, own: int) -> float:
        """Share of the other candidates that contain term t (t is in candidate ``own``)."""
        m = len(self.texts)
        return (self.df[t] - (1 if t in self.cand_terms[own] else 0)) / (m - 1)

    # -- assembly ----------------------------------------------------------------------------------------

    def run(self) -> str:
        m = len(self.texts)
        backbone_pos = self.ranking[0]
        backbone = self.units[backbone_pos]
        if not backbone:
            return ""
        if self._all_identical():
            return self.texts[backbone_pos].strip()
        self.compute_support()
        placed = [_P(u, u) for u in backbone]
        parallel = False
        if m >= 3:
            parallel = self.choose_slots(placed) >= 0.5
        placed, dropped = self.prune(placed, m, allowed=not self.translation)
        # A story or poem is one voice: sentences from other stories do not belong in it.
        if m >= 3 and not _CREATIVE.search(self.prompt.text):
            limit = length_limit(self.prompt)
            sizes = sorted(len(t.strip()) for t in self.texts)
            # Near the backbone's length, or the typical candidate's when the backbone is short.
            budget = self.cfg.length_ratio * max(sizes[len(sizes) // 2], len(self.texts[backbone_pos].strip()))
            self.add_supported(placed, budget, limit, translation=self.translation)
            if self.cfg.complementary and not parallel and not self.translation and _blocks(placed) >= 2:
                self.add_complementary(placed, budget, limit)
        placed = _drop_dangling(placed)
        if not any(not p.structural for p in placed):
            return self.texts[backbone_pos].strip()
        return self._join(placed, dropped)

    def _all_identical(self) -> bool:
        first = self.texts[0].strip()
        return all(t.strip() == first for t in self.texts[1:])

    # Slots: the same sentence in several wordings --------------------------------------------------------

    def _align(self, rows_b: Sequence[_U], row: Sequence[_U]) -> list[_U | None]:
        """Monotone alignment of the backbone's units to one candidate's (sentence to sentence, item to
        item) maximising the summed symmetric chrF of aligned pairs, pairs below the slot threshold left
        out. Returns, per backbone unit, its partner or None."""
        floor = self.slot_floor
        by_tid: dict[int, list[int]] = {}
        for k, v in enumerate(row):
            by_tid.setdefault(v.tid, []).append(k)
        sims: dict[tuple[int, int], float] = {}
        for i, b in enumerate(rows_b):
            if b.unit.kind not in ("sentence", "item"):
                continue
            for tid in self._near[b.tid] | {b.tid}:
                for k in by_tid.get(tid, ()):
                    v = row[k]
                    if v.unit.kind != b.unit.kind:
                        continue
                    s = self.sym(b, v)
                    if s >= floor:
                        sims[(i, k)] = s
        if not sims:
            return [None] * len(rows_b)
        n, p = len(rows_b), len(row)
        score = [[0.0] * (p + 1) for _ in range(n + 1)]
        for i in range(1, n + 1):
            above, here = score[i - 1], score[i]
            for k in range(1, p + 1):
                best = above[k] if above[k] >= here[k - 1] else here[k - 1]
                s = sims.get((i - 1, k - 1))
                if s is not None and above[k - 1] + s > best:
                    best = above[k - 1] + s
                here[k] = best
        out: list[_U | None] = [None] * n
        i, k = n, p
        while i > 0 and k > 0:
            s = sims.get((i - 1, k - 1))
            if s is not None and score[i][k] == score[i - 1][k - 1] + s:
                out[i - 1] = row[k - 1]
                i, k = i - 1, k - 1
            elif score[i][k] == score[i - 1][k]:
                i -= 1
            else:
                k -= 1
        return out

    def choose_slots(self, placed: list[_P]) -> float:
        """Per backbone sentence or item held by a majority of the pool, use the wording that agrees most
        with the slot's other wordings. Returns the share of the backbone's content in such slots."""
        m = len(self.texts)
        backbone_pos = self.ranking[0]
        rows_b = self.units[backbone_pos]
        others = [k for k in self.ranking[1:]]
        aligned = {k: self._align(rows_b, self.units[k]) for k in others}
        need = m // 2  # other candidates, so that the slot has a majority of the pool
        total = in_slots = 0
        for i, b in enumerate(rows_b):
            if b.structural or b.unit.kind in ("code", "table"):
                continue
            total += b.weight
            members = [b] + [v for k in others if (v := aligned[k][i]) is not None]
            if len(members) > 1:
                self.aligned.add(b.uid)
                self.alternatives.update(v.uid for v in members[1:])
            if len(members) - 1 < need:
                continue
            in_slots += b.weight
            best = self._slot_choice(b, members)
            if best is not b:
                marker = b.unit.marker if b.unit.kind == "item" else None
                placed[i] = _P(best, b, marker=marker)
        return in_slots / total if total else 0.0

    def _slot_choice(self, b: _U, members: Sequence[_U]) -> _U:
        """The wording that agrees best (mean symmetric chrF) with the slot's other wordings, among those
        that say what the slot's majority says: a wording missing majority content terms ("afternoon"
        where most say afternoon) or bringing a number the others lack is not chosen."""
        counts = Counter(chain.from_iterable(x.terms for x in members))
        majority = {t: max(x.terms.get(t, 0.0) for x in members) for t, c in counts.items() if 2 * c > len(members)}
        want = sum(majority.values())

        def recall(x: _U) -> float:
            return sum(w for t, w in majority.items() if t in x.terms) / want if want else 1.0

        floor = max(recall(x) for x in members) - self.SLOT_RECALL_SLACK
        best, best_score = b, -1.0
        for x in members:
            others = [y for y in members if y is not x]
            if x is not b:
                seen = set().union(*(y.nums for y in others))
                if not x.nums <= seen:
                    continue  # a number the rest of the slot does not give
                if not 0.6 <= x.weight / max(1, b.weight) <= 1.6 or recall(x) < floor:
                    continue
            score = sum(self.sym(x, y) for y in others) / len(others)
            if x is b and recall(b) < floor:
                score = -0.5  # the backbone's wording misses what the slot agrees on: any other wins
            # Ties go to the backbone, then to the better-ranked candidate (members are in rank order).
            if score > best_score + 1e-9:
                best, best_score = x, score
        return best

    # Pruning ----------------------------------------------------------------------------------------------

    def prune(self, placed: list[_P], m: int, *, allowed: bool = True) -> tuple[list[_P], set[int]]:
        """Drop near-duplicates, and outliers when allowed (never in a translation: a sentence no other
        candidate words alike still renders a sentence of the source)."""
        content = [p for p in placed if not p.structural]
        total = sum(p.src.weight for p in content)
        supported = sum(p.src.weight for p in content if p.src is not p.lay or p.src.holders >= 1)
        # Prune outliers only when the pool mostly agrees with the backbone; with diverse candidates
        # (stories, recipes) "unsupported" says nothing about being wrong.
        prune = allowed and m >= 3 and total > 0 and supported >= self.cfg.min_supported_share * total
        kept: list[_P] = []
        dropped: set[int] = set()
        for p in placed:
            if not p.structural:
                swapped = p.src is not p.lay
                if (
                    prune
                    and not swapped
                    and p.src.holders == 0
                    and p.src.prunable
                    and p.lay.uid not in self.aligned
                ):
                    dropped.add(p.lay.uid)
                    continue
                if any(self._near_duplicate(p.src, k.src) for k in kept if not k.structural):
                    dropped.add(p.lay.uid)
                    continue
            kept.append(p)
        return kept, dropped

    def _near_duplicate(self, a: _U, b: _U) -> bool:
        t = self.cfg.duplicate_threshold
        return self.cover(a, b) >= t and self.cover(b, a) >= t

    # Additions --------------------------------------------------------------------------------------------

    @staticmethod
    def additions_need(m: int) -> int:
        """How many other candidates must hold a unit before it is added to the backbone: a third of the
        others, at least one (with 3 candidates: 2 of 3 agree; with 8: 4 of 8)."""
        return max(1, math.ceil((m - 1) / 3))

    def _fused_terms(self, placed: Sequence[_P]) -> set[str]:
        return set(chain.from_iterable(p.src.terms for p in placed))

    def _new_weight(self, v: _U, fused_terms: set[str]) -> tuple[float, float]:
        """(share of v's term weight the fused text lacks, that new weight scaled by agreement)."""
        weights = self._weights(v)
        total = sum(weights.values())
        if total <= 0:
            return 0.0, 0.0
        new = [(t, w) for t, w in weights.items() if t not in fused_terms]
        return sum(w for _, w in new) / total, sum(w * self.agreement(t, v.cand) for t, w in new)

    def _covered(self, v: _U, placed: Sequence[_P], threshold: float) -> bool:
        return any(self.cover(v, p.src) >= threshold for p in placed if not p.structural)

    def _fits(self, placed: Sequence[_P], v: _U, budget: float, limit: tuple[int, str] | None) -> bool:
        size = sum(len(p.text) for p in placed)
        if size + len(v.unit.text) > budget:
            return False
        if limit is None:
            return True
        n, what = limit
        if what == "sentence":
            return sum(1 for p in placed if p.kind in ("sentence", "item")) + 1 <= n
        words = sum(len(word_tokens(p.text)) for p in placed)
        return words + len(word_tokens(v.unit.text)) <= n

    def add_supported(
        self, placed: list[_P], budget: float, limit: tuple[int, str] | None, *, translation: bool = False
    ) -> None:
        """Add the other candidates' units that enough of the pool holds and the fused text lacks, best new
        supported content first.

        In a translation every candidate renders the same sentences, so a candidate with no more sentences
        than the backbone only rewords it: sentences are taken only from candidates with more of them
        (where the backbone may have left one out)."""
        need = self.additions_need(len(self.texts))
        used = {p.src.uid for p in placed}
        fused_terms = self._fused_terms(placed)
        backbone_size = _content_units(self.units[self.ranking[0]])
        pool = []
        for k in self.ranking[1:]:
            if translation and _content_units(self.units[k]) <= backbone_size:
                continue
            for v in self.units[k]:
                if (
                    v.uid in used
                    or v.uid in self.alternatives
                    or not v.addable
                    or v.holders < need
                    or v.unsupported
                    or v.weight < self.cfg.min_added_chars
                ):
                    continue
                share, gain = self._new_weight(v, fused_terms)
                pool.append((-round(gain, 9), self.rank_of[k], v.pos, v))
        pool.sort(key=lambda e: e[:3])
        for _, _, _, v in pool:
            share, gain = self._new_weight(v, fused_terms)
            if share < self.cfg.novelty or gain <= 0:
                continue
            if self._covered(v, placed, self.cfg.redundancy_threshold) or self._conflicts(v, placed):
                continue
            if not self._fits(placed, v, budget, limit):
                continue
            if self._place(v, placed):
                fused_terms.update(v.terms)

    def _conflicts(self, v: _U, placed: Sequence[_P]) -> bool:
        """Whether v brings other figures on a subject the fused text already gives figures for: one kept
        unit, or two adjacent ones, share with v two content words (or one word and one number) and hold a
        number, and v has a number they lack ("a newborn has around 300" beside "a newborn starts with
        about 270")."""
        if not v.nums:
            return False
        words_v = {t for t in v.terms if not t.startswith("#")}
        for i in range(len(placed)):
            for window in (placed[i : i + 1], placed[i : i + 2]):
                nums = set().union(*(p.src.nums for p in window))
                if not nums or v.nums <= nums:
                    continue
                words = {t for p in window for t in p.src.terms if not t.startswith("#")}
                shared = len(words & words_v) + len(nums & v.nums)
                if shared >= 2 and len(words & words_v) >= 1:
                    return True
        return False

    def add_complementary(self, placed: list[_P], budget: float, limit: tuple[int, str] | None) -> None:
        """Add paragraphs and list items that only one of the better-ranked half of the other candidates
        holds: new content on the same topic, with no unsupported number, that does not lean on a sentence
        left out. The sources take turns, a paragraph or item each, until the length budget is used."""
        m = len(self.texts)
        sources = self.ranking[1 : 1 + math.ceil((m - 1) / 2)]
        fused_terms = self._fused_terms(placed)
        queues = {k: _groups(self.units[k]) for k in sources}
        while any(queues.values()):
            for k in sources:
                while queues[k]:
                    if self._add_group(queues[k].pop(0), placed, fused_terms, budget, limit):
                        break

    def _add_group(
        self,
        group: Sequence[_U],
        placed: list[_P],
        fused_terms: set[str],
        budget: float,
        limit: tuple[int, str] | None,
    ) -> bool:
        """Add what can be added of one paragraph (its sentences in order, stopping at the first that cannot
        be: the rest would lose its context), with the list or code its lead-in introduces.

        The group as a whole must be new (``COMPLEMENT_NOVELTY`` of its term weight absent from the fused
        text) and on topic; each unit must not repeat a kept unit, give an unsupported number or compete
        with the figures the fused text gives; the group must not open like a continuation."""
        terms: dict[str, float] = {}
        for v in group:
            if v.unit.kind not in ("code", "table"):  # code is judged by chrF against kept code instead
                terms.update(self._weights(v))
        total = sum(terms.values())
        if total <= 0 or sum(v.weight for v in group) < self.MIN_COMPLEMENT_CHARS:
            return False
        if sum(w for t, w in terms.items() if t not in fused_terms) < self.COMPLEMENT_NOVELTY * total:
            return False
        if _dependent(group[0].unit):
            return False
        taken: list[_U] = []
        lead: _U | None = None
        for v in group:
            if v.unit.kind in ("code", "table"):
                ok = lead is not None and not v.unsupported
            else:
                ok = self._complement_ok(v, placed, fused_terms)
            if ok and self._fits(placed, v, budget, limit) and self._place(v, placed, complement=True):
                taken.append(v)
                fused_terms.update(v.terms)
                if v.lead_in:
                    lead = v
            elif v.unit.kind == "sentence":
                # Later sentences lean on this one. A short sentence just before the cut most likely
                # announced what is now left out ("The skull is the best-known example.").
                while (
                    len(taken) > 1
                    and taken[-1].unit.kind == "sentence"
                    and not taken[-1].lead_in
                    and taken[-1].weight < self.MIN_COMPLEMENT_CHARS
                ):
                    gone = taken.pop()
                    placed[:] = [p for p in placed if p.src is not gone]
                break
        if lead is not None and taken and taken[-1] is lead:
            # A lead-in whose list or code could not follow it introduces nothing.
            placed[:] = [p for p in placed if p.src is not lead]
            taken.pop()
        fused_terms.clear()
        fused_terms.update(self._fused_terms(placed))
        return bool(taken)

    def _complement_ok(self, v: _U, placed: Sequence[_P], fused_terms: set[str]) -> bool:
        if v.unsupported or v.support <= 0 or not (v.addable or v.lead_in):
            return False
        text = v.unit.content.rstrip(" *_")
        if text.endswith(("!", "?", "！", "？")):
            return False  # exclamations and questions are rarely content
        share, _ = self._new_weight(v, fused_terms)
        if share < self.cfg.novelty / 2:
            return False
        return not self._covered(v, placed, self.cfg.redundancy_threshold) and not self._conflicts(v, placed)

    # Placement --------------------------------------------------------------------------------------------

    def _match_placed(self, w: _U, placed: Sequence[_P]) -> int | None:
        """Index of the placed unit that is w (or the slot w was aligned to), or best holds w's content (at
        least the support threshold)."""
        best, best_score = None, self.cfg.support_threshold
        for i, p in enumerate(placed):
            if p.src.uid == w.uid or p.lay.uid == w.uid:
                return i
            if p.structural != w.structural:
                continue
            score = self.cover(w, p.src)
            if score >= best_score and (best is None or score > best_score):
                best, best_score = i, score
        return best

    def _insert_index(self, v: _U, placed: Sequence[_P]) -> int | None:
        row = self.units[v.cand]
        for w in reversed(row[max(0, v.pos - 3) : v.pos]):
            i = self._match_placed(w, placed)
            if i is not None:
                j = i + 1
                # After what was already added from v's candidate behind the same anchor: source order.
                while (
                    j < len(placed)
                    and placed[j].added
                    and placed[j].src.cand == v.cand
                    and placed[j].src.pos < v.pos
                ):
                    j += 1
                return j
        for w in row[v.pos + 1 : v.pos + 4]:
            i = self._match_placed(w, placed)
            if i is not None:
                return i
        return None

    def _tail_index(self, placed: Sequence[_P]) -> int:
        """Where content with no anchor goes: before a short closing paragraph of prose ("Good luck!",
        "In short, ..."), else at the end."""
        j = len(placed)
        while j > 0 and placed[j - 1].kind == "sentence":
            j -= 1
            start = placed[j].brk if placed[j].brk is not None else placed[j].lay.unit.brk
            if start >= 2 or j == 0:
                break
        closing = len(placed) - j
        if 0 < j < len(placed) and closing <= 2 and _closing(placed[j].src.unit):
            return j
        return len(placed)

    def _place(self, v: _U, placed: list[_P], *, complement: bool = False) -> bool:
        idx = self._insert_index(v, placed)
        if idx is None:
            if not complement and v.unit.kind == "item":
                return False  # a lone supported item with no anchor has no list to go to
            idx = self._tail_index(placed)
        entry = self._fit(v, placed, idx)
        if entry is None:
            return False
        placed.insert(idx, entry)
        return True

    def _fit(self, v: _U, placed: Sequence[_P], idx: int) -> _P | None:
        """v in the form the spot needs: items join lists with the list's marker, a sentence between
        items becomes an item, an item outside a list stands as a paragraph if it reads as a sentence."""
        prev = placed[idx - 1] if idx > 0 else None
        nxt = placed[idx] if idx < len(placed) else None
        if prev is not None and prev.src.cand == v.cand and not prev.reshaped:
            between = self.units[v.cand][prev.src.pos + 1 : v.pos]
            if prev.src.pos == v.pos - 1 or (
                v.unit.kind == "item" and (prev.src.lead_in or prev.kind == "item") and all(
                    u.unit.kind == "item" for u in between
                )
            ):
                if prev.src.lead_in and v.unit.kind == "item":
                    # The first item of a list that starts here: a numbered one starts at 1.
                    return _P(v, v, marker=_ITEM_NUMBER.sub("1", v.unit.marker, count=1), added=True)
                return _P(v, v, added=True)  # after its own predecessor or lead-in: as in its source
        prev_item = prev is not None and prev.kind == "item"
        next_item = nxt is not None and nxt.kind == "item"
        if v.unit.kind == "item":
            if prev_item or next_item:
                ref = prev if prev_item else nxt
                assert ref is not None
                return _P(v, v, marker=_list_marker(ref, v), brk=1 if prev_item else 2, added=True)
            if _sentence_like(v.unit.content):
                return _P(v, v, marker="", brk=2, added=True)
            return None
        if prev_item and next_item:
            assert prev is not None
            return _P(v, v, marker=_list_marker(prev, v), brk=1, added=True)
        if prev_item:
            return _P(v, v, brk=2, added=True)
        return _P(v, v, added=True)

    # -- joining ------------------------------------------------------------------------------------------

    def _join(self, placed: Sequence[_P], dropped: set[int]) -> str:
        parts: list[str] = []
        prev: _P | None = None
        for p in placed:
            text = p.text
            if prev is None:
                parts.append(text.lstrip())
                prev = p
                continue
            parts.append(self._separator(prev, p, dropped))
            parts.append(text if p.kind in BLOCK_KINDS else text.lstrip())
            prev = p
        return _renumber("".join(parts)).strip()

    def _separator(self, prev: _P, cur: _P, dropped: set[int]) -> str:
        a, b = prev.lay, cur.lay
        if cur.brk is None and not prev.reshaped and not cur.reshaped and a.cand == b.cand and a.pos < b.pos:
            between = self.units[b.cand][a.pos + 1 : b.pos]
            if not between:
                # Adjacent in their source: keep the original white space.
                return self.texts[b.cand][a.unit.end : b.unit.start]
            if all(x.uid in dropped for x in between):
                brk = max([b.unit.brk] + [x.unit.brk for x in between])
                return _by_kind(prev, cur, brk)
        return _by_kind(prev, cur, cur.brk if cur.brk is not None else b.unit.brk)


def _content_units(row: Sequence[_U]) -> int:
    return sum(1 for u in row if u.unit.kind in ("sentence", "item"))


def _blocks(placed: Sequence[_P]) -> int:
    """Paragraphs and list items of the fused text: an answer made of parts has room for another part."""
    count = 0
    for i, p in enumerate(placed):
        brk = p.brk if p.brk is not None else p.lay.unit.brk
        if i == 0 or p.kind != "sentence" or brk >= 2:
            count += 1
    return count


def _groups(row: Sequence[_U]) -> list[list[_U]]:
    """A candidate's units in the pieces that can be added on their own: each paragraph of prose (a
    lead-in keeps the list items or the code block it introduces), each list item outside such a group.
    Headings, rules and code or tables not introduced by a lead-in belong to no group."""
    groups: list[list[_U]] = []
    cur: list[_U] | None = None
    for u in row:
        kind = u.unit.kind
        if cur and any(x.lead_in for x in cur) and kind in ("item", "code", "table"):
            # What a lead-in introduces: a run of items, or one code block or table.
            if cur[-1].lead_in or (kind == "item" and cur[-1].unit.kind == "item"):
                cur.append(u)
                continue
        if kind == "sentence":
            if cur is not None and u.unit.brk < 2 and cur[-1].unit.kind == "sentence" and not cur[-1].lead_in:
                cur.append(u)
            else:
                cur = [u]
                groups.append(cur)
        elif kind == "item":
            cur = None
            groups.append([u])
        else:
            cur = None
    return groups


def _list_marker(ref: _P, v: _U) -> str:
    """The marker for v joining ref's list: ref's bullet or number (renumbered later), and a task-list
    checkbox when ref has one and v has none."""
    marker = ref.marker if ref.marker else ref.src.unit.marker
    if _CHECKBOX.match(ref.src.unit.content) and not _CHECKBOX.match(v.unit.content):
        box = _CHECKBOX.match(ref.src.unit.content)
        assert box is not None
        marker += box.group().strip() + " "
    return marker


def _by_kind(prev: _P, cur: _P, brk: int) -> str:
    a, b = prev.kind, cur.kind
    if a in BLOCK_KINDS or b in BLOCK_KINDS:
        if a == b and a in ("item", "quote"):
            return "\n\n" if brk >= 2 else "\n"
        return "\n\n"
    if brk >= 2:
        return "\n\n"
    if brk == 1:
        return "\n"
    left, right = prev.text.rstrip()[-1:], cur.text.lstrip()[:1]
    if (left and (is_cjk(left) or left in "。！？」』）")) or (right and is_cjk(right)):
        return ""
    return " "


def _drop_dangling(placed: list[_P]) -> list[_P]:
    """Remove headings with nothing under them (their section was dropped entirely) and lead-ins ("Here
    are the steps:") whose list or code block is gone."""
    out: list[_P] = []
    for i, p in enumerate(placed):
        nxt = next((q for q in placed[i + 1 :] if q.kind != "rule"), None)
        if p.kind == "heading":
            level = _heading_level(p.src.unit)
            if nxt is None or (nxt.kind == "heading" and _heading_level(nxt.src.unit) <= level):
                continue
        elif p.src.lead_in and p.marker is None and (nxt is None or nxt.kind == "heading"):
            continue
        out.append(p)
    return out


def _heading_level(unit: Unit) -> int:
    marker = unit.marker.strip()
    if marker.startswith("#"):
        return len(marker)
    return 2 if unit.text.rstrip().endswith("-") else 1


_ORDERED = re.compile(r"^([ \t]*)(\d{1,3})([.)])([ \t]+)")
_FENCE_LINE = re.compile(r"^ {0,3}(?:`{3,}|~{3,})")


def _renumber(text: str) -> str:
    """Renumber runs of ordered list items (same indentation and delimiter) 1, 2, 3... from each run's
    first number, so items taken from different candidates neither repeat nor skip numbers. Fenced code
    is left alone; a non-indented line that is not an item ends every run."""
    lines = text.split("\n")
    expected: dict[tuple[str, str], int] = {}
    in_code = False
    for i, line in enumerate(lines):
        if _FENCE_LINE.match(line):
            in_code = not in_code
            expected.clear()
            continue
        if in_code:
            continue
        m = _ORDERED.match(line)
        if m is None:
            if line.strip() and not line[:1].isspace():
                expected.clear()
            continue
        indent, number, delim = m.group(1), int(m.group(2)), m.group(3)
        key = (indent, delim)
        # An item closes the runs nested deeper than it.
        for other in [k for k in expected if len(k[0]) > len(indent)]:
            del expected[other]
        if key not in expected:
            expected[key] = number
        elif number != expected[key]:
            lines[i] = f"{indent}{expected[key]}{delim}{m.group(4)}{line[m.end() :]}"
        expected[key] += 1
    return "\n".join(lines)
