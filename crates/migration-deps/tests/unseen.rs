//! The dependency check on migration sets it has never seen: small, realistic sets of the kinds
//! real projects have (SaaS, blog, e-commerce, event store, …), each checked with nothing
//! excluded (no false positives) and with a migration left out (the exact `file:line` and the
//! object it needs, or no finding at all for leaves, guarded blocks and CTEs).

use migration_deps::{
    Analyzed, Member, Membership, MigrationSet, analyze_set, check_profile, transaction_findings,
};

/// A migration folder in a temp dir, analysed.
struct Set {
    _dir: tempfile::TempDir,
    analyzed: Vec<Analyzed>,
}

/// Writes `files` (name, SQL; one leading newline dropped so line 1 is the first SQL line).
fn set(files: &[(&str, &str)]) -> Set {
    let dir = tempfile::tempdir().unwrap();
    for (name, sql) in files {
        let sql = sql.strip_prefix('\n').unwrap_or(sql);
        std::fs::write(dir.path().join(name), sql).unwrap();
    }
    let migrations = MigrationSet::read(dir.path()).unwrap();
    assert_eq!(migrations.migrations.len(), files.len());
    let analyzed = analyze_set(&migrations).unwrap_or_else(|e| panic!("{e}"));
    Set {
        _dir: dir,
        analyzed,
    }
}

impl Set {
    /// `FILE:LINE: message` for every problem of the walk without the `excluded` versions.
    fn check(&self, excluded: &[i64]) -> Vec<String> {
        let members: Vec<Member<'_>> = self
            .analyzed
            .iter()
            .filter(|a| !excluded.contains(&a.migration.int_version()))
            .map(|analyzed| Member {
                analyzed,
                membership: Membership::Included,
            })
            .collect();
        let mut findings = check_profile(&self.analyzed, &members, &[]);
        for m in &members {
            findings.extend(transaction_findings(m.analyzed));
        }
        findings.sort_by_key(|f| (f.file.clone(), f.line));
        findings.iter().map(ToString::to_string).collect()
    }

    /// Nothing excluded: the whole set must be clean.
    fn assert_clean(&self) {
        assert_eq!(self.check(&[]), Vec::<String>::new(), "false positives");
    }
}

#[test]
fn saas_extension_functions_and_types_need_their_extension() {
    let s = set(&[
        (
            "001_extensions.sql",
            r#"
CREATE EXTENSION IF NOT EXISTS "uuid-ossp";
CREATE EXTENSION IF NOT EXISTS citext;
"#,
        ),
        (
            "002_users.sql",
            r#"
CREATE TABLE users (
    id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    email citext NOT NULL UNIQUE,
    display_name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
"#,
        ),
        (
            "003_api_tokens.sql",
            r#"
CREATE TABLE api_tokens (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    label text NOT NULL,
    last_used_at timestamptz
);
"#,
        ),
    ]);
    s.assert_clean();
    assert_eq!(
        s.check(&[1]),
        [
            "002_users.sql:2: error: function uuid_generate_v4 (from extension uuid-ossp) is created by excluded 001_extensions.sql",
            "002_users.sql:3: error: type citext (from extension citext) is created by excluded 001_extensions.sql",
        ]
    );
    // `gen_random_uuid()` is built in: 003 needs only `users`.
    assert_eq!(
        s.check(&[2]),
        ["003_api_tokens.sql:3: error: table users is created by excluded 002_users.sql"]
    );
    assert_eq!(s.check(&[3]), Vec::<String>::new(), "leaf");
}

#[test]
fn saas_foreign_keys_added_by_alter_table_and_their_constraints() {
    let s = set(&[
        (
            "001_users.sql",
            r#"
CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text NOT NULL);
"#,
        ),
        (
            "002_organizations.sql",
            r#"
CREATE TABLE organizations (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug text NOT NULL UNIQUE,
    owner_id bigint NOT NULL REFERENCES users (id)
);
"#,
        ),
        (
            "003_memberships.sql",
            r#"
CREATE TYPE membership_role AS ENUM ('owner', 'admin', 'member');

CREATE TABLE memberships (
    user_id bigint NOT NULL,
    organization_id bigint NOT NULL,
    role membership_role NOT NULL DEFAULT 'member',
    PRIMARY KEY (user_id, organization_id)
);

ALTER TABLE memberships
    ADD CONSTRAINT memberships_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    ADD CONSTRAINT memberships_org_fk FOREIGN KEY (organization_id)
        REFERENCES organizations (id) ON DELETE CASCADE NOT VALID;
"#,
        ),
        (
            "004_validate_memberships_org_fk.sql",
            r#"
ALTER TABLE memberships VALIDATE CONSTRAINT memberships_org_fk;
COMMENT ON COLUMN memberships.role IS 'What the member may do in the organization';
"#,
        ),
        (
            "005_invoices.sql",
            r#"
CREATE TABLE invoices (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id bigint NOT NULL REFERENCES organizations (id),
    amount_cents bigint NOT NULL CHECK (amount_cents >= 0),
    issued_at timestamptz NOT NULL DEFAULT now(),
    paid_at timestamptz
);
CREATE INDEX invoices_unpaid_idx ON invoices (organization_id) WHERE paid_at IS NULL;
GRANT SELECT ON invoices TO PUBLIC;
"#,
        ),
    ]);
    s.assert_clean();
    assert_eq!(
        s.check(&[2]),
        [
            "003_memberships.sql:13: error: table organizations is created by excluded 002_organizations.sql",
            "005_invoices.sql:3: error: table organizations is created by excluded 002_organizations.sql",
        ]
    );
    assert_eq!(
        s.check(&[3]),
        [
            // Reported once for the table, not again for its column on line 2.
            "004_validate_memberships_org_fk.sql:1: error: table memberships is created by excluded 003_memberships.sql",
        ]
    );
    assert_eq!(s.check(&[4]), Vec::<String>::new(), "no one needs 004");
    assert_eq!(s.check(&[5]), Vec::<String>::new(), "leaf");
}

#[test]
fn ecommerce_enums_domains_and_sequences() {
    let s = set(&[
        (
            "001_types.sql",
            r#"
CREATE TYPE order_status AS ENUM ('pending', 'paid', 'shipped', 'cancelled');
CREATE DOMAIN email_address AS text CHECK (VALUE ~* '^[^@\s]+@[^@\s]+$');
CREATE DOMAIN money_cents AS bigint CHECK (VALUE >= 0);
"#,
        ),
        (
            "002_order_number_seq.sql",
            r#"
CREATE SEQUENCE order_number_seq START WITH 100000;
"#,
        ),
        (
            "003_orders.sql",
            r#"
CREATE TABLE customers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email email_address NOT NULL UNIQUE
);

CREATE TABLE orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    number bigint NOT NULL DEFAULT nextval('order_number_seq'),
    customer_id bigint NOT NULL REFERENCES customers (id),
    status order_status NOT NULL DEFAULT 'pending',
    total money_cents NOT NULL
);
"#,
        ),
        (
            "004_order_status_refunded.sql",
            r#"
ALTER TYPE order_status ADD VALUE IF NOT EXISTS 'refunded' AFTER 'shipped';
"#,
        ),
        (
            "005_restart_order_numbers.sql",
            r#"
SELECT setval('public.order_number_seq', 500000, false);
"#,
        ),
        (
            "006_orders_in_status.sql",
            r#"
CREATE FUNCTION orders_in_status(p_status order_status) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT count(*) FROM orders WHERE status = p_status
$$;
"#,
        ),
    ]);
    s.assert_clean();
    assert_eq!(
        s.check(&[1]),
        [
            "003_orders.sql:3: error: type email_address is created by excluded 001_types.sql",
            "003_orders.sql:10: error: type order_status is created by excluded 001_types.sql",
            "003_orders.sql:11: error: type money_cents is created by excluded 001_types.sql",
            "004_order_status_refunded.sql:1: error: type order_status is created by excluded 001_types.sql",
            "006_orders_in_status.sql:1: error: type order_status is created by excluded 001_types.sql",
        ]
    );
    assert_eq!(
        s.check(&[2]),
        [
            "003_orders.sql:8: error: sequence order_number_seq is created by excluded 002_order_number_seq.sql",
            "005_restart_order_numbers.sql:1: error: sequence order_number_seq is created by excluded 002_order_number_seq.sql",
        ]
    );
    assert_eq!(
        s.check(&[3]),
        [
            // A `LANGUAGE sql` body is checked when the function is created.
            "006_orders_in_status.sql:3: error: table orders is created by excluded 003_orders.sql"
        ]
    );
    assert_eq!(s.check(&[5]), Vec::<String>::new(), "leaf");
}

#[test]
fn partitioned_table_partitions_inherit_the_parent_columns() {
    let s = set(&[
        (
            "001_events.sql",
            r#"
CREATE TABLE events (
    id bigint GENERATED BY DEFAULT AS IDENTITY,
    occurred_at timestamptz NOT NULL,
    kind text NOT NULL,
    payload jsonb NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (id, occurred_at)
) PARTITION BY RANGE (occurred_at);
"#,
        ),
        (
            "002_events_partitions.sql",
            r#"
CREATE TABLE events_2024 PARTITION OF events
    FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE events_default PARTITION OF events DEFAULT;
"#,
        ),
        (
            "003_events_2024_kind_idx.sql",
            r#"
CREATE INDEX events_2024_kind_idx ON events_2024 (kind, occurred_at);
"#,
        ),
        (
            "004_archive_2024.sql",
            r#"
ALTER TABLE events DETACH PARTITION events_2024;
ALTER TABLE events_2024 RENAME TO events_2024_archive;
"#,
        ),
    ]);
    s.assert_clean();
    assert_eq!(
        s.check(&[1]),
        [
            "002_events_partitions.sql:1: error: table events is created by excluded 001_events.sql",
            // The partition exists, but without the columns it would have copied from `events`.
            "003_events_2024_kind_idx.sql:1: error: column events_2024.kind (from column events.kind) is created by excluded 001_events.sql",
            "003_events_2024_kind_idx.sql:1: error: column events_2024.occurred_at (from column events.occurred_at) is created by excluded 001_events.sql",
            "004_archive_2024.sql:1: error: table events is created by excluded 001_events.sql",
        ]
    );
    assert_eq!(
        s.check(&[2]),
        [
            "003_events_2024_kind_idx.sql:1: error: table events_2024 is created by excluded 002_events_partitions.sql",
            "004_archive_2024.sql:1: error: table events_2024 is created by excluded 002_events_partitions.sql",
        ]
    );
    assert_eq!(
        s.check(&[3]),
        Vec::<String>::new(),
        "no one needs the index"
    );
}

#[test]
fn trigger_needs_its_trigger_function_and_table() {
    let s = set(&[
        (
            "001_accounts.sql",
            r#"
CREATE TABLE accounts (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE account_audit (
    account_id bigint NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(),
    old_name text
);
"#,
        ),
        (
            "002_trigger_functions.sql",
            r#"
CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE OR REPLACE FUNCTION audit_account_rename() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.name IS DISTINCT FROM OLD.name THEN
        INSERT INTO account_audit (account_id, old_name) VALUES (OLD.id, OLD.name);
    END IF;
    RETURN NEW;
END;
$$;
"#,
        ),
        (
            "003_account_triggers.sql",
            r#"
CREATE TRIGGER accounts_set_updated_at
    BEFORE UPDATE ON accounts
    FOR EACH ROW
    EXECUTE FUNCTION set_updated_at();

CREATE TRIGGER accounts_audit_rename
    AFTER UPDATE OF name ON accounts
    FOR EACH ROW
    EXECUTE PROCEDURE audit_account_rename();
"#,
        ),
        (
            "004_pause_audit.sql",
            r#"
ALTER TABLE accounts DISABLE TRIGGER accounts_audit_rename;
"#,
        ),
    ]);
    s.assert_clean();
    assert_eq!(
        s.check(&[2]),
        [
            "003_account_triggers.sql:4: error: function set_updated_at is created by excluded 002_trigger_functions.sql",
            "003_account_triggers.sql:9: error: function audit_account_rename is created by excluded 002_trigger_functions.sql",
        ]
    );
    assert_eq!(
        s.check(&[3]),
        [
            "004_pause_audit.sql:1: error: trigger accounts_audit_rename on accounts is created by excluded 003_account_triggers.sql"
        ]
    );
}

#[test]
fn function_bodies_sql_and_plpgsql_need_their_tables() {
    let s = set(&[
        (
            "001_posts.sql",
            r#"
CREATE TABLE posts (
    id bigserial PRIMARY KEY,
    title text NOT NULL,
    body text NOT NULL,
    published_at timestamptz
);
"#,
        ),
        (
            "002_comments.sql",
            r#"
CREATE TABLE comments (
    id bigserial PRIMARY KEY,
    post_id bigint NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    body text NOT NULL
);
"#,
        ),
        (
            "003_functions.sql",
            r#"
CREATE FUNCTION comment_count(p_post_id bigint) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT count(*) FROM comments WHERE post_id = p_post_id
$$;

CREATE FUNCTION published_posts() RETURNS SETOF posts
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT * FROM posts WHERE published_at IS NOT NULL;
END;
"#,
        ),
        (
            "004_purge_post.sql",
            r#"
CREATE FUNCTION purge_post(p_id bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    DELETE FROM comments WHERE post_id = p_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RAISE NOTICE 'removed % comments', n;
    DELETE FROM posts WHERE id = p_id;
END;
$$;
"#,
        ),
    ]);
    s.assert_clean();
    assert_eq!(
        s.check(&[2]),
        [
            // SQL bodies are checked when created; PL/pgSQL ones when they run.
            "003_functions.sql:3: error: table comments is created by excluded 002_comments.sql",
            "004_purge_post.sql:6: error: table comments is created by excluded 002_comments.sql (used in the body of function purge_post; PostgreSQL accepts the migration, the function fails when it runs)",
        ]
    );
    assert_eq!(
        s.check(&[1]),
        [
            "002_comments.sql:3: error: table posts is created by excluded 001_posts.sql",
            "003_functions.sql:6: error: type posts is created by excluded 001_posts.sql",
            // A standard-SQL body is checked when created.
            "003_functions.sql:9: error: table posts is created by excluded 001_posts.sql",
            "004_purge_post.sql:9: error: table posts is created by excluded 001_posts.sql (used in the body of function purge_post; PostgreSQL accepts the migration, the function fails when it runs)",
        ]
    );
}

#[test]
fn guarded_do_blocks_are_not_errors_but_unguarded_ones_are() {
    let s = set(&[
        (
            "001_legacy_settings.sql",
            r#"
CREATE TABLE legacy_settings (key text PRIMARY KEY, value text);
"#,
        ),
        (
            "002_settings.sql",
            r#"
CREATE TABLE settings (key text PRIMARY KEY, value jsonb NOT NULL);
"#,
        ),
        (
            "003_migrate_legacy_settings.sql",
            r#"
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.tables WHERE table_name = 'legacy_settings') THEN
        ALTER TABLE legacy_settings RENAME COLUMN value TO raw_value;
        INSERT INTO settings (key, value)
        SELECT key, to_jsonb(raw_value) FROM legacy_settings
        ON CONFLICT (key) DO NOTHING;
    END IF;
END
$$;

DO $$
BEGIN
    ALTER TABLE settings ADD CONSTRAINT settings_key_format CHECK (key ~ '^[a-z_.]+$');
EXCEPTION
    WHEN duplicate_object THEN NULL;
END
$$;

DROP TABLE IF EXISTS legacy_settings;
"#,
        ),
        (
            "004_seed_settings.sql",
            r#"
DO $$
DECLARE
    k text;
BEGIN
    FOREACH k IN ARRAY ARRAY['site.name', 'site.locale'] LOOP
        RAISE NOTICE 'seeding %', k;
    END LOOP;
    INSERT INTO settings (key, value) VALUES ('site.name', '"Example"');
END
$$;
"#,
        ),
    ]);
    s.assert_clean();
    assert_eq!(s.check(&[1]), Vec::<String>::new(), "every use is guarded");
    assert_eq!(
        s.check(&[2]),
        [
            // `WHEN duplicate_object` does not catch a missing table.
            "003_migrate_legacy_settings.sql:14: error: table settings is created by excluded 002_settings.sql",
            "004_seed_settings.sql:8: error: table settings is created by excluded 002_settings.sql",
        ],
        "the IF-guarded uses are no error"
    );
}

#[test]
fn renamed_table_is_used_under_its_new_name() {
    let s = set(&[
        (
            "001_customers.sql",
            r#"
CREATE TABLE customers (
    id bigserial PRIMARY KEY,
    email text NOT NULL,
    name text
);
"#,
        ),
        (
            "002_rename_customers_to_accounts.sql",
            r#"
ALTER TABLE customers RENAME TO accounts;
ALTER TABLE accounts RENAME COLUMN name TO full_name;
"#,
        ),
        (
            "003_accounts_indexes.sql",
            r#"
CREATE UNIQUE INDEX accounts_email_idx ON accounts (lower(email));
"#,
        ),
        (
            "004_comment_full_name.sql",
            r#"
COMMENT ON COLUMN accounts.full_name IS 'As the customer wants to be addressed';
COMMENT ON COLUMN accounts.email IS 'Login and contact address';
"#,
        ),
    ]);
    s.assert_clean();
    assert_eq!(
        s.check(&[1]),
        [
            "002_rename_customers_to_accounts.sql:1: error: table customers is created by excluded 001_customers.sql",
            // The rename fails, so there is no `accounts` either.
            "003_accounts_indexes.sql:1: error: table accounts (from table customers) is created by excluded 001_customers.sql",
            "004_comment_full_name.sql:1: error: table accounts (from table customers) is created by excluded 001_customers.sql",
        ]
    );
    assert_eq!(
        s.check(&[2]),
        [
            "003_accounts_indexes.sql:1: error: table accounts is created by excluded 002_rename_customers_to_accounts.sql",
            "004_comment_full_name.sql:1: error: table accounts is created by excluded 002_rename_customers_to_accounts.sql",
        ]
    );
}

#[test]
fn create_table_like_copies_columns() {
    let s = set(&[
        (
            "001_orders.sql",
            r#"
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    placed_at timestamptz NOT NULL DEFAULT now(),
    total_cents bigint NOT NULL
);
"#,
        ),
        (
            "002_orders_archive.sql",
            r#"
CREATE TABLE orders_archive (
    LIKE orders INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    archived_at timestamptz NOT NULL DEFAULT now()
);
"#,
        ),
        (
            "003_orders_archive_idx.sql",
            r#"
CREATE INDEX orders_archive_placed_at_idx ON orders_archive (placed_at);
"#,
        ),
    ]);
    s.assert_clean();
    assert_eq!(
        s.check(&[1]),
        [
            "002_orders_archive.sql:2: error: table orders is created by excluded 001_orders.sql",
            // The copy exists, but without the columns it would have taken from `orders`.
            "003_orders_archive_idx.sql:1: error: column orders_archive.placed_at (from column orders.placed_at) is created by excluded 001_orders.sql",
        ]
    );
    assert_eq!(
        s.check(&[2]),
        [
            "003_orders_archive_idx.sql:1: error: table orders_archive is created by excluded 002_orders_archive.sql"
        ]
    );
}

#[test]
fn search_extensions_trigram_index_and_pgcrypto() {
    let s = set(&[
        (
            "001_extensions.sql",
            r#"
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS pgcrypto;
"#,
        ),
        (
            "002_products.sql",
            r#"
CREATE TABLE products (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    price_cents bigint NOT NULL CHECK (price_cents % 5 = 0),
    search tsvector GENERATED ALWAYS AS (to_tsvector('english', name)) STORED
);
CREATE INDEX products_search_idx ON products USING gin (search);
"#,
        ),
        (
            "003_products_name_trgm.sql",
            r#"
CREATE INDEX products_name_trgm_idx
    ON products USING gin (name gin_trgm_ops);
"#,
        ),
        (
            "004_api_keys.sql",
            r#"
CREATE TABLE api_keys (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    secret_hash text NOT NULL
        DEFAULT encode(digest(gen_random_bytes(32), 'sha256'), 'hex')
);
"#,
        ),
    ]);
    s.assert_clean();
    // `price_cents % 5` is integer modulo, not pg_trgm's similarity operator.
    assert_eq!(
        s.check(&[1]),
        [
            "003_products_name_trgm.sql:2: error: operator class gin_trgm_ops (from extension pg_trgm) is created by excluded 001_extensions.sql",
            "004_api_keys.sql:4: error: function digest (from extension pgcrypto) is created by excluded 001_extensions.sql",
        ]
    );
    assert_eq!(
        s.check(&[2]),
        [
            "003_products_name_trgm.sql:2: error: table products is created by excluded 002_products.sql"
        ]
    );
}

#[test]
fn extensions_installed_in_their_own_schema() {
    let s = set(&[
        (
            "001_extensions.sql",
            r#"
CREATE SCHEMA IF NOT EXISTS extensions;
CREATE EXTENSION IF NOT EXISTS "uuid-ossp" WITH SCHEMA extensions;
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA extensions;
"#,
        ),
        (
            "002_app_schema.sql",
            r#"
CREATE SCHEMA app;
CREATE FUNCTION app.similarity(a text, b text) RETURNS real
LANGUAGE sql IMMUTABLE AS $$ SELECT CASE WHEN lower(a) = lower(b) THEN 1 ELSE 0 END $$;
"#,
        ),
        (
            "003_profiles.sql",
            r#"
CREATE TABLE app.profiles (
    id uuid PRIMARY KEY DEFAULT extensions.uuid_generate_v4(),
    handle text NOT NULL
);
CREATE INDEX profiles_handle_trgm_idx ON app.profiles
    USING gin (handle extensions.gin_trgm_ops);
"#,
        ),
        (
            "004_similar_handles.sql",
            r#"
CREATE VIEW app.similar_handles AS
SELECT a.id, b.id AS other_id
FROM app.profiles a
JOIN app.profiles b ON a.id <> b.id AND app.similarity(a.handle, b.handle) > 0.5;
"#,
        ),
    ]);
    s.assert_clean();
    // `app.similarity` is the project's own function, not pg_trgm's.
    assert_eq!(
        s.check(&[1]),
        [
            "003_profiles.sql:2: error: function extensions.uuid_generate_v4 (from extension uuid-ossp) is created by excluded 001_extensions.sql",
            "003_profiles.sql:6: error: operator class extensions.gin_trgm_ops (from extension pg_trgm) is created by excluded 001_extensions.sql",
        ]
    );
    assert_eq!(
        s.check(&[2]),
        [
            "003_profiles.sql:1: error: schema app is created by excluded 002_app_schema.sql",
            "004_similar_handles.sql:1: error: schema app is created by excluded 002_app_schema.sql",
            "004_similar_handles.sql:4: error: function app.similarity is created by excluded 002_app_schema.sql",
        ]
    );
    assert_eq!(s.check(&[4]), Vec::<String>::new(), "leaf");
}

#[test]
fn quoted_identifiers_keep_their_case() {
    let s = set(&[
        (
            "001_user_accounts.sql",
            r#"
CREATE TABLE "UserAccounts" (
    "Id" uuid PRIMARY KEY,
    "displayName" text NOT NULL,
    "createdAt" timestamptz NOT NULL DEFAULT now()
);
"#,
        ),
        (
            "002_useraccounts_lowercase.sql",
            r#"
CREATE TABLE useraccounts (id uuid PRIMARY KEY, displayname text);
"#,
        ),
        (
            "003_display_name_idx.sql",
            r#"
CREATE INDEX "UserAccounts_displayName_idx"
    ON "UserAccounts" ("displayName");
"#,
        ),
        (
            "004_lowercase_idx.sql",
            r#"
CREATE INDEX useraccounts_displayname_idx ON UserAccounts (displayName);
"#,
        ),
    ]);
    s.assert_clean();
    assert_eq!(
        s.check(&[1]),
        [
            "003_display_name_idx.sql:2: error: table UserAccounts is created by excluded 001_user_accounts.sql"
        ]
    );
    assert_eq!(
        s.check(&[2]),
        [
            "004_lowercase_idx.sql:1: error: table useraccounts is created by excluded 002_useraccounts_lowercase.sql"
        ]
    );
}

#[test]
fn schema_qualified_names_are_distinct_tables() {
    let s = set(&[
        (
            "001_schemas.sql",
            r#"
CREATE SCHEMA IF NOT EXISTS app;
"#,
        ),
        (
            "002_public_users.sql",
            r#"
CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL);
"#,
        ),
        (
            "003_app_users.sql",
            r#"
CREATE TABLE app.users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email text NOT NULL,
    legacy_id bigint REFERENCES public.users (id)
);
"#,
        ),
        (
            "004_app_users_email_idx.sql",
            r#"
CREATE UNIQUE INDEX users_email_idx ON app.users (email);
"#,
        ),
        (
            "005_mark_migrated.sql",
            r#"
ALTER TABLE public.users ADD COLUMN migrated boolean NOT NULL DEFAULT false;
UPDATE users u
SET migrated = true
FROM app.users a
WHERE a.legacy_id = u.id;
"#,
        ),
    ]);
    s.assert_clean();
    assert_eq!(
        s.check(&[1]),
        ["003_app_users.sql:1: error: schema app is created by excluded 001_schemas.sql"]
    );
    assert_eq!(
        s.check(&[2]),
        [
            "003_app_users.sql:4: error: table users is created by excluded 002_public_users.sql",
            "005_mark_migrated.sql:1: error: table users is created by excluded 002_public_users.sql",
        ]
    );
    assert_eq!(
        s.check(&[3]),
        [
            "004_app_users_email_idx.sql:1: error: table app.users is created by excluded 003_app_users.sql",
            "005_mark_migrated.sql:4: error: table app.users is created by excluded 003_app_users.sql",
        ]
    );
}

#[test]
fn data_migrations_cte_update_from_and_upsert() {
    let s = set(&[
        (
            "001_import_rows.sql",
            r#"
CREATE TABLE import_rows (email text NOT NULL, name text, plan_code text);
"#,
        ),
        (
            "002_customers_and_plans.sql",
            r#"
CREATE TABLE customers (id bigserial PRIMARY KEY, email text NOT NULL UNIQUE, name text);
CREATE TABLE plans (code text PRIMARY KEY, name text NOT NULL);
"#,
        ),
        (
            "003_import_plans.sql",
            r#"
INSERT INTO plans (code, name)
SELECT DISTINCT r.plan_code, initcap(r.plan_code)
FROM import_rows r
WHERE r.plan_code IS NOT NULL
ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name;
"#,
        ),
        (
            "004_backfill_names.sql",
            r#"
-- `import_rows` here is a CTE, not the staging table.
WITH import_rows AS (
    SELECT email, min(name) AS name
    FROM customers
    GROUP BY email
)
UPDATE customers c
SET name = i.name
FROM import_rows i
WHERE i.email = c.email AND c.name IS NULL;
"#,
        ),
        (
            "005_backup_customers.sql",
            r#"
SELECT * INTO customers_backup FROM customers;
"#,
        ),
        (
            "006_drop_customers_backup.sql",
            r#"
DROP TABLE customers_backup;
"#,
        ),
    ]);
    s.assert_clean();
    assert_eq!(
        s.check(&[1]),
        [
            "003_import_plans.sql:3: error: table import_rows is created by excluded 001_import_rows.sql"
        ],
        "the CTE of the same name in 004 needs nothing"
    );
    assert_eq!(
        s.check(&[2]),
        [
            "003_import_plans.sql:1: error: table plans is created by excluded 002_customers_and_plans.sql",
            "004_backfill_names.sql:4: error: table customers is created by excluded 002_customers_and_plans.sql",
            "005_backup_customers.sql:1: error: table customers is created by excluded 002_customers_and_plans.sql",
        ]
    );
    assert_eq!(
        s.check(&[5]),
        [
            "006_drop_customers_backup.sql:1: error: table customers_backup is created by excluded 005_backup_customers.sql"
        ]
    );
}

#[test]
fn blog_view_full_text_index_and_concurrent_index() {
    let s = set(&[
        (
            "001_posts.sql",
            r#"
CREATE TABLE posts (
    id bigserial PRIMARY KEY,
    slug text NOT NULL UNIQUE,
    title text NOT NULL,
    body text NOT NULL,
    published_at timestamptz
);
CREATE TABLE tags (id serial PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE post_tags (
    post_id bigint NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    tag_id int NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    PRIMARY KEY (post_id, tag_id)
);
"#,
        ),
        (
            "002_comments.sql",
            r#"
CREATE TABLE comments (
    id bigserial PRIMARY KEY,
    post_id bigint NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    author text NOT NULL,
    body text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
"#,
        ),
        (
            "003_post_summaries.sql",
            r#"
CREATE VIEW post_summaries AS
SELECT p.id,
       p.slug,
       p.title,
       count(DISTINCT c.id) AS comment_count,
       array_agg(DISTINCT t.name) FILTER (WHERE t.name IS NOT NULL) AS tags
FROM posts p
LEFT JOIN comments c ON c.post_id = p.id
LEFT JOIN post_tags pt ON pt.post_id = p.id
LEFT JOIN tags t ON t.id = pt.tag_id
WHERE p.published_at IS NOT NULL
GROUP BY p.id;
"#,
        ),
        (
            "004_posts_fts_idx.sql",
            r#"
-- no-transaction
CREATE INDEX CONCURRENTLY IF NOT EXISTS posts_fts_idx
    ON posts USING gin (to_tsvector('english', title || ' ' || body));
"#,
        ),
        (
            "005_grant_read.sql",
            r#"
GRANT SELECT ON post_summaries TO PUBLIC;
"#,
        ),
    ]);
    s.assert_clean();
    assert_eq!(
        s.check(&[2]),
        ["003_post_summaries.sql:8: error: table comments is created by excluded 002_comments.sql"]
    );
    assert_eq!(
        s.check(&[3]),
        [
            "005_grant_read.sql:1: error: view post_summaries is created by excluded 003_post_summaries.sql"
        ]
    );
    assert_eq!(s.check(&[4]), Vec::<String>::new(), "leaf index");
}
