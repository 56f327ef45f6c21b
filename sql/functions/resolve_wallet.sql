-- Resolve (chain, address) to the owning tenant without a tenant: reveals only the
-- owning org_id and the wallet id. Addresses are stored lower-case, so the input
-- (an EIP-55 checksummed address, say) is lowered to use the lookup's key. The lookup
-- row names the tenant and the wallet, which is then read by its key (org_id, id): on
-- Citus, one node each.
CREATE OR REPLACE FUNCTION public.resolve_wallet(p_chain text, p_address text)
RETURNS TABLE(org_id uuid, wallet_id uuid)
LANGUAGE plpgsql STABLE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_org_id uuid;
    v_wallet_id uuid;
BEGIN
    SELECT a.org_id, a.wallet_id INTO v_org_id, v_wallet_id
    FROM public.wallet_addresses AS a
    WHERE a.chain = p_chain AND a.address = lower(p_address);
    RETURN QUERY
        SELECT w.org_id, w.id
        FROM public.wallets AS w
        WHERE w.org_id = v_org_id AND w.id = v_wallet_id;
END
$$;
