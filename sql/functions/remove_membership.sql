-- Ends the accepted membership of p_user_id in the current tenant: the row and the
-- organization's id in the user's member_of go together, so the user stops being
-- visible here at once, and the removal's events are written with them. Returns
-- whether there was one. (An invitation is withdrawn by deleting its row; no
-- member_of names it.)
CREATE OR REPLACE FUNCTION public.remove_membership(p_user_id uuid, p_events jsonb DEFAULT '[]'::jsonb)
RETURNS boolean
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_org_id uuid := nullif(current_setting('app.org_id', true), '')::uuid;
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
$$;
