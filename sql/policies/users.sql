-- users: global identities. Inside a tenant, a user is visible only while it has an
-- accepted (active or suspended) membership there; a pending invitation shows nothing.
-- The memberships subquery is itself under the tenant policy. No tenant may update a
-- user (migration 0009 revokes UPDATE): a row shared by organizations belongs to none.
-- A tenant may insert a new user without credentials (column grants); credentials come
-- only through register_user, and login reads them only through resolve_login.

CREATE POLICY member_read ON public.users
    AS PERMISSIVE FOR SELECT TO public
    USING (EXISTS (SELECT 1 FROM public.memberships m WHERE m.user_id = users.id AND m.status <> 'pending'));

CREATE POLICY register ON public.users
    AS PERMISSIVE FOR INSERT TO public
    WITH CHECK (true);

-- RESTRICTIVE: reads and deletes stay limited to accepted members whatever else is added.
CREATE POLICY member_guard ON public.users
    AS RESTRICTIVE FOR ALL TO public
    USING (EXISTS (SELECT 1 FROM public.memberships m WHERE m.user_id = users.id AND m.status <> 'pending'))
    WITH CHECK (true);
