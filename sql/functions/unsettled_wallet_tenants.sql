-- The tenants that have unsettled transactions on a chain: pending ones, or any in
-- blocks from p_from_block on (those a reorganisation orphans). Reveals org ids only,
-- so the chain-wide jobs can open one tenant transaction per org without reading
-- any other tenant's rows.
CREATE OR REPLACE FUNCTION public.unsettled_wallet_tenants(p_chain text, p_from_block bigint)
RETURNS TABLE(org_id uuid)
LANGUAGE sql STABLE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT DISTINCT t.org_id
    FROM public.wallet_transactions AS t
    WHERE t.chain = p_chain
      AND (t.status = 'pending' OR t.block_number >= p_from_block)
$$;
