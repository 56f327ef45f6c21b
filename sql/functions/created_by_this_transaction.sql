-- Whether the user p_user_id was inserted by the calling transaction (or one of its
-- savepoints). A row this snapshot sees whose inserting transaction is still in
-- progress can only be the caller's own. join_organization uses it to let a brand-new
-- user join without an invitation, and nothing else; it says nothing about any other
-- user (false whether it exists or not). The epoch of the row's xid is taken from the
-- current transaction, which the caller's own rows always share. The status is
-- computed in the query that reads the row, so on Citus it is computed on the node
-- that holds it, with that node's transaction (plpgsql: Citus plans no distributed
-- query from an SQL function's parameters).
CREATE OR REPLACE FUNCTION public.created_by_this_transaction(p_user_id uuid)
RETURNS boolean
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN coalesce((
        SELECT pg_xact_status(
            (((pg_current_xact_id()::text::bigint >> 32) << 32) | u.xmin::text::bigint)::text::xid8
        ) = 'in progress'
        FROM public.users AS u
        WHERE u.id = p_user_id
    ), false);
END
$$;
