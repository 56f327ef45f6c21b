-- Founds the transaction's tenant: the organization, a new owner user when p_new_owner
-- holds its columns (no credentials), the owner's active membership and member_of,
-- and the events, in one call (on Citus no other role may touch the tenant's shards
-- after it in the transaction). The founding owner's consent is this call: an
-- organization that exists already is a unique violation before anything changes.
CREATE OR REPLACE FUNCTION public.found_organization(p_owner uuid, p_name text, p_new_owner jsonb, p_events jsonb)
RETURNS timestamptz
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_org_id uuid := nullif(current_setting('app.org_id', true), '')::uuid;
    v_created timestamptz := now();
BEGIN
    IF v_org_id IS NULL THEN
        RAISE EXCEPTION 'found_organization runs inside a tenant' USING ERRCODE = '42501';
    END IF;
    INSERT INTO public.organizations (id, name, created_at) VALUES (v_org_id, p_name, v_created);
    IF p_new_owner IS NOT NULL THEN
        INSERT INTO public.users (id, email, username, display_name, created_at, member_of) VALUES (p_owner, p_new_owner->>'email', p_new_owner->>'username', coalesce(p_new_owner->>'display_name', ''), coalesce((p_new_owner->>'created_at')::timestamptz, now()), '{}'::uuid[]);
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
$$;
