"""PNG plots of a process analysis (matplotlib, headless): driver importance, and per parameter the
partial dependence with the observed fail rate and the data's density."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from analysis.effects import Driver


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display on servers; set here, not at import, so importers keep theirs
    import matplotlib.pyplot as plt

    return plt


def _png(plt, fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def importance(drivers: list[Driver]) -> bytes:
    plt = _pyplot()
    shown = drivers[:12][::-1]
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(shown) + 1.2))
    y = np.arange(len(shown))
    means = np.array([d.importance for d in shown])
    err = np.array([[d.importance - d.low for d in shown], [d.high - d.importance for d in shown]])
    ax.barh(y, means, xerr=np.clip(err, 0, None), color=["#c0392b" if d.is_driver else "#95a5a6" for d in shown],
            capsize=3)
    ax.set_yticks(y, [d.name for d in shown])
    ax.axvline(0, color="#333", lw=0.8)
    ax.set_xlabel("drop in cross-validated ROC AUC when shuffled (95 % interval)")
    ax.set_title("What drives failures (red: drivers)", fontsize=10)
    return _png(plt, fig)


def effect(c: dict[str, Any], window: tuple[float, float] | str | None) -> bytes:
    """Top: the model's partial dependence and the observed fail rate with exact 95 % intervals.
    Bottom: how many parts ran at each value. ``window``: the suggested range (or level), shaded."""
    plt = _pyplot()
    fig, (ax, dens) = plt.subplots(2, 1, figsize=(5.2, 3.8), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    obs = c["observed"]
    if c["kind"] == "categorical":
        x = np.arange(len(c["grid"]))
        ax.bar(x, c["partial_dependence"], color="#2980b9", alpha=0.6, label="model (partial dependence)")
        rates = [o["rate"] if o["rate"] is not None else np.nan for o in obs]
        lo = [r - o["low"] if o["rate"] is not None else 0 for r, o in zip(rates, obs, strict=True)]
        hi = [o["high"] - r if o["rate"] is not None else 0 for r, o in zip(rates, obs, strict=True)]
        ax.errorbar(x, rates, yerr=[lo, hi], fmt="o", color="#333", capsize=3, label="observed")
        dens.bar(x, c["density"], color="#bbb")
        dens.set_xticks(x, c["grid"], rotation=30, fontsize=8)
        if isinstance(window, str) and window in c["grid"]:
            ax.axvspan(c["grid"].index(window) - 0.45, c["grid"].index(window) + 0.45, color="#27ae60", alpha=0.2)
    else:
        ax.plot(c["grid"], c["partial_dependence"], color="#2980b9", lw=2, label="model (partial dependence)")
        mids = [(o["from"] + o["to"]) / 2 for o in obs]
        rates = [o["rate"] for o in obs]
        ax.errorbar(mids, rates, yerr=[[r - o["low"] for r, o in zip(rates, obs, strict=True)],
                                       [o["high"] - r for r, o in zip(rates, obs, strict=True)]],
                    fmt="o", color="#333", capsize=3, ms=4, label="observed (deciles)")
        edges = np.array(c["density"]["edges"])
        dens.bar(edges[:-1], c["density"]["counts"], width=np.diff(edges), align="edge", color="#bbb")
        if isinstance(window, tuple):
            for a in (ax, dens):
                a.axvspan(window[0], window[1], color="#27ae60", alpha=0.2)
        dens.set_xlabel(c["name"])
    ax.set_ylabel("fail rate")
    ax.set_ylim(bottom=0)
    ax.set_title(c["name"], fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    dens.set_ylabel("parts", fontsize=8)
    return _png(plt, fig)
