"""The coherence detector (fusion.coherence) on hand-made texts: each defect it must find, and the
look-alikes of well-formed answers it must leave alone."""

from __future__ import annotations

import pytest

from fusion.coherence import coherence_defects, is_coherent, lead_ins, outline
from fusion.text import split_units


def kinds(text: str, context: str = "") -> list[tuple[str, str]]:
    """(kind, blamed unit's text) of every defect found."""
    return [(d.kind, d.text.strip()) for d in coherence_defects(text, context=context)]


# ---------------------------------------------------------------------------------------------------------
# Defects it must find

HOPSCOTCH = """\
Here's how to draw a hopscotch game on your driveway:

1. Gather your materials:
* Chalk
* A small rock or a beanbag
2. Choose a location on your driveway:
3. Draw the first square:
* Start by drawing a square with your chalk.
4. Add additional features (optional):
5. Test your game:
* Play a round or two.

That's it! Have fun playing!"""


def test_numbered_lead_ins_without_their_items() -> None:
    assert kinds(HOPSCOTCH) == [
        ("empty-lead-in", "2. Choose a location on your driveway:"),
        ("empty-lead-in", "4. Add additional features (optional):"),
    ]


@pytest.mark.parametrize(
    "text, blamed",
    [
        ("Some tips for the trip.\n\n## Packing", "## Packing"),  # a heading ends the text
        ("# Guide\n\n## Packing\n\n## Travel\n\nTake the train.", "## Packing"),  # same level next
        ("Intro.\n\n**Packing**\n\n## Travel\n\nTake the train.", "**Packing**"),  # bold, then a # heading
        ("Intro.\n\nPacking\n-------\n\nTravel\n-------\n\nTake the train.", "Packing\n-------"),  # setext
        ("The plan has three parts.\n\n**Budget:**", "**Budget:**"),  # bold label at the end
    ],
)
def test_headings_without_content(text: str, blamed: str) -> None:
    assert [b for _, b in kinds(text)] == [blamed]


@pytest.mark.parametrize(
    "text, blamed",
    [
        ("Water boils at 100 degrees.\n\nHere are the steps you should follow:", None),
        ("Ingredients:\n\nInstructions:\n\n1. Mix the flour.", "Ingredients:"),  # labels are siblings
        ("Intro.\n\n**Ingredients:**\n\n**Method:**\n\n1. Mix the flour.", "**Ingredients:**"),
        ("Here is the recipe:\n\n1. Mix the flour.\n\nTo serve:", "To serve:"),
        ("Here are some basic rules:\n\nNow, let's make some words.", None),  # announced, prose only
        ("- Pros:\n- Cons:\n  - It is slow.", "- Pros:"),  # a bullet lead-in followed by another one
        ("1. Prepare:\n\n   - Wash the rice.\n\n2. Cook:\n\n## Serving\n\nServe hot.", "2. Cook:"),
        # Other languages: the structure is the same, so is the check.
        ("Die Anleitung ist einfach.\n\nFolgende Schritte sind nötig:", None),
        ("1. Reúne los materiales:\n2. Elige un lugar:\n   - Un sitio plano.", "1. Reúne los materiales:"),
        ("準備はかんたんです。\n\n材料：", "材料："),
        ("・材料をそろえる：\n・混ぜる：\n　・卵を割る", "・材料をそろえる："),
        ("1．材料をそろえる：\n2．混ぜる。", "1．材料をそろえる："),
    ],
)
def test_lead_ins_without_content(text: str, blamed: str | None) -> None:
    found = kinds(text)
    assert len(found) == 1 and found[0][0] == "empty-lead-in", found
    if blamed is not None:
        assert found[0][1] == blamed
    else:
        assert found[0][1].endswith(":")


def test_labels_in_a_row_are_siblings_unless_the_second_starts_a_family() -> None:
    song = "Verse 1:\n\nChorus:\nLa la la.\n\nVerse 2:\nAnother line.\n\nChorus:\nLa la la."
    assert kinds(song) == [("empty-lead-in", "Verse 1:")]
    # Sub-labels sharing a first word (or recurring under each parent) make the first label their parent.
    assert is_coherent(
        "Single-use bottles:\n\nEnvironmental effects:\n- Waste.\n\nHealth effects:\n- Chemicals.\n\n"
        "Reusable bottles:\n\nEnvironmental effects:\n- Less waste."
    )
    assert is_coherent("**Ingredients:**\n\n**For the dough:**\n* Flour\n\n**For the filling:**\n* Cheese")
    emptied = "**Ingredients:**\n\n**For the dough:**\n\n**For the filling:**\n* Cheese"
    assert kinds(emptied) == [("empty-lead-in", "**For the dough:**")]


def test_the_closing_paragraph_is_not_the_last_steps_content() -> None:
    text = "1. Gather the chalk:\n* Any colour.\n2. Draw the squares:\n\nThat's it! Have fun playing."
    assert kinds(text) == [("empty-lead-in", "2. Draw the squares:")]
    # Numbered headings over paragraphs are a style of their own: there the last one's paragraph counts.
    assert is_coherent("1. Tea cup breeds:\n\nThey are tiny.\n\n2. Other small breeds:\n\nSome are small.")


def test_a_lead_in_whose_only_content_is_an_empty_item_lead_in() -> None:
    text = "The proof is short.\n\nTo prove this we use a direct proof:\n\n1) Assume the hypothesis, that is:"
    assert kinds(text) == [
        ("empty-lead-in", "To prove this we use a direct proof:"),
        ("empty-lead-in", "1) Assume the hypothesis, that is:"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "Sleep matters. The following tips will help you sleep better.",
        "Here are some simple ways to save water. Shorter showers help most.",
        "You will find the options listed below. They depend on your budget.",
    ],
)
def test_announced_list_that_never_comes(text: str) -> None:
    assert [k for k, _ in kinds(text)] == ["missing-list"]


def test_reference_to_a_list_the_text_does_not_have() -> None:
    no_list = "Plan early. By following these steps, you will be ready."
    assert [k for k, _ in kinds(no_list)] == ["missing-list"]
    assert [k for k, _ in kinds("Plan early.\n\nAll the steps above take a week.")] == ["missing-list"]
    # With the list there, both read fine.
    assert is_coherent("- Plan early.\n- Pack light.\n\nBy following these steps, you will be ready.")
    assert is_coherent("- Plan early.\n- Pack light.\n\nAll the steps above take a week.")


def test_reference_to_a_step_the_text_does_not_number() -> None:
    text = "1. Mix the flour.\n2. Add the eggs.\n3. Bake.\n\nAs mentioned in step 4, let it cool."
    assert kinds(text) == [("dangling-step", "As mentioned in step 4, let it cool.")]
    assert is_coherent(text.replace("step 4", "step 2"))
    # A step the prompt numbers is not dangling.
    assert is_coherent(text, context="Step 4 of my recipe says to let it cool. Why?")
    assert [k for k, _ in kinds("Wiederholen Sie Schritt 3, bis der Teig glatt ist.")] == ["dangling-step"]


# ---------------------------------------------------------------------------------------------------------
# Well-formed answers it must leave alone


@pytest.mark.parametrize(
    "text",
    [
        # A sentence lead-in over labels over lists (recipes).
        "Here is a recipe for bourekas:\n\nIngredients:\n- 2 cups flour\n- 1 egg\n\nInstructions:\n"
        "1. Mix the flour.\n2. Bake.",
        "Here's a recipe:\n\nIngredients:\n- 2 cups flour\n\nMethod:\n1. Mix.",  # short, but an introduction
        # Bullet lead-ins whose items are their siblings; numbered headings followed by paragraphs.
        "- Some key launches included:\n- 2002: the first Symbian phones\n- 2007: the iPhone",
        "1. Tea cup breeds:\n\nThey are bred for size.\n\n2. Other small breeds:\n\nSome are small anyway.",
        # A lead-in over a numbered list whose items carry their own lead-ins and sub-items.
        "We can use the following methods:\n\n1. Factorization:\n\n"
        "For this method, follow the steps below:\n\n"
        "Step 1: Group the terms.\n\n2. Synthetic division:\n\nTry x = 4.",
        # A bold title over bold sections; a bold sign-off, placeholder or end mark is not a heading.
        "**Lingua Nova**\n\n**Introduction**\n\nLingua Nova is a constructed language.",
        "Thank you for your time.\n\n**Best regards,**\n\n**[Your Name]**",
        "And they lived happily ever after.\n\n**The End**",
        # Colon lines followed by code, a table, a quote, or a paragraph.
        "Run this:\n\n```bash\nls -la\n```",
        "Compare them:\n\n| a | b |\n|---|---|\n| 1 | 2 |",
        "As the saying goes:\n\n> Measure twice, cut once.",
        "Here's what happened:\n\nThe train was late, so we missed the connection.",
        "The length is given by the distance formula:\n\nd = sqrt((x2 - x1)^2 + (y2 - y1)^2)",
        "Here are the basic rules:\n\nKeep it short: one idea per line.\n\nBe clear: no jargon.",
        # "the following" that is not a list, or whose content follows on the same line.
        "The following year, the tower was finished.",
        "Open the slides with the following link: [Insert Link Here].",
        # Steps numbered in paragraphs, and references to them.
        "Step 1: Mix the flour.\n\nStep 2: Add the eggs.\n\nIf the dough is dry, repeat step 2.",
        # Paragraphs opening with a label count as the list "these steps" points at.
        "Determine your goal: know why.\n\nSet up the radio: plug it in.\n\nBefore taking these steps, ask.",
        # Steps named in code comments are not references to the text's steps.
        'The order is wrong:\n\n```python\nescape("<b>")\n# step 3: "&amp;lt;b"\n```\n\nEscape `&` first.',
        "Run it:\n\n```sh\n# the following steps need root\nmake install\n```",
        # Colons inside code do not count.
        "Use this:\n\n```python\nif x:\n    for y in z:\n```\n\nIt loops.",
        # Japanese and German with content under every lead-in.
        "材料：\n・卵　2個\n・砂糖　大さじ1\n\n"
        "作り方：\n1．卵を割る。\n2．混ぜる。",
        "Sie brauchen Folgendes:\n\n- Mehl\n- Eier",
    ],
)
def test_well_formed_answers_pass(text: str) -> None:
    assert coherence_defects(text) == []


def test_lead_ins_report_their_content_units() -> None:
    text = "Intro.\n\n1. Gather:\n* Chalk\n* A rock\n2. Draw:\n* A square.\n\nDone."
    units = split_units(text)
    found = {units[lead.unit].text: [units[k].text for k in lead.content] for lead in lead_ins(text, units)}
    # The closing paragraph after the last step is past the list: not that step's content.
    assert found == {"1. Gather:": ["* Chalk", "* A rock"], "2. Draw:": ["* A square."]}


def test_a_colon_lines_own_list_ends_where_another_list_or_a_paragraph_starts() -> None:
    text = "You will need the following:\n- A passport\n- Cash\n\n1. Plan the route:\n   - Pick three cities."
    units = split_units(text)
    (need, plan) = lead_ins(text, units)
    assert [units[k].text for k in need.own] == ["- A passport", "- Cash"]
    # Its content, for the emptiness check, runs on: cut its own list and the steps still follow it.
    assert [units[k].text for k in need.content] == ["- A passport", "- Cash", "   - Pick three cities."]
    assert [units[k].text for k in plan.own] == ["   - Pick three cities."]


def test_outline_groups_a_line_of_sentences_and_reads_levels() -> None:
    blocks = outline("# Title\n\nOne. Two. Here they are:\n\n**Notes**\n\nItems:\n- a")
    assert [(b.role, b.level) for b in blocks] == [
        ("heading", 1),
        ("lead-in", 9),
        ("heading", 7),
        ("heading", 8),
        ("item", 0),
    ]
    assert blocks[1].units == (1, 2, 3)


def test_defect_positions_point_at_the_blamed_unit() -> None:
    text = "Intro sentence.\n\n## Empty"
    (d,) = coherence_defects(text)
    assert text[d.start : d.end] == "## Empty" and "Empty" in str(d)
