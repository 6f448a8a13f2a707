"""The audit's report: canonical JSON (the bytes the release signs) and a self-contained HTML
page with its plots (matplotlib, drawn off-screen, embedded as PNG data URIs: the page loads
nothing from anywhere)."""

from __future__ import annotations

import base64
import html
import io
import json
from typing import Any

import numpy as np

from kontur.robustness.audit import AuditReport

__all__ = ["report_html", "report_json"]


def report_json(report: AuditReport) -> bytes:
    """Canonical bytes: sorted keys, UTF-8, trailing newline; the same report, the same bytes."""
    return (json.dumps(report.to_json(), sort_keys=True, indent=1) + "\n").encode()


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _severity_plot(report: AuditReport, metric: str, label: str) -> str:
    """One small panel per family: ``metric`` by severity, one line per corruption."""
    from matplotlib.figure import Figure

    families = sorted({c.family for c in report.corruptions})
    cols = min(3, len(families)) or 1
    rows = -(-len(families) // cols) or 1
    fig = Figure(figsize=(4.2 * cols, 3.0 * rows))
    clean = getattr(report.clean, metric)
    for i, fam in enumerate(families):
        ax = fig.add_subplot(rows, cols, i + 1)
        for name in dict.fromkeys(c.name for c in report.corruptions if c.family == fam):
            pts = [(c.severity, getattr(c.quality, metric)) for c in report.corruptions
                   if c.name == name]  # fmt: skip
            ax.plot(*zip(*pts, strict=True), marker="o", label=name)
        ax.axhline(clean, color="k", linestyle="--", linewidth=1, label="clean")
        ax.set_title(fam)
        ax.set_ylim(0, 1)
        ax.set_xlabel("severity")
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def _attack_plot(report: AuditReport) -> str:
    from matplotlib.figure import Figure

    p, t = report.patch, report.trigger
    fig = Figure(figsize=(11, 3.0))
    ax = fig.add_subplot(1, 3, 1)
    ax.bar(["clean", "control patch", "adversarial patch"],
           [p.recall_clean, p.recall_control, p.recall_patch],
           color=["#6a6", "#aaa", "#c44"])  # fmt: skip
    ax.set_ylim(0, 1)
    ax.set_ylabel("person recall")
    ax.set_title(f"patch, {p.queries} queries")
    for j, (img, title) in enumerate(((p.patch, "adversarial patch"), (t.patch, t.pattern))):
        a = fig.add_subplot(1, 3, 2 + j)
        a.imshow(np.ascontiguousarray(img[..., ::-1]), interpolation="nearest")
        a.set_title(title[:40], fontsize=9)
        a.axis("off")
    fig.tight_layout()
    return _png(fig)


def _rows(report: AuditReport) -> str:
    cells = []
    for c in report.corruptions:
        q = c.quality
        cells.append(
            f"<tr><td>{html.escape(c.family)}</td><td>{html.escape(c.name)}</td>"
            f"<td>{c.severity}</td><td>{q.ap50:.3f}</td><td>{q.precision:.3f}</td>"
            f"<td>{q.recall:.3f}</td></tr>"
        )
    return "\n".join(cells)


def _summary(report: AuditReport) -> str:
    doc = report.to_json()
    p, t = report.patch, report.trigger
    items = {
        "release": doc.get("release", "-"),
        "clip": doc.get("clip", "-"),
        "frames": report.frames,
        "clean AP50 / P / R": f"{report.clean.ap50:.3f} / {report.clean.precision:.3f} / "
        f"{report.clean.recall:.3f}",
        "mPC (AP50)": f"{report.mpc:.3f}",
        "rPC": f"{report.rpc:.3f}",
        "patch: recall clean / control / adversarial": f"{p.recall_clean:.3f} / "
        f"{p.recall_control:.3f} / {p.recall_patch:.3f} (drop {p.drop:.3f})",
        "trigger scan": f"{t.verdict}: suppression {t.suppression:.3f} vs control "
        f"{t.control:.3f}, threshold {t.threshold:.3f}, best {t.pattern}",
    }
    return "\n".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in items.items()
    )


def report_html(report: AuditReport) -> str:
    """The report as one self-contained HTML page."""
    style = (
        "body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;"
        "text-align:left}img{max-width:100%}"
    )
    verdict = html.escape(report.trigger.verdict)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; \
style-src 'unsafe-inline'">
<title>kontur model audit</title><style>{style}</style></head><body>
<h1>Robustness audit</h1>
<p>Trigger scan: <strong>{verdict}</strong>. rPC {report.rpc:.3f}.</p>
<table>{_summary(report)}</table>
<h2>AP50 by severity</h2><img alt="AP50 by severity" src="{_severity_plot(report, "ap50", "AP50")}">
<h2>Person recall by severity</h2>
<img alt="recall by severity" src="{_severity_plot(report, "recall", "recall")}">
<h2>Adversarial patch and trigger scan</h2><img alt="attacks" src="{_attack_plot(report)}">
<h2>Every corruption</h2>
<table><tr><th>family</th><th>corruption</th><th>severity</th><th>AP50</th>
<th>precision</th><th>recall</th></tr>
{_rows(report)}
</table></body></html>
"""
