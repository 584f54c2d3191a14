"""The blend weights streamrec learnt over an evaluation run: blend_weights.png, blend.json and a section appended
to report.md."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import orjson
from matplotlib.figure import Figure

from streamrec.models.blend import COMPONENTS, BlendPoint


def write_blend(out_dir: Path, histories: Mapping[str, Sequence[BlendPoint]]) -> None:
    """Plot each system's learnt weights against the consumptions learnt from, and add them to the report."""
    if not histories:
        return
    fig = Figure(figsize=(5 * len(histories), 3.8), layout="constrained")
    axes = fig.subplots(1, len(histories), squeeze=False)[0]
    for ax, (name, history) in zip(axes, histories.items(), strict=True):
        xs = [point.updates for point in history]
        for c, component in enumerate(COMPONENTS):
            ax.plot(xs, [point.weights[c] for point in history], label=component)
        ax.set_title(f"{name}: learnt blend weights")
        ax.set_xlabel("consumptions that credited a blend")
        ax.set_ylabel("weight")
        ax.set_yscale("symlog", linthresh=0.01)  # weights of 0 stay on the plot
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.savefig(out_dir / "blend_weights.png", dpi=110)
    document = {name: [{"updates": p.updates, "weights": list(p.weights)} for p in h] for name, h in histories.items()}
    (out_dir / "blend.json").write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    lines = [
        "",
        "## Learnt blend weights",
        "",
        "streamrec's score weighs co-occurrence with the recent history, the profile embedding, popularity and "
        "recency (views decayed with a one-day half-life). The weights are learnt online from the stream "
        "(`models/blend.py`): at each first consumption, every blend of a grid (the personal signals at their "
        "defaults or off; popularity and recency each from 0 to 4) is credited if it would have ranked the consumed "
        "item in its top 10 against the strongest contenders of each component (the viewer's top co-occurring "
        "items, the most popular and the most recently viewed, those the viewer has not consumed), and the blend "
        "credited most so far is used. The embedding's weight is 0 by default and only switched off with the "
        "co-occurrence; the search weight stays at its default. The x axis counts the consumptions that credited at "
        "least one blend.",
        "",
        "![learnt blend weights](blend_weights.png)",
        "",
        "| system | " + " | ".join(COMPONENTS) + " |",
        "|---|" + "---:|" * len(COMPONENTS),
    ]
    for name, history in histories.items():
        start, end = history[0], history[-1]
        cells = [f"{a:.3f} → {b:.3f}" for a, b in zip(start.weights, end.weights, strict=True)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    with (out_dir / "report.md").open("a", encoding="utf-8") as report:
        report.write("\n".join(lines) + "\n")
