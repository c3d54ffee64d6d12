"""The Python API is documented: docstring examples run (none is a skipped placeholder),
``help(bayescale)`` lists the workflow, and ``bayescale --help`` lists each command in a line."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import pydoc
from pathlib import Path

import pytest

import bayescale

PACKAGE = Path(bayescale.__file__).parent


def _modules() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages(bayescale.__path__, "bayescale.")]
    return sorted(["bayescale", *names])


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(module, optionflags=flags, verbose=False, report=False)
    assert result.failed == 0, f"{result.failed} failing docstring example(s) in {name}"


def test_no_skipped_examples():
    # an example that cannot run is left out, not kept as a placeholder
    marker = "doctest: +" + "SKIP"
    offenders = sorted(str(path.relative_to(PACKAGE.parent)) for path in PACKAGE.rglob("*.py")
                       if marker in path.read_text(encoding="utf-8"))
    assert offenders == []


def test_help_lists_the_workflow():
    text = pydoc.render_doc(bayescale, renderer=pydoc.plaintext)
    for name in ("load_runs", "fit", "Posterior", "SamplerOptions", "ModelSpec", "predict",
                 "optimal", "risk", "summary", "plot_frontier", "bayescale.report.plots",
                 "bayescale.evaluate.backtest", "walkthrough.ipynb"):
        assert name in text
    assert set(bayescale.__all__) <= set(dir(bayescale))


def test_command_list_has_one_line_per_command():
    # `bayescale --help` lists each command's short help (else its docstring's first
    # paragraph, hard line breaks kept): one line of at most 64 characters fits 80 columns
    from typer.main import get_command

    from bayescale.cli import app

    for name, command in get_command(app).commands.items():
        summary = (command.short_help or command.help or "").strip()
        assert summary and "\n" not in summary and len(summary) <= 64, name
