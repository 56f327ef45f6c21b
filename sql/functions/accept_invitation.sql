-- The user accepts an invitation: the only way a pending membership becomes active.
-- Runs without a tenant (the caller has authenticated p_user_id); the token is matched
-- by its SHA-256 and must belong to that user's invitation, be unexpired and unused.
-- The token's lookup row names the organization, whose membership is then changed by
-- its key (org_id, user_id); the hash and its lookup row are cleared, so the token
-- works once, and the organization joins the user's member_of (it becomes visible
-- there). Returns the organization, or NULL.
CREATE OR REPLACE FUNCTION public.accept_invitation(p_token text, p_user_id uuid)
RETURNS uuid
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_hash bytea := sha256(convert_to(p_token, 'UTF8'));
    v_org_id uuid;
    v_accepted uuid;
BEGIN
    IF nullif(current_setting('app.org_id', true), '') IS NOT NULL THEN
        RAISE EXCEPTION 'accept_invitation runs without a tenant' USING ERRCODE = '42501';
    END IF;
    SELECT t.org_id INTO v_org_id
    FROM public.invitation_tokens AS t
    WHERE t.token_hash = v_hash AND t.user_id = p_user_id;
    UPDATE public.memberships AS m
    SET status = 'active', invitation_token_hash = NULL, invitation_expires_at = NULL
    WHERE m.org_id = v_org_id
      AND m.user_id = p_user_id
      AND m.invitation_token_hash = v_hash
      AND m.status = 'pending'
      AND m.invitation_expires_at > now()
    RETURNING m.org_id INTO v_accepted;
    IF v_accepted IS NOT NULL THEN
        DELETE FROM public.invitation_tokens AS t WHERE t.token_hash = v_hash;
        UPDATE public.users AS u
        SET member_of = array_append(array_remove(u.member_of, v_accepted), v_accepted)
        WHERE u.id = p_user_id;
    END IF;
    RETURN v_accepted;
END
$$;
