"""The `crm` command: `crm serve` runs the app with the host and port from Settings."""

from __future__ import annotations

import argparse

from app.settings import Settings


def serve(settings: Settings) -> None:
    import uvicorn

    uvicorn.run(
        "app.main:app",
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
        proxy_headers=False,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="crm", description="Customer-management app.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve the web app on HOST:PORT")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if args.command == "serve":
        serve(settings)


if __name__ == "__main__":
    main()
