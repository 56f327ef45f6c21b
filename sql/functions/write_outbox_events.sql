-- Writes the events of an identity change (the JSON array outbox_events_json renders)
-- to the outbox of the transaction's tenant only, as single-row inserts Citus routes,
-- and wakes the relay. Not a definer: it runs as the resolver functions that call it;
-- nobody else may run it.
CREATE OR REPLACE FUNCTION public.write_outbox_events(p_org_id uuid, p_events jsonb)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e jsonb;
BEGIN
    IF p_org_id IS DISTINCT FROM nullif(current_setting('app.org_id', true), '')::uuid THEN
        RAISE EXCEPTION 'events go to the transaction''s tenant only' USING ERRCODE = '42501';
    END IF;
    FOR e IN SELECT value FROM jsonb_array_elements(coalesce(p_events, '[]'::jsonb)) LOOP
        INSERT INTO public.outbox_events (org_id, id, aggregate_type, aggregate_id,
            event_type, payload, position, occurred_at, available_at)
        VALUES (p_org_id, (e->>'id')::uuid, e->>'aggregate_type', e->>'aggregate_id',
            e->>'event_type', e->'payload', (e->>'position')::int,
            clock_timestamp(), clock_timestamp());
    END LOOP;
    IF jsonb_array_length(coalesce(p_events, '[]'::jsonb)) > 0 THEN
        PERFORM pg_notify('tenancy_outbox', '');
    END IF;
END
$$;
