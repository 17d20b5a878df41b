"""The `crm` command: `crm serve` runs the app with the host and port from Settings;
`crm audit-verify --user EMAIL|ID` checks a user's audit hash chain."""

from __future__ import annotations

import argparse
import asyncio
import sys

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
    verify = commands.add_parser(
        "audit-verify",
        help="walk a user's audit hash chain (archives, then the database) and report "
        "the first break; exit 1 when broken",
    )
    verify.add_argument("--user", required=True, help="the user's email address or id")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if args.command == "serve":
        serve(settings)
    elif args.command == "audit-verify":
        from app.audit.cli import verify_command

        sys.exit(asyncio.run(verify_command(settings, args.user)))


if __name__ == "__main__":
    main()
