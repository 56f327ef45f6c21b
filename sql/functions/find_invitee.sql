-- The user an invitation by email goes to: one active user by exact email, id only.
-- Reveals whether the email is registered, as sign-up does; nothing else.
CREATE OR REPLACE FUNCTION public.find_invitee(p_email text)
RETURNS uuid
LANGUAGE sql STABLE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT u.id
    FROM public.users AS u
    WHERE u.email = lower(p_email) AND u.is_active
$$;
