-- organizations: a tenant sees and changes only its own row (its id is the tenant id).

CREATE POLICY tenant_isolation ON public.organizations
    AS PERMISSIVE FOR ALL TO public
    USING (id = nullif(current_setting('app.org_id', true), '')::uuid)
    WITH CHECK (id = nullif(current_setting('app.org_id', true), '')::uuid);

CREATE POLICY tenant_guard ON public.organizations
    AS RESTRICTIVE FOR ALL TO public
    USING (id = nullif(current_setting('app.org_id', true), '')::uuid)
    WITH CHECK (id = nullif(current_setting('app.org_id', true), '')::uuid);
