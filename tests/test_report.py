"""``bayescale report`` and ``bayescale plot``: files written, every figure embedded, errors."""

from __future__ import annotations

import base64
import re

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bayescale import Posterior
from bayescale.cli import app
from bayescale.plots import FIGURES
from bayescale.simulate import EPOCH_LAW
from tests.conftest import EXAMPLE

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def fit_file(tmp_path_factory):
    """Known draws (2 chains x 150) on the example's runs: no sampling, no stored diagnostics."""
    rng = np.random.default_rng(3)
    draws = {k: v * np.exp(rng.normal(0, 0.03, 300)) for k, v in EPOCH_LAW.items()}
    draws["sigma_obs"] = np.abs(rng.normal(0.004, 0.001, 300))
    draws["seed_noise"] = np.abs(rng.normal(0.01, 0.002, 300))
    data = pd.read_csv(EXAMPLE)[["params", "tokens", "loss"]]
    path = tmp_path_factory.mktemp("report") / "known.posterior.nc"
    Posterior.from_draws(draws, data=data, chains=2).save(path)
    return path


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
