"""Who made a change and from where: what an audit entry records besides the change."""

from __future__ import annotations

from dataclasses import dataclass, replace

from litestar.connection import ASGIConnection

from app.lib.requests import client_ip, request_id_of

USER_AGENT_MAX = 500


@dataclass(frozen=True)
class AuditContext:
    """Built once per request (``from_connection``), or by a job or the CLI (``system``)."""

    actor_id: int | None = None
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    import_id: int | None = None

    @classmethod
    def from_connection(cls, connection: ASGIConnection) -> AuditContext:
        """The signed-in account (session) or the token's owner (API) as the actor, the
        client address (X-Forwarded-For only from TRUSTED_PROXIES), user agent and
        request id."""
        user = connection.scope.get("user")
        actor = getattr(user, "id", None)
        request_id = request_id_of(connection.scope)
        agent = connection.headers.get("user-agent")
        return cls(
            actor_id=actor if isinstance(actor, int) else None,
            ip=client_ip(connection.scope),
            user_agent=agent[:USER_AGENT_MAX] if agent else None,
            request_id=None if request_id == "-" else request_id,
        )

    @classmethod
    def system(
        cls,
        *,
        actor_id: int | None = None,
        request_id: str | None = None,
        import_id: int | None = None,
    ) -> AuditContext:
        """For changes no request made: a job (request_id "job:<id>") or the CLI."""
        return cls(actor_id=actor_id, request_id=request_id, import_id=import_id)

    def for_import(self, import_id: int) -> AuditContext:
        return replace(self, import_id=import_id)
