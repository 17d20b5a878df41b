"""Piccolo AppConfig: every table of the app, migrations in the top-level folder."""

from pathlib import Path

from piccolo.conf.apps import AppConfig, table_finder

ROOT = Path(__file__).resolve().parent.parent

APP_CONFIG = AppConfig(
    app_name="crm",
    migrations_folder_path=str(ROOT / "piccolo_migrations"),
    table_classes=table_finder(
        modules=[
            "app.accounts.tables",
            "app.customers.tables",
            "app.audit.tables",
            "app.transfers.tables",
        ],
        exclude_imported=True,
    ),
    migration_dependencies=[],
    commands=[],
)
