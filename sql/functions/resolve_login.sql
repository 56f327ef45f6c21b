-- The login lookup without a tenant: exactly one user by exact email, and only what
-- login needs. It cannot list users: no pattern matching, one row at most. It refuses
-- to run inside a tenant's transaction, so no tenant can read a password hash.
-- Owned by the BYPASSRLS role tenancy_resolver; fixed search_path against hijacking.
CREATE OR REPLACE FUNCTION public.resolve_login(p_email text)
RETURNS TABLE(user_id uuid, password_hash text, is_active boolean)
LANGUAGE plpgsql STABLE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF nullif(current_setting('app.org_id', true), '') IS NOT NULL THEN
        RAISE EXCEPTION 'resolve_login runs without a tenant' USING ERRCODE = '42501';
    END IF;
    RETURN QUERY
        SELECT u.id, u.password_hash::text, u.is_active
        FROM public.users AS u
        WHERE u.email = lower(p_email);
END
$$;
