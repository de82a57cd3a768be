"""Large input through the offline method: 8 candidates of 30,000 characters complete with a sane fusion
(speed is measured in bench/large_input.py, not here), the shortcuts that large pools take keep their
promises, and the numpy chrF counts are the Python ones."""

from __future__ import annotations

import random

import pytest

from fusion.attribution import attribute
from fusion.fusors import ExtractiveFusor
from fusion.fusors.extractive import support
from fusion.fusors.extractive.context import FusionContext
from fusion.fusors.extractive.units import CandidatePool
from fusion.pipeline import supplied_candidates
from fusion.selectors import consensus_ranking, consensus_scores
from fusion.similarity import chrf_matrix
from fusion import similarity
from fusion.text import split_units
from fusion.types import Prompt


def _answers(size: int, n: int = 8, seed: int = 7) -> list[str]:
    """n answers of about ``size`` characters to the same long list of topics: each topic has facts that
    most answers state (in slightly different words) and some that one answer alone gives."""
    rng = random.Random(seed)
    vocab = ["".join(rng.choice("abcdefghiklmnoprstuvw") for _ in range(rng.randint(3, 9))) for _ in range(3000)]
    texts = [""] * n
    topic = 0
    while min(len(t) for t in texts) < size:
        facts = [[rng.choice(vocab) for _ in range(rng.randint(5, 11))] for _ in range(6)]
        heading = f"## Topic {topic}: {' '.join(rng.sample(vocab, 2))}\n\n"
        for k in range(n):
            sentences = []
            for fact in facts:
                if rng.random() < 0.7:
                    words = [w if rng.random() > 0.15 else rng.choice(vocab) for w in fact]
                    sentences.append(" ".join(words).capitalize() + ".")
            if rng.random() < 0.3:
                sentences.append(" ".join(rng.sample(vocab, 12)).capitalize() + ".")
            if rng.random() < 0.4:
                body = "\n".join(f"- {' '.join(rng.sample(vocab, 6)).capitalize()}." for _ in range(3))
            else:
                body = " ".join(sentences[: len(sentences) // 2]) + "\n\n" + " ".join(sentences[len(sentences) // 2 :])
            texts[k] += heading + " ".join(sentences) + "\n\n" + body + "\n\n"
        topic += 1
    return [t[:size].rsplit(".", 1)[0] + "." for t in texts]


@pytest.fixture(scope="module")
def big() -> list[str]:
    return _answers(30_000)


def test_eight_long_candidates_fuse_to_a_sane_answer(big: list[str]) -> None:
    prompt = Prompt("Explain every topic in turn.")
    pool = CandidatePool(prompt, big)
    assert len(pool.similarity_texts) > support.LARGE_POOL  # the large-pool path is the one tried here
    out = ExtractiveFusor().fuse_sync(prompt, supplied_candidates(big))
    assert out.error is None and out.text
    assert sorted(out.order) == list(range(8))
    longest = max(len(t) for t in big)
    assert 0.3 * longest < len(out.text) < 1.5 * longest
    # Extractive: every sentence of the fused text is a candidate's (list markers may be renumbered).
    joined = "\n".join(big)
    units = [u for u in split_units(out.text) if u.kind == "sentence"]
    assert len(units) > 100
    assert all(u.content.strip() in joined for u in units)
    attribution = attribute(out.text, big)
    assert attribution.copied_fraction > 0.95


def test_blocked_pairs_follow_the_exact_rule_and_find_the_alike(big: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocking only leaves pairs out: each pair it keeps passes the exact prefilter, and it keeps nearly
    all pairs alike enough to be aligned (symmetric chrF of 0.45 and up)."""
    texts = _answers(12_000)
    pool = CandidatePool(Prompt("q"), texts)
    monkeypatch.setattr(support, "LARGE_POOL", 10**9)
    exact = support.UnitSimilarity(pool.similarity_texts)
    assert not exact.blocked
    monkeypatch.setattr(support, "LARGE_POOL", 0)
    blocked = support.UnitSimilarity(pool.similarity_texts)
    assert blocked.blocked
    assert all(b <= e for b, e in zip(blocked.near, exact.near))
    alike = [
        (x, y)
        for x, ys in enumerate(exact.near)
        for y in ys
        if x < y and (exact._cover_text(x, y) + exact._cover_text(y, x)) / 2 >= 0.45
    ]
    assert len(alike) > 100
    found = sum(1 for x, y in alike if y in blocked.near[x] and x in blocked.near[y])
    assert found >= 0.9 * len(alike)


def test_numpy_chrf_counts_are_the_python_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = _answers(3_000, n=4) + ["", "  \n ", "日本語のテキストです。", "x\ud800y", "ab", "a"]
    monkeypatch.setattr(similarity, "NUMPY_CHARS", 10**12)
    python = chrf_matrix(texts)
    monkeypatch.setattr(similarity, "NUMPY_CHARS", 0)
    assert chrf_matrix(texts) == python
    three = chrf_matrix(texts, n=3)
    monkeypatch.setattr(similarity, "NUMPY_CHARS", 10**12)
    assert chrf_matrix(texts, n=3) == three


def test_slot_alignment_on_a_large_pool_pairs_in_order(big: list[str]) -> None:
    """The numpy alignment is monotone: the partners of the backbone's units come in the other
    candidate's order."""
    from fusion.fusors.extractive.slots import align

    texts = big[:3]
    ranking = consensus_ranking(consensus_scores(texts), [0, 1, 2])
    ctx = FusionContext(ExtractiveFusor(), Prompt("q"), texts, ranking)
    backbone = ctx.rows[ctx.backbone]
    other = ctx.rows[ranking[1]]
    partners = [v.position for v in align(ctx, backbone, other) if v is not None]
    assert len(partners) > 50
    assert partners == sorted(partners) and len(set(partners)) == len(partners)


def test_the_selector_and_the_fusor_count_long_consensus_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """They run at the same time on the same candidates: the second waits for the first's scores."""
    import threading

    from fusion import selectors

    calls = []
    real = selectors.chrf_matrix

    def counted(texts: list[str]) -> list[list[float]]:
        calls.append(len(texts))
        return real(texts)

    monkeypatch.setattr(selectors, "chrf_matrix", counted)
    monkeypatch.setattr(selectors, "_SCORES", type(selectors._SCORES)())
    texts = _answers(15_000, n=8, seed=11)
    assert sum(map(len, texts)) >= selectors.SHARED_CHARS
    got: list[list[float]] = []
    threads = [threading.Thread(target=lambda: got.append(consensus_scores(texts))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert calls == [8]
    assert len(got) == 3 and got[0] == got[1] == got[2]
    monkeypatch.setattr(selectors, "SHARED_CHARS", 10**12)  # the plain computation gives the same scores
    assert consensus_scores(texts) == got[0]
    assert calls == [8, 8]
