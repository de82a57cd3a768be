"""chrF: known values, edge cases, and the matrix agreeing with pairwise calls."""

from __future__ import annotations

import random

import pytest

from fusion.similarity import NgramProfile, chrf, chrf_matrix, match_counts


def test_identical_texts_score_one() -> None:
    assert chrf("The cat sat on the mat.", "The cat sat on the mat.") == pytest.approx(1.0)
    assert chrf("東京は日本の首都です。", "東京は日本の首都です。") == pytest.approx(1.0)


def test_white_space_is_ignored() -> None:
    # chrF removes white space before counting character n-grams.
    assert chrf("a b  c\n", "abc") == pytest.approx(1.0)


def test_disjoint_texts_score_zero() -> None:
    assert chrf("abc", "xyz") == 0.0
    assert chrf("aaaa", "bbbb") == 0.0


def test_hand_computed_small_case() -> None:
    # hyp "ab", ref "abc". Order 1: 2 matches of 2 hyp / 3 ref unigrams -> P=1, R=2/3.
    # Order 2: "ab" matches of hyp {ab} / ref {ab, bc} -> P=1, R=1/2. Orders 3..6: hyp has none, not counted.
    # avgP = 1, avgR = 7/12, F2 = 5 * 1 * 7/12 / (4 * 1 + 7/12) = 35/55 = 7/11.
    assert chrf("ab", "abc") == pytest.approx(7 / 11)
    # Reversed: avgP = (2/3 + 1/2) / 2 = 7/12, avgR = 1, F2 = 5 * 7/12 / (4 * 7/12 + 1) = 35/40.
    assert chrf("abc", "ab") == pytest.approx(35 / 40)


def test_order_and_beta_parameters() -> None:
    # Unigrams only: P = 1, R = 2/3. F2 = 5 * 2/3 / (4 + 2/3) = 5/7; F1 = 2 * 2/3 / (1 + 2/3) = 4/5.
    assert chrf("ab", "abc", n=1) == pytest.approx(5 / 7)
    assert chrf("ab", "abc", n=1, beta=1.0) == pytest.approx(0.8)


def test_matches_counted_with_multiplicity() -> None:
    # hyp "aa" has the unigram a twice, ref "a" once: 1 match. P = 1/2, R = 1. Order 2: ref has no bigram.
    # F2 = 5 * 0.5 * 1 / (4 * 0.5 + 1) = 2.5 / 3.
    assert chrf("aa", "a") == pytest.approx(2.5 / 3)
    a, b = NgramProfile("abab"), NgramProfile("ab")
    assert match_counts(a, b)[:2] == [2, 1]  # unigrams a, b once each in "ab"; bigram "ab" once


def test_agrees_with_sacrebleu_reference_values() -> None:
    # Values from sacrebleu 2.6.0, CHRF().sentence_score(hyp, [ref]).score / 100 (default chrF: n=6, beta=2).
    hyp = "Sisos Darstellungen von Land und Wasser im Zentrum der neuen Galerieausstellung"
    ref = "Sisos Darstellungen von Land und Wasser stehen im Mittelpunkt einer neuen Galerie-Ausstellung"
    assert chrf(hyp, ref) == pytest.approx(0.6723881386938405, abs=1e-12)
    assert chrf("東京は日本の首都です。", "日本の首都は東京です。") == pytest.approx(
        0.42288359788359786, abs=1e-12
    )


def test_empty_texts() -> None:
    assert chrf("", "") == 1.0
    assert chrf("   ", "\n") == 1.0
    assert chrf("", "word") == 0.0
    assert chrf("word", "") == 0.0


def test_bad_order_is_refused() -> None:
    with pytest.raises(ValueError):
        chrf("a", "a", n=0)


def test_recall_weighting_favours_covering_hypotheses() -> None:
    short, long = "The tower is in Paris.", "The tower is in Paris and was completed in 1889."
    # With beta = 2 recall counts more: the long text as hypothesis covers the short reference.
    assert chrf(long, short) > chrf(short, long)


def test_paraphrase_scores_between_unrelated_and_identical() -> None:
    a = "The Eiffel Tower was completed in 1889."
    b = "The Eiffel Tower was finished in 1889."
    c = "Bananas are rich in potassium."
    assert chrf(a, c) < chrf(a, b) < 1.0


def _random_text(rng: random.Random) -> str:
    words = [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "Paris",
        "tower",
        "1889",
        "東京",
        "首都",
        "über",
        "Straße",
        "a",
    ]
    return " ".join(rng.choice(words) for _ in range(rng.randint(0, 12)))


def test_matrix_equals_pairwise_scores() -> None:
    rng = random.Random(7)
    texts = [_random_text(rng) for _ in range(9)]
    m = chrf_matrix(texts)
    assert len(m) == 9 and all(len(row) == 9 for row in m)
    for i, a in enumerate(texts):
        assert m[i][i] == 1.0
        for j, b in enumerate(texts):
            assert m[i][j] == pytest.approx(chrf(a, b), abs=1e-12)
            assert 0.0 <= m[i][j] <= 1.0


def test_matrix_of_nothing_and_of_one() -> None:
    assert chrf_matrix([]) == []
    assert chrf_matrix(["only"]) == [[1.0]]
