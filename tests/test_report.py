"""``bayescale report`` and ``bayescale plot``: files written, every figure embedded, errors."""

from __future__ import annotations

import base64
import re
from html import unescape

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from typer.testing import CliRunner

from bayescale import Posterior
from bayescale.cli import app
from bayescale.law.laws import get_law
from bayescale.law.simulate import known_draws
from bayescale.report.html import write_report
from bayescale.report.plots import FIGURES
from tests.builders import (
    TWO_FAMILY_TRUTHS,
    example_frame,
    family_sweeps,
    known_family_posterior,
    known_file,
)

PNG = b"\x89PNG\r\n\x1a\n"


def _known_fit(folder, chains: int):
    """Known draws (300 in all) on the example's runs: no sampling, no stored diagnostics."""
    return known_file(folder / f"known{chains}.posterior.nc", size=300, spread=0.03,
                      sigma_obs=0.004, seed_noise=0.01, noise_spread=0.2, random_seed=3,
                      chains=chains, data=example_frame())


@pytest.fixture(scope="module")
def fit_file(tmp_path_factory):
    """Two chains of known draws."""
    return _known_fit(tmp_path_factory.mktemp("report"), chains=2)


def test_report_writes_html_with_every_figure(fit_file, tmp_path):
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["report", str(fit_file), "--out", str(out), "--target",
                                      "7B:140B", "--target", "70B,1.4T", "--dpi", "40"])
    assert result.exit_code == 0, result.output
    html = (out / "report.html").read_text()
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", html)
    assert len(images) == len(FIGURES) >= 6
    for encoded, kind in zip(images, FIGURES, strict=True):
        png = (out / f"{kind}.png").read_bytes()
        assert png.startswith(PNG) and len(png) > 5_000
        assert base64.b64decode(encoded) == png
    assert "<td>7B</td><td>140B</td>" in html and "<td>70B</td><td>1.4T</td>" in html
    assert "Posterior summary" in html and "No sampler diagnostics" in html
    assert not list(out.glob(".*.tmp"))


@pytest.mark.parametrize("suffix", ["png", "svg"])
def test_plot_one_figure(fit_file, tmp_path, suffix):
    out = tmp_path / f"frontier.{suffix}"
    result = CliRunner().invoke(app, ["plot", str(fit_file), "frontier", "--out", str(out),
                                      "-t", "70B:1.4T", "--dpi", "40"])
    assert result.exit_code == 0, result.output
    head = out.read_bytes()[:200]
    assert head.startswith(PNG) if suffix == "png" else b"<svg" in head or b"<?xml" in head


@pytest.mark.parametrize(("args", "code"), [
    (["histogram", "--out", "x.png"], 2),              # unknown kind
    (["ppc", "--out", "x.gif"], 2),                    # unknown format
    (["ppc", "--out", "x.png", "-t", "70B"], 2),       # target without D
    (["ppc", "--out", "x.png", "-t", "70B:1T"], 2),    # ppc draws no targets
])
def test_plot_usage_errors_write_nothing(fit_file, tmp_path, monkeypatch, args, code):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["plot", str(fit_file), *args])
    assert result.exit_code == code
    assert "Traceback" not in result.output
    assert not list(tmp_path.iterdir())


def test_missing_fit_is_one_line_and_no_output(tmp_path):
    for command in (["report", str(tmp_path / "no.nc"), "--out", str(tmp_path / "r")],
                    ["plot", str(tmp_path / "no.nc"), "ppc", "--out", str(tmp_path / "p.png")]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 1
        assert result.stderr.count("\n") == 1 and "no.nc" in result.stderr
    assert not list(tmp_path.iterdir())


def test_one_chain_report_leaves_out_the_rank_plot_and_says_why(tmp_path):
    """``fit --chains 1`` is allowed: report and plot rank crashed in ArviZ's chain test."""
    one = _known_fit(tmp_path, chains=1)
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["report", str(one), "--out", str(out), "--dpi", "30"])
    assert result.exit_code == 0, result.output
    assert "rank figure left out: rank plots compare chains" in result.stderr
    html = (out / "report.html").read_text()
    assert "Left out: rank plots compare chains, and this fit has one" in html
    assert len(re.findall(r"data:image/png", html)) == len(FIGURES) - 1
    assert not (out / "rank.png").exists() and (out / "trace.png").exists()
    rank = CliRunner().invoke(app, ["plot", str(one), "rank", "--out", str(tmp_path / "r.png")])
    assert rank.exit_code == 1 and "Traceback" not in rank.output
    assert rank.stderr == ("error: rank plots compare chains, and this fit has one: fit with "
                           "--chains 2 or more\n")
    assert not (tmp_path / "r.png").exists()


def test_family_report_says_whose_law_the_figures_draw(tmp_path):
    """A family fit's report (it crashed in the priors figure) names the law of the figures:
    a new family's over every family's runs, or one family's with ``family``."""
    post = known_family_posterior(family_sweeps(), TWO_FAMILY_TRUTHS)
    everyone = write_report(post, tmp_path / "all", [(7e9, 1.4e11)], dpi=30)
    assert set(everyone.figures) == set(FIGURES) and not everyone.left_out
    html = unescape(everyone.html.read_text())
    assert html.count("the law drawn is a new family's (the population predictive of the 2 "
                      "families), over every family's runs") == 3
    assert "population-mean law" in html
    assert "Each as a run of a new family (the population predictive: no --family given)" in html
    one = write_report(post, tmp_path / "p", [(7e9, 1.4e11)], dpi=30, family="p")
    assert unescape(one.html.read_text()).count("family p's law and its runs only") == 3
    assert "Each as a run of family p." in unescape(one.html.read_text())


def _muennighoff_fit(folder):
    """Known draws of Muennighoff's law (7 parameters) on the example's runs at 1, 2 and 4
    epochs: Epoch's law for E, A, B, alpha, beta; R_D and R_N drawn from their priors."""
    law = get_law("muennighoff")
    draws = known_draws(300, spread=0.03, random_seed=3)
    prior = law.prior_draws(law.default_priors(), np.random.default_rng(3), 300)
    draws |= {name: prior[name] for name in ("R_D", "R_N")}
    frame = example_frame()
    frame["unique_tokens"] = frame["tokens"] / np.resize([1.0, 2.0, 4.0], len(frame))
    path = folder / "muennighoff.posterior.nc"
    Posterior.from_draws(draws, law="muennighoff", data=frame, chains=2).save(path)
    return path


def test_report_and_pair_plot_of_a_law_of_seven_parameters(tmp_path):
    """A pair plot of 7 parameters went over arviz-plots' limit of subplots: ``plot pair`` died
    in a traceback and ``report`` left priors, rank and trace PNGs without report.html."""
    fit = _muennighoff_fit(tmp_path)
    pair = tmp_path / "pair.png"
    result = CliRunner().invoke(app, ["plot", str(fit), "pair", "-o", str(pair), "--dpi", "30"])
    assert result.exit_code == 0, result.output
    assert pair.read_bytes().startswith(PNG)
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["report", str(fit), "--out", str(out), "--dpi", "30",
                                      "--target", "3B:100B"])
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {"report.html", *(f"{k}.png" for k in FIGURES)}
    # the planned runs of a repeated-data law are on fresh data, and the report says so
    assert "On fresh data (one epoch)" in (out / "report.html").read_text()


def test_a_failing_figure_leaves_no_report_folder(fit_file, tmp_path, monkeypatch):
    """Every figure is drawn before a file is written: one that fails (the last, here) leaves
    neither the folder nor the figures drawn before it."""
    def fails(post, **kwargs):
        raise RuntimeError("figure failed")

    monkeypatch.setitem(FIGURES, list(FIGURES)[-1], fails)
    out = tmp_path / "report"
    with pytest.raises(RuntimeError, match="figure failed"):
        write_report(Posterior.load(fit_file), out, dpi=30)
    assert not out.exists()


def test_family_option_needs_a_family_fit_and_a_law_figure(fit_file, tmp_path):
    for command in (["report", str(fit_file), "--out", str(tmp_path / "r"), "--family", "p"],
                    ["plot", str(fit_file), "isoflop", "--out", str(tmp_path / "i.png"),
                     "--family", "p"],
                    ["plot", str(fit_file), "trace", "--out", str(tmp_path / "t.png"),
                     "--family", "p"]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 2 and "--family" in result.output, command
    assert not list(tmp_path.iterdir())
