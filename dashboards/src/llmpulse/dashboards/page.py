"""The HTML page every llmpulse page is built in: the report, a comparison.

Self-contained: inline CSS and a script that counts drawn charts (tests read its
``data-charts*`` attributes in headless Chromium); nothing is loaded from elsewhere.

Example:
    >>> from llmpulse.dashboards.page import page
    >>> html_text = page("llmpulse report", "<p>body</p>", "last 24 h")
    >>> html_text.startswith("<!DOCTYPE html>") and "<title>llmpulse report</title>" in html_text
    True
"""

from __future__ import annotations

import html
from collections.abc import Sequence

__all__ = ["page"]

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f4f5f5;
color:#24292e}
header{background:#181b1f;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#ccc}nav{padding:8px 24px;background:#22252b}
nav a{color:#8ab8ff;margin-right:16px}main{padding:8px 24px 40px}section.board>h2{margin:24px 0 4px}
.grid{display:grid;grid-template-columns:repeat(24,1fr);gap:10px}
.panel{background:#fff;border:1px solid #dcdee0;border-radius:4px;padding:8px 10px;margin:0;overflow:auto;
min-width:0}
.panel figcaption{font-weight:600;margin-bottom:4px}
.panel .desc{color:#6e7781;font-size:12px;margin:0 0 6px}.w4{grid-column:span 4}
.w8{grid-column:span 8}.w12{grid-column:span 12}.w16{grid-column:span 16}.w24{grid-column:span 24}
svg.chart{width:100%;height:auto;max-height:260px}.grid line.grid{stroke:#e8e8e8}
svg .grid{stroke:#ececec}svg .axis{font-size:11px;fill:#6e7781}
svg .zero{stroke:#999;stroke-dasharray:3 3}
.legend{font-size:12px;display:flex;flex-wrap:wrap;gap:4px 12px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
.stat{font-size:30px;font-weight:600;color:#3274d9;padding:6px 0}
table{border-collapse:collapse;font-size:12px;width:100%}
th,td{border-bottom:1px solid #eee;padding:3px 6px;text-align:left;white-space:nowrap}
th{background:#fafafa}tr.sig td{background:#fff1f0}.warning{color:#b35c00}.error{color:#c4162a}
details{font-size:11px;color:#6e7781}details pre{white-space:pre-wrap}
.note{color:#6e7781;font-size:12px}.firing{color:#c4162a;font-weight:600}
svg.waterfall{max-height:none}table.trace td.text{white-space:normal;max-width:640px;word-break:break-word}
"""

# Checks itself once laid out: how many charts drew marks with a visible size. The test
# reads these attributes from headless Chromium's DOM.
_SCRIPT = """
(function(){var charts=document.querySelectorAll('svg.chart'),drawn=0,empty=0;
charts.forEach(function(svg){var ok=false;svg.querySelectorAll('.mark').forEach(function(m){
var b=m.getBBox();if(b.width>0||b.height>0){ok=true;}});if(ok){drawn++;}else{empty++;}});
document.body.setAttribute('data-charts',charts.length);document.body.setAttribute('data-charts-drawn',drawn);
document.body.setAttribute('data-charts-empty',empty);
document.body.setAttribute('data-stats',document.querySelectorAll('.stat[data-points="1"]').length);
var bars=0;document.querySelectorAll('svg.waterfall .mark').forEach(function(m){var b=m.getBBox();
if(b.width>0&&b.height>0){bars++;}});document.body.setAttribute('data-waterfall-bars',bars);})();
"""


def page(title: str, body: str, subtitle: str = "", nav: Sequence[tuple[str, str]] = ()) -> str:
    """A self-contained HTML page (inline CSS and script, nothing loaded from elsewhere)."""
    links = "".join(f'<a href="#{html.escape(a)}">{html.escape(t)}</a>' for a, t in nav)
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{_CSS}</style></head>'
        f"<body><header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p></header>"
        + (f"<nav>{links}</nav>" if links else "")
        + f"<main>{body}</main><script>{_SCRIPT}</script>"
        "</body></html>"
    )
