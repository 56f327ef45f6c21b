-- Resolve (chain, address) to the owning tenant without a tenant: reveals only the
-- owning org_id and the wallet id. Addresses are stored lower-case, so the input
-- (an EIP-55 checksummed address, say) is lowered to use the unique index.
CREATE OR REPLACE FUNCTION public.resolve_wallet(p_chain text, p_address text)
RETURNS TABLE(org_id uuid, wallet_id uuid)
LANGUAGE sql STABLE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT w.org_id, w.id
    FROM public.wallets AS w
    WHERE w.chain = p_chain AND w.address = lower(p_address)
$$;
