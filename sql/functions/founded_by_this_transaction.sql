-- Whether the organization p_org_id was inserted by the calling transaction and has
-- no membership yet: the one moment its founding owner may join without an
-- invitation (join_organization). An existing organization, even one whose
-- memberships were all deleted, never passes. As in created_by_this_transaction, the
-- status is computed where the row lives.
CREATE OR REPLACE FUNCTION public.founded_by_this_transaction(p_org_id uuid)
RETURNS boolean
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN coalesce((
        SELECT pg_xact_status(
            (((pg_current_xact_id()::text::bigint >> 32) << 32) | o.xmin::text::bigint)::text::xid8
        ) = 'in progress'
        FROM public.organizations AS o
        WHERE o.id = p_org_id
    ), false)
    AND NOT EXISTS (SELECT 1 FROM public.memberships AS m WHERE m.org_id = p_org_id);
END
$$;
