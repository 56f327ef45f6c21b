-- Resolve a payment link's public token to its owner without a tenant: reveals only
-- the owning org_id and the link id. The token's lookup row names the tenant and the
-- link, which is then read by its key (org_id, id): on Citus, one node each.
CREATE OR REPLACE FUNCTION public.resolve_payment_link(p_token text)
RETURNS TABLE(org_id uuid, payment_link_id uuid)
LANGUAGE plpgsql STABLE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_org_id uuid;
    v_link_id uuid;
BEGIN
    SELECT t.org_id, t.link_id INTO v_org_id, v_link_id
    FROM public.payment_link_tokens AS t
    WHERE t.token = p_token;
    RETURN QUERY
        SELECT l.org_id, l.id
        FROM public.payment_links AS l
        WHERE l.org_id = v_org_id AND l.id = v_link_id;
END
$$;
