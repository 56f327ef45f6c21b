-- Resolve a payment link's public token to its owner without a tenant: reveals only
-- the owning org_id and the link id.
CREATE OR REPLACE FUNCTION public.resolve_payment_link(p_token text)
RETURNS TABLE(org_id uuid, payment_link_id uuid)
LANGUAGE sql STABLE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT l.org_id, l.id
    FROM public.payment_links AS l
    WHERE l.token = p_token
$$;
