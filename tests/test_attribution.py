"""Span attribution: exact offsets on hand-made cases, and invariants over many generated ones."""

from __future__ import annotations

import difflib
import random
import re
import unicodedata

import pytest

from fusion.attribution import attribute
from fusion.attribution.tokens import tokenize_fast, tokenize_regex
from fusion.errors import InputError
from fusion.text import is_cjk
from fusion.types import Attribution, SourceRef, Span


def ref(text: str, passage: str, candidate: int = 0, *, occurrence: int = 0) -> tuple[int, int, int]:
    """(candidate, start, end) of the ``occurrence``-th ``passage`` in ``text``."""
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(passage, start + 1)
    return candidate, start, start + len(passage)


def layout(fused: str, att: Attribution) -> list[tuple[str, list[tuple[int, int, int]]]]:
    """Each span's text and its sources as (candidate, start, end)."""
    return [(fused[s.start : s.end], [(r.candidate, r.start, r.end) for r in s.sources]) for s in att.spans]


# --- hand-made cases ----------------------------------------------------------------------------------


def test_empty_fused_has_no_spans() -> None:
    att = attribute("", ["anything at all", None])
    assert att.spans == []
    assert att.shares == [0.0, 0.0]
    assert att.copied_fraction == 0.0


def test_whitespace_or_punctuation_only_fused_is_one_novel_span() -> None:
    for fused in ("   \n\t ", "!!! ... ???"):
        att = attribute(fused, ["!!! ... ???", "words here"])
        assert layout(fused, att) == [(fused, [])]
        assert att.shares == [0.0, 0.0]
        assert att.copied_fraction == 0.0


def test_fused_equal_to_one_candidate_is_one_span_with_exact_offsets() -> None:
    cand = "  **Paris** is the capital of France; it lies on the Seine.\n"
    others = ["Berlin is large and has many museums worth a visit.", "Rome has a long history."]
    att = attribute(cand, [others[0], cand, others[1]])
    assert layout(cand, att) == [(cand, [(1, 0, len(cand))])]
    assert att.shares == [0.0, 1.0, 0.0]
    assert att.copied_fraction == 1.0


def test_fully_novel_text_is_one_novel_span() -> None:
    fused = "Quantum gardens hum softly beneath violet teacups."
    att = attribute(fused, ["The cat sat on the mat all day long.", "Dogs bark at the mailman."])
    assert layout(fused, att) == [(fused, [])]
    assert att.copied_fraction == 0.0
    assert att.shares == [0.0, 0.0]


def test_novel_then_copied_with_exact_offsets() -> None:
    cand = "First, preheat the oven to 200 degrees. Then bake the bread for forty minutes."
    fused = "Here is my advice. Then bake the bread for forty minutes."
    att = attribute(fused, [cand])
    assert layout(fused, att) == [
        ("Here is my advice. ", []),
        ("Then bake the bread for forty minutes.", [ref(cand, "Then bake the bread for forty minutes.")]),
    ]
    visible = len(fused.replace(" ", ""))
    copied = len("Then bake the bread for forty minutes.".replace(" ", ""))
    assert att.copied_fraction == pytest.approx(copied / visible)
    assert att.shares == [pytest.approx(copied / visible)]


def test_identical_candidates_share_every_span() -> None:
    cand = "Water boils at one hundred degrees Celsius at sea level."
    fused = "Remember this: water boils at one hundred degrees Celsius at sea level."
    att = attribute(fused, [cand, cand, cand])
    copied = "water boils at one hundred degrees Celsius at sea level."
    start = fused.index(copied)
    assert layout(fused, att) == [
        (fused[:start], []),
        (copied, [(j, 0, len(cand)) for j in range(3)]),
    ]
    assert att.shares[0] == att.shares[1] == att.shares[2] == att.copied_fraction
    assert sum(att.shares) > 1.0  # a shared span counts for each of its candidates


def test_shared_and_single_source_spans() -> None:
    a = "The mitochondria is the powerhouse of the cell. It makes energy from sugar and oxygen."
    b = "Plants need sunlight. The mitochondria is the powerhouse of the cell."
    fused = "The mitochondria is the powerhouse of the cell. It makes energy from sugar and oxygen."
    att = attribute(fused, [a, b])
    shared = "The mitochondria is the powerhouse of the cell. "
    assert layout(fused, att) == [
        (shared, [(0, 0, len(shared)), (1, b.index("The mito"), len(b))]),
        ("It makes energy from sugar and oxygen.", [ref(a, "It makes energy from sugar and oxygen.")]),
    ]
    assert att.copied_fraction == 1.0
    assert att.shares[0] == 1.0
    assert att.shares[1] == pytest.approx(len(shared.replace(" ", "")) / len(fused.replace(" ", "")))


def test_case_punctuation_whitespace_and_width_differences_still_count_as_copied() -> None:
    cand = "The Eiffel Tower, built in 1889, is 330 metres tall!"
    for fused in (
        "the eiffel tower built in 1889 is 330 metres tall",
        "THE EIFFEL TOWER -- BUILT IN 1889 -- IS 330 METRES TALL.",
        "The   Eiffel\n\nTower, built in 1889,\tis 330 metres tall",
        "Ｔｈｅ Ｅｉｆｆｅｌ Ｔｏｗｅｒ， ｂｕｉｌｔ ｉｎ １８８９， ｉｓ ３３０ ｍｅｔｒｅｓ ｔａｌｌ！",
    ):
        att = attribute(fused, [cand])
        assert layout(fused, att) == [(fused, [(0, 0, len(cand))])], fused
        assert att.copied_fraction == 1.0


def test_a_changed_word_inside_a_long_copy_keeps_the_whole_copy() -> None:
    cand = "Regular exercise improves heart health and lowers the risk of many chronic diseases."
    for fused in (
        "Regular exercise improves heart health and reduces the risk of many chronic diseases.",  # changed
        "Regular exercise improves heart health and the risk of many chronic diseases.",  # dropped
        "Regular exercise greatly improves heart health and lowers the risk of many chronic diseases.",
        "Regular exercise boosts cardiac health and lowers the risk of many chronic diseases.",  # two words
    ):
        att = attribute(fused, [cand])
        assert layout(fused, att) == [(fused, [(0, 0, len(cand))])], fused


def test_an_edit_near_the_end_of_a_copy_does_not_cut_off_the_rest() -> None:
    cand = "Drink plenty of water during hot summer days, and rest in the shade."
    fused = "Drink plenty of water during hot summer days, and sit in the shade."
    att = attribute(fused, [cand])
    assert layout(fused, att) == [(fused, [(0, 0, len(cand))])]
    # The copied piece after the edit is only two words; with the edit next to novel text it still joins.
    fused = "Novel words come first here. Drink plenty of water during hot summer days, or rest in the shade."
    att = attribute(fused, [cand])
    start = fused.index("Drink")
    assert layout(fused, att) == [(fused[:start], []), (fused[start:], [(0, 0, len(cand))])]


def test_chance_overlap_shorter_than_min_match_is_novel() -> None:
    cand = "In the end, the results of the study were clear to everyone involved."
    fused = "In the end we went home happy and tired."
    att = attribute(fused, [cand])
    assert layout(fused, att) == [(fused, [])]
    # With a lower threshold the three shared words count.
    att = attribute(fused, [cand], min_match=3)
    assert layout(fused, att)[0] == ("In the end ", [(0, 0, len("In the end, "))])


def test_whole_text_copies_count_even_when_short() -> None:
    # The fused text is a whole (one-word) copy from inside a longer candidate.
    att = attribute("Paris.", ["The capital of France is Paris."])
    assert layout("Paris.", att) == [("Paris.", [ref("The capital of France is Paris.", "Paris.")])]
    # A whole one-word candidate copied into a longer fused text.
    fused = "The capital of France is Paris, of course."
    att = attribute(fused, ["Paris"])
    assert layout(fused, att) == [
        ("The capital of France is ", []),
        ("Paris, ", [(0, 0, 5)]),
        ("of course.", []),
    ]
    # Two words are not enough when they are neither.
    fused = "We love Paris France tours."
    assert layout(fused, attribute(fused, ["I flew to Paris France last spring with friends."])) == [
        (fused, [])
    ]


def test_repeated_passage_maps_in_order_to_repeated_source() -> None:
    s1 = "Always back up your files before an upgrade."
    cand = f"{s1} Check the release notes. {s1}"
    fused = f"{s1} {s1}"
    att = attribute(fused, [cand])
    second = len(cand) - len(s1)
    assert layout(fused, att) == [
        (s1 + " ", [(0, 0, len(s1) + 1)]),
        (s1, [(0, second, len(cand))]),
    ]


def test_repeated_passage_from_a_single_source_is_two_spans() -> None:
    s1 = "Always back up your files before an upgrade."
    cand = f"Check the release notes. {s1}"
    fused = f"{s1} {s1}"
    att = attribute(fused, [cand])
    loc = (0, cand.index(s1), len(cand))
    assert layout(fused, att) == [(s1 + " ", [loc]), (s1, [loc])]
    assert att.copied_fraction == 1.0


def test_adjacent_passages_from_two_places_of_one_candidate_are_two_spans() -> None:
    s1 = "Sleep at least seven hours every night."
    s2 = "Eat vegetables with every single meal."
    cand = f"{s1} Walk daily for thirty minutes. {s2}"
    fused = f"{s2} {s1}"
    att = attribute(fused, [cand])
    assert layout(fused, att) == [(s2 + " ", [ref(cand, s2)]), (s1, [(0, 0, len(s1) + 1)])]


def test_failed_candidates_contribute_nothing() -> None:
    cand = "Use a strong password and turn on two factor authentication everywhere."
    fused = "Use a strong password and turn on two factor authentication everywhere."
    att = attribute(fused, [None, "", "   \n", cand])
    assert att.shares == [0.0, 0.0, 0.0, 1.0]
    assert layout(fused, att) == [(fused, [(3, 0, len(cand))])]


def test_one_candidate_only() -> None:
    cand = "A short answer that the fusor copied from start to end without change."
    att = attribute(cand, [cand])
    assert att.copied_fraction == 1.0
    assert att.shares == [1.0]


def test_japanese_with_exact_offsets() -> None:
    a = "東京は日本の首都です。人口はとても多いです。"
    b = "大阪は食べ物がおいしい町として有名です。"
    fused = "東京は日本の首都です。大阪は食べ物がおいしい町として有名です。新しい文です。"
    att = attribute(fused, [a, b])
    assert layout(fused, att) == [
        ("東京は日本の首都です。", [ref(a, "東京は日本の首都です。")]),
        ("大阪は食べ物がおいしい町として有名です。", [(1, 0, len(b))]),
        ("新しい文です。", []),
    ]


def test_chinese_and_the_half_word_weight_of_cjk_characters() -> None:
    cand = "北京是中国的首都，也是一座历史悠久的城市。"
    fused = "北京是中国的首都，我很喜欢。"
    att = attribute(fused, [cand])
    assert layout(fused, att) == [
        ("北京是中国的首都，", [(0, 0, len("北京是中国的首都，"))]),
        ("我很喜欢。", []),
    ]
    # Four shared characters weigh two words: below the default four-word threshold.
    fused = "中国的首很大很美丽我们都爱"
    assert attribute(fused, ["他说中国的首相来了"]).copied_fraction == 0.0


def test_half_width_and_full_width_katakana_match() -> None:
    cand = "ｺﾝﾋﾟｭｰﾀｰｻｲｴﾝｽの基礎を学ぶ"
    fused = "コンピューターサイエンスの基礎を学ぶ"
    att = attribute(fused, [cand])
    assert layout(fused, att) == [(fused, [(0, 0, len(cand))])]


def test_emoji_and_combining_characters_use_python_string_offsets() -> None:
    cand = "Cafe\u0301 menus change daily 🍰 and the re\u0301sume\u0301 says chef 👩\u200d🍳 trained in Lyon."
    fused = "🎉 Café menus change daily and the résumé says chef trained in Lyon! 🎉"
    att = attribute(fused, [cand])
    assert layout(fused, att) == [(fused, [(0, 0, len(cand))])]
    assert att.copied_fraction == 1.0


def test_mixed_scripts_match_across_tokenisers() -> None:
    # The candidate goes through the fast tokeniser, the fused text (which has CJK) through the other.
    cand = "The word for mountain in Japanese is yama and it appears in many place names."
    fused = "山 means mountain: the word for mountain in Japanese is yama and it appears in many place names."
    att = attribute(fused, [cand])
    copied = fused.index("the word")
    assert layout(fused, att) == [(fused[:copied], []), (fused[copied:], [(0, 0, len(cand))])]


def test_invalid_parameters_are_refused() -> None:
    with pytest.raises(InputError):
        attribute("text", ["text"], min_match=0)
    with pytest.raises(InputError):
        attribute("text", ["text"], max_gap=-1)
    with pytest.raises(InputError):
        attribute("text", ["text"], min_match=True)


def test_round_trips_through_dict() -> None:
    cand = "Solar panels turn sunlight into electricity for homes and businesses."
    fused = "Good question. Solar panels turn sunlight into electricity for homes and businesses."
    att = attribute(fused, [cand, None])
    again = Attribution.from_dict(att.to_dict())
    assert again == att
    built = att.spans[1]
    plain = Span(built.start, built.end, tuple(SourceRef(r.candidate, r.start, r.end) for r in built.sources))
    assert built == plain and hash(built) == hash(plain) and repr(built) == repr(plain)


def test_fast_and_regex_tokenisers_agree() -> None:
    rng = random.Random(7)
    alphabet = list("abcdefXYZ019 ,.;:!?'-_\n\t") + [
        "é",
        "ß",
        "ø",
        "Ｈ",
        "½",
        "’",
        "—",
        "🙂",
        "\u0301",
        "\xa0",
    ]
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        fast = tokenize_fast(text)
        assert fast is not None
        slow = tokenize_regex(text)
        assert fast.norms == slow.norms, text
        # Offsets agree except where a word starts with a stray combining mark.
        if "\u0301" not in text:
            assert fast.starts == slow.starts, text


# --- generated cases ----------------------------------------------------------------------------------

SENTENCES = {
    "en": [
        "The library opens at nine in the morning on weekdays.",
        "Photosynthesis turns light, water and carbon dioxide into sugar.",
        "A balanced diet includes fruit, vegetables, grains and protein.",
        "The committee will publish its final report next spring.",
        "Rivers carry sediment from the mountains down to the sea.",
        "Good documentation saves hours of confusion for new developers.",
        "Don't forget to save your work before closing the editor!",
        "Well-known painters often started as apprentices in busy workshops.",
    ],
    "de": [
        "Die Straße führt direkt zum großen Marktplatz der Altstadt.",
        "Im Frühling blühen die Kirschbäume entlang des Flussufers.",
        "Für die Prüfung sollte man mindestens zwei Wochen üben.",
        "Der Zug nach München fährt heute fünf Minuten später ab.",
    ],
    "ja": [
        "京都には古い寺や神社がたくさんあります。",
        "毎朝コーヒーを飲みながら新聞を読みます。",
        "この本は子どもから大人まで楽しめる物語です。",
        "雨の日は家で映画を見るのが好きです。",
    ],
    "zh": [
        "长城是世界上最著名的建筑之一。",
        "我们明天早上八点在学校门口见面。",
        "学习一门新的语言需要耐心和时间。",
    ],
    "ru": [
        "Москва является столицей и крупнейшим городом России.",
        "Зимой в Сибири температура опускается очень низко.",
    ],
    "mixed": [
        "Le café résumé: naïve coöperation 🙂 works—mostly.",
        "Emoji 👩‍🚀 and flags 🇫🇷 sit between words here.",
        "Caf\u0301e au lait is served with croissants every morning.",
    ],
}
ALL_SENTENCES = [s for group in SENTENCES.values() for s in group]


def gibberish(rng: random.Random) -> str:
    """A sentence no candidate can share (made-up words; in kana for a CJK-looking one)."""
    if rng.random() < 0.3:
        return "".join(rng.choice("ぬゑゐゞヴヵヶ") for _ in range(rng.randint(6, 14))) + "。"
    words = [
        "".join(rng.choice("qxzvjkw") for _ in range(rng.randint(3, 8))) for _ in range(rng.randint(4, 10))
    ]
    return " ".join(words).capitalize() + "."


def surface_edit(sentence: str, rng: random.Random) -> str:
    """An edit that leaves the tokens unchanged: case, punctuation, white space, full width."""
    kind = rng.choice(("upper", "lower", "punct", "space", "wide", "none"))
    if kind == "upper":
        return sentence.upper()
    if kind == "lower":
        return sentence.lower()
    if kind == "punct":
        return re.sub(r"[,.!?;:]", " ", sentence).strip() + " ..."
    if kind == "space":
        return re.sub(r" ", lambda _: rng.choice([" ", "  ", "\n", "\t "]), sentence)
    if kind == "wide":
        return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in sentence)
    return sentence


def word_edit(sentence: str, rng: random.Random) -> str:
    words = sentence.split(" ")
    if len(words) < 8:
        return sentence
    k = rng.randrange(3, len(words) - 3)
    words[k] = rng.choice(["zzyzx", "qwopp", "vrrk"])
    return " ".join(words)


def ref_tokens(text: str) -> list[str]:
    """An independent tokenisation: NFKC + case folding, runs of letters and digits, CJK one by one."""
    out: list[str] = []
    for m in re.finditer(r"[^\W_]+", unicodedata.normalize("NFKC", text).casefold()):
        run = ""
        for ch in m.group():
            if is_cjk(ch):
                if run:
                    out.append(run)
                    run = ""
                out.append(ch)
            else:
                run += ch
        if run:
            out.append(run)
    return out


def make_case(
    rng: random.Random, edits: bool
) -> tuple[str, list[str | None], list[tuple[int, int, int | None]]]:
    """Candidates from the sentence pool, and a fused text of copied (maybe edited) and novel sentences.

    Returns the fused text, the candidates and, per fused sentence, (start, end, source candidate or
    None for novel)."""
    candidates: list[str | None] = []
    for _ in range(rng.randint(1, 5)):
        if rng.random() < 0.1:
            candidates.append(rng.choice([None, "", "  "]))
            continue
        picked = rng.sample(ALL_SENTENCES, rng.randint(2, 6))
        candidates.append(rng.choice([" ", "\n", "\n\n"]).join(picked))
    real = [j for j, c in enumerate(candidates) if c and c.strip()]
    fused, truth = "", []
    for _ in range(rng.randint(1, 7)):
        sep = "" if not fused else rng.choice([" ", "\n", "  "])
        if real and rng.random() < 0.7:
            j = rng.choice(real)
            text = candidates[j]
            assert text is not None
            sentence = rng.choice([s for s in ALL_SENTENCES if s in text])
            sentence = surface_edit(sentence, rng)
            if edits and rng.random() < 0.5:
                sentence = word_edit(sentence, rng)
            source: int | None = j
        else:
            sentence, source = gibberish(rng), None
        start = len(fused) + len(sep)
        fused += sep + sentence
        truth.append((start, len(fused), source))
    return fused, candidates, truth


def check_invariants(fused: str, candidates: list[str | None], att: Attribution, exact: bool) -> None:
    spans = att.spans
    assert spans, "a non-empty fused text has spans"
    assert spans[0].start == 0 and spans[-1].end == len(fused)
    for prev, nxt in zip(spans, spans[1:]):
        assert prev.end == nxt.start
    for i, span in enumerate(spans):
        assert span.start < span.end
        cands = span.candidates
        assert cands == sorted(set(cands))
        for r in span.sources:
            text = candidates[r.candidate]
            assert text, "a failed candidate is never a source"
            assert 0 <= r.start <= r.end <= len(text)
            mine, theirs = ref_tokens(fused[span.start : span.end]), ref_tokens(text[r.start : r.end])
            if exact:
                assert mine == theirs, (fused[span.start : span.end], text[r.start : r.end])
            else:
                blocks = difflib.SequenceMatcher(None, mine, theirs, autojunk=False).get_matching_blocks()
                common = sum(b.size for b in blocks)
                assert common >= 0.5 * max(len(mine), len(theirs)), (mine, theirs)
        # Neighbours are merged unless some source jumps to another place in its candidate.
        if i and span.candidates == spans[i - 1].candidates and span.sources:
            assert any(a.end != b.start for a, b in zip(spans[i - 1].sources, span.sources))
    # Shares and copied fraction follow from the spans.
    visible = sum(1 for ch in fused if not ch.isspace())

    def chars(sp: Span) -> int:
        return sum(1 for ch in fused[sp.start : sp.end] if not ch.isspace())

    if visible == 0:
        assert att.copied_fraction == 0.0 and all(s == 0.0 for s in att.shares)
        return
    assert att.copied_fraction == pytest.approx(sum(chars(s) for s in spans if s.sources) / visible)
    assert len(att.shares) == len(candidates)
    for j in range(len(candidates)):
        assert att.shares[j] == pytest.approx(sum(chars(s) for s in spans if j in s.candidates) / visible)


def covered_by(att: Attribution, start: int, end: int, candidate: int | None = None) -> float:
    """Share of fused[start:end] in spans with a source (or naming ``candidate``)."""
    total = 0
    for s in att.spans:
        lo, hi = max(s.start, start), min(s.end, end)
        if lo < hi and s.sources and (candidate is None or candidate in s.candidates):
            total += hi - lo
    return total / (end - start)


@pytest.mark.parametrize("edits", [False, True])
def test_invariants_on_generated_cases(edits: bool) -> None:
    rng = random.Random(2024 + edits)
    for _ in range(250):
        fused, candidates, truth = make_case(rng, edits)
        att = attribute(fused, candidates)
        check_invariants(fused, candidates, att, exact=not edits)
        for start, end, source in truth:
            if source is None:
                # Made-up words are never attributed.
                assert covered_by(att, start, end) == 0.0, fused[start:end]
            elif not edits:
                # A sentence copied without word edits is attributed, to its source, end to end
                # (only the separator or trailing punctuation may fall outside).
                assert covered_by(att, start, end, source) >= 0.9, (fused[start:end], layout(fused, att))


def test_duplicated_candidates_are_named_together() -> None:
    rng = random.Random(99)
    for _ in range(50):
        fused, candidates, _ = make_case(rng, edits=False)
        n = len(candidates)
        att = attribute(fused, candidates + candidates)  # every candidate twice
        for s in att.spans:
            names = set(s.candidates)
            assert names == {c + n for c in names if c < n} | {c - n for c in names if c >= n}
            assert {r.candidate % n: (r.start, r.end) for r in s.sources if r.candidate < n} == {
                r.candidate % n: (r.start, r.end) for r in s.sources if r.candidate >= n
            }


def test_pieces_found_across_gaps_never_run_backwards_in_the_candidate() -> None:
    # Two edited copies of a sentence that opens the candidate: the piece before the second copy must
    # not be looked for before the candidate's start (a regression: a negative bound wrapped around).
    cand = (
        "Emoji 👩\u200d🚀 and flags 🇫🇷 sit between words here.\n"
        "Москва является столицей и крупнейшим городом России."
    )
    fused = (
        "МОСКВА ЯВЛЯЕТСЯ СТОЛИЦЕЙ И КРУПНЕЙШИМ ГОРОДОМ РОССИИ.\nゞヵヵゑヶゑゑヶ。  "
        "EMOJI 👩\u200d🚀 AND FLAGS 🇫🇷 qwopp BETWEEN WORDS HERE.  "
        "Ｅｍｏｊｉ 👩\u200d🚀 ａｎｄ ｆｌａｇｓ qwopp ｓｉｔ "
        "ｂｅｔｗｅｅｎ ｗｏｒｄｓ ｈｅｒｅ． Qwx qzxq."
    )
    att = attribute(fused, [cand])
    check_invariants(fused, [cand], att, exact=False)
    for span in att.spans:
        for r in span.sources:
            assert ref_tokens(fused[span.start : span.end])[-3:] == ref_tokens(cand[r.start : r.end])[-3:]


def test_max_gap_zero_bridges_nothing() -> None:
    cand = "Regular exercise improves heart health and lowers the risk of many chronic diseases."
    fused = "Regular exercise improves heart health and reduces the risk of many chronic diseases."
    att = attribute(fused, [cand], max_gap=0)
    cut = fused.index("reduces")
    assert layout(fused, att) == [
        (fused[:cut], [ref(cand, "Regular exercise improves heart health and ")]),
        ("reduces ", []),
        (fused[cut + 8 :], [ref(cand, "the risk of many chronic diseases.")]),
    ]


def test_lower_min_match_finds_two_word_copies() -> None:
    cand = "Green tea contains antioxidants."
    fused = "Some say green tea helps, others disagree."
    assert attribute(fused, [cand]).copied_fraction == 0.0
    att = attribute(fused, [cand], min_match=2)
    assert layout(fused, att)[1] == ("green tea ", [(0, 0, len("Green tea "))])


@pytest.mark.parametrize(("min_match", "max_gap"), [(2, 1), (5, 2), (6, 0), (4, 3)])
def test_invariants_hold_for_other_settings(min_match: int, max_gap: int) -> None:
    rng = random.Random(min_match * 10 + max_gap)
    for _ in range(60):
        fused, candidates, truth = make_case(rng, edits=True)
        att = attribute(fused, candidates, min_match=min_match, max_gap=max_gap)
        check_invariants(fused, candidates, att, exact=False)
        for start, end, source in truth:
            if source is None:
                assert covered_by(att, start, end) == 0.0, fused[start:end]


def test_spans_built_through_the_constructors_are_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    import fusion.attribution.spans as module

    rng = random.Random(5)
    cases = [make_case(rng, edits=True) for _ in range(20)]
    fast = [attribute(fused, cands) for fused, cands, _ in cases]
    monkeypatch.setattr(module, "FILL_DICT", False)
    assert [attribute(fused, cands) for fused, cands, _ in cases] == fast


# --- partition: every character once ------------------------------------------------------------------------


def test_partition_counts_each_character_once_and_adds_up() -> None:
    from fusion.attribution import attribute, partition

    a = "Water basil when the soil is dry. Give it six hours of sun."
    b = "Give it six hours of sun. Pinch off the flower buds early."
    fused = "Water basil when the soil is dry. Give it six hours of sun. Pinch off the flower buds early. Enjoy!"
    att = attribute(fused, [a, b])
    parts = partition(fused, att, 2)
    assert abs(parts.parts_total - 1.0) < 1e-9
    # the shared sentence is in both; counted once, as shared, where the overlapping shares count it twice
    assert parts.shared > 0.2 and parts.only[0] > 0.2 and parts.only[1] > 0.2 and parts.novel > 0
    assert sum(att.shares) > parts.parts_total - parts.novel + 0.2
    assert partition("", attribute("", [a]), 1).parts_total == 0


def test_verbatim_source_ignores_surrounding_white_space() -> None:
    from fusion.attribution import verbatim_source

    assert verbatim_source("  Paris.\n", ["Lyon.", None, "Paris."]) == 2
    assert verbatim_source("Paris!", ["Paris."]) is None
    assert verbatim_source("   ", ["   "]) is None


def test_whole_percents_of_a_partition_add_up_to_100() -> None:
    from fusion.attribution import SharePartition

    # A scenario's legend read 12 + 76 + 0 + 9 + 0 + 4 + 0 = 101 when each part was rounded on its own.
    parts = SharePartition(only=[0.336, 0.336], shared=0.328, novel=0.0)
    assert sum(round(100 * v) for v in [*parts.only, parts.shared, parts.novel]) == 101
    assert parts.whole_percents() == [34, 33, 33, 0]
    assert SharePartition(only=[1 / 3, 1 / 3], shared=1 / 3, novel=0.0).whole_percents() == [34, 33, 33, 0]
    assert SharePartition(only=[0.0, 0.0], shared=0.0, novel=0.0).whole_percents() == [0, 0, 0, 0]  # empty text
