-- Sign-up: the only way a password hash enters the users table. Runs without a tenant,
-- so no organization can choose the credentials of an identity. A taken email or
-- username fails with the unique violation (uq_users_email, uq_users_username): what
-- any sign-up form reveals, and nothing about the user's organizations.
CREATE OR REPLACE FUNCTION public.register_user(p_email text, p_username text, p_password_hash text)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_user_id uuid;
BEGIN
    IF nullif(current_setting('app.org_id', true), '') IS NOT NULL THEN
        RAISE EXCEPTION 'register_user runs without a tenant' USING ERRCODE = '42501';
    END IF;
    INSERT INTO public.users (email, username, password_hash)
    VALUES (p_email, p_username, p_password_hash)
    RETURNING id INTO v_user_id;
    RETURN v_user_id;
END
$$;
