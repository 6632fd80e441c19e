"""`lorakit review DATASET`: the local web app (lora_core.review) on 127.0.0.1, opened in the browser."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lora_core.cli import cli
from lora_core.cli.options import build_registry, plugin_options


@cli.command()
@click.argument("dataset", type=click.Path(path_type=Path), default=Path("."))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but a loopback address lets other machines reach the dataset.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="0: any free port.")
@click.option("--no-browser", is_flag=True, help="Print the URL instead of opening the browser.")
@click.option("--config", type=click.Path(path_type=Path, dir_okay=False), help="lorakit.toml to use.")
@click.option("--captioner", metavar="NAME", help="A captioner plugin for the page's *Caption* button (see `lorakit "
              "plugins`); loaded on its first use.")
@click.option("--model", metavar="ID_OR_PATH", help="The captioner's model (as `lorakit caption --model`).")
@click.option("-O", "--captioner-option", "captioner_options", multiple=True, metavar="KEY=VALUE",
              help="A keyword option for the captioner (as `lorakit caption -O`); repeatable.")
@click.option("--device", type=click.Choice(["auto", "cuda", "cpu"]), default="auto", show_default=True,
              help="The captioner's device.")
@plugin_options
def review(dataset: Path, host: str, port: int, no_browser: bool, config: Path | None, captioner: str | None,
           model: str | None, captioner_options: tuple[str, ...], device: str,
           plugin_flags: tuple[str, ...], require_plugins: tuple[str, ...]) -> None:
    """See DATASET with its findings in the browser: edit captions with a live re-lint, apply fixes
    with a preview, replace over a filter, undo and redo across restarts.

    \b
    Examples:
      lorakit review data/
      lorakit review data/metadata.csv --port 0 --no-browser
      lorakit review data/ --captioner wd-tagger --model ./wd-swinv2   # a *Caption* button
    """
    from lora_core.errors import PluginError

    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise PluginError(f"lorakit review needs starlette and uvicorn: pip install 'lorakit[review]' ({exc})") \
            from None
    import secrets
    import socket
    import webbrowser

    from lora_core import api
    from lora_core.review.app import ReviewState, create_app
    from lora_core.session import DatasetSession

    registry = build_registry(plugin_flags, require_plugins)
    captioning = None
    if captioner is not None:
        from lora_core.captioning import CaptionOptions, parse_captioner_options, require_captioners

        require_captioners([captioner], registry)  # a wrong name fails now, not at the first click
        captioning = CaptionOptions(captioners=[captioner], models={captioner: model} if model else {},
                                    device=device, captioner_options=parse_captioner_options(captioner_options))
    session = DatasetSession(dataset, api.LintOptions(config=config), registry)
    loopback = host in ("127.0.0.1", "localhost", "::1")
    if not loopback:
        click.echo(f"lorakit: warning: listening on {host}: anyone who can reach this machine and has the URL can "
                   "read and edit the dataset's captions", err=True)
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        listener.bind((host, port))
    except OSError as exc:
        from lora_core.errors import OutputError

        raise OutputError(f"cannot listen on {host}:{port} ({exc.strerror or exc}): choose another --port "
                          "(0 picks a free one)") from None
    port = listener.getsockname()[1]
    listener.close()
    token = secrets.token_urlsafe(24)
    shown = f"[{host}]" if ":" in host else host
    names = {f"{shown}:{port}", f"127.0.0.1:{port}", f"localhost:{port}"} if loopback else {f"{shown}:{port}"}
    app = create_app(ReviewState(session, captioning), token, names)
    url = f"http://{shown}:{port}/?token={token}"
    records = len(session.dataset.records)
    from lora_core.reporters import plural

    click.echo(f"lorakit review: {session.dataset.path} ({plural(records, 'caption')}, "
               f"{plural(len(session.violations), 'finding')})")
    click.echo(f"  open {url}\n  Ctrl-C stops the server; unsaved edits are lost, saved ones stay undoable.")
    if not no_browser:
        webbrowser.open(url)
    sys.stdout.flush()
    uvicorn.run(app, host=host, port=port, log_level="warning")
