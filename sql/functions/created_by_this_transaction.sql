-- Whether the user p_user_id was inserted by the calling transaction (or one of its
-- savepoints). A row this snapshot sees whose inserting transaction is still in
-- progress can only be the caller's own. The membership policy uses it to allow the
-- founding membership of a brand-new user and nothing else; it says nothing about any
-- other user (false whether it exists or not). The epoch of the row's xid is taken
-- from the current transaction, which the caller's own rows always share.
CREATE OR REPLACE FUNCTION public.created_by_this_transaction(p_user_id uuid)
RETURNS boolean
LANGUAGE sql VOLATILE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((
        SELECT pg_xact_status(
            (((pg_current_xact_id()::text::bigint >> 32) << 32) | u.xmin::text::bigint)::text::xid8
        ) = 'in progress'
        FROM public.users AS u
        WHERE u.id = p_user_id
    ), false)
$$;
