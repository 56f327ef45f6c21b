"""Users visible through member_of: a membership policy Citus accepts, with the same isolation.

The ``users`` policies checked memberships with a sub-query, which Citus refuses
in a policy (``users`` is a reference table there), and a function hiding it is
pushed to a worker inside any join with ``memberships``, where it may not query
another node. Each user now carries ``member_of``: the organizations where it has
an accepted membership, which the policies compare with the tenant setting.

It says what the memberships say because only the definer functions that accept
or end a membership write it, in the same statement: ``join_organization`` (a
user this transaction created, or the founding owner: the consent rules of 0009,
moved out of the insert policy), ``accept_invitation`` and ``remove_membership``.
A tenant itself now inserts only invitations and deletes only invitations; its
updates never make a membership pending or accepted (0009). The app role cannot
read ``member_of``. ``created_by_this_transaction`` and
``founded_by_this_transaction`` become plpgsql with the transaction status computed
in the query that reads the row, so on Citus it is computed on the row's node.

Revision ID: tenancy_0014
Revises: tenancy_0013
Create Date: 2026-12-03 07:30:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from alembic_utils.pg_function import PGFunction
from alembic_utils.pg_policy import PGPolicy
from sqlalchemy.dialects import postgresql

from tenancy.schema.migration import migration_roles

revision: str = "tenancy_0014"
down_revision: str | Sequence[str] | None = "tenancy_0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The functions the app role runs to accept or end a membership (tenancy_resolver's).
MEMBERSHIP_FUNCTIONS = ("join_organization(uuid, text, timestamptz)", "remove_membership(uuid)")
#: What they touch beyond what 0009 granted tenancy_resolver.
RESOLVER_GRANTS = (
    "GRANT SELECT (member_of), UPDATE (member_of) ON users TO {resolver}",
    "GRANT INSERT (org_id, user_id, role, status, created_at), DELETE ON memberships TO {resolver}",
)


def upgrade() -> None:
    roles = migration_roles()
    op.add_column(
        "users",
        sa.Column(
            "member_of",
            postgresql.ARRAY(sa.Uuid()),
            server_default=sa.text("'{}'::uuid[]"),
            nullable=False,
        ),
    )
    op.create_index("ix_users_member_of", "users", ["member_of"], postgresql_using="gin")
    # FORCE RLS hides every row from the owner without a tenant: lift it for the copy.
    for table in ("users", "memberships"):
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
    op.execute(
        "UPDATE users AS u SET member_of = ARRAY("
        "SELECT m.org_id FROM memberships AS m"
        " WHERE m.user_id = u.id AND m.status <> 'pending' ORDER BY m.org_id)"
    )
    for table in ("users", "memberships"):
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    for grant in RESOLVER_GRANTS:
        op.execute(grant.format(resolver=roles.resolver))

    entity = PGFunction(
        schema="public",
        signature="created_by_this_transaction(p_user_id uuid)",
        definition="returns boolean\nLANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER\nSET search_path = pg_catalog, pg_temp\nAS $$\nBEGIN\n    RETURN coalesce((\n        SELECT pg_xact_status(\n            (((pg_current_xact_id()::text::bigint >> 32) << 32) | u.xmin::text::bigint)::text::xid8\n        ) = 'in progress'\n        FROM public.users AS u\n        WHERE u.id = p_user_id\n    ), false);\nEND\n$$",
    )
    op.replace_entity(entity)

    entity = PGFunction(
        schema="public",
        signature="founded_by_this_transaction(p_org_id uuid)",
        definition="returns boolean\nLANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER\nSET search_path = pg_catalog, pg_temp\nAS $$\nBEGIN\n    RETURN coalesce((\n        SELECT pg_xact_status(\n            (((pg_current_xact_id()::text::bigint >> 32) << 32) | o.xmin::text::bigint)::text::xid8\n        ) = 'in progress'\n        FROM public.organizations AS o\n        WHERE o.id = p_org_id\n    ), false)\n    AND NOT EXISTS (SELECT 1 FROM public.memberships AS m WHERE m.org_id = p_org_id);\nEND\n$$",
    )
    op.replace_entity(entity)

    entity = PGFunction(
        schema="public",
        signature="accept_invitation(p_token text, p_user_id uuid)",
        definition="returns uuid\nLANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER\nSET search_path = pg_catalog, pg_temp\nAS $$\nDECLARE\n    v_hash bytea := sha256(convert_to(p_token, 'UTF8'));\n    v_org_id uuid;\n    v_accepted uuid;\nBEGIN\n    IF nullif(current_setting('app.org_id', true), '') IS NOT NULL THEN\n        RAISE EXCEPTION 'accept_invitation runs without a tenant' USING ERRCODE = '42501';\n    END IF;\n    SELECT t.org_id INTO v_org_id\n    FROM public.invitation_tokens AS t\n    WHERE t.token_hash = v_hash AND t.user_id = p_user_id;\n    UPDATE public.memberships AS m\n    SET status = 'active', invitation_token_hash = NULL, invitation_expires_at = NULL\n    WHERE m.org_id = v_org_id\n      AND m.user_id = p_user_id\n      AND m.invitation_token_hash = v_hash\n      AND m.status = 'pending'\n      AND m.invitation_expires_at > now()\n    RETURNING m.org_id INTO v_accepted;\n    IF v_accepted IS NOT NULL THEN\n        DELETE FROM public.invitation_tokens AS t WHERE t.token_hash = v_hash;\n        UPDATE public.users AS u\n        SET member_of = array_append(array_remove(u.member_of, v_accepted), v_accepted)\n        WHERE u.id = p_user_id;\n    END IF;\n    RETURN v_accepted;\nEND\n$$",
    )
    op.replace_entity(entity)

    entity = PGFunction(
        schema="public",
        signature="join_organization(p_user_id uuid, p_role text, p_joined_at timestamptz DEFAULT now())",
        definition="returns void\nLANGUAGE plpgsql VOLATILE SECURITY DEFINER\nSET search_path = pg_catalog, pg_temp\nAS $$\nDECLARE\n    v_org_id uuid := nullif(current_setting('app.org_id', true), '')::uuid;\n    v_founding boolean;\nBEGIN\n    IF v_org_id IS NULL THEN\n        RAISE EXCEPTION 'join_organization runs inside a tenant' USING ERRCODE = '42501';\n    END IF;\n    v_founding := p_role = 'owner' AND public.founded_by_this_transaction(v_org_id);\n    IF NOT (v_founding OR public.created_by_this_transaction(p_user_id)) THEN\n        RAISE EXCEPTION 'a user joins only by accepting an invitation'\n            USING ERRCODE = '42501';\n    END IF;\n    IF v_founding THEN\n        UPDATE public.users AS u SET member_of = array_remove(u.member_of, v_org_id)\n        WHERE u.member_of @> ARRAY[v_org_id];\n    END IF;\n    INSERT INTO public.memberships (org_id, user_id, role, status, created_at)\n    VALUES (v_org_id, p_user_id, p_role, 'active', coalesce(p_joined_at, now()));\n    UPDATE public.users AS u\n    SET member_of = array_append(array_remove(u.member_of, v_org_id), v_org_id)\n    WHERE u.id = p_user_id;\nEND\n$$",
    )
    op.create_entity(entity)

    entity = PGFunction(
        schema="public",
        signature="remove_membership(p_user_id uuid)",
        definition="returns boolean\nLANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER\nSET search_path = pg_catalog, pg_temp\nAS $$\nDECLARE\n    v_org_id uuid := nullif(current_setting('app.org_id', true), '')::uuid;\nBEGIN\n    IF v_org_id IS NULL THEN\n        RAISE EXCEPTION 'remove_membership runs inside a tenant' USING ERRCODE = '42501';\n    END IF;\n    DELETE FROM public.memberships AS m\n    WHERE m.org_id = v_org_id AND m.user_id = p_user_id AND m.status <> 'pending';\n    IF NOT FOUND THEN\n        RETURN false;\n    END IF;\n    UPDATE public.users AS u SET member_of = array_remove(u.member_of, v_org_id)\n    WHERE u.id = p_user_id;\n    RETURN true;\nEND\n$$",
    )
    op.create_entity(entity)

    entity = PGPolicy(
        schema="public",
        signature="member_read",
        on_entity="public.users",
        definition="AS PERMISSIVE FOR SELECT TO public\n    USING (member_of @> ARRAY[nullif(current_setting('app.org_id', true), '')::uuid])",
    )
    op.replace_entity(entity)

    entity = PGPolicy(
        schema="public",
        signature="member_guard",
        on_entity="public.users",
        definition="AS RESTRICTIVE FOR ALL TO public\n    USING (member_of @> ARRAY[nullif(current_setting('app.org_id', true), '')::uuid])\n    WITH CHECK (true)",
    )
    op.replace_entity(entity)

    entity = PGPolicy(
        schema="public",
        signature="consent_insert",
        on_entity="public.memberships",
        definition="AS RESTRICTIVE FOR INSERT TO public\n    WITH CHECK (status = 'pending')",
    )
    op.replace_entity(entity)

    entity = PGPolicy(
        schema="public",
        signature="consent_delete",
        on_entity="public.memberships",
        definition="AS RESTRICTIVE FOR DELETE TO public\n    USING (status = 'pending')",
    )
    op.create_entity(entity)

    for function in MEMBERSHIP_FUNCTIONS:
        op.execute(f"ALTER FUNCTION public.{function} OWNER TO {roles.resolver}")
        op.execute(f"REVOKE EXECUTE ON FUNCTION public.{function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION public.{function} TO {roles.app}")


def downgrade() -> None:
    roles = migration_roles()
    for function in MEMBERSHIP_FUNCTIONS:
        op.execute(f"DROP FUNCTION public.{function}")
    op.execute("DROP POLICY consent_delete ON memberships")

    entity = PGPolicy(
        schema="public",
        signature="member_read",
        on_entity="public.users",
        definition="AS PERMISSIVE FOR SELECT TO public\n    USING (EXISTS (SELECT 1 FROM public.memberships m WHERE m.user_id = users.id AND m.status <> 'pending'))",
    )
    op.replace_entity(entity)

    entity = PGPolicy(
        schema="public",
        signature="member_guard",
        on_entity="public.users",
        definition="AS RESTRICTIVE FOR ALL TO public\n    USING (EXISTS (SELECT 1 FROM public.memberships m WHERE m.user_id = users.id AND m.status <> 'pending'))\n    WITH CHECK (true)",
    )
    op.replace_entity(entity)

    entity = PGPolicy(
        schema="public",
        signature="consent_insert",
        on_entity="public.memberships",
        definition="AS RESTRICTIVE FOR INSERT TO public\n    WITH CHECK (\n        status = 'pending'\n        OR public.created_by_this_transaction(user_id)\n        OR (role = 'owner' AND public.founded_by_this_transaction(org_id))\n    )",
    )
    op.replace_entity(entity)

    entity = PGFunction(
        schema="public",
        signature="created_by_this_transaction(p_user_id uuid)",
        definition="returns boolean\nLANGUAGE sql VOLATILE STRICT SECURITY DEFINER\nSET search_path = pg_catalog, pg_temp\nAS $$\n    SELECT coalesce((\n        SELECT pg_xact_status(\n            (((pg_current_xact_id()::text::bigint >> 32) << 32) | u.xmin::text::bigint)::text::xid8\n        ) = 'in progress'\n        FROM public.users AS u\n        WHERE u.id = p_user_id\n    ), false)\n$$",
    )
    op.replace_entity(entity)

    entity = PGFunction(
        schema="public",
        signature="founded_by_this_transaction(p_org_id uuid)",
        definition="returns boolean\nLANGUAGE sql VOLATILE STRICT SECURITY DEFINER\nSET search_path = pg_catalog, pg_temp\nAS $$\n    SELECT coalesce((\n        SELECT pg_xact_status(\n            (((pg_current_xact_id()::text::bigint >> 32) << 32) | o.xmin::text::bigint)::text::xid8\n        ) = 'in progress'\n        FROM public.organizations AS o\n        WHERE o.id = p_org_id\n    ), false)\n    AND NOT EXISTS (SELECT 1 FROM public.memberships AS m WHERE m.org_id = p_org_id)\n$$",
    )
    op.replace_entity(entity)

    entity = PGFunction(
        schema="public",
        signature="accept_invitation(p_token text, p_user_id uuid)",
        definition="returns uuid\nLANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER\nSET search_path = pg_catalog, pg_temp\nAS $$\nDECLARE\n    v_hash bytea := sha256(convert_to(p_token, 'UTF8'));\n    v_org_id uuid;\n    v_accepted uuid;\nBEGIN\n    IF nullif(current_setting('app.org_id', true), '') IS NOT NULL THEN\n        RAISE EXCEPTION 'accept_invitation runs without a tenant' USING ERRCODE = '42501';\n    END IF;\n    SELECT t.org_id INTO v_org_id\n    FROM public.invitation_tokens AS t\n    WHERE t.token_hash = v_hash AND t.user_id = p_user_id;\n    UPDATE public.memberships AS m\n    SET status = 'active', invitation_token_hash = NULL, invitation_expires_at = NULL\n    WHERE m.org_id = v_org_id\n      AND m.user_id = p_user_id\n      AND m.invitation_token_hash = v_hash\n      AND m.status = 'pending'\n      AND m.invitation_expires_at > now()\n    RETURNING m.org_id INTO v_accepted;\n    IF v_accepted IS NOT NULL THEN\n        DELETE FROM public.invitation_tokens AS t WHERE t.token_hash = v_hash;\n    END IF;\n    RETURN v_accepted;\nEND\n$$",
    )
    op.replace_entity(entity)

    for grant in RESOLVER_GRANTS:
        revoke = grant.replace("GRANT", "REVOKE").replace(" TO ", " FROM ")
        op.execute(revoke.format(resolver=roles.resolver))
    op.drop_index("ix_users_member_of", table_name="users")
    op.drop_column("users", "member_of")
