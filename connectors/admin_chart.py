"""The admin page's charts, drawn on the server as SVG: questions per day and the answered/refused share."""

from __future__ import annotations

from markupsafe import Markup, escape

WIDTH, HEIGHT, AXIS = 640, 220, 28
ANSWERED_COLOUR, REFUSED_COLOUR = "#2f855a", "#c05621"


def questions_per_day_svg(per_day: list[dict]) -> Markup:
    """Stacked bars (answered below, refused above) of every day, with the busiest day's count on the axis."""
    busiest = max((day["questions"] for day in per_day), default=0) or 1
    slot = (WIDTH - AXIS) / max(len(per_day), 1)
    bar = max(slot * 0.7, 1.0)
    scale = (HEIGHT - 2 * AXIS) / busiest
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>Questions per day, {per_day[0]['date'] if per_day else ''} to "
        f"{per_day[-1]['date'] if per_day else ''}</title>",
        f'<line x1="{AXIS}" y1="{HEIGHT - AXIS}" x2="{WIDTH}" y2="{HEIGHT - AXIS}" stroke="#999"/>',
        f'<text x="{AXIS - 4}" y="{AXIS + 4}" text-anchor="end" font-size="11">{busiest}</text>',
    ]
    for index, day in enumerate(per_day):
        x = AXIS + index * slot + (slot - bar) / 2
        base = HEIGHT - AXIS
        for kind, colour in (("answered", ANSWERED_COLOUR), ("refused", REFUSED_COLOUR)):
            height = day[kind] * scale
            if height:
                base -= height
                parts.append(
                    f'<rect class="bar {kind}" x="{x:.1f}" y="{base:.1f}" width="{bar:.1f}" '
                    f'height="{height:.1f}" fill="{colour}"><title>{escape(day["date"])}: '
                    f"{day[kind]} {kind}</title></rect>"
                )
        if len(per_day) <= 10 or index % max(len(per_day) // 6, 1) == 0:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{HEIGHT - AXIS + 14}" text-anchor="middle" '
                f'font-size="10">{escape(day["date"][5:])}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def share_svg(answered: int, refused: int) -> Markup:
    """One horizontal bar split into the answered and the refused share, labelled in percent."""
    total = answered + refused
    answered_width = WIDTH * answered / total if total else 0
    label = (
        f"{round(100 * answered / total)}% answered, {round(100 * refused / total)}% refused" if total else ""
    )
    parts = [
        f'<svg class="share" role="img" viewBox="0 0 {WIDTH} 24" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{label or 'No questions'}</title>",
        f'<rect class="share answered" width="{answered_width:.1f}" height="24" fill="{ANSWERED_COLOUR}"/>',
        f'<rect class="share refused" x="{answered_width:.1f}" width="{WIDTH - answered_width:.1f}" '
        f'height="24" fill="{REFUSED_COLOUR if total else "#ddd"}"/>',
        "</svg>",
    ]
    return Markup("".join(parts))
