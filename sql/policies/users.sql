-- users: global identities. Inside a tenant, a user is visible and updatable only
-- while a member of it; the memberships subquery is itself under the tenant policy.
-- Anyone may register (insert); the login lookup without a tenant goes through the
-- SECURITY DEFINER function resolve_login, never through this table.

CREATE POLICY member_read ON public.users
    AS PERMISSIVE FOR SELECT TO public
    USING (EXISTS (SELECT 1 FROM public.memberships m WHERE m.user_id = users.id));

CREATE POLICY member_update ON public.users
    AS PERMISSIVE FOR UPDATE TO public
    USING (EXISTS (SELECT 1 FROM public.memberships m WHERE m.user_id = users.id))
    WITH CHECK (EXISTS (SELECT 1 FROM public.memberships m WHERE m.user_id = users.id));

CREATE POLICY register ON public.users
    AS PERMISSIVE FOR INSERT TO public
    WITH CHECK (true);

-- RESTRICTIVE: reads, updates and deletes stay limited to members whatever else is added.
CREATE POLICY member_guard ON public.users
    AS RESTRICTIVE FOR ALL TO public
    USING (EXISTS (SELECT 1 FROM public.memberships m WHERE m.user_id = users.id))
    WITH CHECK (true);
