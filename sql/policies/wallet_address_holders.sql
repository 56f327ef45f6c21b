-- wallet_address_holders: a tenant sees and writes only the family addresses it holds.
-- The predicate is not wrapped in a (SELECT ...): Citus refuses sub-queries in the
-- policies of a distributed or reference table. nullif turns the empty string a pooled
-- connection reports after an earlier SET LOCAL into NULL, which matches nothing.

CREATE POLICY tenant_isolation ON public.wallet_address_holders
    AS PERMISSIVE FOR ALL TO public
    USING (org_id = nullif(current_setting('app.org_id', true), '')::uuid)
    WITH CHECK (org_id = nullif(current_setting('app.org_id', true), '')::uuid);

-- RESTRICTIVE: every other policy is ANDed with this one, so none can widen it.
CREATE POLICY tenant_guard ON public.wallet_address_holders
    AS RESTRICTIVE FOR ALL TO public
    USING (org_id = nullif(current_setting('app.org_id', true), '')::uuid)
    WITH CHECK (org_id = nullif(current_setting('app.org_id', true), '')::uuid);
