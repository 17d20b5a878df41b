"""Piccolo's own configuration, used by the `piccolo` CLI (migrations).

The engine comes from the same Settings the app uses, so `make migrate` and the
server always talk to the same database.
"""

from piccolo.conf.apps import AppRegistry

from app.lib.db import build_engine
from app.settings import Settings

DB = build_engine(Settings.from_env())

APP_REGISTRY = AppRegistry(apps=["app.piccolo_app"])
