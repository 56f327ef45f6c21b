-- The user p_user_id joins the current tenant as an active p_role member, with its
-- consent as the database can know it: the user was created by this very transaction
-- (a new member without credentials), or it is the one owner of an organization this
-- transaction founded (the caller passes its signed-in user). Anyone else is invited.
-- The membership and the user's member_of change together. The founding owner's join
-- first clears the organization's id from every member_of (left by a deleted
-- organization of the same id). p_joined_at is the membership's created_at (the demo
-- seed writes fixed times; NULL is now). Not STRICT: a NULL argument fails (NOT NULL)
-- or defaults, never turns the call into a silent no-op. Called directly, never from a
-- policy: on Citus it runs on the coordinator, so its queries may reach any node.
CREATE OR REPLACE FUNCTION public.join_organization(p_user_id uuid, p_role text, p_joined_at timestamptz DEFAULT now())
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_org_id uuid := nullif(current_setting('app.org_id', true), '')::uuid;
    v_founding boolean;
BEGIN
    IF v_org_id IS NULL THEN
        RAISE EXCEPTION 'join_organization runs inside a tenant' USING ERRCODE = '42501';
    END IF;
    v_founding := p_role = 'owner' AND public.founded_by_this_transaction(v_org_id);
    IF NOT (v_founding OR public.created_by_this_transaction(p_user_id)) THEN
        RAISE EXCEPTION 'a user joins only by accepting an invitation'
            USING ERRCODE = '42501';
    END IF;
    IF v_founding THEN
        UPDATE public.users AS u SET member_of = array_remove(u.member_of, v_org_id)
        WHERE u.member_of @> ARRAY[v_org_id];
    END IF;
    INSERT INTO public.memberships (org_id, user_id, role, status, created_at)
    VALUES (v_org_id, p_user_id, p_role, 'active', coalesce(p_joined_at, now()));
    UPDATE public.users AS u
    SET member_of = array_append(array_remove(u.member_of, v_org_id), v_org_id)
    WHERE u.id = p_user_id;
END
$$;
