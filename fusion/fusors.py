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
from fusion.coherence import COLONS, bold_heading, coherence_defects, ends_with_colon, lead_ins
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
first second third next now lastly additionally moreover furthermore similarly likewise meanwhile afterwards
dies diese dieser dieses also aber und dann daher deshalb außerdem trotzdem ja nein
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
    "in other words",
    "that is",
    "since then",
    "short answer",
    "por ejemplo",
    "zum beispiel",
)
_FIRST_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
# "in three sentences", "at most 120 words": a length the prompt asks for, which additions must respect.
_NUMBER_WORDS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten".split())}
_LENGTH_LIMIT = re.compile(
    r"\b(?:in|at most|no more than|up to|under|within|maximum of|max\.?|exactly|only)\s+"
    r"(\d{1,4}|" + "|".join(_NUMBER_WORDS) + r")\s+(sentences?|words?)\b",
    re.IGNORECASE,
)
_TRANSLATION = re.compile(r"translat|übersetz|traduc|tradu[zi]|翻訳|翻译|번역", re.IGNORECASE)
# Creative writing: a story is one voice; sentences from other stories do not belong in it.
_CREATIVE = re.compile(
    r"\b(?:story|stories|poem|poetry|haiku|limerick|lyrics|song|sonnet|fable|fairy tale|joke|fiction|"
    r"narrative|screenplay|rap|rhyme|verse|invent|imaginary|fictional|made-up|make up|rewrite|rephrase|"
    r"paraphrase|reword|proofread)\b",
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


# The answer's own voice ("I hope...", "I don't have enough context", "my advice"): it speaks for the
# candidate it comes from, not for the fused text.
_PERSONAL = frozenset(
    "i i'm i'd i've i'll me my mine ich mich mir mein meine yo me mi mis je moi mon ma mes".split()
)


def _personal(unit: Unit) -> bool:
    return any(tok.norm in _PERSONAL for tok in word_tokens(unit.content))


_WORD_RUN = re.compile(r"(?<![\w`'’.-])[^\W\d_]+(?![\w`'’-])")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;]\s+|\n\s*)[\s*_\"'“(\[]*$")


def _names(content: str) -> set[str]:
    """Capitalised words inside sentences (not first in one), case-folded; none for text that capitalises
    most of its nouns (more than a quarter of its inner words capitalised, as German does). Code in
    backticks is left out."""
    text = re.sub(r"`[^`]*`", " ", content)
    runs = list(_WORD_RUN.finditer(text))
    inner = [
        m
        for m in runs
        if m.group()[0].isupper()
        and any(c.islower() for c in m.group())
        and not _SENTENCE_START.search(text[: m.start()])
    ]
    words = len(runs)
    if not inner or len(inner) > 0.25 * max(1, words):
        return set()
    return {m.group().casefold() for m in inner}


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
    def item_lead_in(self) -> bool:
        """A list item introducing what follows ("2. Choose a location:"): its own sub-items or lines."""
        return self.unit.kind == "item" and ends_with_colon(self.unit.content)

    @property
    def heading_like(self) -> bool:
        """Structure rather than content: a heading, a bold-only line, or a sentence or an item ending in a
        colon (emphasis after it ignored: "**Ingredients:**")."""
        if self.structural or self.item_lead_in:
            return True
        text = self.unit.text
        return self.unit.kind == "sentence" and (ends_with_colon(text) or bold_heading(text))

    @property
    def prunable(self) -> bool:
        """Whether dropping this backbone unit as an outlier is safe: not code or tables (kept whole), not
        a step of a numbered list (a procedure with a hole is worse), not a lead-in or heading (what it
        introduces would lose its head)."""
        if self.unit.kind in ("code", "table") or self.heading_like:
            return False
        return not (self.unit.kind == "item" and self.unit.marker.strip()[:1].isdigit())

    @property
    def addable(self) -> bool:
        """Prose sentences and list items can be taken from other candidates on their own; headings and
        rules would bring structure the backbone does not have, and a lead-in (a sentence or an item ending
        in a colon), code or a table only comes as part of a complementary group (a lead-in with what it
        introduces): alone, it would introduce nothing, or whatever happens to follow it."""
        if self.unit.kind == "item":
            return not self.item_lead_in
        return self.unit.kind == "sentence" and not self.heading_like

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
    # A numbered step whose colon introduced content that is gone: shown without the colon.
    bare: bool = False

    @property
    def kind(self) -> str:
        if self.marker is None:
            return self.src.unit.kind
        return "item" if self.marker else "sentence"

    @property
    def text(self) -> str:
        text = self.src.unit.text if self.marker is None else self.marker + self.src.unit.content.lstrip()
        return _without_colon(text) if self.bare else text

    @property
    def reshaped(self) -> bool:
        """Whether its form differs from lay's in the source (so lay's white space may not fit)."""
        return self.marker is not None and self.marker != self.lay.unit.marker

    @property
    def structural(self) -> bool:
        return self.src.structural


class ExtractiveFusor:
    """Offline Fusion-of-N by sentence-level consensus; every sentence of the result comes from a candidate.

    1. *Units and terms.* Each usable candidate is split into units (:func:`fusion.text.split_units`:
       sentences, list items, headings, fenced code and tables kept whole; CJK punctuation understood).
       A unit's content is a set of terms (:func:`fusion.text.content_terms`: stemmed content words,
       numbers weighted three times, pairs of CJK characters), so that paraphrases still agree.
    2. *Support.* Another candidate *holds* a unit when it contains at least ``support_threshold`` of the
       unit's term weight (words of the prompt count half: every answer repeats the topic). A number that
       neither another candidate nor the prompt contains is an *unsupported claim*.
    3. *Backbone.* The consensus (MBR) candidate, :class:`fusion.selectors.ConsensusSelector`'s pick, gives
       the order and structure.
    4. *Slots.* Every other candidate is aligned to the backbone in order, sentence to sentence and item
       to item, by symmetric chrF (at least ``slot_threshold``; half that for a translation prompt). Where
       a majority of the pool has a wording of a backbone sentence: in a translation, the wording agreeing
       most with the slot's others is used (MBR per sentence), among those holding the slot's majority
       content and bringing no number the others lack; in an answer, the backbone's sentence is replaced
       only when it gives a figure the rest of the slot does not and misses what the majority says
       ("150" where most say "270"). Numbered steps of an answer are never replaced.
    5. *Pruning.* With three or more candidates, when the pool holds most of the backbone (at least
       ``min_supported_share`` of its content), backbone units no other candidate holds or words alike
       are dropped as outliers; never in a translation, nor code, tables, numbered steps, headings,
       lead-ins (sentences or items ending in a colon, bold-only lines) or a sentence introducing a list or
       code, and never all of what a heading or lead-in has under it (its best supported unit stays).
       Near-duplicates are dropped (repeated numbered steps and repeated labels are not).
    6. *Supported additions.* Sentences and items (not lead-ins or bold-only lines: alone, they would
       introduce whatever happens to follow them) of the other candidates that at least a third of the
       others hold (:meth:`_Fusion.additions_need`), best new supported content first, when: they are not
       another wording of a backbone sentence; at least ``novelty`` of their term weight is new and half
       of that new weight is itself held by that many others; no kept unit says the same (chrF or term
       Dice at least ``redundancy_threshold``); they hold no unsupported number nor a figure competing
       with one kept (:meth:`_Fusion._conflicts`); they do not lean on a sentence left out ("This
       means..."), speak in their answer's own voice ("I hope this helps"), or miss their parent item.
       In a translation only candidates with more sentences than the backbone add any.
    7. *Complementary additions.* Unless the candidates are parallel (a translation) or the prompt asks
       for one voice (a story, a poem, a rewrite), paragraphs and list items that only one of the
       better-ranked half of the other candidates has may be added: mostly new, on topic, without
       unsupported numbers or names ("a number or named entity no other candidate gives"), competing
       figures, exclamations, questions, sign-offs or an opening that leans on what came before; a
       paragraph in order up to its first unusable sentence, a lead-in only with the list or code it
       introduces. Sources take turns, the most new on-topic content first.
    8. *Budget.* Supported additions stop at ``length_ratio`` times the longest candidate, complementary
       ones at ``length_ratio`` times the backbone; a length the prompt asks for ("in three sentences",
       "at most 120 words") is respected.
    9. *Placement.* A supported addition goes after the kept unit matching its previous neighbour in its
       own candidate (else before the next one's match), a complementary paragraph after the backbone's
       body (before closing words such as "Finally, ..."); never before the backbone's opening, inside a
       paragraph, or between a sentence and the list or code it introduces. Items join lists with the
       list's marker (numbered lists are renumbered; a numbered procedure only takes a missing step that
       fits between its neighbours); an item with no list to join stands as a paragraph only if it reads
       as a sentence. Units keep their source's white space where they were adjacent in it.
    10. *Coherence* (unless ``coherence=False``, a switch for measurement). The result must read as one
       answer (:func:`fusion.coherence.coherence_defects`):
       a heading or lead-in left without its content, a sentence announcing a list that is not there or
       pointing at a step the text does not number is taken out, until none is left (in a translation,
       such structure is kept where the backbone's translation has it too).

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
        length_ratio: float = 1.3,
        complementary: bool = True,
        coherence: bool = True,
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
        # Off only to measure what the final pass (step 10) still has to take out.
        self.coherence = coherence

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
    # A supported addition must bring this much new content that others share (one new term every other
    # candidate uses, or three that a third of them use): less is another wording of what is kept.
    MIN_SUPPORTED_GAIN = 1.0
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
        self._weight_memo: dict[int, dict[str, float]] = {}
        self._lower_words: list[set[str]] | None = None
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
        got = self._weight_memo.get(u.uid)
        if got is None:
            # Words the prompt already uses are the topic, which every answer repeats: they count half.
            prompt = self.prompt_terms
            got = {t: w * (0.5 if t in prompt and not t.startswith("#") else 1.0) for t, w in u.terms.items()}
            self._weight_memo[u.uid] = got
        return got

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
            # Parallel: nearly every backbone sentence has a majority of wordings, as in a translation.
            parallel = self.choose_slots(placed) >= 0.9
        # When the pool holds most of the backbone, a backbone unit nobody else holds stands out against
        # that agreement: an outlier. With diverse candidates nothing stands out; the backbone stays whole.
        agreeing = m >= 3 and self.pool_agrees(placed)
        placed, dropped = self.prune(placed, outliers=agreeing and not self.translation)
        # A story or poem is one voice: sentences from other stories do not belong in it.
        if m >= 3 and not _CREATIVE.search(self.prompt.text):
            limit = length_limit(self.prompt)
            sizes = sorted(len(t.strip()) for t in self.texts)
            # What the pool agrees on may make the text as long as the longest candidate and a bit more;
            # what one candidate adds stops nearer the backbone's length.
            self.add_supported(placed, self.cfg.length_ratio * sizes[-1], limit, translation=self.translation)
            budget = self.cfg.length_ratio * len(self.texts[backbone_pos].strip())
            if (
                self.cfg.complementary
                and not parallel
                and not self.translation
            ):
                self.add_complementary(placed, budget, limit)
        return self._coherent(placed, dropped)

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
        majority = {
            t: max(x.terms.get(t, 0.0) for x in members) for t, c in counts.items() if 2 * c > len(members)
        }
        want = sum(majority.values())

        def recall(x: _U) -> float:
            return sum(w for t, w in majority.items() if t in x.terms) / want if want else 1.0

        floor = max(recall(x) for x in members) - self.SLOT_RECALL_SLACK
        others_nums = set().union(*(y.nums for y in members if y is not b))
        if not self.translation and (recall(b) >= floor or not b.nums - others_nums or _numbered_unit(b)):
            # In an answer a sentence keeps its wording unless it gives a figure the rest of the slot does
            # not and misses what the slot's majority says ("150" where most say "270"). A numbered step
            # is never reworded from elsewhere: the aligned step of another procedure may be another step.
            return b
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

    def pool_agrees(self, placed: Sequence[_P]) -> bool:
        """Whether other candidates hold at least ``min_supported_share`` of the backbone's content."""
        content = [p for p in placed if not p.structural]
        total = sum(p.src.weight for p in content)
        supported = sum(p.src.weight for p in content if p.src is not p.lay or p.src.holders >= 1)
        return total > 0 and supported >= self.cfg.min_supported_share * total

    def prune(self, placed: list[_P], *, outliers: bool) -> tuple[list[_P], set[int]]:
        """Drop near-duplicates and, when ``outliers`` (the pool agrees; never in a translation, where a
        sentence no other candidate words alike still renders a sentence of the source), the backbone's
        units no other candidate holds. With diverse candidates (stories, plans, recipes) "held by no other"
        says nothing about being wrong."""
        row = self.units[self.ranking[0]]

        def outlier(p: _P) -> bool:
            if not outliers or p.structural or p.src is not p.lay:
                return False
            following = row[p.lay.pos + 1] if p.lay.pos + 1 < len(row) else None
            # A sentence right before a list, code or table introduces it, like a lead-in.
            introduces = following is not None and following.unit.kind in ("item", "code", "table")
            return (
                p.src.holders == 0
                and p.src.prunable
                and not (p.kind == "sentence" and introduces)
                and p.lay.uid not in self.aligned
            )

        # Placed units are still the backbone's, one per unit, in order: placed[k] is row[k]'s.
        assert len(placed) == len(row)
        drop = [outlier(p) for p in placed]
        for lead in lead_ins(self.texts[self.ranking[0]], [u.unit for u in row]):
            for part in (lead.own, lead.content):
                if part and all(drop[k] for k in part):
                    # Everything under a heading or lead-in ("2. Choose a location:"), or the list it
                    # introduces, would go: keep its best supported unit, so that it does not stand empty
                    # or seem to introduce what follows (the heading itself is never pruned).
                    keep = max(part, key=lambda k: (placed[k].src.support, -k))
                    drop[keep] = False
        kept: list[_P] = []
        dropped: set[int] = set()
        for p, gone in zip(placed, drop):
            if gone:
                dropped.add(p.lay.uid)
                continue
            # A repeated numbered step is a procedure replayed (a worked example), and a repeated label
            # ("Environmental impact:" under each option) is structure: neither is a duplicate.
            if (
                not p.structural
                and not _numbered_unit(p.src)
                and not p.src.heading_like
                and any(self._near_duplicate(p.src, k.src) for k in kept if not k.structural)
            ):
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

    def _new_supported(self, v: _U, fused_terms: set[str], need: int) -> float:
        """Share of v's new term weight that at least ``need`` other candidates use: whether what v would
        add is itself agreed on, not only the topic words around it."""
        new = [(t, w) for t, w in self._weights(v).items() if t not in fused_terms]
        total = sum(w for _, w in new)
        if total <= 0:
            return 0.0
        m = len(self.texts)
        return sum(w for t, w in new if self.agreement(t, v.cand) * (m - 1) >= need - 1e-9) / total

    def _covered(self, v: _U, placed: Sequence[_P], threshold: float) -> bool:
        """Whether a kept unit already says what v says: chrF of v found in it, or the weighted Dice of
        their content terms, at least ``threshold`` ("Walk the aisle regularly" beside "Walk along the
        aisle every hour")."""
        weights = self._weights(v)
        size = sum(weights.values())
        for p in placed:
            if p.structural:
                continue
            if self.cover(v, p.src) >= threshold:
                return True
            other = self._weights(p.src)
            shared = sum(min(w, other[t]) for t, w in weights.items() if t in other)
            if shared and 2 * shared / (size + sum(other.values())) >= threshold:
                return True
        return False

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
            if share < self.cfg.novelty or gain < self.MIN_SUPPORTED_GAIN:
                continue
            if self._new_supported(v, fused_terms, need) < 0.5:
                continue
            if (_dependent(v.unit) and not self._follows_own(v, placed)) or self._orphan(v, placed):
                continue  # "This can happen..." needs the sentence it leans on
            if _closing(v.unit) or _personal(v.unit):
                continue  # another answer's sign-off or own voice ("I hope this helps") adds nothing
            if self._covered(v, placed, self.cfg.redundancy_threshold) or self._conflicts(v, placed):
                continue
            if not self._fits(placed, v, budget, limit):
                continue
            if self._place(v, placed):
                fused_terms.update(v.terms)

    def _orphan(self, v: _U, placed: Sequence[_P]) -> bool:
        """Whether v needs a unit of its own candidate that the fused text lacks: a nested list item
        without its parent item, or a line fragment (no final punctuation) outside a list."""
        row = self.units[v.cand]
        if v.unit.kind == "item":
            depth = _indent(v.unit.marker)
            if depth == 0:
                return False
            earlier = reversed(row[: v.pos])
            parent = next((u for u in earlier if u.unit.kind != "item" or _indent(u.unit.marker) < depth), None)
            if parent is None:
                return True
            return not any(p.src.uid == parent.uid or p.lay.uid == parent.uid for p in placed)
        text = v.unit.content.rstrip(" *_\"'”’)")
        return v.unit.kind == "sentence" and not text.endswith((".", "!", "?", "。", "！", "？", ":"))

    def _unsupported_name(self, v: _U) -> bool:
        """Whether v names something (a capitalised word inside a sentence: "Numeralish", "PgBouncer")
        that no other candidate and not the prompt mentions: like a figure only one candidate gives, an
        unsupported claim. Skipped for text that capitalises its nouns (German)."""
        names = _names(v.unit.content)
        if not names:
            return False
        if self._lower_words is None:
            self._lower_words = [
                {t.norm for t in word_tokens(text)} for text in self.texts
            ] + [{t.norm for t in word_tokens(f"{self.prompt.system or ''} {self.prompt.text}")}]
        others = [w for k, w in enumerate(self._lower_words) if k != v.cand]
        return any(not any(name in w for w in others) for name in names)

    def _follows_own(self, v: _U, placed: Sequence[_P]) -> bool:
        """Whether v's predecessor in its own candidate is in the fused text (so v can follow it)."""
        if v.pos == 0:
            return False
        before = self.units[v.cand][v.pos - 1]
        return any(p.src.uid == before.uid or p.lay.uid == before.uid for p in placed)

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
                # The group bringing the most new on-topic content first (terms the other candidates use
                # too); a group that cannot be added now never can (the budget and novelty only shrink).
                queues[k].sort(key=lambda g: -round(self._group_value(g, fused_terms), 9))
                while queues[k]:
                    if self._add_group(queues[k].pop(0), placed, fused_terms, budget, limit):
                        break

    def _group_value(self, group: Sequence[_U], fused_terms: set[str]) -> float:
        return sum(
            w * self.agreement(t, v.cand)
            for v in group
            for t, w in self._weights(v).items()
            if t not in fused_terms
        )

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
            elif v.lead_in and v is group[0]:
                continue  # an introduction the fused text does not need: its items may still join a list
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
        if v.unsupported or v.support <= 0 or not (v.addable or v.lead_in) or self._orphan(v, placed):
            return False
        if self._unsupported_name(v):
            return False
        text = v.unit.content.rstrip(" *_")
        if text.endswith(("!", "?", "！", "？")) or _closing(v.unit) or _personal(v.unit):
            return False  # exclamations, questions, sign-offs and the other answer's own voice
        share, _ = self._new_weight(v, fused_terms)
        if share < self.cfg.novelty / 2:
            return False
        return not self._covered(v, placed, self.cfg.redundancy_threshold) and not self._conflicts(v, placed)

    # Placement --------------------------------------------------------------------------------------------

    def _match_placed(self, w: _U, placed: Sequence[_P]) -> int | None:
        """Index of the placed unit that is w (or the slot w was aligned to), or best holds w's content (at
        least the support threshold)."""
        best, best_score = None, 0.0
        weights = self._weights(w)
        size = sum(weights.values())
        for i, p in enumerate(placed):
            if p.src.uid == w.uid or p.lay.uid == w.uid:
                return i
            if p.structural != w.structural:
                continue
            score = self.cover(w, p.src)
            if score < self.cfg.support_threshold:
                # Or the same content words (a paraphrase chrF misses), as in the redundancy check.
                other = self._weights(p.src)
                shared = sum(min(x, other[t]) for t, x in weights.items() if t in other)
                dice = 2 * shared / (size + sum(other.values())) if shared else 0.0
                score = dice if dice >= self.cfg.redundancy_threshold else 0.0
            if score > best_score:
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
        # A paragraph only one candidate has goes after the backbone's body (before its closing words),
        # where it cannot cut a line of thought in two; within its own group it follows its predecessor;
        # an item may still join a list where its neighbours put it.
        own = complement and self._follows_own(v, placed)
        anchor = not complement or own or v.unit.kind == "item"
        idx = self._insert_index(v, placed) if anchor else None
        anchored = idx is not None
        if idx is None:
            if not complement and v.unit.kind == "item":
                return False  # a lone supported item with no anchor has no list to go to
            idx = self._tail_index(placed)
        if not self.translation:
            if idx == 0 and placed:
                idx = 1  # the backbone's opening stays the opening
            # Not inside a paragraph, where the next sentence may lean on the previous one: at its end.
            while idx < len(placed) and placed[idx].kind == "sentence" and _break(placed[idx]) < 2:
                idx += 1
        if v.unit.kind == "sentence" and 0 < idx < len(placed) and (
            placed[idx - 1].src.lead_in
            or (placed[idx - 1].kind == "sentence" and placed[idx].kind in ("item", "code", "table"))
        ):
            # Not between a sentence and the list or code it introduces.
            idx = self._tail_index(placed)
            anchored = False
        if self._inside_steps(placed, idx) and (complement or not self._fills_step(v, placed, idx)):
            return False  # a numbered procedure takes only a missing step several candidates agree on
        entry = self._fit(v, placed, idx)
        if entry is None:
            return False
        if not anchored and entry.kind == "sentence" and entry.brk is None:
            entry.brk = 2  # with no neighbour to continue, it opens a paragraph of its own
        placed.insert(idx, entry)
        return True

    @staticmethod
    def _inside_steps(placed: Sequence[_P], idx: int) -> bool:
        """Whether position idx is within a numbered list or at either end of one."""
        prev = placed[idx - 1] if idx > 0 else None
        nxt = placed[idx] if idx < len(placed) else None
        return any(p is not None and p.kind == "item" and _numbered(p) for p in (prev, nxt))

    def _fills_step(self, v: _U, placed: Sequence[_P], idx: int) -> bool:
        """Whether v is a numbered step whose neighbours in its own procedure are the steps on either side
        of idx (the backbone skipped it)."""
        row = self.units[v.cand]
        if v.unit.kind != "item" or not v.unit.marker.strip()[:1].isdigit() or not 0 < v.pos < len(row) - 1:
            return False
        if idx >= len(placed):
            return False
        before, after = self._match_placed(row[v.pos - 1], placed), self._match_placed(row[v.pos + 1], placed)
        return before == idx - 1 and after == idx

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
            if _sentence_like(v.unit.content) and not _numbered_unit(v):
                # A numbered item is a step of its own procedure: out of it, it makes no sense.
                return _P(v, v, marker="", brk=2, added=True)
            return None
        if prev_item and next_item:
            assert prev is not None
            if not _sentence_like(v.unit.content):
                return None  # a line fragment from another layout ("3 large tomatoes") is not an item here
            return _P(v, v, marker=_list_marker(prev, v), brk=1, added=True)
        if prev_item:
            return _P(v, v, brk=2, added=True)
        return _P(v, v, added=True)

    # -- joining ------------------------------------------------------------------------------------------

    def _coherent(self, placed: list[_P], dropped: set[int]) -> str:
        """The fused text, with every unit that :func:`fusion.coherence.coherence_defects` blames taken
        out until it finds nothing: a heading or lead-in left without its content (its section was pruned,
        or the text ends on it), a sentence announcing a list that is not there or pointing at a step the
        text does not number. Taking one out can empty another (a lead-in whose only content was an empty
        item lead-in), hence the loop; each round removes at least one unit.

        A translation renders its source's structure: a colon or heading that the backbone's translation
        has itself is kept."""
        backbone_pos = self.ranking[0]
        backbone = self.texts[backbone_pos].strip()
        context = "\n".join(x for x in (self.prompt.system, self.prompt.text) if x)
        tolerated: set[tuple[str, str]] = set()
        if self.translation:
            tolerated = {(d.kind, d.text.strip()) for d in coherence_defects(backbone, context=context)}
        while True:
            if not any(not p.structural for p in placed):
                return backbone
            text, spans = self._render(placed, dropped)
            if not self.cfg.coherence:
                return text
            blamed: set[int] = set()
            bared = False
            for d in coherence_defects(text, context=context):
                if (d.kind, d.text.strip()) in tolerated:
                    continue
                for i, (a, b) in enumerate(spans):
                    if not a <= d.start < b:
                        continue
                    p = placed[i]
                    own_step = p.kind == "item" and _numbered(p) and not p.added
                    own_step = own_step and p.lay.cand == backbone_pos
                    if d.kind == "empty-lead-in" and own_step and not p.bare:
                        # A step of the backbone's procedure is an instruction of its own: without what it
                        # introduced it stays, as a step ("2. Choose a location"); a hole is worse. (An
                        # added one is not needed: "1) Assume the hypothesis, that is:" goes.)
                        p.bare = bared = True
                    else:
                        blamed.add(i)
            if not blamed and not bared:
                return text
            dropped.update(placed[i].lay.uid for i in blamed)
            placed = [p for i, p in enumerate(placed) if i not in blamed]

    def _render(self, placed: Sequence[_P], dropped: set[int]) -> tuple[str, list[tuple[int, int]]]:
        """The joined text (lists renumbered, white space trimmed) and where each placed unit is in it."""
        parts: list[str] = []
        spans: list[tuple[int, int]] = []
        pos = 0
        prev: _P | None = None
        for p in placed:
            text = p.text
            if prev is None:
                text = text.lstrip()
            else:
                sep = self._separator(prev, p, dropped)
                parts.append(sep)
                pos += len(sep)
                if p.kind not in BLOCK_KINDS:
                    text = text.lstrip()
            spans.append((pos, pos + len(text)))
            parts.append(text)
            pos += len(text)
            prev = p
        joined, edits = _renumber_edits("".join(parts))

        def moved(offset: int) -> int:
            # A renumbered item ("9." to "10.") shifts everything after its number.
            return offset + sum(new - old for at, old, new in edits if at < offset)

        lead = len(joined) - len(joined.lstrip())
        spans = [(moved(a) - lead, moved(b) - lead) for a, b in spans]
        return joined.strip(), spans

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


def _indent(marker: str) -> int:
    return len(marker) - len(marker.lstrip(" \t"))


def _numbered_unit(u: _U) -> bool:
    return u.unit.kind == "item" and u.unit.marker.strip()[:1].isdigit()


def _numbered(p: _P) -> bool:
    marker = p.marker if p.marker else p.src.unit.marker
    return marker.strip()[:1].isdigit()


def _break(p: _P) -> int:
    """What precedes a placed unit: 0 same line, 1 new line, 2 new paragraph."""
    return p.brk if p.brk is not None else p.lay.unit.brk


def _without_colon(text: str) -> str:
    """The text without its final colon ("2. **Choose a spot:**" gives "2. **Choose a spot**")."""
    body = text.rstrip()
    tail = len(body) - len(body.rstrip(" \t*_`"))
    head, closing = body[: len(body) - tail], body[len(body) - tail :]
    if head.endswith(COLONS):
        head = head[:-1].rstrip()
    return head + closing + text[len(body) :]


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
    left = prev.text.rstrip()[-1:]
    # No space after CJK text; after a Latin sentence a space, even before CJK, so the end stays visible.
    if left and (is_cjk(left) or left in "。！？」』）"):
        return ""
    return " "


_ORDERED = re.compile(r"^([ \t]*)(\d{1,3})([.)])([ \t]+)")
_FENCE_LINE = re.compile(r"^ {0,3}(?:`{3,}|~{3,})")


def _renumber_edits(text: str) -> tuple[str, list[tuple[int, int, int]]]:
    """Renumber runs of ordered list items (same indentation and delimiter) 1, 2, 3... from each run's
    first number, so items taken from different candidates neither repeat nor skip numbers. Fenced code
    is left alone; a non-indented line that is not an item ends every run. Returns the text and its edits
    as (offset of the number in ``text``, old length, new length)."""
    lines = text.split("\n")
    expected: dict[tuple[str, str], int] = {}
    edits: list[tuple[int, int, int]] = []
    in_code = False
    offset = 0
    for i, line in enumerate(lines):
        start, offset = offset, offset + len(line) + 1
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
            edits.append((start + m.start(2), len(m.group(2)), len(str(expected[key]))))
        expected[key] += 1
    return "\n".join(lines), edits
