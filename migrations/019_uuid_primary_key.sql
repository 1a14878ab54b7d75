-- 019_uuid_primary_key.sql
-- Purpose: identify each catalog row by a UUID. The former text workflow_id becomes
--          workflow_name, (workflow_name, version) stays unique, and workflow_id becomes a
--          generated UUID primary key.
-- Depends on: 015 (remediation_workflow_catalog_pkey, uq_workflow_catalog_latest_version);
--             works on canonical 015 and on the v1.0 replacement alike (embedding not touched).

ALTER TABLE remediation_workflow_catalog
    ADD COLUMN workflow_name VARCHAR(255);

UPDATE remediation_workflow_catalog
SET workflow_name = workflow_id;

ALTER TABLE remediation_workflow_catalog
    ALTER COLUMN workflow_name SET NOT NULL;

ALTER TABLE remediation_workflow_catalog
    DROP CONSTRAINT remediation_workflow_catalog_pkey;

DROP INDEX uq_workflow_catalog_latest_version;

-- Volatile default: every existing row gets its own UUID.
ALTER TABLE remediation_workflow_catalog
    ADD COLUMN workflow_uuid UUID NOT NULL DEFAULT gen_random_uuid();

ALTER TABLE remediation_workflow_catalog
    DROP COLUMN workflow_id;

ALTER TABLE remediation_workflow_catalog
    RENAME COLUMN workflow_uuid TO workflow_id;

ALTER TABLE remediation_workflow_catalog
    ADD CONSTRAINT remediation_workflow_catalog_pkey PRIMARY KEY (workflow_id);

ALTER TABLE remediation_workflow_catalog
    ADD CONSTRAINT uq_workflow_name_version UNIQUE (workflow_name, version);

CREATE UNIQUE INDEX uq_workflow_catalog_latest_version
    ON remediation_workflow_catalog (workflow_name)
    WHERE is_latest_version;
