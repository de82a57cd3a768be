"""A run as one self-contained HTML file: prompt, settings, candidates, Best-of-N pick, fusion with
attribution colours, and votes.

The file has inline CSS only: no scripts, no external assets, and a Content-Security-Policy that forbids
both, so even if some model text slipped through unescaped, opening the report could not run or fetch
anything. Everything that comes from a model or a user is escaped.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Mapping, Sequence

from components.attribution_view import attribution_html, esc, label_for, legend_html
from components.candidate_cards import candidate_card_html, default_status
from components.diff_view import diff_html
from components.markdown_view import attributed_markdown_html, markdown_html
from fusion.attribution import partition
from fusion.text import plural
from fusion.types import Run

_CSS = """
:root{color-scheme:light}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Sans CJK JP",sans-serif;
margin:0;background:#f9fafb;color:#111827;line-height:1.5}
main{max-width:1100px;margin:0 auto;padding:1.5rem 1.25rem 3rem}
h1{font-size:1.5rem;margin:0 0 .25rem}
h2{font-size:1.15rem;margin:2rem 0 .6rem;border-bottom:1px solid #e5e7eb;padding-bottom:.25rem}
.meta{color:#4b5563;font-size:.85rem}
.box{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:.7rem .9rem}
.pre{white-space:pre-wrap;overflow-wrap:anywhere}
table{border-collapse:collapse;font-size:.85rem;background:#fff}
th,td{border:1px solid #e5e7eb;padding:.3rem .55rem;text-align:left;vertical-align:top}
th{background:#f3f4f6}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:.75rem}
.grid .fx-card{background:#fff;margin:0}
.grid .fx-card-text,.grid .fx-card-error{max-height:none!important;overflow:visible!important}
footer{margin-top:2.5rem;color:#6b7280;font-size:.8rem}
"""

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

WINNER_NAMES = {"fused": "Fusion-of-N", "bon": "Best-of-N", "tie": "tie", "both_bad": "both bad"}


def _when(ts: Any) -> str:
    if isinstance(ts, (int, float)) and not isinstance(ts, bool):
        return dt.datetime.fromtimestamp(float(ts), tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(ts, dt.datetime):
        return ts.strftime("%Y-%m-%d %H:%M")
    return str(ts) if ts is not None else ""


def _row(name: str, value: Any) -> str:
    return f"<tr><th>{esc(name)}</th><td>{esc(value)}</td></tr>"


def _winner(vote: Mapping[str, Any]) -> str:
    winner = vote.get("winner")
    if not winner:
        choice, a_is = vote.get("choice"), vote.get("a_is")
        if choice in ("tie", "both_bad"):
            winner = choice
        elif choice in ("A", "B") and a_is in ("fused", "bon"):
            winner = a_is if choice == "A" else ("bon" if a_is == "fused" else "fused")
    return WINNER_NAMES.get(str(winner), str(winner or ""))


def _as_dict(vote: Any) -> Mapping[str, Any]:
    if isinstance(vote, Mapping):
        return vote
    if dataclasses.is_dataclass(vote) and not isinstance(vote, type):
        return dataclasses.asdict(vote)
    return vars(vote)


def _votes_section(votes: Sequence[Any]) -> str:
    votes = [_as_dict(v) for v in votes]
    if not votes:
        return '<p class="meta">No votes yet.</p>'
    tally: dict[str, int] = {}
    rows = []
    for v in votes:
        w = _winner(v)
        tally[w] = tally.get(w, 0) + 1
        a_is = v.get("a_is")
        shown = f"A = {WINNER_NAMES.get(str(a_is), a_is)}" if a_is else ""
        blind = "" if v.get("blind") is None else ("yes" if v.get("blind") else "no (after the reveal)")
        rows.append(
            "<tr>"
            f"<td>{esc(v.get('annotator', ''))}</td><td>{esc(v.get('choice', ''))}</td><td>{esc(shown)}</td>"
            f"<td><b>{esc(w)}</b></td><td>{esc(blind)}</td><td class=\"pre\">{esc(v.get('comment') or '')}</td>"
            f"<td>{esc(_when(v.get('updated_at') or v.get('created_at')))}</td>"
            "</tr>"
        )
    summary = ", ".join(f"{esc(k)}: {n}" for k, n in sorted(tally.items(), key=lambda kv: -kv[1]))
    return (
        f'<p class="fx-vote-summary">{plural(len(votes), "vote")}. Preferred: {summary}.</p>'
        "<table class=\"fx-votes\"><thead><tr><th>annotator</th><th>choice</th><th>shown as</th><th>winner</th>"
        "<th>blind</th><th>comment</th><th>when</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def run_report_html(
    run: Run, votes: Sequence[dict] = (), *, labels: Sequence[str] | None = None, markdown: bool = True
) -> str:
    """The whole run as an HTML document (a string starting with ``<!DOCTYPE html>``).

    Model answers are rendered as Markdown (safely, as on the pages) unless ``markdown`` is off; each
    candidate's card marks what the fusion kept and dropped, and a section compares the pick with the fusion
    sentence by sentence (both computed by the engine here, so an old stored run gets them too).
    """
    from fusion.diff import run_diff
    from fusion.kept import run_kept

    try:
        reports = run_kept(run) or []
    except Exception:  # noqa: BLE001 - the report goes on without kept marks (e.g. an unreadable old run)
        reports = []
    kept = {r.index: r for r in reports if r is not None}
    diff = run_diff(run)
    n = max([c.index + 1 for c in run.candidates] + [0])
    if labels is None:
        by_index = {c.index: c.label for c in run.candidates}
        labels = [by_index.get(i, f"Candidate {i + 1}") for i in range(n)]
    labels = list(labels)

    parts: list[str] = []
    parts.append("<header>")
    parts.append("<h1>Fusion Explorer: run report</h1>")
    tags = ", ".join(run.tags)
    parts.append(
        f'<div class="meta">Run <code>{esc(run.id)}</code> · {esc(_when(run.created_at))} · source {esc(run.source)}'
        + (f" · tags: {esc(tags)}" if tags else "")
        + f" · N = {len(run.candidates)}</div>"
    )
    parts.append("</header>")

    parts.append("<section><h2>Prompt</h2>")
    if run.prompt.system:
        parts.append(f'<p class="meta">System message</p><div class="box pre fx-system">{esc(run.prompt.system)}</div>')
        parts.append('<p class="meta">User message</p>')
    prompt_body = markdown_html(run.prompt.text) if markdown else esc(run.prompt.text)
    parts.append(f'<div class="box {"" if markdown else "pre "}fx-prompt">{prompt_body}</div></section>')

    s = run.settings
    parts.append("<section><h2>Settings</h2><table>")
    pool = "; ".join(f"{m.model} × {m.samples}" for m in run.pool) or "(candidates supplied, not generated)"
    parts.append(_row("candidate pool", pool))
    if run.pool:  # sampling settings mean something only for candidates this app generated
        for name in ("temperature", "top_p", "max_tokens", "seed"):
            value = getattr(s, name)
            parts.append(_row(name, "default" if value is None else value))
    if run.bon is not None:
        parts.append(_row("Best-of-N selector", run.bon.method))
    if run.fused is not None:
        parts.append(_row("fusion method", run.fused.method))
        if run.fused.template:
            parts.append(_row("fusion prompt", run.fused.template))
    parts.append("</table></section>")

    bon = run.bon
    parts.append("<section><h2>Candidates</h2>")
    if bon is not None:
        if bon.index is not None:
            parts.append(f'<p>Best-of-N pick: <b class="fx-pick-name">{esc(label_for(labels, bon.index))}</b> ({esc(bon.method)}).</p>')
        if bon.error:
            parts.append(f'<p class="fx-error">Best-of-N could not pick: {esc(bon.error)}</p>')
    parts.append('<div class="grid">')
    for c in run.candidates:
        score = bon.scores[c.index] if bon is not None and 0 <= c.index < len(bon.scores) else None
        note = bon.notes[c.index] if bon is not None and 0 <= c.index < len(bon.notes) else None
        parts.append(
            candidate_card_html(
                c,
                status=default_status(c),
                score=score,
                is_pick=bon is not None and bon.index == c.index,
                note=note,
                markdown=markdown,
                units=kept[c.index].units if c.index in kept else None,
                kept_summary=kept[c.index].summary() if c.index in kept else None,
            )
        )
    parts.append("</div>")
    if kept:
        parts.append(
            '<p class="meta">Each card marks what the fused answer did with its sentences and list items: kept, '
            "edited (dashed underline) or dropped (faded and struck through).</p>"
        )
    parts.append("</section>")

    parts.append("<section><h2>Fusion-of-N</h2>")
    fused = run.fused
    if fused is None:
        parts.append('<p class="meta">No fusion in this run.</p>')
    else:
        details = [fused.method]
        if fused.model:
            details.append(f"model {fused.model}")
        if fused.order:
            details.append("order shown to the fusor: " + ", ".join(label_for(labels, i) for i in fused.order))
        if fused.latency_s is not None:
            details.append(f"{fused.latency_s:.1f} s")
        parts.append(f'<p class="meta">{esc(" · ".join(details))}</p>')
        if fused.error:
            parts.append(f'<p class="fx-error">The fusion failed: {esc(fused.error)}</p>')
        if run.attribution is not None and fused.text:
            a = run.attribution
            parts.append(
                f'<p class="meta">{a.copied_fraction:.0%} of the fused text is copied from the candidates; '
                "hover a span to see where it came from.</p>"
            )
            parts.append(legend_html(labels, partition(run.fused.text, a, len(labels)), shares=a.shares))
            render = attributed_markdown_html if markdown else attribution_html
            parts.append(f'<div class="box">{render(fused.text, a, labels)}</div>')
        elif fused.text:
            body = markdown_html(fused.text) if markdown else esc(fused.text)
            parts.append(f'<div class="box {"" if markdown else "pre "}fx-fused">{body}</div>')
    parts.append("</section>")
    if diff is not None and run.bon_text is not None and fused is not None:
        parts.append("<section><h2>Best-of-N pick against the fusion, sentence by sentence</h2>")
        parts.append(diff_html(run.bon_text, fused.text, diff, markdown=markdown))
        parts.append("</section>")

    parts.append("<section><h2>Votes</h2>")
    parts.append(_votes_section(votes))
    parts.append("</section>")
    parts.append(
        f"<footer>Generated by Fusion Explorer on {esc(_when(dt.datetime.now(dt.timezone.utc).timestamp()))}. "
        "Model outputs are escaped: no script or remote content can run or load.</footer>"
    )

    title = f"Fusion Explorer run {run.id}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(_CSP)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head>"
        "<body><main>" + "".join(parts) + "</main></body></html>\n"
    )
