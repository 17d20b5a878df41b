"""The `crm` command: `crm serve` runs the app with the host and port from Settings;
`crm audit-verify --user EMAIL|ID` checks a user's audit hash chain; `crm make-admin
[--revoke] EMAIL` grants (or takes back) the admin pages."""

from __future__ import annotations

import argparse
import asyncio
import sys

from app.settings import Settings


def serve(settings: Settings) -> None:
    """One uvicorn process on HOST:PORT, without access log (the app's JSON request log
    says it) or proxy headers (TRUSTED_PROXIES decides whom to believe).

    granian served the list fragment faster in the benchmark that compares the two
    (tests/perf/test_load.py), but under it two browser tests of inline editing failed and
    the server did not stop on SIGTERM within 15 s; until that is understood, uvicorn
    stays the default."""
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
    make_admin = commands.add_parser(
        "make-admin",
        help="let an account see the admin pages (/admin/queues); exit 1 when no account "
        "has that email",
    )
    make_admin.add_argument("email", help="the account's email address")
    make_admin.add_argument("--revoke", action="store_true", help="take the admin right back")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if args.command == "serve":
        serve(settings)
    elif args.command == "audit-verify":
        from app.audit.cli import verify_command

        sys.exit(asyncio.run(verify_command(settings, args.user)))
    elif args.command == "make-admin":
        from app.admin.cli import make_admin_command

        sys.exit(asyncio.run(make_admin_command(settings, args.email, revoke=args.revoke)))


if __name__ == "__main__":
    main()
