"""Votes and the annotation queue: record, replace, undo and read annotators' verdicts on runs, and what
each annotator has left to judge.

One vote per (run, annotator); a vote judges the run's (Best-of-N, fused) pair and goes when that pair is
replaced (``storage.runs.save_run``). Transactions and retries: see ``storage.sql``.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from sqlalchemy import Connection, ColumnElement, Engine, and_, case, delete, exists, func, insert, select, update

from fusion.errors import InputError
from fusion.pairwise import JUDGE_PREFIX
from fusion.types import model_groups
from storage.sql import (
    dumps,
    fusion_has_tag,
    fusions,
    loads,
    picks,
    reading,
    run_has_tag,
    runs,
    tagged_ids,
    tags_by_run,
    valid_text,
    vote_tokens,
    votes,
    write,
)
from storage.tables import CHOICES, SIDES

MAX_ANNOTATOR_CHARS = 200
MAX_COMMENT_CHARS = 10_000
MAX_TOKEN_CHARS = 200


@dataclass
class VoteRecord:
    """A stored vote, joined with what the statistics need from its run."""

    id: int
    run_id: str
    annotator: str
    choice: str  # A | B | tie | both_bad, as clicked
    a_is: str  # bon | fused: the side shown as Response A
    winner: str  # fused | bon | tie | both_bad
    comment: str | None
    ranking: list[int] | None
    client_token: str | None
    created_at: float
    updated_at: float
    n: int
    models: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    source: str = ""
    prompt: str = ""
    bon_index: int | None = None
    bon_method: str | None = None
    fused_method: str | None = None
    copied_fraction: float | None = None
    blind: bool = True  # cast before the voter saw which response was which
    consistent: bool | None = None  # a pairwise judge's verdict: did its two orders agree (None for people)

    @property
    def model_groups(self) -> list[str]:
        return model_groups(self.models, self.source)


def winner_of(choice: str, a_is: str) -> str:
    """Which system won, from the button clicked and which system was shown as Response A."""
    if choice in ("tie", "both_bad"):
        return choice
    b_is = "bon" if a_is == "fused" else "fused"
    return a_is if choice == "A" else b_is


# Letters that draw nothing: the Hangul fillers and the blank Braille pattern (an audit slipped them into
# "ju\u1160dge:x").
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def is_reserved_name(name: str) -> bool:
    """Whether a person may not vote under ``name``: it reads as a pairwise judge's verdicts.

    Case-insensitive, because SQLite's LIKE (which ``startswith`` filters compile to) is: "Judge:x" would
    be counted with the judges there and with the people on PostgreSQL. And compared as it looks, not as
    it is spelled: full-width letters or colons (NFKC), spaces, invisible characters such as a zero-width
    space, and letters of other scripts that look like Latin ones (a Cyrillic "ј", a ratio sign "∶" for
    the colon; Unicode's confusables list) do not make "judge:x" a person's name."""
    import unicodedata

    def seen(text: str) -> str:
        return "".join(
            ch for ch in text
            if not ch.isspace() and ch not in _BLANK_LETTERS and unicodedata.category(ch) not in ("Cf", "Cc", "Mn")
        )

    folded = seen(unicodedata.normalize("NFKC", name).casefold())
    # Look-alikes mapped both before NFKC (it turns the vertical "︰" into "‥", which looks like nothing
    # in the list) and after it.
    mapped = seen(unicodedata.normalize("NFKC", _as_latin(seen(name))).casefold())
    return any(text.startswith(JUDGE_PREFIX) for text in (folded, mapped, _as_latin(folded).casefold()))


def _as_latin(text: str) -> str:
    """``text`` with each non-ASCII character that Unicode's confusables list says looks like an ASCII one
    replaced by it ("ј" Cyrillic je by "j", "∶" ratio by ":"); the others as they are."""
    table = _latin_look_alikes()
    return "".join(table.get(ch, ch) for ch in text)


@functools.cache
def _latin_look_alikes() -> dict[str, str]:
    import unicodedata

    from confusable_homoglyphs.confusables import confusables_data

    def bare(text: str) -> str:  # the list wraps right-to-left characters in direction marks
        return "".join(ch for ch in text if unicodedata.category(ch) != "Cf")

    table: dict[str, str] = {}
    for key, homoglyphs in confusables_data.items():
        char = bare(key)
        if len(char) != 1 or char.isascii():
            continue
        ascii_ = [c for c in (bare(h["c"]) for h in homoglyphs) if len(c) == 1 and c.isascii()]
        if ascii_:
            table[char] = ascii_[0]
    return table


RESERVED_NAME_MESSAGE = (
    f"Names starting with '{JUDGE_PREFIX}' are kept for the pairwise judge's verdicts; choose another name."
)


def check_person_name(annotator: object) -> str:
    """A person's annotator name, stripped; InputError when it is blank, too long or a judge's."""
    name = _check_annotator(annotator)
    if is_reserved_name(name):
        raise InputError(RESERVED_NAME_MESSAGE)
    return name


def _check_annotator(annotator: object) -> str:
    if not isinstance(annotator, str) or not annotator.strip():
        raise InputError("Enter your name (annotator) before voting.")
    name = annotator.strip()
    if len(name) > MAX_ANNOTATOR_CHARS:
        raise InputError(f"The annotator name is longer than {MAX_ANNOTATOR_CHARS} characters.")
    return name


def _check_ranking(ranking: Sequence[int] | None, n: int) -> list[int] | None:
    if ranking is None:
        return None
    if isinstance(ranking, (str, bytes)) or not isinstance(ranking, Sequence):
        raise InputError("The ranking must be a list of candidate indices, best first.")
    out: list[int] = []
    for item in ranking:
        if isinstance(item, bool) or not isinstance(item, int):
            raise InputError(f"The ranking holds {item!r}, which is not a candidate index.")
        if not 0 <= item < n:
            raise InputError(f"The ranking names candidate index {item}; this run has candidates 0 to {n - 1}.")
        out.append(item)
    if len(set(out)) != len(out):
        raise InputError("The ranking lists a candidate more than once.")
    return out or None


_VOTE_COLUMNS = (
    votes.c.id,
    votes.c.run_id,
    votes.c.annotator,
    votes.c.choice,
    votes.c.a_is,
    votes.c.winner,
    votes.c.comment,
    votes.c.ranking,
    votes.c.client_token,
    votes.c.created_at,
    votes.c.updated_at,
    votes.c.blind,
    votes.c.consistent,
)


def _run_facts(conn: Connection, run_ids: Any) -> dict[str, tuple[Any, ...]]:
    """(n, models, source, prompt, bon index, bon method, fused method, copied fraction) per run in
    ``run_ids`` (a subquery), each models list parsed once."""
    stmt = (
        select(
            runs.c.id,
            runs.c.n,
            runs.c.models,
            runs.c.source,
            runs.c.prompt,
            picks.c.idx,
            picks.c.method,
            fusions.c.method,
            fusions.c.copied_fraction,
        )
        .select_from(runs.outerjoin(picks, picks.c.run_id == runs.c.id))
        .outerjoin(fusions, fusions.c.run_id == runs.c.id)
        .where(runs.c.id.in_(run_ids))
    )
    models_of: dict[str, list[str]] = {}
    out: dict[str, tuple[Any, ...]] = {}
    for run_id, n, raw_models, source, prompt, bon_index, bon_method, fused_method, copied in conn.execute(stmt):
        models = models_of.get(raw_models)
        if models is None:  # the runs of a batch share one models list
            models = models_of[raw_models] = loads(raw_models, [])
        out[run_id] = (n, models, source, prompt, bon_index, bon_method, fused_method, copied)
    return out


def _vote_records(conn: Connection, *where: ColumnElement[bool]) -> list[VoteRecord]:
    """Votes matching ``where`` (conditions on the votes table), oldest first, with their runs' facts.

    Three queries whatever the number of votes: the votes, then the facts and the tags of their runs,
    each run read once however many votes it has (15,000 votes are on about 5,000 runs).
    """
    rows = conn.execute(select(*_VOTE_COLUMNS).where(*where).order_by(votes.c.created_at, votes.c.id)).all()
    if not rows:
        return []
    voted_runs = select(votes.c.run_id).where(*where)
    facts = _run_facts(conn, voted_runs)
    tags = tags_by_run(conn, subquery=voted_runs)
    out: list[VoteRecord] = []
    for vote_id, run_id, annotator, choice, a_is, winner, comment, ranking, token, created, updated, blind, consistent in rows:
        fact = facts.get(run_id)
        if fact is None:  # the run was deleted (with its votes) between the two reads
            continue
        n, models, source, prompt, bon_index, bon_method, fused_method, copied = fact
        out.append(
            VoteRecord(
                id=vote_id,
                run_id=run_id,
                annotator=annotator,
                choice=choice,
                a_is=a_is,
                winner=winner,
                comment=comment,
                ranking=None if ranking is None else loads(ranking),
                client_token=token,
                created_at=created,
                updated_at=updated,
                n=n,
                models=list(models),
                tags=list(tags.get(run_id, ())),
                source=source,
                prompt=prompt,
                bon_index=bon_index,
                bon_method=bon_method,
                fused_method=fused_method,
                copied_fraction=copied,
                blind=bool(blind),
                consistent=None if consistent is None else bool(consistent),
            )
        )
    return out


def _find_vote(conn: Connection, run_id: str, annotator: str) -> Any:
    # FOR UPDATE: under PostgreSQL's READ COMMITTED, two replacements of one vote would otherwise both read
    # the same updated_at and could commit out of order; the second now waits and reads the first's row.
    return conn.execute(
        select(votes.c.id, votes.c.updated_at)
        .where(votes.c.run_id == run_id, votes.c.annotator == annotator)
        .with_for_update()
    ).first()


class VoteWithdrawn(InputError):
    """A form submission whose vote was undone (:func:`delete_vote`) arrived again: nothing is stored.

    Raised instead of bringing the undone vote back; the message is meant for the voter."""


def record_vote(
    engine: Engine,
    *,
    run_id: str,
    annotator: str,
    choice: str,
    a_is: str,
    comment: str | None = None,
    ranking: Sequence[int] | None = None,
    client_token: str | None = None,
    blind: bool = True,
    consistent: bool | None = None,
    judge: bool = False,
) -> VoteRecord:
    """Store one annotator's verdict on a run (committed before returning) and return it.

    A person's name may not start with ``judge:`` (any case): those are the pairwise judge's verdicts,
    stored with ``judge=True`` by :func:`record_judge_verdict` only.

    One vote per (run, annotator): voting again replaces the earlier vote (``created_at`` kept,
    ``updated_at`` moves, ``blind`` is the one passed now). ``blind`` says whether the vote was cast before
    the voter saw which response is which (labels, scores, attribution, candidate cards); False marks a
    vote cast after seeing them.

    A ``client_token`` this (run, annotator) already submitted is a no-op that returns the stored vote, so
    a resubmitted form or a late retry changes nothing. If that vote has since been undone
    (:func:`delete_vote`), the replay raises :class:`VoteWithdrawn` and stores nothing: an undo is never
    reversed by a late copy of the submission it undid. A new vote needs a new token.
    """
    name, note, token = _checked_fields(annotator, choice, a_is, comment, client_token, blind)
    reserved = is_reserved_name(name)
    if judge and not reserved:
        raise InputError(f"A judge's verdict is stored under '{JUDGE_PREFIX}<model>'; got {name!r}.")
    if reserved and not judge:
        raise InputError(RESERVED_NAME_MESSAGE)
    winner = winner_of(choice, a_is)

    def work(conn: Connection) -> int:
        checked_ranking = _check_ranking(ranking, _votable_run_size(conn, run_id))
        existing = _find_vote(conn, run_id, name)
        seen = token is not None and _token_seen(conn, run_id, name, token)
        if seen and existing is not None:
            return int(existing.id)
        if seen:
            raise VoteWithdrawn(
                "This vote was undone, so this copy of it was not saved. Vote again to record a new one."
            )
        now = time.time()
        values = {
            "choice": choice,
            "a_is": a_is,
            "winner": winner,
            "comment": note,
            "ranking": dumps(checked_ranking) if checked_ranking is not None else None,
            "client_token": token,
            "blind": blind,
            "consistent": consistent,
        }
        vote_id = _store(conn, run_id, name, existing, values, now)
        if token is not None:
            conn.execute(insert(vote_tokens).values(run_id=run_id, annotator=name, client_token=token, created_at=now))
        return vote_id

    def work_and_read(conn: Connection) -> VoteRecord:
        # Read back inside the same transaction: the record returned is the one this call left stored,
        # never a concurrent writer's later vote.
        return _vote_records(conn, votes.c.id == work(conn))[0]

    return write(engine, work_and_read)


def _store(conn: Connection, run_id: str, name: str, existing: Any, values: dict[str, Any], now: float) -> int:
    """Insert the vote, or replace ``existing``; return its id."""
    if existing is not None:
        # Strictly later even when the clock has not ticked, so "was it replaced?" is always visible.
        stamp = max(now, float(existing.updated_at) + 1e-6)
        conn.execute(update(votes).where(votes.c.id == existing.id).values(**values, updated_at=stamp))
        return int(existing.id)
    result = conn.execute(
        insert(votes).values(run_id=run_id, annotator=name, **values, created_at=now, updated_at=now)
    )
    return int(result.inserted_primary_key[0])


def _checked_fields(
    annotator: object, choice: str, a_is: str, comment: object, client_token: object, blind: object
) -> tuple[str, str | None, str | None]:
    """(annotator name, comment, form token) of a vote, checked and scrubbed; InputError names what is wrong."""
    if not isinstance(blind, bool):
        raise InputError("blind must be True or False.")
    name = valid_text(_check_annotator(annotator))
    if choice not in CHOICES:
        raise InputError(f"The vote must be one of {', '.join(CHOICES)}; got {choice!r}.")
    if a_is not in SIDES:
        raise InputError(f"Response A must be shown as one of {', '.join(SIDES)}; got {a_is!r}.")
    if comment is not None and not isinstance(comment, str):
        raise InputError("The comment must be text.")
    note = valid_text((comment or "").strip()) or None
    if note is not None and len(note) > MAX_COMMENT_CHARS:
        raise InputError(f"The comment is {len(note):,} characters long; the limit is {MAX_COMMENT_CHARS:,}.")
    token = client_token.strip() if isinstance(client_token, str) else None
    token = token or None
    if token is not None and len(token) > MAX_TOKEN_CHARS:
        raise InputError("The form token is too long.")
    return name, note, token


def _votable_run_size(conn: Connection, run_id: str) -> int:
    """The run's number of candidates, once it is known to have a pair to vote on (else InputError).

    FOR SHARE OF runs (PostgreSQL): a concurrent save_run, which locks the run FOR UPDATE, cannot replace
    the pair between this check and the vote's insert."""
    row = conn.execute(
        select(runs.c.n, picks.c.idx, fusions.c.text, fusions.c.error)
        .select_from(runs)
        .outerjoin(picks, picks.c.run_id == runs.c.id)
        .outerjoin(fusions, fusions.c.run_id == runs.c.id)
        .where(runs.c.id == run_id)
        .with_for_update(read=True, of=runs)
    ).first()
    if row is None:
        raise InputError(f"Unknown run {run_id!r}: it was deleted or never saved.")
    n, bon_index, fused_text, fused_error = row
    if bon_index is None or fused_text is None or fused_error is not None or not fused_text.strip():
        raise InputError(f"Run {run_id} has no Best-of-N pick and fused answer to compare.")
    return int(n)


def _token_seen(conn: Connection, run_id: str, annotator: str, token: str) -> bool:
    """Whether this (run, annotator) already submitted the form token (a replayed submission)."""
    return (
        conn.execute(
            select(vote_tokens.c.client_token).where(
                vote_tokens.c.run_id == run_id,
                vote_tokens.c.annotator == annotator,
                vote_tokens.c.client_token == token,
            )
        ).first()
        is not None
    )


def delete_vote(engine: Engine, run_id: str, annotator: str) -> bool:
    """Undo ``annotator``'s vote on the run (the whole vote: an earlier vote it replaced is not restored).
    True if there was one; False (and nothing changes) otherwise, so a repeated undo is harmless.

    The run goes back into the annotator's queue. The form tokens the annotator submitted for this run are
    kept, so a late replay of the undone submission is refused (:class:`VoteWithdrawn`) instead of
    bringing the vote back.
    """
    name = annotator.strip() if isinstance(annotator, str) else ""
    if not name:
        return False

    def work(conn: Connection) -> bool:
        result = conn.execute(delete(votes).where(votes.c.run_id == run_id, votes.c.annotator == valid_text(name)))
        return result.rowcount > 0

    return write(engine, work)


def last_vote(engine: Engine, annotator: str, *, tag: str | None = None) -> VoteRecord | None:
    """The vote ``annotator`` cast or changed most recently (on runs with ``tag`` if given), or None: what
    "undo my last vote" undoes when the page no longer remembers it (a reload, another tab)."""
    name = annotator.strip() if isinstance(annotator, str) else ""
    if not name:
        return None
    stmt = select(votes.c.id).where(votes.c.annotator == name)
    if tag:
        stmt = stmt.where(votes.c.run_id.in_(tagged_ids(tag)))
    stmt = stmt.order_by(votes.c.updated_at.desc(), votes.c.id.desc()).limit(1)
    with reading(engine) as conn:
        vote_id = conn.execute(stmt).scalar()
        found = _vote_records(conn, votes.c.id == vote_id) if vote_id is not None else []
    return found[0] if found else None


def get_vote(engine: Engine, run_id: str, annotator: str) -> VoteRecord | None:
    name = annotator.strip() if isinstance(annotator, str) else ""
    if not name:
        return None
    with reading(engine) as conn:
        found = _vote_records(conn, votes.c.run_id == run_id, votes.c.annotator == name)
    return found[0] if found else None


def votes_for_run(engine: Engine, run_id: str) -> list[VoteRecord]:
    with reading(engine) as conn:
        return _vote_records(conn, votes.c.run_id == run_id)


def all_votes(engine: Engine, *, tag: str | None = None) -> list[VoteRecord]:
    """Every vote (on runs with ``tag`` if given), oldest first, with its run's n, models, tags and pick."""
    with reading(engine) as conn:
        if tag:
            return _vote_records(conn, votes.c.run_id.in_(tagged_ids(tag)))
        return _vote_records(conn)


def _has_pair() -> ColumnElement[bool]:
    """Runs with a pair record_vote accepts (identical to the pick or not), from the stored flag, which the
    covering index ix_fusions_facts serves. NULL (written by code older than 0003, not yet filled in by
    :func:`fill_pair_facts`) is not counted."""
    return fusions.c.has_pair.is_(True)


def _identical() -> ColumnElement[bool]:
    return fusions.c.same_as_pick.is_(True)


def _votable() -> ColumnElement[bool]:
    """Runs an annotator can judge: a pair as in :func:`_has_pair` whose fused text is not the pick verbatim."""
    return and_(_has_pair(), ~_identical())


def annotation_queue(engine: Engine, annotator: str, *, tag: str | None = None, limit: int | None = 50) -> list[str]:
    """Ids of runs with a pick and a fused answer that ``annotator`` has not voted on, oldest first.

    Pairs whose fused text is the pick verbatim are left out (nothing to choose between); they are counted
    in :attr:`QueueCounts.identical`.
    """
    name = _check_annotator(annotator)
    voted = exists(select(votes.c.id).where(votes.c.run_id == runs.c.id, votes.c.annotator == name))
    stmt = (
        select(runs.c.id)
        .select_from(runs.join(fusions, fusions.c.run_id == runs.c.id))
        .where(_votable(), ~voted)
        .order_by(runs.c.created_at, runs.c.id)
    )
    if tag:
        stmt = stmt.where(run_has_tag(tag))
    if limit is not None:
        stmt = stmt.limit(max(0, int(limit)))
    with reading(engine) as conn:
        return list(conn.execute(stmt).scalars())


@dataclass(frozen=True)
class QueueCounts:
    """Where an annotator stands, among runs with the tag asked for.

    ``total``: runs there are to vote on (a pick and a fused answer that differ); ``done``: those of them
    this annotator has voted on; ``identical``: runs left out of the queue because the fused answer is the
    pick verbatim. ``total`` is right from the start: identical pairs are known when a run is saved.
    """

    done: int
    total: int
    identical: int

    @property
    def remaining(self) -> int:
        return self.total - self.done


def count_unpaired(engine: Engine, tag: str | None = None) -> int:
    """Runs (with ``tag``) that cannot be voted on at all: no Best-of-N pick or no usable fused answer (a
    failed judge or fusor, a run stopped half way). Annotate says how many, so none vanish unexplained."""
    has_pair = exists(select(fusions.c.run_id).where(fusions.c.run_id == runs.c.id, _has_pair()))
    stmt = select(func.count()).select_from(runs).where(~has_pair)
    if tag:
        stmt = stmt.where(run_has_tag(tag))
    with reading(engine) as conn:
        return int(conn.execute(stmt).scalar_one())


def queue_counts(engine: Engine, annotator: str, tag: str | None = None) -> QueueCounts:
    """The annotator's :class:`QueueCounts`, in one query that reads two indexes: the covering index of
    fusions and the unique (run_id, annotator) index of votes (plus run_tags' with a tag)."""
    name = _check_annotator(annotator)
    mine = votes.alias("mine")
    identical = _identical()
    votable = ~identical  # within _has_pair(); NULL same_as_pick (unknown) counts as votable
    stmt = (
        select(
            func.coalesce(func.sum(case((identical, 1), else_=0)), 0),
            func.coalesce(func.sum(case((identical, 0), else_=1)), 0),
            func.coalesce(func.sum(case((and_(votable, mine.c.id.is_not(None)), 1), else_=0)), 0),
        )
        .select_from(fusions)
        .outerjoin(mine, and_(mine.c.run_id == fusions.c.run_id, mine.c.annotator == name))
        .where(_has_pair())
    )
    if tag:
        stmt = stmt.where(fusion_has_tag(tag))
    with reading(engine) as conn:
        n_identical, total, done = conn.execute(stmt).one()
    return QueueCounts(done=int(done), total=int(total), identical=int(n_identical))


def queue_progress(engine: Engine, annotator: str, tag: str | None = None) -> tuple[int, int]:
    """(runs this annotator has voted on, runs there are to vote on), among votable runs with ``tag``;
    identical pairs are in neither. :func:`queue_counts` also says how many were left out."""
    counts = queue_counts(engine, annotator, tag)
    return counts.done, counts.total


def record_judge_verdict(engine: Engine, run_id: str, verdict: Any) -> VoteRecord:
    """Store a pairwise judge's verdict (:class:`fusion.pairwise.PairwiseVerdict`) as the vote of
    ``judge:<model>``: the fused answer as Response A, the winner as clicked, both orders' reasons as the
    comment, blind (a judge never sees which side is which), and whether its two orders agreed."""
    if verdict.winner is None:
        raise InputError(f"A judgement without a verdict is not stored: {verdict.error}")
    choice = {"fused": "A", "bon": "B", "tie": "tie"}[verdict.winner]
    return record_vote(
        engine, run_id=run_id, annotator=verdict.annotator, choice=choice, a_is="fused",
        comment=verdict.rationale()[:MAX_COMMENT_CHARS], blind=True, consistent=verdict.consistent, judge=True,
    )


def judged_votes(engine: Engine, *, tag: str | None = None) -> list[VoteRecord]:
    """Every vote on the runs a pairwise judge has judged (the judge's verdicts and the people's votes on
    the same runs, for agreement), on runs with ``tag`` if given. Reads nothing else, so it stays small
    when most runs were judged by nobody."""
    judged = select(votes.c.run_id).where(votes.c.annotator.startswith(JUDGE_PREFIX, autoescape=True))
    where: list[ColumnElement[bool]] = [votes.c.run_id.in_(judged)]
    if tag:
        where.append(votes.c.run_id.in_(tagged_ids(tag)))
    with reading(engine) as conn:
        return _vote_records(conn, *where)
