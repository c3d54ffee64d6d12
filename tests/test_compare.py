"""PSIS-LOO comparison: the numpy log-likelihood matches PyMC's, the true law ranks first."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from bayescale import BayescaleError, ModelSpec, load_runs
from bayescale.cli import app
from bayescale.evaluate.compare import compare, pointwise_log_likelihood
from bayescale.inference.model import build_model
from bayescale.law.simulate import checkpoint_curves
from tests.builders import EXAMPLE, known_draws_posterior, quick, quick_fit


@pytest.fixture(scope="module")
def kaplan_example():
    """The bundled Chinchilla-simulated example, fitted with the Kaplan law."""
    return quick_fit(load_runs(EXAMPLE), ModelSpec(law="kaplan"), calibration=False)


@pytest.mark.slow
@pytest.mark.parametrize("likelihood", ["studentt", "huber"])
def test_numpy_log_likelihood_matches_pymc(tmp_path, likelihood):
    """Checkpoint runs (latent run levels) with a robust likelihood, term by term."""
    import pymc as pm

    path = tmp_path / "curves.csv"
    checkpoint_curves([5e7, 2e8, 8e8], checkpoints=6, random_seed=5).to_csv(path, index=False)
    runs = load_runs(path, run_col="run")
    spec = ModelSpec(likelihood=likelihood)
    post = quick_fit(runs, spec, quick(draws=25, tune=60, random_seed=2),
                     calibration=False).posterior
    assert post.meta["likelihood"] == likelihood
    built = build_model(runs, spec)
    reference = pm.compute_log_likelihood(post.tree, model=built.model,
                                          extend_inferencedata=False, progressbar=False)
    expected = np.asarray(reference["log_loss"])
    np.testing.assert_allclose(pointwise_log_likelihood(post), expected, rtol=1e-8, atol=1e-10)


@pytest.mark.slow
def test_true_law_ranks_first(example_fit, kaplan_example, tmp_path):
    example_posterior = example_fit.posterior
    table, _ = compare([example_posterior, kaplan_example.posterior], ["chinchilla", "kaplan"])
    assert list(table.index) == ["chinchilla", "kaplan"]
    assert list(table["rank"]) == [1, 2]
    diff, se = table.loc["kaplan", "elpd_diff"], table.loc["kaplan", "dse"]
    assert diff < -2 * se < 0  # clearly worse, not within noise
    assert table.loc["chinchilla", "weight"] > 0.9

    paths = [tmp_path / "chin.nc", tmp_path / "kap.nc"]
    example_posterior.save(paths[0])
    kaplan_example.posterior.save(paths[1])
    result = CliRunner().invoke(app, ["compare", str(paths[1]), str(paths[0]), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert [f["law"] for f in out["fits"]] == ["chinchilla", "kaplan"]
    assert out["fits"][1]["elpd_diff"] < 0 and out["fits"][1]["dse"] > 0


def test_compare_refuses_fits_of_other_rows(known_example, known_posterior):
    with pytest.raises(BayescaleError, match="same data"):
        compare([known_example, known_posterior], ["a", "b"])
    with pytest.raises(BayescaleError, match="two or more"):
        compare([known_example], ["a"])


def test_compare_names_each_file_of_other_rows_once(known_example_file, tmp_path):
    other = tmp_path / "other.posterior.nc"
    known_draws_posterior().save(other)
    result = CliRunner().invoke(app, ["compare", str(known_example_file), str(other)])
    assert result.exit_code == 1
    assert result.stderr.count(str(other)) == 1 and "same data" in result.stderr


def test_compare_cli_usage_errors(tmp_path):
    runner = CliRunner()
    assert runner.invoke(app, ["compare", "examples/isoflop_runs.posterior.nc"]).exit_code == 2
    missing = runner.invoke(app, ["compare", str(tmp_path / "a.nc"), str(tmp_path / "b.nc")])
    assert missing.exit_code == 1 and "no such file" in missing.output


def test_compare_table_shows_whole_names_at_80_columns(known_example_file, tmp_path,
                                                       monkeypatch):
    """At the default 80 columns the fit and law columns were cut to "isof…", "chin…"."""
    monkeypatch.chdir(tmp_path)
    names = ["isoflop_runs.posterior.nc", "isoflop_runs_again.posterior.nc"]
    for name in names:
        shutil.copy(known_example_file, name)
    result = CliRunner().invoke(app, ["compare", *names])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stderr.splitlines() if "chinchilla" in line]
    assert len(rows) == 2 and all(any(name in row for row in rows) for name in names)
    assert "…" not in result.stderr


def test_compare_takes_posteriors_of_draws_on_a_plain_table():
    # a table with only params, tokens and loss (no run or source-line column): one run per row
    import pandas as pd

    from bayescale import Posterior
    from bayescale.law.simulate import EPOCH_LAW, chinchilla_loss, known_draws

    n, d = np.array([1e8, 3e8, 1e9, 3e9]), np.array([2e9, 6e9, 2e10, 6e10])
    frame = pd.DataFrame({"params": n, "tokens": d, "loss": chinchilla_loss(EPOCH_LAW, n, d)})
    posts = [Posterior.from_draws(known_draws(400, random_seed=s), data=frame) for s in (0, 1)]
    table, _ = compare(posts, ["a", "b"])
    assert sorted(table.index) == ["a", "b"]
    assert pointwise_log_likelihood(posts[0]).shape == (1, 400, 4)


def test_fits_of_the_same_rows_in_another_order_are_compared_row_by_row():
    """A fit of the same file shuffled was refused as "other rows (4 vs 4)"; it is paired row
    by row now: the same table as in the file's own order."""
    import pandas as pd

    from bayescale import Posterior
    from bayescale.law.simulate import EPOCH_LAW, chinchilla_loss, known_draws

    n, d = np.array([1e8, 3e8, 1e9, 3e9]), np.array([2e9, 6e9, 2e10, 6e10])
    frame = pd.DataFrame({"params": n, "tokens": d, "loss": chinchilla_loss(EPOCH_LAW, n, d)})
    draws = [known_draws(400, random_seed=s) for s in (0, 1)]
    ordered = compare([Posterior.from_draws(x, data=frame) for x in draws], ["a", "b"])[0]
    shuffled = frame.iloc[[2, 0, 3, 1]].reset_index(drop=True)
    mixed = compare([Posterior.from_draws(draws[0], data=frame),
                     Posterior.from_draws(draws[1], data=shuffled)], ["a", "b"])[0]
    pd.testing.assert_frame_equal(ordered, mixed)
    other = frame.assign(loss=frame["loss"] * 1.01)
    with pytest.raises(BayescaleError, match=r"\(4 rows each, not the same ones\)"):
        compare([Posterior.from_draws(draws[0], data=frame),
                 Posterior.from_draws(draws[1], data=other)], ["a", "b"])


def test_rows_tied_on_n_d_and_loss_are_paired_by_their_labels():
    """Losses rounded to two decimals tie: two runs of one size and tokens with the same loss
    kept their file order, so a shuffled copy paired each with the other."""
    import pandas as pd

    from bayescale.evaluate.compare import _row_order

    frame = pd.DataFrame({"params": [1e8, 1e8, 3e8], "tokens": [2e9, 2e9, 6e9],
                          "loss": [3.1, 3.1, 2.9], "run": ["s1", "s2", "s3"]})
    shuffled = frame.iloc[[1, 0, 2]].reset_index(drop=True)
    assert (frame.iloc[_row_order(frame)]["run"].tolist()
            == shuffled.iloc[_row_order(shuffled)]["run"].tolist())


def test_the_same_file_by_two_paths_is_refused(known_example_file, monkeypatch):
    monkeypatch.chdir(known_example_file.parent)
    result = CliRunner().invoke(app, ["compare", known_example_file.name,
                                      str(known_example_file.resolve())])
    assert result.exit_code == 2 and "the same file is given twice" in result.stderr


def test_bad_pareto_k_is_one_line_per_fit_without_the_librarys_warning(tmp_path):
    """A row far off the law under tight noise makes LOO's Pareto k bad: compare said so in its
    own line and arviz-stats printed its paragraph and source line beside it on stderr."""
    import warnings

    import pandas as pd

    from bayescale import Posterior
    from bayescale.law.simulate import EPOCH_LAW, chinchilla_loss, known_draws

    n, d = np.array([1e8, 3e8, 1e9, 3e9, 1e10]), np.array([2e9, 6e9, 2e10, 6e10, 2e11])
    loss = chinchilla_loss(EPOCH_LAW, n, d)
    loss[-1] *= 1.2  # 0.2 nats off the law, noise 0.002
    frame = pd.DataFrame({"params": n, "tokens": d, "loss": loss})
    posts = [Posterior.from_draws(known_draws(400, random_seed=s), data=frame) for s in (0, 1)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table, lines = compare(posts, ["a", "b"])
    assert [str(w.message) for w in caught if issubclass(w.category, UserWarning)] == []
    assert (table["n_bad_k"] > 0).all()
    assert len(lines) == 2 and all("Pareto k > 0.7" in line for line in lines)

    paths = [tmp_path / "a.nc", tmp_path / "b.nc"]
    for post, path in zip(posts, paths, strict=True):
        post.save(path)
    result = CliRunner().invoke(app, ["compare", *map(str, paths)])
    assert result.exit_code == 0, result.output
    assert result.stderr.count("warning: ") == 2 and "Pareto k > 0.7" in result.stderr
