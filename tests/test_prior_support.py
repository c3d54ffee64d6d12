"""Priors the model cannot use are refused before sampling, in one line naming the parameter
(issue 29, cases 1-4): every prior distribution x every parameter x out-of-support and
degenerate settings. Validation needs no sampler; the few that sample are marked slow."""

from __future__ import annotations

import json
import math
import signal
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bayescale.cli import app
from bayescale.core.errors import BayescaleError
from bayescale.inference.model import ModelSpec
from bayescale.law.families import FAMILY_SD
from bayescale.law.laws import get_law
from bayescale.law.priors import FAMILIES, NOISE_PRIORS, Prior, load_priors
from tests.builders import EXAMPLE, known_draws_posterior

runner = CliRunner()

#: Settings of each distribution: outside every parameter's support, or degenerate (the bulk
#: overflows or sits on 0), plus one ordinary setting as a control.
SETTINGS: dict[str, list[dict[str, float]]] = {
    "lognormal": [{"mu": 1e308, "sigma": 0.5}, {"mu": -1e308, "sigma": 0.5},
                  {"mu": 300.0, "sigma": 0.5}, {"mu": 0.0, "sigma": 1e300},
                  {"mu": 0.0, "sigma": 1e-300}, {"mu": 0.0, "sigma": 0.0},
                  {"mu": 0.0, "sigma": 1.0}],
    "normal": [{"mu": -1.0, "sigma": 0.01}, {"mu": -2.0, "sigma": 0.1},
               {"mu": 2.0, "sigma": 0.1}, {"mu": 0.0, "sigma": 1e-300}],
    "halfnormal": [{"sigma": 1e-300}, {"sigma": 1e300}, {"sigma": 0.0}, {"sigma": -1.0},
                   {"sigma": 0.5}],
    "truncnormal": [{"mu": 0.0, "sigma": 1.0, "lower": -5.0, "upper": -1.0},
                    {"mu": 0.0, "sigma": 1.0, "lower": -1.0, "upper": 5.0},
                    {"mu": 2.0, "sigma": 0.1, "lower": 50.0, "upper": 60.0},
                    {"mu": 2.0, "sigma": 1e-3, "lower": 50.0, "upper": 60.0},
                    {"mu": 1e308, "sigma": 1.0, "lower": 0.0, "upper": 1.0},
                    {"mu": 1.0, "sigma": 1.0, "lower": 2.0, "upper": 2.0},
                    {"mu": 1.0, "sigma": 1.0, "lower": 1e200, "upper": 1e300},
                    {"mu": 0.3, "sigma": 0.1, "lower": 0.0, "upper": 1.0}],
    "gamma": [{"alpha": 1e-300, "beta": 1.0}, {"alpha": 2.0, "beta": 1e-300},
              {"alpha": 1e300, "beta": 1.0}, {"alpha": 2.0, "beta": 1e300},
              {"alpha": 0.0, "beta": 1.0}, {"alpha": 2.0, "beta": 0.1}],
    "uniform": [{"lower": -5.0, "upper": -1.0}, {"lower": -1.0, "upper": 1.0},
                {"lower": 0.0, "upper": 1e-300}, {"lower": 0.0, "upper": 1e300},
                {"lower": 1.0, "upper": 1.0}, {"lower": 0.1, "upper": 2.0}],
}
assert set(SETTINGS) == set(FAMILIES)


def _defaults(law: str) -> tuple[dict[str, Prior], tuple[str, ...]]:
    """The priors ``fit --priors`` overrides (a family fit's ``family_sd`` too)."""
    chosen = get_law(law)
    return ({**chosen.default_priors(), **NOISE_PRIORS, "family_sd": FAMILY_SD},
            chosen.lognormal_parameters)


CASES = [(law, name, dist, setting)
         for law in ("chinchilla", "kaplan")
         for name in _defaults(law)[0]
         if law == "chinchilla" or name in get_law(law).parameters
         for dist, settings in SETTINGS.items() for setting in settings]


def _toml(folder: Path, name: str, dist: str, setting: dict[str, float]) -> Path:
    path = folder / "priors.toml"
    lines = [f"[{name}]", f'dist = "{dist}"', *(f"{k} = {v!r}" for k, v in setting.items())]
    path.write_text("\n".join(lines) + "\n")
    return path


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang


@pytest.mark.parametrize(("law", "name", "dist", "setting"), CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[2]}-{i}" for i, c in enumerate(CASES)])
def test_every_prior_is_refused_in_one_line_or_usable(tmp_path, law, name, dist, setting):
    """Refused: one line naming the parameter. Accepted: its draws are positive and finite
    (drawn in bounded time), PyMC's density at its median is finite (the sampler can start)."""
    defaults, lognormal_only = _defaults(law)
    path = _toml(tmp_path, name, dist, setting)
    try:
        priors = load_priors(path, defaults, lognormal_only)
    except BayescaleError as exc:
        line = str(exc)
        assert "\n" not in line and f"[{name}]" in line, line
        assert line.startswith(str(path)), line
        return
    prior = priors[name]
    ModelSpec(law=law, priors={name: prior})  # the API accepts what the file accepts
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(20)
    try:
        draws = prior.sample(np.random.default_rng(0), 2000)
    except _Hang:
        pytest.fail(f"drawing from {prior.describe()} does not end")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert np.isfinite(draws).all() and (draws > 0).all(), prior.describe()
    import pymc as pm

    with pm.Model():
        variable = prior.pymc(name)
    density = float(pm.logp(variable, float(np.median(draws))).eval())
    assert math.isfinite(density), prior.describe()


@pytest.mark.parametrize(("name", "body"), [
    ("sigma_obs", 'dist = "normal"\nmu = -1\nsigma = 0.01'),
    ("E", 'dist = "normal"\nmu = -2\nsigma = 0.1'),
    ("nu", 'dist = "uniform"\nlower = -5\nupper = -1'),
    ("E", 'dist = "lognormal"\nmu = 1e308\nsigma = 0.5'),
])
def test_fit_refuses_the_issues_priors_before_sampling(tmp_path, monkeypatch, name, body):
    """Cases 1 and 2 through the CLI: one line, exit 1, no file, no sampling started."""
    import bayescale.inference.fit as fit_module

    monkeypatch.setattr(fit_module, "fit", lambda *a, **k: pytest.fail("sampled"))
    priors = tmp_path / "priors.toml"
    priors.write_text(f"[{name}]\n{body}\n")
    out = tmp_path / "runs.posterior.nc"
    result = runner.invoke(app, ["fit", str(EXAMPLE), "--priors", str(priors), "-o", str(out),
                                 "--json"])
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and f"[{name}]" in lines[0], result.stderr
    assert json.loads(result.stdout) == {"error": lines[0].removeprefix("error: "),
                                         "exit_code": 1}
    assert not out.exists()


def test_priors_file_not_utf8(tmp_path):
    """Case 4: a Latin-1 priors file is one line naming the file and the line."""
    path = tmp_path / "priors.toml"
    path.write_bytes(b'# prior for \xe9quipe\n[E]\ndist = "lognormal"\nmu = 0.6\nsigma = 0.5\n')
    law = get_law("chinchilla")
    with pytest.raises(BayescaleError, match=r"priors.toml, row 1: not UTF-8 text"):
        load_priors(path, {**law.default_priors(), **NOISE_PRIORS}, law.lognormal_parameters)
    result = runner.invoke(app, ["fit", str(EXAMPLE), "--priors", str(path),
                                 "-o", str(tmp_path / "x.nc")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert len(result.stderr.splitlines()) == 1 and "not UTF-8" in result.stderr


def test_truncnormal_far_from_its_mean_draws_in_bounded_time():
    """Case 3: the prior's draws (prior pull warnings, plots) no longer loop for ever."""
    prior = Prior("truncnormal", {"mu": 2.0, "sigma": 0.1, "lower": 50.0, "upper": 60.0})
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(20)
    try:
        draws = prior.sample(np.random.default_rng(0), 200_000)
    except _Hang:
        pytest.fail("rejection sampling does not end")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert draws.shape == (200_000,) and (draws > 50).all() and (draws < 60).all()


def test_fit_warnings_end_under_a_far_truncated_prior():
    """Case 3 end to end without sampling: the warnings after such a fit finish."""
    from bayescale.law.priors import to_dict
    from bayescale.posterior.warnings import fit_warnings

    priors = {**get_law("chinchilla").default_priors(), **NOISE_PRIORS,
              "E": Prior("truncnormal", {"mu": 2.0, "sigma": 0.1, "lower": 50.0,
                                         "upper": 60.0})}
    post = known_draws_posterior(400, priors=to_dict(priors))
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(60)
    try:
        assert isinstance(fit_warnings(post), list)
    except _Hang:
        pytest.fail("fit warnings do not end")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_predict_refuses_impossible_draws(tmp_path):
    """Case 1's aftermath: a file fitted (by an earlier version) under a prior that let E go
    negative answers no question: one line, never ``nan [nan, nan]`` with exit 0 or a JSON
    crash."""
    post = known_draws_posterior(400, extra={"E": np.full(400, -1.97)})
    path = tmp_path / "neg.posterior.nc"
    post.save(path)
    for extra in ([], ["--json"]):
        result = runner.invoke(app, ["predict", str(path), "--params", "7B", "--tokens",
                                     "140B", *extra])
        assert result.exit_code == 1, result.output
        assert "draws of E are not positive" in result.stderr
        assert len(result.stderr.splitlines()) == 1
        if extra:
            assert json.loads(result.stdout)["exit_code"] == 1


def test_predict_never_prints_nan(known_posterior):
    """The API's own guard: draws that give no finite loss are an error, not NaN columns."""
    draws = known_posterior.draws()
    draws["sigma_obs"] = np.full(draws["E"].size, np.inf)
    from bayescale import Posterior

    post = Posterior.from_draws(draws)
    with pytest.raises(BayescaleError, match="no finite prediction"):
        post.predict(7e9, 1.4e11)


def test_sampler_that_cannot_start_is_one_line(tmp_path, monkeypatch):
    """Case 2: nutpie's "All initialization points failed" and its Rust backtrace become one
    line and exit 1 (the sampler is patched: the priors above are refused before it)."""
    import bayescale.inference.sampling as sampling

    def failing(*args, **kwargs):
        raise RuntimeError("All initialization points failed\n\nCaused by:\n"
                           + "\n".join(f"   {i}: nuts_rs::backtrace frame" for i in range(75)))

    monkeypatch.setattr(sampling, "_sample", failing)
    out = tmp_path / "runs.posterior.nc"
    result = runner.invoke(app, ["fit", str(EXAMPLE), "-o", str(out), "--draws", "200",
                                 "--tune", "200", "--chains", "2"])
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert lines[-1] == (
        "error: the sampler found no valid starting point: the priors (--priors) or the data "
        "leave the model no finite density (All initialization points failed)")
    assert lines[0].startswith("fitting ") and len(lines) == 2, result.stderr
    assert not out.exists()


@pytest.mark.slow
def test_degenerate_but_valid_priors_fit_and_predict(tmp_path):
    """Accepted odd priors fit (short chains) and predict finite intervals, or fail in one
    line: never a crash, a hang or NaN with exit 0."""
    priors = tmp_path / "priors.toml"
    priors.write_text('[E]\ndist = "truncnormal"\nmu = 2\nsigma = 0.1\nlower = 50\nupper = 60\n'
                      '[nu]\ndist = "uniform"\nlower = 1e-3\nupper = 2e-3\n')
    out = tmp_path / "runs.posterior.nc"
    result = runner.invoke(app, ["fit", str(EXAMPLE), "--priors", str(priors), "-o", str(out),
                                 "--draws", "200", "--tune", "200", "--chains", "2",
                                 "--no-calibration", "--json"])
    assert result.exit_code in (0, 1, 3), result.output
    assert "Traceback" not in result.stderr
    if result.exit_code == 1:
        assert json.loads(result.stdout)["exit_code"] == 1
        return
    answer = runner.invoke(app, ["predict", str(out), "-N", "7B", "-D", "140B", "--json"])
    if answer.exit_code == 0:
        loss = json.loads(answer.stdout)["targets"][0]["loss"]
        assert all(math.isfinite(v) for v in loss.values())
    else:
        assert answer.exit_code == 1 and len(answer.stderr.splitlines()) == 1


@pytest.mark.parametrize(("change", "message"), [
    ({"chains": 0}, "chains must be a whole number"),
    ({"shape": (2, 200)}, "1-d arrays")])
def test_draws_of_an_unusable_shape_are_refused(known_posterior, change, message):
    from bayescale import Posterior

    draws = known_posterior.draws()
    if "shape" in change:
        draws = {k: np.asarray(v)[:400].reshape(change["shape"]) for k, v in draws.items()}
    with pytest.raises(BayescaleError, match=message):
        Posterior.from_draws(draws, chains=change.get("chains", 1))


def test_summary_and_draws_refuse_what_they_cannot_answer(known_posterior):
    """summary's interval follows predict's rule on too few draws inside it, and draws of a
    name the fit does not have is one error naming the ones it has."""
    with pytest.raises(BayescaleError, match="level"):
        known_posterior.summary(level=1e-9)
    with pytest.raises(BayescaleError, match="no draws of nope in this fit; it has E"):
        known_posterior.draws(["nope"])
