"""``bayescale cache info|clear``: the compiled models that let later fits start fast."""

from __future__ import annotations

import typer

from bayescale.cli.app import app
from bayescale.cli.common import JsonOption, emit_json, err, user_errors

cache_app = typer.Typer(
    name="cache", no_args_is_help=True,
    help="The compiled-model cache: fits of a model structure compiled before load its code "
    "from here instead of compiling it again. Its folder is $BAYESCALE_CACHE_DIR if set, else "
    "the user cache directory (docs/cache.md).")
app.add_typer(cache_app, name="cache", short_help="Show or clear the compiled-model cache.")


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


@cache_app.command("info", short_help="Where the cache is and what it holds.")
@user_errors
def info(as_json: bool = JsonOption) -> None:
    """Show the cache's folder, its number of compiled models and their size on disk."""
    from bayescale.inference import compile_cache

    found = compile_cache.info()
    if as_json:
        emit_json({"path": str(found.path), "models": found.models, "bytes": found.bytes,
                   "env_var": compile_cache.ENV_VAR})
        return
    err.print(f"compiled-model cache: {found.path}")
    err.print(f"  {found.models} compiled model(s), {_mb(found.bytes)}")
    err.print(f"  (set {compile_cache.ENV_VAR} to move it; `bayescale cache clear` empties it)")


@cache_app.command("clear", short_help="Remove every compiled model.")
@user_errors
def clear(as_json: bool = JsonOption) -> None:
    """Remove every compiled model; the next fit of each model structure compiles it again."""
    from bayescale.inference import compile_cache

    removed = compile_cache.clear()
    if as_json:
        emit_json({"path": str(removed.path), "removed_models": removed.models,
                   "removed_bytes": removed.bytes})
        return
    err.print(f"removed {removed.models} compiled model(s), {_mb(removed.bytes)}, from "
              f"{removed.path}")
