"""The Python API is documented: every public function and class has a docstring with an
example, the examples that need no fit run, and ``help(bayescale)`` lists the workflow."""

from __future__ import annotations

import doctest
import functools
import importlib
import inspect
import pkgutil
import pydoc

import pytest

import bayescale

#: Command modules are documented by their ``--help`` (their docstrings are the help text).
COMMANDS = ("bayescale.cli.",)
HELPERS = ("bayescale.cli.common",)


def _modules() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages(bayescale.__path__, "bayescale.")]
    return sorted(n for n in names if not n.startswith(COMMANDS) or n in HELPERS)


def _public(module) -> list[tuple[str, object]]:
    """Functions and classes defined in ``module`` (and their methods) without a leading _."""
    out = []
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(obj):
            out.append((name, obj))
        elif inspect.isclass(obj):
            out.append((name, obj))
            for attr, member in vars(obj).items():
                if attr.startswith("_"):
                    continue
                if isinstance(member, property):
                    member = member.fget
                elif isinstance(member, functools.cached_property):
                    member = member.func
                func = getattr(member, "__func__", member)  # classmethod, staticmethod
                if inspect.isfunction(func):
                    out.append((f"{name}.{attr}", func))
    return out


@pytest.mark.parametrize("name", _modules())
def test_public_names_have_an_example(name):
    module = importlib.import_module(name)
    missing = [qual for qual, obj in _public(module)
               if ">>>" not in (inspect.getdoc(obj) or "")]
    assert missing == [], f"{name}: no docstring example for {', '.join(missing)}"


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(module, optionflags=flags, verbose=False, report=False)
    assert result.failed == 0, f"{result.failed} failing docstring example(s) in {name}"


def test_help_lists_the_workflow():
    text = pydoc.render_doc(bayescale, renderer=pydoc.plaintext)
    for name in ("load_runs", "fit", "Posterior", "SamplerOptions", "ModelSpec", "predict",
                 "optimal", "risk", "plot_frontier", "summary", "walkthrough.ipynb"):
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
