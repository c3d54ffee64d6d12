"""``bayescale info``: what a posterior file was made from (input, law, priors, options)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from bayescale.cli.app import app
from bayescale.cli.common import JsonOption, emit_json, err, user_errors


def input_status(meta: dict[str, Any]) -> str:
    """Whether the fitted input still exists with the same bytes: matches, changed or missing.

    Examples
    --------
    >>> input_status({"input": {"path": "no/such.csv", "sha256": "0" * 64}})
    'missing'
    """
    from bayescale.data.runs import file_sha256

    source = meta.get("input", {})
    path = Path(source.get("path", ""))
    if not source.get("sha256") or not path.is_file():
        return "missing"
    return "matches" if file_sha256(path) == source["sha256"] else "changed"


_STATUS = {"matches": "the file there now has the same bytes",
           "changed": "the file there now differs: it changed since the fit",
           "missing": "no file there now"}


def _pairs(values: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
                     for key, value in values.items())


@app.command(short_help="Show what a posterior file was made from.")
@user_errors
def info(
    fit_file: Path = typer.Argument(..., metavar="FIT",
                                    help="Posterior file written by `bayescale fit`."),
    as_json: bool = JsonOption,
) -> None:
    """Show what a posterior file was made from: the input's path and sha256 (and whether the
    file there still matches), law, likelihood, priors, sampler options, diagnostics, package
    versions and creation time."""
    from bayescale.law.priors import from_dict
    from bayescale.posterior.posterior import Posterior

    post = Posterior.load(fit_file)
    meta = post.meta
    sizes = post.tree["posterior"].dataset.sizes
    status = input_status(meta)
    if as_json:
        emit_json({"file": str(fit_file), "chains": int(sizes.get("chain", 1)),
                   "draws": int(sizes.get("draw", 0)), "input_status": status, **meta,
                   "family_names": post.families})
        return
    source = meta.get("input", {})
    diag = meta.get("diagnostics", {})
    table = Table(show_header=False, box=None, title=f"{fit_file}", title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    rows = [
        ("created", f"{meta.get('created', '?')} by bayescale "
                    f"{meta.get('bayescale_version', '?')}"),
        ("input", f"{source.get('path', '?')} ({source.get('n_rows', '?')} rows, "
                  f"{source.get('n_runs', '?')} runs)"),
        ("sha256", f"{source.get('sha256', '?')} ({_STATUS[status]})"),
        ("columns", _pairs(source.get("columns", {}))),
        ("law", f"{post.law.name}: {post.law.formula}"),
        *((("families", ", ".join(post.families)
            + (" (each its own E)" if meta.get("separate_e") else "")),)
          if post.families else ()),
        ("likelihood", str(meta.get("likelihood", "?"))),
        ("seed noise", "prior" if meta.get("seed_noise") is None
         else f"fixed at {meta['seed_noise']}"),
        *((f"prior {name}", prior.describe())
          for name, prior in from_dict(meta.get("priors", {})).items()),
        *((f"prior {name}", f"given but not used: {why}")
          for name, why in meta.get("unused_priors", {}).items()),
        ("sampler", _pairs(meta.get("sampler", {}))),
        ("draws", f"{int(sizes.get('chain', 1))} chains x {int(sizes.get('draw', 0))}"),
        ("diagnostics", _pairs({k: ("n/a (one chain)" if k == "max_r_hat" and v is None else v)
                                for k, v in diag.items() if k != "problems"})),
        ("problems", "; ".join(diag.get("problems", [])) or "none"),
        ("versions", _pairs(meta.get("versions", {}))),
    ]
    for key, value in rows:
        table.add_row(Text(key), Text(value))
    err.print(table, highlight=False)
