-- memberships: rows are visible and writable only inside their own tenant.
-- The setting is read once per statement (current_setting is STABLE, so it is an index
-- key); nullif turns the empty string a pooled connection reports after an earlier
-- SET LOCAL into NULL, which matches nothing. No sub-select: Citus refuses one in a policy.

CREATE POLICY tenant_isolation ON public.memberships
    AS PERMISSIVE FOR ALL TO public
    USING (org_id = nullif(current_setting('app.org_id', true), '')::uuid)
    WITH CHECK (org_id = nullif(current_setting('app.org_id', true), '')::uuid);

-- RESTRICTIVE: every other policy is ANDed with this one, so none can widen it.
CREATE POLICY tenant_guard ON public.memberships
    AS RESTRICTIVE FOR ALL TO public
    USING (org_id = nullif(current_setting('app.org_id', true), '')::uuid)
    WITH CHECK (org_id = nullif(current_setting('app.org_id', true), '')::uuid);

-- Consent: a tenant inserts only a pending invitation. A membership becomes accepted
-- only through join_organization (a user this transaction created, or the founding
-- owner) or accept_invitation (the user), and ends only through remove_membership:
-- the definer functions that keep users.member_of in step. A tenant deletes only an
-- invitation (withdrawing it).
CREATE POLICY consent_insert ON public.memberships
    AS RESTRICTIVE FOR INSERT TO public
    WITH CHECK (status = 'pending');

CREATE POLICY consent_delete ON public.memberships
    AS RESTRICTIVE FOR DELETE TO public
    USING (status = 'pending');

-- A tenant never touches a pending row but to delete it, and never makes one pending;
-- its column grants (role, status) keep user_id and the invitation fixed.
CREATE POLICY consent_update ON public.memberships
    AS RESTRICTIVE FOR UPDATE TO public
    USING (status <> 'pending')
    WITH CHECK (status <> 'pending');
