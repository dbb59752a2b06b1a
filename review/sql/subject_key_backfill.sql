-- Give the review items made before subject keys existed the key review_item_open would give
-- them (review/services.py). The table is under forced row-level security, so the owner
-- sees a workspace's rows only in its context: one UPDATE per workspace.
DO $$
DECLARE ws bigint;
BEGIN
    FOR ws IN SELECT id FROM workspaces_workspace LOOP
        PERFORM set_config('app.workspace_id', ws::text, true);
        UPDATE {table} SET subject_key = CASE
            WHEN field_value_id IS NOT NULL THEN 'field_value:' || field_value_id
            WHEN association_candidate_id IS NOT NULL THEN 'association:' || association_candidate_id
            WHEN reason = 'fact_conflict' THEN 'deal_fact:' || coalesce(payload_json->>'deal_id', '') || ':'
                || coalesce(payload_json->>'key', '') || ':' || coalesce(payload_json->>'signature', '')
            WHEN reason = 'crm_conflict' THEN 'crm_write:' || coalesce(payload_json->>'write_id', '') || ':'
                || coalesce(payload_json->>'new_hash', '')
            WHEN reason = 'job_failed' THEN 'job:' || coalesce(payload_json->>'job_id', '')
            ELSE '' END
        WHERE subject_key = '';
    END LOOP;
    PERFORM set_config('app.workspace_id', '', true);
END $$;
