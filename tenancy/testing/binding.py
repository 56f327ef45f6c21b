"""How the probe acts as the application: its role, then a tenant bound as the service binds it."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy.testing.result import CheckOptions

# set_config() rather than SET: it takes the tenant as a bind parameter. (The library
# itself uses the SET LOCAL literal for Citus; the policies read the same setting.)
_SET_TENANT = text("SELECT set_config(:setting, :tenant, true)")


class Binding:
    """Makes a tenant current the way the service does: a setting, or a SQL template."""

    def __init__(
        self,
        options: CheckOptions,
        members: dict[str, str] | None = None,
        *,
        set_local: bool = False,
    ) -> None:
        self.app_role = options.app_role
        self.setting = options.config.tenant_setting
        self.template = options.config.tenant_binding
        # Membership-based: the user who is a member of each probe tenant.
        self.members = members or {}
        # A Citus coordinator forwards SET LOCAL to the workers, never set_config():
        # there the setting is bound as the library binds it.
        self.set_local = set_local

    async def assume_role(self, connection: AsyncConnection) -> None:
        """Become the application role for the rest of the open transaction."""
        quote = connection.dialect.identifier_preparer.quote
        # SET LOCAL: the superuser is back at the transaction's end, committed or not.
        await connection.exec_driver_sql(f"SET LOCAL ROLE {quote(self.app_role)}")

    async def bind(self, connection: AsyncConnection, tenant: str) -> None:
        """Make ``tenant`` current (or, membership-based, a member of it) for the transaction."""
        tenant = self.members.get(tenant, tenant)
        if self.template is None and not self.set_local:
            await connection.execute(_SET_TENANT, {"setting": self.setting, "tenant": tenant})
            return
        # The template and the setting are the operator's configuration; the tenant is
        # our own synthetic value, written as a quoted literal (SET takes no bind
        # parameter, and a template may use it where none is allowed).
        literal = "'" + tenant.replace("'", "''") + "'"
        if self.template is not None:
            await connection.exec_driver_sql(self.template.replace("{tenant}", literal))
            return
        quote = connection.dialect.identifier_preparer.quote
        name = ".".join(quote(part) for part in self.setting.split("."))
        await connection.exec_driver_sql(f"SET LOCAL {name} = {literal}")
