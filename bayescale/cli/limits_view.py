"""What ``optimal`` and ``risk`` print under limits (docs/limits.md): the options
``--unique-tokens`` and ``--inference-tokens``, and the tables of the constrained optima."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from bayescale.cli.common import emit_json, err, say_warnings
from bayescale.core import format as fmt
from bayescale.core.errors import BayescaleError

UniqueTokensOption = typer.Option(
    None, "--unique-tokens", help="Unique tokens U available (a law with a data-limit term, "
    "fit --law muennighoff): the best N, D, epochs under the limit.")
InferenceTokensOption = typer.Option(
    None, "--inference-tokens", help="Tokens T the model will serve: minimise training + "
    "inference FLOPs 6ND + 2NT at the target loss (Sardana et al. 2024).")


def parse_inference_tokens(value: str | None) -> float | None:
    """``--inference-tokens``: a size (2T, 1e13) of zero or more; a usage error otherwise."""
    import math

    from bayescale.data.runs import parse_size

    if value is None:
        return None
    try:
        tokens = parse_size(value)
    except ValueError:
        raise typer.BadParameter(f"'{value}' is not a number or a size like 2T",
                                 param_hint="--inference-tokens") from None
    if not math.isfinite(tokens) or tokens < 0:
        raise typer.BadParameter(f"{value} is negative or not finite: give the tokens the "
                                 "model will serve (0 or more)", param_hint="--inference-tokens")
    return tokens


def limited_optimal(post: Any, compute: float | None, unique_tokens: float | None,
                    inference_tokens: float | None, target_loss: float | None, level: float,
                    interval: str, family: str | None, which: dict, as_json: bool) -> None:
    """``optimal`` under a data limit and/or an inference load: compute, print, JSON."""
    from bayescale.posterior.limits import data_limited, inference_aware

    out: dict = {"level": level, "interval": interval, **which}
    warnings: list[str] = []
    if unique_tokens is not None and compute is not None:
        out["data_limit"] = data_limited(post, compute, unique_tokens, level=level,
                                         interval_kind=interval, family=family)
        warnings += out["data_limit"].pop("warnings")
    elif unique_tokens is not None and inference_tokens is None:
        raise BayescaleError("--unique-tokens needs --compute (the budget to spend)")
    if inference_tokens is not None:
        out["inference"] = inference_aware(post, inference_tokens, compute=compute,
                                           target_loss=target_loss, unique_tokens=unique_tokens,
                                           level=level, interval_kind=interval, family=family)
        warnings += out["inference"].pop("warnings")
    out["warnings"] = warnings
    if as_json:
        emit_json(out)
        return
    print_limits(out, level, interval)
    say_warnings(warnings)


def limit_tables(out: dict, level: float, interval: str
                 ) -> list[tuple[str, tuple[str, ...], list[tuple[str, ...]]]]:
    """The constrained optima of ``out`` (``data_limit``, ``inference``) as tables of formatted
    cells: (title, column names, rows), one source for the terminal and the markdown."""
    def show(entry: dict, formatter=fmt.number) -> str:
        return fmt.interval(entry["median"], entry["lower"], entry["upper"], fmt=formatter)

    pct = f"{fmt.percent(level)} {interval.upper()}"
    tables = []
    if "data_limit" in out:
        lim = out["data_limit"]
        tables.append((
            f"Best allocation with {fmt.size(lim['unique_tokens'])} unique tokens at "
            f"C = {fmt.flop(lim['compute'])} ({pct})",
            ("quantity", "under the data limit", "unlimited data"),
            [("N", show(lim["params"], fmt.size), show(lim["unlimited_params"], fmt.size)),
             ("D", show(lim["tokens"], fmt.size), show(lim["unlimited_tokens"], fmt.size)),
             ("epochs (D / U)", show(lim["epochs"]), "1 (fresh data)"),
             ("law's expected loss", show(lim["loss"]), show(lim["unlimited_loss"])),
             ("loss the limit costs (nats)", show(lim["limit_cost"]), "")]))
    if "inference" in out:
        inf = out["inference"]
        tables.append((
            f"Least training + inference FLOPs (6ND + 2NT) for T = "
            f"{fmt.size(inf['inference_tokens'])} tokens served ({pct})",
            ("quantity", "inference-aware", "compute-optimal (same loss)"),
            [("target loss", show(inf["target_loss"]), ""),
             ("N", show(inf["params"], fmt.size), show(inf["chinchilla_params"], fmt.size)),
             ("D", show(inf["tokens"], fmt.size), show(inf["chinchilla_tokens"], fmt.size)),
             ("tokens per parameter", show(inf["tokens_per_param"]), ""),
             ("total FLOPs", show(inf["total_flops"], fmt.flop),
              show(inf["chinchilla_total_flops"], fmt.flop)),
             ("FLOPs saved", show(inf["flops_saved"], fmt.flop), ""),
             ("share saved", show(inf["flops_saved_share"], fmt.percent), "")]))
    return tables


def print_limits(out: dict, level: float, interval: str) -> None:
    """The constrained optima as tables on stderr (``optimal`` and ``risk``)."""
    for title, columns, rows in limit_tables(out, level, interval):
        table = Table(title=title)
        for column in columns:
            table.add_column(column, justify="right")
        for row in rows:
            table.add_row(*row)
        err.print(table)


def limits_markdown(out: dict, level: float, interval: str) -> str:
    """The constrained optima as markdown tables (``risk --format markdown``), with their
    warnings as a list; empty without limits."""
    lines = []
    for title, columns, rows in limit_tables(out, level, interval):
        lines += ["", f"#### {title}", "", f"| {' | '.join(columns)} |",
                  f"|{'---|' * len(columns)}", *(f"| {' | '.join(row)} |" for row in rows)]
    warnings = out.get("warnings", [])
    lines += ([""] if warnings and lines else []) + [f"- **Limits:** {w}." for w in warnings]
    return "\n".join(lines) + "\n" if lines else ""
