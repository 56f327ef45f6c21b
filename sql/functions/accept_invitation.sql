-- The user accepts an invitation: the only way a pending membership becomes active.
-- Runs without a tenant (the caller has authenticated p_user_id); the token is matched
-- by its SHA-256 and must belong to that user's invitation, be unexpired and unused.
-- The token is cleared, so it works once. Returns the organization, or NULL.
CREATE OR REPLACE FUNCTION public.accept_invitation(p_token text, p_user_id uuid)
RETURNS uuid
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_org_id uuid;
BEGIN
    IF nullif(current_setting('app.org_id', true), '') IS NOT NULL THEN
        RAISE EXCEPTION 'accept_invitation runs without a tenant' USING ERRCODE = '42501';
    END IF;
    UPDATE public.memberships AS m
    SET status = 'active', invitation_token_hash = NULL, invitation_expires_at = NULL
    WHERE m.invitation_token_hash = sha256(convert_to(p_token, 'UTF8'))
      AND m.user_id = p_user_id
      AND m.status = 'pending'
      AND m.invitation_expires_at > now()
    RETURNING m.org_id INTO v_org_id;
    RETURN v_org_id;
END
$$;
