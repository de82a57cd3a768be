"""Candidate colours shared by the attribution view, the candidate cards, the figures and the report.

Every candidate gets a light background (dark text is always set on it explicitly, so it reads the same in
Streamlit's light and dark themes) and a darker border of the same hue. The first eight backgrounds are
Paul Tol's "light" qualitative scheme, which was designed for exactly this use: filled cells with black
labels, reasonably distinct in normal and colour-blind vision. Runs may have up to 32 candidates, more than
any published scheme covers, so the rest are chosen greedily from a grid of light colours: each new colour
is the one farthest (in OKLab) from those already taken, where "farthest" is the smallest distance over
normal vision and simulated protanopia and deuteranopia. Only colours with at least 7:1 contrast against
the text colour (WCAG AAA) are eligible.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Sequence

# Text on any candidate colour. Near-black rather than black: softer, still above 7:1 on every background.
TEXT_ON_COLOR = "#111827"

# Shared spans (text found in several candidates): stripes of the sources' colours plus this dashed outline.
SHARED_OUTLINE = "#374151"
SHARED_OUTLINE_STYLE = f"1px dashed {SHARED_OUTLINE}"
SHARED_STRIPE_PX = 6

# Novel text (in no candidate): no background, the theme's own text colour, a dotted underline.
NOVEL_DECORATION = "underline dotted"
NOVEL_UNDERLINE_OFFSET = "3px"
# Where novel text needs a fill (legend swatch, bar charts): a neutral grey outside the candidate palette.
NOVEL_FILL = "#d1d5db"
NOVEL_BORDER = "#6b7280"
COPIED_FILL = "#9ca3af"  # "copied from some candidate" in the copied-vs-new bar

# Highlight mode: spans of other candidates fade to this opacity.
FADED_OPACITY = 0.3

MAX_COLORS = 32

_TOL_LIGHT = (
    "#77AADD",  # light blue
    "#EE8866",  # orange
    "#EEDD88",  # light yellow
    "#FFAABB",  # pink
    "#99DDFF",  # light cyan
    "#44BB99",  # mint
    "#BBCC33",  # pear
    "#AAAA00",  # olive
)

MIN_TEXT_CONTRAST = 7.0

# Machado, Oliveira & Fernandes (2009) simulation matrices at full severity, applied in linear sRGB.
_PROTAN = (
    (0.152286, 1.052583, -0.204868),
    (0.114503, 0.786281, 0.099216),
    (-0.003882, -0.048116, 1.051998),
)
_DEUTAN = (
    (0.367322, 0.860646, -0.227968),
    (0.280085, 0.672501, 0.047413),
    (-0.011820, 0.042940, 0.968881),
)

RGB = tuple[float, float, float]  # linear sRGB, 0..1


def candidate_color(i: int) -> str:
    """Light background colour (``#rrggbb``) for candidate ``i`` (0-based); wraps after 32."""
    return _backgrounds()[_slot(i)]


def candidate_border(i: int) -> str:
    """Darker colour of the same hue as ``candidate_color(i)``: borders, underlines, bar outlines."""
    return _borders()[_slot(i)]


def candidate_style(i: int) -> str:
    """Inline CSS for text sitting on candidate ``i``'s colour (background and text colour both set)."""
    return f"background-color:{candidate_color(i)};color:{TEXT_ON_COLOR};"


def shared_background(indices: Sequence[int]) -> str:
    """CSS ``background`` value for a span shared by several candidates: diagonal stripes of their colours."""
    colors = [candidate_color(i) for i in indices] or [NOVEL_FILL]
    if len(colors) == 1:
        return colors[0]
    stops = []
    for k, c in enumerate(colors):
        stops.append(f"{c} {k * SHARED_STRIPE_PX}px {(k + 1) * SHARED_STRIPE_PX}px")
    return f"repeating-linear-gradient(135deg,{','.join(stops)})"


def _slot(i: int) -> int:
    if isinstance(i, bool) or not isinstance(i, int):
        raise TypeError(f"candidate index must be an int, not {type(i).__name__}")
    return i % MAX_COLORS


# --- colour maths -------------------------------------------------------------------------------------


def hex_to_linear(hex_color: str) -> RGB:
    h = hex_color.lstrip("#")
    return tuple(_to_linear(int(h[k : k + 2], 16) / 255) for k in (0, 2, 4))  # type: ignore[return-value]


def linear_to_hex(rgb: RGB) -> str:
    return "#" + "".join(f"{round(_to_gamma(min(1.0, max(0.0, c))) * 255):02x}" for c in rgb)


def _to_linear(c: float) -> float:
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def _to_gamma(c: float) -> float:
    return 12.92 * c if c <= 0.0031308 else 1.055 * c ** (1 / 2.4) - 0.055


def relative_luminance(hex_color: str) -> float:
    r, g, b = hex_to_linear(hex_color)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: str, b: str) -> float:
    """WCAG 2 contrast ratio between two ``#rrggbb`` colours (1 to 21)."""
    la, lb = relative_luminance(a), relative_luminance(b)
    hi, lo = max(la, lb), min(la, lb)
    return (hi + 0.05) / (lo + 0.05)


def _linear_to_oklab(rgb: RGB) -> RGB:
    r, g, b = rgb
    l_ = 0.4122214708 * r + 0.5363325363 * g + 0.0514459929 * b
    m_ = 0.2119034982 * r + 0.6806995451 * g + 0.1073969566 * b
    s_ = 0.0883024619 * r + 0.2817188376 * g + 0.6299787005 * b
    l_, m_, s_ = (math.copysign(abs(x) ** (1 / 3), x) for x in (l_, m_, s_))
    return (
        0.2104542553 * l_ + 0.7936177850 * m_ - 0.0040720468 * s_,
        1.9779984951 * l_ - 2.4285922050 * m_ + 0.4505937099 * s_,
        0.0259040371 * l_ + 0.7827717662 * m_ - 0.8086757660 * s_,
    )


def _oklab_to_linear(lab: RGB) -> RGB:
    L, a, b = lab
    l_ = (L + 0.3963377774 * a + 0.2158037573 * b) ** 3
    m_ = (L - 0.1055613458 * a - 0.0638541728 * b) ** 3
    s_ = (L - 0.0894841775 * a - 1.2914855480 * b) ** 3
    return (
        4.0767416621 * l_ - 3.3077115913 * m_ + 0.2309699292 * s_,
        -1.2684380046 * l_ + 2.6097574011 * m_ - 0.3413193965 * s_,
        -0.0041960863 * l_ - 0.7034186147 * m_ + 1.7076147010 * s_,
    )


def _oklch_to_linear(L: float, C: float, h_deg: float) -> RGB:
    h = math.radians(h_deg)
    return _oklab_to_linear((L, C * math.cos(h), C * math.sin(h)))


def _in_gamut(rgb: RGB) -> bool:
    return all(-1e-6 <= c <= 1 + 1e-6 for c in rgb)


def _simulate(rgb: RGB, m: tuple[RGB, RGB, RGB]) -> RGB:
    return tuple(  # type: ignore[return-value]
        min(1.0, max(0.0, row[0] * rgb[0] + row[1] * rgb[1] + row[2] * rgb[2])) for row in m
    )


def _views(hex_color: str) -> tuple[RGB, RGB, RGB]:
    """OKLab coordinates as seen with normal vision, protanopia and deuteranopia."""
    lin = hex_to_linear(hex_color)
    return (_linear_to_oklab(lin), _linear_to_oklab(_simulate(lin, _PROTAN)), _linear_to_oklab(_simulate(lin, _DEUTAN)))


def perceived_distance(a: str, b: str) -> float:
    """Smallest OKLab distance between two colours over normal, protan and deutan vision."""
    va, vb = _views(a), _views(b)
    return min(math.dist(x, y) for x, y in zip(va, vb))


def _grid() -> list[str]:
    out: list[str] = []
    for L in (0.95, 0.9, 0.85, 0.8, 0.75):
        for C in (0.05, 0.09, 0.13):
            for h in range(0, 360, 12):
                rgb = _oklch_to_linear(L, C, float(h))
                if not _in_gamut(rgb):
                    continue
                hx = linear_to_hex(rgb)
                if contrast_ratio(hx, TEXT_ON_COLOR) >= MIN_TEXT_CONTRAST:
                    out.append(hx)
    return out


@lru_cache(maxsize=1)
def _backgrounds() -> tuple[str, ...]:
    chosen = list(_TOL_LIGHT)
    # Keep clear of the neutral greys used for novel text and of the page's white.
    avoid = [NOVEL_FILL, "#ffffff"]
    pool = [c for c in dict.fromkeys(_grid()) if c.lower() not in {x.lower() for x in chosen}]
    views = {c: _views(c) for c in pool + chosen + avoid}

    def dist(a: str, b: str) -> float:
        return min(math.dist(x, y) for x, y in zip(views[a], views[b]))

    nearest = {c: min(dist(c, s) for s in chosen + avoid) for c in pool}
    while len(chosen) < MAX_COLORS and nearest:
        best = max(nearest, key=lambda c: (nearest[c], c))
        chosen.append(best)
        del nearest[best]
        for c in nearest:
            nearest[c] = min(nearest[c], dist(c, best))
    return tuple(c.lower() for c in chosen)


@lru_cache(maxsize=1)
def _borders() -> tuple[str, ...]:
    out = []
    for bg in _backgrounds():
        L, a, b = _linear_to_oklab(hex_to_linear(bg))
        C, h = math.hypot(a, b), math.degrees(math.atan2(b, a))
        # Same hue, much darker, chroma raised a little so the hue stays recognisable; back off into gamut.
        chroma = max(C, 0.06) * 1.2
        rgb = _oklch_to_linear(0.48, chroma, h)
        while not _in_gamut(rgb) and chroma > 0:
            chroma = max(0.0, chroma - 0.005)
            rgb = _oklch_to_linear(0.48, chroma, h)
        out.append(linear_to_hex(rgb))
    return tuple(out)


def palette(n: int = MAX_COLORS) -> list[str]:
    """The first ``n`` candidate background colours."""
    return [candidate_color(i) for i in range(n)]
