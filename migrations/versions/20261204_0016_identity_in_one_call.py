"""Identity changes in one definer call, with their events: the same rules, and Citus accepts them.

Founding an organization with its owner, registering a new member and ending a
membership used to mix the app role's statements (the organization's row, the new
user, the outbox events) with the resolver's definer functions in one
transaction. Citus refuses that: once one role has changed a tenant's shards (or a
reference table) in a transaction, another role may not touch them in it. Each of
these changes is now one call that writes everything, its outbox events included:

* ``found_organization(name, owner, new_owner, events)``: the organization (the
  transaction's tenant), the new owner user when ``new_owner`` holds its columns
  (no credentials), the owner's active membership and ``member_of``. The founding
  owner's consent is the call itself, as before (0009: the founder of an
  organization this transaction created);
* ``register_member(user_id, new_user, role, events)``: a new user (no
  credentials) that is an active member here, ``member_of`` included;
* ``remove_membership(user_id, events)`` gains the events of the removal.

``write_outbox_events`` inserts the events (the JSON array the library's
``outbox_events_json`` renders) for the transaction's tenant only, as single-row
inserts Citus routes, and wakes the relay; only the resolver runs it.
``join_organization`` stays for seeding and for services that call it.

Revision ID: tenancy_0016
Revises: tenancy_0015
Create Date: 2026-12-04 09:30:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op
from alembic_utils.pg_function import PGFunction

from tenancy.schema.migration import migration_roles

revision: str = "tenancy_0016"
down_revision: str | Sequence[str] | None = "tenancy_0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: What the new functions write beyond what 0009 and 0014 granted the resolver.
RESOLVER_GRANTS = (
    "GRANT INSERT (id, name, status, created_at) ON organizations TO {resolver}",
    "GRANT INSERT ON outbox_events TO {resolver}",
)
#: The definer functions the app role runs (owned by the resolver).
CALLS = (
    "found_organization(uuid, text, jsonb, jsonb)",
    "register_member(uuid, jsonb, text, jsonb)",
    "remove_membership(uuid, jsonb)",
)
_TENANT = "nullif(current_setting('app.org_id', true), '')::uuid"
_NEW_USER = (
    "INSERT INTO public.users (id, email, username, display_name, created_at, member_of)"
    " VALUES ({id}, {user}->>'email', {user}->>'username',"
    " coalesce({user}->>'display_name', ''),"
    " coalesce(({user}->>'created_at')::timestamptz, now()), {member_of});"
)

WRITE_OUTBOX_EVENTS = PGFunction(
    schema="public",
    signature="write_outbox_events(p_org_id uuid, p_events jsonb)",
    definition=f"""returns void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e jsonb;
BEGIN
    IF p_org_id IS DISTINCT FROM {_TENANT} THEN
        RAISE EXCEPTION 'events go to the transaction''s tenant only' USING ERRCODE = '42501';
    END IF;
    FOR e IN SELECT value FROM jsonb_array_elements(coalesce(p_events, '[]'::jsonb)) LOOP
        INSERT INTO public.outbox_events (org_id, id, aggregate_type, aggregate_id,
            event_type, payload, position, occurred_at, available_at)
        VALUES (p_org_id, (e->>'id')::uuid, e->>'aggregate_type', e->>'aggregate_id',
            e->>'event_type', e->'payload', (e->>'position')::int,
            clock_timestamp(), clock_timestamp());
    END LOOP;
    IF jsonb_array_length(coalesce(p_events, '[]'::jsonb)) > 0 THEN
        PERFORM pg_notify('tenancy_outbox', '');
    END IF;
END
$$""",
)

# No RETURNING: the resolver may not read the organizations it writes. The first
# UPDATE clears a deleted organization's id that lingers in member_of where no
# foreign key reaches (Citus): the new organization starts with its owner only.
FOUND_ORGANIZATION = PGFunction(
    schema="public",
    signature=("found_organization(p_owner uuid, p_name text, p_new_owner jsonb, p_events jsonb)"),
    definition=f"""returns timestamptz
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_org_id uuid := {_TENANT};
    v_created timestamptz := now();
BEGIN
    IF v_org_id IS NULL THEN
        RAISE EXCEPTION 'found_organization runs inside a tenant' USING ERRCODE = '42501';
    END IF;
    INSERT INTO public.organizations (id, name, created_at) VALUES (v_org_id, p_name, v_created);
    IF p_new_owner IS NOT NULL THEN
        {_NEW_USER.format(id="p_owner", user="p_new_owner", member_of="'{}'::uuid[]")}
    END IF;
    UPDATE public.users AS u SET member_of = array_remove(u.member_of, v_org_id)
    WHERE u.member_of @> ARRAY[v_org_id];
    INSERT INTO public.memberships (org_id, user_id, role, status, created_at)
    VALUES (v_org_id, p_owner, 'owner', 'active', now());
    UPDATE public.users AS u SET member_of = array_append(u.member_of, v_org_id)
    WHERE u.id = p_owner;
    PERFORM public.write_outbox_events(v_org_id, p_events);
    RETURN v_created;
END
$$""",
)

REGISTER_MEMBER = PGFunction(
    schema="public",
    signature="register_member(p_user_id uuid, p_new_user jsonb, p_role text, p_events jsonb)",
    definition=f"""returns void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_org_id uuid := {_TENANT};
BEGIN
    IF v_org_id IS NULL THEN
        RAISE EXCEPTION 'register_member runs inside a tenant' USING ERRCODE = '42501';
    END IF;
    IF p_user_id IS NULL OR p_new_user IS NULL THEN
        RAISE EXCEPTION 'register_member creates a new user' USING ERRCODE = '23502';
    END IF;
    {_NEW_USER.format(id="p_user_id", user="p_new_user", member_of="ARRAY[v_org_id]")}
    INSERT INTO public.memberships (org_id, user_id, role, status, created_at)
    VALUES (v_org_id, p_user_id, p_role, 'active', now());
    PERFORM public.write_outbox_events(v_org_id, p_events);
END
$$""",
)

REMOVE_MEMBERSHIP = PGFunction(
    schema="public",
    signature="remove_membership(p_user_id uuid, p_events jsonb DEFAULT '[]'::jsonb)",
    definition=f"""returns boolean
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_org_id uuid := {_TENANT};
BEGIN
    IF v_org_id IS NULL THEN
        RAISE EXCEPTION 'remove_membership runs inside a tenant' USING ERRCODE = '42501';
    END IF;
    DELETE FROM public.memberships AS m
    WHERE m.org_id = v_org_id AND m.user_id = p_user_id AND m.status <> 'pending';
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE public.users AS u SET member_of = array_remove(u.member_of, v_org_id)
    WHERE u.id = p_user_id;
    PERFORM public.write_outbox_events(v_org_id, p_events);
    RETURN true;
END
$$""",
)

#: 0014's remove_membership, restored by the downgrade.
REMOVE_MEMBERSHIP_0014 = PGFunction(
    schema="public",
    signature="remove_membership(p_user_id uuid)",
    definition=f"""returns boolean
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_org_id uuid := {_TENANT};
BEGIN
    IF v_org_id IS NULL THEN
        RAISE EXCEPTION 'remove_membership runs inside a tenant' USING ERRCODE = '42501';
    END IF;
    DELETE FROM public.memberships AS m
    WHERE m.org_id = v_org_id AND m.user_id = p_user_id AND m.status <> 'pending';
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE public.users AS u SET member_of = array_remove(u.member_of, v_org_id)
    WHERE u.id = p_user_id;
    RETURN true;
END
$$""",
)


def _hand_to_resolver(function: str, *, app_runs_it: bool) -> None:
    roles = migration_roles()
    op.execute(f"ALTER FUNCTION public.{function} OWNER TO {roles.resolver}")
    op.execute(f"REVOKE EXECUTE ON FUNCTION public.{function} FROM PUBLIC")
    if app_runs_it:
        op.execute(f"GRANT EXECUTE ON FUNCTION public.{function} TO {roles.app}")


def upgrade() -> None:
    resolver = migration_roles().resolver
    for grant in RESOLVER_GRANTS:
        op.execute(grant.format(resolver=resolver))
    op.execute("DROP FUNCTION public.remove_membership(uuid)")
    op.create_entity(WRITE_OUTBOX_EVENTS)
    _hand_to_resolver("write_outbox_events(uuid, jsonb)", app_runs_it=False)
    for entity, function in zip(
        (FOUND_ORGANIZATION, REGISTER_MEMBER, REMOVE_MEMBERSHIP), CALLS, strict=True
    ):
        op.create_entity(entity)
        _hand_to_resolver(function, app_runs_it=True)


def downgrade() -> None:
    resolver = migration_roles().resolver
    for function in CALLS:
        op.execute(f"DROP FUNCTION public.{function}")
    op.execute("DROP FUNCTION public.write_outbox_events(uuid, jsonb)")
    op.create_entity(REMOVE_MEMBERSHIP_0014)
    _hand_to_resolver("remove_membership(uuid)", app_runs_it=True)
    for grant in RESOLVER_GRANTS:
        op.execute(
            grant.replace("GRANT", "REVOKE").replace(" TO ", " FROM ").format(resolver=resolver)
        )
