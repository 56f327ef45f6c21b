-- users: global identities. Inside a tenant, a user is visible only while it has an
-- accepted (active or suspended) membership there; a pending invitation shows nothing.
-- member_of lists those organizations. Only the definer functions that accept or end a
-- membership write it, in the statement that changes the membership (join_organization,
-- accept_invitation, remove_membership), so it always says what memberships say. The
-- row carries what decides its visibility: no sub-query, which Citus refuses in a
-- policy (users is a reference table there). The app role cannot read member_of
-- (column grants), so no tenant learns a user's other organizations. No tenant may
-- update a user; a tenant may insert a new user without credentials (column grants);
-- credentials come only through register_user, and login reads them only through
-- resolve_login.

CREATE POLICY member_read ON public.users
    AS PERMISSIVE FOR SELECT TO public
    USING (member_of @> ARRAY[nullif(current_setting('app.org_id', true), '')::uuid]);

CREATE POLICY register ON public.users
    AS PERMISSIVE FOR INSERT TO public
    WITH CHECK (true);

-- RESTRICTIVE: reads and deletes stay limited to accepted members whatever else is added.
CREATE POLICY member_guard ON public.users
    AS RESTRICTIVE FOR ALL TO public
    USING (member_of @> ARRAY[nullif(current_setting('app.org_id', true), '')::uuid])
    WITH CHECK (true);
