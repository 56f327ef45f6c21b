-- prices: rows are visible and writable only inside their own tenant.
-- The setting is read once per statement (current_setting is STABLE, so it is an index
-- key); nullif turns the empty string a pooled connection reports after an earlier
-- SET LOCAL into NULL, which matches nothing. No sub-select: Citus refuses one in a policy.

CREATE POLICY tenant_isolation ON public.prices
    AS PERMISSIVE FOR ALL TO public
    USING (org_id = nullif(current_setting('app.org_id', true), '')::uuid)
    WITH CHECK (org_id = nullif(current_setting('app.org_id', true), '')::uuid);

-- RESTRICTIVE: every other policy is ANDed with this one, so none can widen it.
CREATE POLICY tenant_guard ON public.prices
    AS RESTRICTIVE FOR ALL TO public
    USING (org_id = nullif(current_setting('app.org_id', true), '')::uuid)
    WITH CHECK (org_id = nullif(current_setting('app.org_id', true), '')::uuid);
