"""The package's shape: no import cycle, and the layer contract that import-linter checks."""

from __future__ import annotations

import tomllib

import grimp

from tests.builders import ROOT


def _graph() -> grimp.ImportGraph:
    return grimp.build_graph("bayescale", exclude_type_checking_imports=True)


def test_no_import_cycle():
    graph = _graph()
    cycles = sorted({tuple(sorted((a, b))) for a in graph.modules
                     for b in graph.find_modules_directly_imported_by(a)
                     if graph.chain_exists(importer=b, imported=a)})
    assert cycles == []


def test_every_subpackage_is_a_layer():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = {name for contract in config["contracts"] if contract["type"] == "layers"
              for name in contract["layers"]}
    subpackages = {m for m in _graph().modules if m.count(".") == 1
                   and (ROOT / m.replace(".", "/") / "__init__.py").exists()}
    assert subpackages == layers
