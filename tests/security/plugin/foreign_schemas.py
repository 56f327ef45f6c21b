"""Schemas that are not this project's: other tenant columns, types and bindings.

``POOL`` is a pool-model schema keyed on an integer ``tenant_id`` read from the
setting ``app.current_tenant``, set up soundly. ``POOL_GAPS`` adds one weakness
per table, each of a kind the checks must name. ``ACCOUNTS`` is keyed on a text
``account`` bound through ``set_config('request.jwt.claim.sub', ...)``.
Role names carry a suffix: roles are cluster-wide, the databases are not.
"""

from __future__ import annotations

from dataclasses import dataclass

GUARD = "(SELECT current_setting('app.current_tenant')::integer)"


@dataclass(frozen=True)
class Roles:
    """The roles of one run: the app role and the owner of the schema's tables."""

    app: str
    owner: str

    def create(self) -> tuple[str, ...]:
        """Return the statements creating both roles."""
        return (f"CREATE ROLE {self.owner} NOLOGIN", f"CREATE ROLE {self.app} NOLOGIN")

    def drop(self) -> tuple[str, ...]:
        """Return the statements dropping both roles (run once per database, then once)."""
        return (f"DROP ROLE IF EXISTS {self.app}", f"DROP ROLE IF EXISTS {self.owner}")


def tenant_table(table: str, roles: Roles, columns: str, *, guard: bool = True) -> list[str]:
    """Return DDL for ``shop.<table>`` under RLS, forced, with the tenant policies."""
    statements = [
        f"CREATE TABLE shop.{table} ({columns})",
        f"ALTER TABLE shop.{table} OWNER TO {roles.owner}",
        f"ALTER TABLE shop.{table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE shop.{table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY tenant_read ON shop.{table} USING (tenant_id = {GUARD})",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON shop.{table} TO {roles.app}",
    ]
    if guard:
        statements.append(
            f"CREATE POLICY tenant_guard ON shop.{table} AS RESTRICTIVE "
            f"USING (tenant_id = {GUARD}) WITH CHECK (tenant_id = {GUARD})"
        )
    return statements


def pool(roles: Roles) -> list[str]:
    """Return the sound pool-model schema: tenants and their orders."""
    return [
        "CREATE SCHEMA shop",
        f"GRANT USAGE ON SCHEMA shop TO {roles.app}",
        *tenant_table("tenants", roles, "tenant_id integer PRIMARY KEY, name text NOT NULL"),
        *tenant_table(
            "orders",
            roles,
            "tenant_id integer NOT NULL REFERENCES shop.tenants, id bigint NOT NULL, "
            "total numeric NOT NULL, PRIMARY KEY (tenant_id, id)",
        ),
        # A random global token, declared as such (--random-key), is not an oracle.
        *tenant_table(
            "invites",
            roles,
            "tenant_id integer NOT NULL, token text NOT NULL UNIQUE, PRIMARY KEY (tenant_id)",
        ),
    ]


def pool_gaps(roles: Roles) -> list[str]:
    """Return one weakness per table, added to ``pool``."""
    keyed = "tenant_id integer NOT NULL, id bigint NOT NULL, PRIMARY KEY (tenant_id, id)"
    return [
        # A bypass setting OR-ed into the only (permissive) policy.
        *tenant_table("bypassed", roles, keyed, guard=False),
        "DROP POLICY tenant_read ON shop.bypassed",
        f"CREATE POLICY tenant_read ON shop.bypassed USING (tenant_id = {GUARD} "
        "OR current_setting('app.bypass_rls', true) = 'on')",
        # A restrictive "guard" that ORs in the bypass setting guards nothing.
        *tenant_table("false_guard", roles, keyed, guard=False),
        "CREATE POLICY tenant_guard ON shop.false_guard AS RESTRICTIVE "
        f"USING (tenant_id = {GUARD} OR current_setting('app.bypass_rls', true) = 'on')",
        # A range: a tenant reads its neighbour's rows.
        *tenant_table("ranged", roles, keyed, guard=False),
        "DROP POLICY tenant_read ON shop.ranged",
        "CREATE POLICY tenant_read ON shop.ranged "
        f"USING (tenant_id BETWEEN {GUARD} AND {GUARD} + 1)",
        # A partitioned table whose partition has RLS off.
        "CREATE TABLE shop.events (tenant_id integer NOT NULL, day date NOT NULL, "
        "PRIMARY KEY (tenant_id, day)) PARTITION BY RANGE (day)",
        "CREATE TABLE shop.events_all PARTITION OF shop.events "
        "FOR VALUES FROM ('1990-01-01') TO ('2100-01-01')",
        f"ALTER TABLE shop.events OWNER TO {roles.owner}",
        f"ALTER TABLE shop.events_all OWNER TO {roles.owner}",
        "ALTER TABLE shop.events ENABLE ROW LEVEL SECURITY",
        "ALTER TABLE shop.events FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY tenant_guard ON shop.events AS RESTRICTIVE USING (tenant_id = {GUARD})",
        f"CREATE POLICY tenant_read ON shop.events USING (tenant_id = {GUARD})",
        f"GRANT SELECT ON shop.events, shop.events_all TO {roles.app}",
        # No RLS at all, and the app role may write it.
        "CREATE TABLE shop.audit_log (tenant_id integer NOT NULL, message text NOT NULL)",
        "CREATE INDEX ON shop.audit_log (tenant_id)",
        f"GRANT SELECT, INSERT ON shop.audit_log TO {roles.app}",
        # A superuser's definer function reading a tenant table, executable by all.
        "CREATE FUNCTION shop.order_total(wanted integer) RETURNS numeric LANGUAGE sql "
        "SECURITY DEFINER SET search_path = pg_catalog, pg_temp "
        "AS 'SELECT sum(total) FROM shop.orders WHERE tenant_id = wanted'",
        # A foreign key to a tenant row from a column that is not the tenant's.
        *tenant_table(
            "refunds",
            roles,
            "tenant_id integer NOT NULL, id bigint NOT NULL, "
            "payer integer REFERENCES shop.tenants (tenant_id), PRIMARY KEY (tenant_id, id)",
        ),
        # Every session of the app role starts bound to tenant 1.
        f"ALTER ROLE {roles.app} SET app.current_tenant = '1'",
        # The app role may SET ROLE to the owner of the tables.
        f"GRANT {roles.owner} TO {roles.app}",
    ]


def accounts(roles: Roles) -> list[str]:
    """Return a sound schema keyed on a text ``account``, read from a JWT claim setting."""
    claim = "(SELECT current_setting('request.jwt.claim.sub', true))"
    return [
        "CREATE SCHEMA shop",
        f"GRANT USAGE ON SCHEMA shop TO {roles.app}",
        "CREATE TABLE shop.documents (account text NOT NULL, id integer NOT NULL, "
        "body text NOT NULL, PRIMARY KEY (account, id))",
        f"ALTER TABLE shop.documents OWNER TO {roles.owner}",
        "ALTER TABLE shop.documents ENABLE ROW LEVEL SECURITY",
        "ALTER TABLE shop.documents FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY account_guard ON shop.documents AS RESTRICTIVE "
        f"USING (account = {claim}) WITH CHECK (account = {claim})",
        f"CREATE POLICY account_read ON shop.documents USING (account = {claim})",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON shop.documents TO {roles.app}",
    ]
