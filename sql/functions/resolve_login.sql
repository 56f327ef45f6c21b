-- The login lookup without a tenant: exactly one user by exact email, and only what
-- login needs. It cannot list users: no pattern matching, one row at most.
-- Owned by the BYPASSRLS role tenancy_resolver; fixed search_path against hijacking.
CREATE OR REPLACE FUNCTION public.resolve_login(p_email text)
RETURNS TABLE(user_id uuid, password_hash text, is_active boolean)
LANGUAGE sql STABLE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT u.id, u.password_hash::text, u.is_active
    FROM public.users AS u
    WHERE u.email = lower(p_email)
$$;
