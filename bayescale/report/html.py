"""A self-contained HTML report of a fitted posterior: tables and every figure of
:mod:`bayescale.report.plots`, embedded as PNG (base64) and also written beside the HTML."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bayescale.core import format as fmt
from bayescale.core.errors import BayescaleError
from bayescale.core.fileio import atomic_path
from bayescale.report.plots import FIGURES, WITH_TARGETS

if TYPE_CHECKING:
    from bayescale.posterior.posterior import Posterior

#: What each figure shows and what to look for (the report's captions).
CAPTIONS = {
    "priors": "Posterior densities of E, A, B, alpha and beta (A and B on log10 scale) over their "
              "priors. A posterior far narrower than its prior means the data decide; one that "
              "follows its prior means the data say little about that parameter.",
    "trace": "Draws of each chain and their densities. Chains that agree overlap; a chain "
             "stuck elsewhere shows as a separate curve.",
    "rank": "Fractional-rank ECDF differences per chain. Lines inside the envelope: the chains "
            "mix; lines leaving it flag poor mixing.",
    "pair": "Pairwise posterior draws. Ridges show the correlations (ln A with alpha, ln B "
            "with beta, E with both) that leave single parameters poorly identified even when "
            "predictions are sharp.",
    "loss-compute": "Loss against compute C = 6ND for several model sizes: fitted runs (dots, "
                    "coloured by N), the posterior-median law (line), its credible band (dark) "
                    "and a new run's predictive band (light: seed noise and, beyond the fitted "
                    "runs, the law's learned extrapolation error included), extended to "
                    "the targets (stars). The grey region lies beyond the largest fitted run; "
                    "the loss axis stops at the 98th percentile of the fitted losses.",
    "isoflop": "IsoFLOP curves: loss against N at fixed compute, with bands. Dots mark the "
               "optimum N* of each budget with its credible interval.",
    "frontier": "Compute-optimal allocation N*(C), D*(C) and D*/N* with credible bands; the "
                "green region is the fitted compute range, stars the planned runs.",
    "ppc": "Posterior predictive check: each fitted row's residual against N, D and compute, "
           "with its new-run predictive interval (grey). Rows outside it are marked; about "
           "(1 - level) of them should be, spread evenly, with no trend.",
    "design": "Which runs to add before the first target (without one: the compute-optimal "
              "run at 10x the largest fitted compute), from bayescale design: candidate runs "
              "(squares) coloured by the expected reduction of the target's interval per FLOP, "
              "within a budget of a tenth of the target's compute (the dashed line); the chosen "
              "run circled. For another budget or a batch: bayescale design FIT --target N:D "
              "--budget C --runs k.",
}
#: What the figures of a family fit (``--family-col``) draw, added to their captions.
FAMILY_CAPTIONS = {
    "priors": "Family fit: the parameters of the families' population-mean law, whose prior "
              "this is (a family's own law has a wider prior: the families' spread added).",
    "ppc": "Family fit: each row under its own family's law and noise.",
}
TITLES = {
    "priors": "Posterior over prior", "trace": "Trace plots", "rank": "Rank plots",
    "pair": "Pair plot", "loss-compute": "Loss against compute", "isoflop": "IsoFLOP curves",
    "frontier": "Compute-optimal frontier", "ppc": "Posterior predictive check",
    "design": "Which runs to add (design)",
}

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1400px; margin: 2em auto; padding: 0 1em;
       color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; }
td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #ddd; }
.GO { color: #1a7f37; font-weight: bold; } .CAUTION { color: #b08800; font-weight: bold; }
.NO-GO { color: #cf222e; font-weight: bold; } .problem { color: #cf222e; }
figcaption { color: #555; max-width: 70em; margin: 0.3em 0 2em; }
code { background: #f3f3f3; padding: 0 0.2em; }
"""


@dataclass
class Report:
    """Paths of a written report: the HTML file and one PNG per figure kind drawn; ``left_out``
    maps a kind that does not apply to the fit (rank plots of one chain) to the reason.
    """

    html: Path
    figures: dict[str, Path]
    left_out: dict[str, str]


def _table(header: Sequence[str] | None, rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header or ())
    head = f"<tr>{head}</tr>" if head else ""
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
        for row in rows)
    return f"<table>{head}{body}</table>"


def _summary_section(post: Posterior, level: float) -> str:
    summary = post.summary(level=level)
    rows = [(name, f"{r['median']:.4g}", f"{r['lower']:.4g}", f"{r['upper']:.4g}",
             f"{r['sd']:.3g}", f"{r['r_hat']:.3f}", f"{r['ess_bulk']:.0f}",
             f"{r['ess_tail']:.0f}") for name, r in summary.iterrows()]
    header = ("parameter", "median", f"{fmt.percent(level)} lower",
              f"{fmt.percent(level)} upper", "sd", "R-hat",
              "ESS bulk", "ESS tail")
    return f"<h2>Posterior summary</h2>{_table(header, rows)}"


def _diagnostics_section(post: Posterior) -> str:
    diag = post.meta.get("diagnostics")
    if not diag:
        return "<h2>Diagnostics</h2><p>No sampler diagnostics stored in this file.</p>"
    rows = [("divergent transitions", diag["divergences"]),
            ("max R-hat", fmt.statistic(diag["max_r_hat"], ".3f")),
            ("min ESS bulk", fmt.statistic(diag["min_ess_bulk"], ".0f")),
            ("min ESS tail", fmt.statistic(diag["min_ess_tail"], ".0f")),
            ("max tree depth hits", diag.get("max_depth_hits", "n/a"))]
    problems = diag.get("problems") or []
    verdict = ("<p>All convergence checks passed.</p>" if not problems else
               "".join(f"<p class='problem'>{html.escape(p)}</p>" for p in problems))
    return f"<h2>Diagnostics</h2>{_table(('check', 'value'), rows)}{verdict}"


def _targets_section(post: Posterior, targets: Sequence[tuple[float, float]], level: float,
                     random_seed: int, family: str | None) -> str:
    if not targets:
        return ""
    rows, verdicts = [], []
    for n, d in targets:
        r = post.risk(n, d, level=level, random_seed=random_seed, family=family)
        rows.append((
            fmt.size(n), fmt.size(d), fmt.flop(r.compute), fmt.interval(**r.loss),
            fmt.interval(**r.mean_loss),
            fmt.interval(**r.optimal["params"], fmt=fmt.size),
            fmt.interval(**r.optimal["tokens"], fmt=fmt.size),
            f"{r.regret['median']:.3g}", f"{r.extrapolation['compute_ratio']:.3g}x",
            f"{r.uncertainty['seed_floor_share']:.0%}",
        ))
        verdicts.append(f"<li>{fmt.size(n)} params, {fmt.size(d)} tokens: "
                        f"<span class='{r.verdict}'>{r.verdict}</span>: "
                        f"{html.escape('; '.join(r.reasons))}. "
                        f"{html.escape(r.uncertainty['advice'])}.</li>")
        if r.extrapolation["warning"]:
            verdicts.append(f"<li class='problem'>{html.escape(r.extrapolation['warning'])}</li>")
    pct = f"{fmt.percent(level)}"
    header = ("N", "D", "C", f"new run's loss [{pct}]", f"law's loss [{pct}]",
              "optimal N*", "optimal D*", "regret (nats)", "C / largest fitted", "noise share")
    whose = ("" if not post.families else
             f"<p>Each as a run of family {html.escape(family)}.</p>" if family in post.families
             else "<p>Each as a run of a new family (the population predictive: "
                  f"{'no --family given' if family is None else 'an unseen family'}).</p>")
    if "unique_tokens" in post.law.covariates:  # the report has no --unique-tokens
        whose += ("<p>On fresh data (one epoch): for a plan that repeats its data, run "
                  "<code>bayescale risk FIT --params N --tokens D --unique-tokens U</code>.</p>")
    return (f"<h2>Planned runs</h2>{whose}{_table(header, rows)}<ul>{''.join(verdicts)}</ul>"
            "<p>For a target loss, run <code>bayescale risk FIT --params N --tokens D "
            "--target-loss X</code>.</p>")


def _header(post: Posterior) -> str:
    meta = post.meta
    source = meta.get("input", {})
    sampler = meta.get("sampler", {})
    rows = [
        ("law", post.law.formula), ("likelihood", meta.get("likelihood", "?")),
        ("input", source.get("path", "?")), ("sha256", source.get("sha256", "n/a")),
        ("rows / runs", f"{source.get('n_rows', '?')} / {source.get('n_runs', '?')}"),
        ("sampler", ", ".join(f"{k}={v}" for k, v in sampler.items()) or "n/a"),
        ("posterior file", post.path or "n/a"), ("created", meta.get("created", "n/a")),
        ("bayescale", meta.get("bayescale_version", "n/a")),
    ]
    return f"<h2>Fit</h2>{_table(None, rows)}"


def _caption(post: Posterior, kind: str, family: str | None) -> str:
    """A figure's caption (plain text), with what a family fit's figure draws."""
    if not post.families:
        return CAPTIONS[kind]
    if kind == "design":
        whose = f"family {family}" if family in post.families else "a new family"
        return f"{CAPTIONS[kind]} Family fit: the target and the runs are {whose}'s."
    if kind not in WITH_TARGETS:
        return " ".join(filter(None, (CAPTIONS[kind], FAMILY_CAPTIONS.get(kind))))
    if family in post.families:
        return f"{CAPTIONS[kind]} Family fit: family {family}'s law and its runs only."
    return (f"{CAPTIONS[kind]} Family fit: the law drawn is a new family's (the population "
            f"predictive of the {len(post.families)} families), over every family's runs; "
            "--family NAME draws one family's law and runs.")


def write_report(
    post: Posterior,
    out_dir: str | Path,
    targets: Sequence[tuple[float, float]] = (),
    *,
    level: float = 0.9,
    random_seed: int = 0,
    dpi: int = 100,
    family: str | None = None,
) -> Report:
    """Write ``report.html`` and one PNG per figure into ``out_dir``.

    The HTML embeds the figures (base64), so it opens anywhere on its own; the PNG files beside
    it are for slides and documents. Every figure is drawn in memory before any file is
    written, so a figure that fails leaves no folder and no file behind; then each file is
    written atomically, ``report.html`` last.

    Parameters
    ----------
    post : Posterior
    out_dir : path
        Created if missing (once every figure is drawn).
    targets : sequence of (N, D)
        Planned runs: a table with their predictions and risk, and marks on the law figures.
    level : float
        Credible level of the tables and bands.
    random_seed : int
        Seed of the noise draws and draw subsets.
    dpi : int
        Resolution of the PNG files.
    family : str, optional
        In a family fit, the family whose law, runs and risk the law figures and the planned
        runs show; a new family's (the population predictive) when None or unseen.
    """
    out = Path(out_dir)
    pngs: dict[str, bytes] = {}
    left_out, sections = {}, []
    for kind, function in FIGURES.items():
        kwargs: dict[str, Any] = {}
        if kind in WITH_TARGETS:
            kwargs = {"targets": list(targets), "level": level, "random_seed": random_seed,
                      "family": family}
        elif kind == "ppc":
            kwargs = {"level": level, "random_seed": random_seed}
        try:
            fig = function(post, **kwargs)
        except BayescaleError as exc:  # the figure does not apply to this fit
            left_out[kind] = exc.one_line()
            sections.append(f"<h3 id='{kind}'>{TITLES[kind]}</h3><p>Left out: "
                            f"{html.escape(left_out[kind])}.</p>")
            continue
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi)
        pngs[kind] = buffer.getvalue()
        encoded = base64.b64encode(pngs[kind]).decode("ascii")
        sections.append(
            f"<h3 id='{kind}'>{TITLES[kind]}</h3><figure>"
            f"<img src='data:image/png;base64,{encoded}' alt='{TITLES[kind]}'>"
            f"<figcaption>{html.escape(_caption(post, kind, family))} "
            f"(File: <code>{kind}.png</code>.)"
            "</figcaption></figure>")
    title = f"bayescale report: {post.meta.get('input', {}).get('path', post.path or '')}"
    contents = "".join(f"<li><a href='#{k}'>{TITLES[k]}</a></li>" for k in FIGURES)
    page = (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{_header(post)}"
        f"{_targets_section(post, targets, level, random_seed, family)}"
        f"{_summary_section(post, level)}{_diagnostics_section(post)}"
        f"<h2>Figures</h2><ul>{contents}</ul>{''.join(sections)}</body></html>\n"
    )
    figures = {kind: out / f"{kind}.png" for kind in pngs}
    for kind, path in figures.items():
        with atomic_path(path) as tmp:  # makes the folder
            tmp.write_bytes(pngs[kind])
    html_path = out / "report.html"
    with atomic_path(html_path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return Report(html_path, figures, left_out)
