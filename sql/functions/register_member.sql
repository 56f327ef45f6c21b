-- Creates a new user (no credentials) as an active member of the transaction's tenant,
-- member_of included, and writes the events, in one call. An existing user's id is a
-- unique violation: existing users join by accepting an invitation.
CREATE OR REPLACE FUNCTION public.register_member(p_user_id uuid, p_new_user jsonb, p_role text, p_events jsonb)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_org_id uuid := nullif(current_setting('app.org_id', true), '')::uuid;
BEGIN
    IF v_org_id IS NULL THEN
        RAISE EXCEPTION 'register_member runs inside a tenant' USING ERRCODE = '42501';
    END IF;
    IF p_user_id IS NULL OR p_new_user IS NULL THEN
        RAISE EXCEPTION 'register_member creates a new user' USING ERRCODE = '23502';
    END IF;
    INSERT INTO public.users (id, email, username, display_name, created_at, member_of) VALUES (p_user_id, p_new_user->>'email', p_new_user->>'username', coalesce(p_new_user->>'display_name', ''), coalesce((p_new_user->>'created_at')::timestamptz, now()), ARRAY[v_org_id]);
    INSERT INTO public.memberships (org_id, user_id, role, status, created_at)
    VALUES (v_org_id, p_user_id, p_role, 'active', now());
    PERFORM public.write_outbox_events(v_org_id, p_events);
END
$$;
