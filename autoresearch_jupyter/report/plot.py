"""The progress plot as static SVG, for places without JavaScript (the static fallback of the
widget and the run object, hence saved notebooks, nbconvert and the lineage notebook's outputs).

The same picture as ``static/treeview.js``'s ``buildPlot``: each node's metric in creation order,
coloured by outcome, nodes without a metric on a strip under the axis, the running best as a
step line, the baseline dashed, a measured noise floor as a band around it. Plain SVG text: no
plotting library for five shapes.
"""

from __future__ import annotations

from html import escape

from ..core.node import Node, finite
from ..core.protocol import Protocol

W, H, LEFT, RIGHT, TOP, BOTTOM = 800, 150, 52, 10, 8, 26
COLOURS = {  # fill, stroke: the view's colours (treeview.css .ar-pt.ar-k-*)
    "kept": ("#52b788", "#2d6a4f"), "reverted": ("#d9d9d9", "#808080"), "buggy": ("#f4a6a6", "#b42318"),
    "timeout": ("#ffc48a", "#c4620a"), "running": ("#a8c8ff", "#1f5fbf"),
}
OTHER = ("#f2f2f2", "#a0a0a0")


def _good(node: Node) -> bool:
    return node.status.value == "ok" and finite(node.metric) is not None


def progress_svg(nodes: list[Node], protocol: Protocol, *, noise_sd: float | None = None) -> str:
    """An SVG of the run's progress; empty when there are no nodes."""
    nodes = sorted(nodes, key=lambda n: n.id)
    if not nodes:
        return ""
    root = next((n for n in nodes if n.parent is None), None)
    base = finite(root.metric) if root is not None and _good(root) else None
    vals = [float(n.metric) for n in nodes if _good(n)]  # type: ignore[arg-type]
    if base is not None:
        vals.append(base)
        if noise_sd:
            vals += [base - noise_sd, base + noise_sd]
    lo, hi = (min(vals), max(vals)) if vals else (0.0, 1.0)
    if hi == lo:
        d = abs(lo) * 0.05 or 0.5
        lo, hi = lo - d, hi + d
    pad = (hi - lo) * 0.06
    lo, hi = lo - pad, hi + pad
    bottom = H - BOTTOM

    def x(i: int) -> float:
        return LEFT + (W - LEFT - RIGHT) * (0.5 if len(nodes) <= 1 else i / (len(nodes) - 1))

    def y(v: float) -> float:
        return TOP + (bottom - TOP) * (1 - (v - lo) / (hi - lo))

    def num(v: float) -> str:
        return f"{v:.6g}"

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" style="width:100%;max-width:{W}px" '
           f'role="img" aria-label="{escape(protocol.metric)} of each node in order">',
           f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{bottom}" y2="{bottom}" stroke="#d0d7de"/>',
           f'<text x="{LEFT - 4}" y="{TOP + 8}" font-size="10" fill="#6e7781" text-anchor="end">{num(hi - pad)}</text>',
           f'<text x="{LEFT - 4}" y="{bottom}" font-size="10" fill="#6e7781" text-anchor="end">{num(lo + pad)}</text>',
           f'<text x="{LEFT}" y="{H - 2}" font-size="10" fill="#6e7781">node order → ({escape(protocol.metric)}, '
           f'{escape(protocol.direction)})</text>']
    if base is not None and noise_sd:
        top, low = y(base + noise_sd), y(base - noise_sd)
        out.append(f'<rect x="{LEFT}" width="{W - LEFT - RIGHT}" y="{top:.1f}" height="{max(1.0, low - top):.1f}" '
                   'fill="#a8c8ff" opacity="0.3"/>')
    if base is not None:
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y(base):.1f}" y2="{y(base):.1f}" stroke="#6e7781" '
                   'stroke-dasharray="4 3"/>')
    best: float | None = None
    path = ""
    for i, n in enumerate(nodes):
        if not _good(n):
            continue
        v = float(n.metric)  # type: ignore[arg-type]
        if best is None:
            path = f"M{x(i):.1f},{y(v):.1f}"
        elif protocol.better(v, best):
            path += f"H{x(i):.1f}V{y(v):.1f}"
        else:
            continue
        best = v
    if path:
        out.append(f'<path d="{path}H{x(len(nodes) - 1):.1f}" fill="none" stroke="#b7791f" stroke-width="1.5"/>')
    for i, n in enumerate(nodes):
        fill, stroke = COLOURS.get(n.kind, OTHER)
        tip = f"<title>node {n.id} · {escape(n.kind)}" + (f" · {num(float(n.metric))}" if _good(n) else "") + "</title>"  # type: ignore[arg-type]
        if _good(n):
            out.append(f'<circle cx="{x(i):.1f}" cy="{y(float(n.metric)):.1f}" r="3.5" fill="{fill}" '  # type: ignore[arg-type]
                       f'stroke="{stroke}" data-id="{n.id}">{tip}</circle>')
        else:
            out.append(f'<rect x="{x(i) - 3:.1f}" y="{bottom + 4}" width="6" height="6" fill="{fill}" '
                       f'stroke="{stroke}" data-id="{n.id}">{tip}</rect>')
    out.append("</svg>")
    return "".join(out)
