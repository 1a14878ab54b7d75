//! The fingerprint and the profile guard on a real PostgreSQL (a throwaway local cluster).

use std::path::Path;

use pg_embedded::Cluster;
use pg_schema::profile_guard::{self, Compatible, GuardError, UPGRADE_COMMAND};
use pg_schema::{Fingerprint, Kind, Status, applied};
use sqlx::migrate::Migrator;
use sqlx::{Connection, Executor, PgConnection};

/// The migration directory of a profile (named in `migrations/profiles.toml`).
fn profile_dir(name: &str) -> String {
    let dir = pg_schema::profiles::dir(name).expect("a profile of profiles.toml");
    format!("{}/../../{dir}", env!("CARGO_MANIFEST_DIR"))
}

async fn connect(url: &str) -> PgConnection {
    PgConnection::connect(url).await.expect("connect")
}

async fn exec(conn: &mut PgConnection, sql: &str) {
    conn.execute(sqlx::AssertSqlSafe(sql.to_owned()))
        .await
        .unwrap_or_else(|e| panic!("{e}\nin:\n{sql}"));
}

async fn migrator(dir: &str) -> Migrator {
    Migrator::new(Path::new(dir))
        .await
        .expect("read migrations")
}

/// A new database on `cluster`, migrated with the migrations in `dir`.
async fn migrated(cluster: &Cluster, name: &str, dir: &str) -> String {
    let url = cluster.create_database(name).expect("create database");
    let mut conn = connect(&url).await;
    migrator(dir).await.run(&mut conn).await.expect("migrate");
    conn.close().await.unwrap();
    url
}

/// Everything the fingerprint covers, written so that a second copy can reorder columns.
fn ddl(columns: &str) -> String {
    format!(
        r#"
CREATE EXTENSION vector;
CREATE SCHEMA app;
CREATE TYPE app.mood AS ENUM ('calm', 'busy');
CREATE DOMAIN app.percent AS integer NOT NULL DEFAULT 0 CONSTRAINT percent_range CHECK (VALUE BETWEEN 0 AND 100);
CREATE TYPE app.pair AS (x integer, y text);
CREATE TABLE app.owners (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE app.items ({columns},
    CONSTRAINT items_owner_fk FOREIGN KEY (owner_id) REFERENCES app.owners (id) ON DELETE CASCADE,
    CONSTRAINT items_price_check CHECK (price >= 0));
CREATE INDEX items_label_idx ON app.items (lower(label)) WHERE label IS NOT NULL;
CREATE SEQUENCE app.tickets START 100 INCREMENT 5;
CREATE TABLE app.events (id bigserial, day date NOT NULL, body jsonb NOT NULL DEFAULT '{{}}',
    PRIMARY KEY (id, day),
    CONSTRAINT events_body_check CHECK (jsonb_typeof(body) = 'object')) PARTITION BY RANGE (day);
CREATE TABLE app.events_default PARTITION OF app.events DEFAULT;
CREATE TABLE app.events_2020 PARTITION OF app.events FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');
CREATE INDEX events_body_idx ON app.events USING gin (body);
CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER events_touch BEFORE UPDATE ON app.events FOR EACH ROW EXECUTE FUNCTION app.touch();
CREATE VIEW app.priced AS SELECT id, price FROM app.items WHERE price > 0;
CREATE MATERIALIZED VIEW app.totals AS SELECT owner_id, sum(price) AS total FROM app.items GROUP BY owner_id;
CREATE TABLE _sqlx_migrations (version bigint PRIMARY KEY);
"#
    )
}

const ITEM_COLUMNS: &str = "id bigserial PRIMARY KEY, owner_id bigint NOT NULL, \
     label varchar(40) COLLATE \"C\", price numeric(10,2) NOT NULL DEFAULT 0, \
     doubled numeric GENERATED ALWAYS AS (price * 2) STORED, embedding vector(3), mood app.mood";
const ITEM_COLUMNS_REORDERED: &str = "mood app.mood, embedding vector(3), \
     doubled numeric GENERATED ALWAYS AS (price * 2) STORED, price numeric(10,2) NOT NULL DEFAULT 0, \
     label varchar(40) COLLATE \"C\", owner_id bigint NOT NULL, id bigserial PRIMARY KEY";

#[tokio::test]
async fn fingerprint_reads_every_kind_and_compares_schemas() {
    let cluster = Cluster::start().expect("start PostgreSQL");
    let url_a = cluster.create_database("a").unwrap();
    let url_b = cluster.create_database("b").unwrap();
    let mut a = connect(&url_a).await;
    let mut b = connect(&url_b).await;
    exec(&mut a, &ddl(ITEM_COLUMNS)).await;
    exec(&mut b, &ddl(ITEM_COLUMNS_REORDERED)).await;

    let fa = Fingerprint::read(&mut a).await.unwrap();
    let get = |kind, name: &str| {
        fa.get(kind, name)
            .unwrap_or_else(|| panic!("{kind} {name} missing from:\n{fa}"))
    };
    assert_eq!(get(Kind::Extension, "vector"), "schema public");
    assert_eq!(get(Kind::Schema, "app"), "schema");
    assert_eq!(get(Kind::Type, "app.mood"), "enum ('calm', 'busy')");
    assert_eq!(
        get(Kind::Type, "app.percent"),
        "domain over integer NOT NULL DEFAULT 0 CONSTRAINT percent_range CHECK (((VALUE >= 0) AND (VALUE <= 100)))"
    );
    assert_eq!(get(Kind::Type, "app.pair"), "composite (x integer, y text)");
    assert_eq!(
        get(Kind::Table, "app.events"),
        "partitioned table PARTITION BY RANGE (day)"
    );
    assert_eq!(
        get(Kind::Table, "app.events_default"),
        "table PARTITION OF app.events DEFAULT"
    );
    assert_eq!(
        get(Kind::Table, "app.events_2020"),
        "table PARTITION OF app.events FOR VALUES FROM ('2020-01-01') TO ('2021-01-01')"
    );
    assert_eq!(
        get(Kind::Column, "app.items.price"),
        "numeric(10,2) NOT NULL DEFAULT 0"
    );
    assert_eq!(
        get(Kind::Column, "app.items.label"),
        "character varying(40) COLLATE pg_catalog.\"C\""
    );
    assert_eq!(
        get(Kind::Column, "app.items.doubled"),
        "numeric GENERATED ALWAYS AS ((price * (2)::numeric)) STORED"
    );
    assert_eq!(get(Kind::Column, "app.items.embedding"), "vector(3)");
    assert_eq!(
        get(Kind::Column, "app.items.id"),
        "bigint NOT NULL DEFAULT nextval('app.items_id_seq'::regclass)"
    );
    assert_eq!(
        get(Kind::Column, "app.owners.id"),
        "bigint NOT NULL GENERATED ALWAYS AS IDENTITY"
    );
    assert_eq!(
        get(Kind::Constraint, "app.items.items_owner_fk"),
        "FOREIGN KEY (owner_id) REFERENCES app.owners(id) ON DELETE CASCADE"
    );
    assert_eq!(
        get(Kind::Constraint, "app.events.events_pkey"),
        "PRIMARY KEY (id, day)"
    );
    assert_eq!(
        get(Kind::Index, "app.items_label_idx"),
        "CREATE INDEX items_label_idx ON app.items USING btree (lower((label)::text)) WHERE (label IS NOT NULL)"
    );
    assert_eq!(
        get(Kind::Sequence, "app.tickets"),
        "bigint START 100 INCREMENT 5 MINVALUE 1 MAXVALUE 9223372036854775807 CACHE 1"
    );
    assert!(
        get(Kind::Sequence, "app.items_id_seq").ends_with("OWNED BY app.items.id"),
        "{fa}"
    );
    assert!(get(Kind::View, "app.priced").starts_with("VIEW AS  SELECT"));
    assert!(get(Kind::View, "app.totals").starts_with("MATERIALIZED VIEW AS"));
    assert!(
        get(Kind::Function, "app.touch()").starts_with("CREATE OR REPLACE FUNCTION app.touch()")
    );
    assert!(
        get(Kind::Trigger, "app.events.events_touch").starts_with("CREATE TRIGGER events_touch")
    );

    // What partitions inherit is listed once, on the partitioned table.
    assert_eq!(
        fa.names(Kind::Column)
            .filter(|n| n.starts_with("app.events_"))
            .count(),
        0
    );
    for kind in [Kind::Constraint, Kind::Index, Kind::Trigger] {
        let on_partitions: Vec<&str> = fa
            .names(kind)
            .filter(|n| n.contains("events_2020") || n.contains("events_default"))
            .collect();
        assert!(on_partitions.is_empty(), "{kind}: {on_partitions:?}");
    }
    // Not part of the schema: sqlx's bookkeeping, the objects an extension brings, system schemas.
    for (id, _) in fa.objects() {
        assert!(!id.name.contains("_sqlx_migrations"), "{id}");
        assert!(!id.name.starts_with("pg_catalog."), "{id}");
    }
    assert!(
        fa.names(Kind::Function).all(|n| n.starts_with("app.")),
        "{fa}"
    );

    // Deterministic, and column order is not part of the schema.
    assert_eq!(Fingerprint::read(&mut a).await.unwrap(), fa);
    let fb = Fingerprint::read(&mut b).await.unwrap();
    let diff = fa.diff(&fb);
    assert!(diff.is_empty(), "{}", diff.render("a", "b"));

    // Each kind of change shows up.
    exec(
        &mut b,
        "ALTER TABLE app.items ALTER COLUMN price SET DEFAULT 1;
         DROP INDEX app.items_label_idx;
         ALTER TABLE app.owners ADD COLUMN email text;
         CREATE TABLE app.events_2021 PARTITION OF app.events FOR VALUES FROM ('2021-01-01') TO ('2022-01-01');
         CREATE OR REPLACE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;",
    )
    .await;
    let fb = Fingerprint::read(&mut b).await.unwrap();
    let diff = fa.diff(&fb);
    let seen: Vec<(String, Status)> = diff
        .changes
        .iter()
        .map(|c| (c.id.to_string(), c.status()))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("table app.events_2021".to_owned(), Status::OnlyInB),
            ("column app.items.price".to_owned(), Status::Differs),
            ("column app.owners.email".to_owned(), Status::OnlyInB),
            ("index app.items_label_idx".to_owned(), Status::OnlyInA),
            ("function app.touch()".to_owned(), Status::Differs),
        ],
        "{}",
        diff.render("a", "b")
    );
    let text = diff.render("a", "b");
    assert!(
        text.contains("      A: numeric(10,2) NOT NULL DEFAULT 0\n"),
        "{text}"
    );
    assert!(
        text.contains("      B: numeric(10,2) NOT NULL DEFAULT 1\n"),
        "{text}"
    );
    assert!(
        text.ends_with("5 differences: 1 only in A, 2 only in B, 2 differ\n"),
        "{text}"
    );
}

#[tokio::test]
async fn guard_stops_a_profile_on_a_database_of_the_other_profile() {
    let cluster = Cluster::start().expect("start PostgreSQL");
    let (v1_dir, full_dir) = (profile_dir("v1.0"), profile_dir("full"));
    let v1_url = migrated(&cluster, "v1", &v1_dir).await;
    let full_url = migrated(&cluster, "full", &full_dir).await;
    let fresh_url = cluster.create_database("fresh").unwrap();
    let v1 = migrator(&v1_dir).await;
    let full = migrator(&full_dir).await;

    // Each profile on its own database, and on a fresh one: go ahead.
    let mut conn = connect(&v1_url).await;
    assert_eq!(
        profile_guard::check(&mut conn, "v1.0", &v1).await.unwrap(),
        Compatible::Migrated {
            applied: 16,
            pending: vec![]
        }
    );
    let mut conn = connect(&fresh_url).await;
    assert_eq!(
        profile_guard::check(&mut conn, "full", &full)
            .await
            .unwrap(),
        Compatible::Fresh
    );

    // The v1.0 service's migrator on a full database.
    let mut conn = connect(&full_url).await;
    let before = (
        Fingerprint::read(&mut conn).await.unwrap(),
        applied::read(&mut conn).await.unwrap(),
    );
    let err = profile_guard::check(&mut conn, "v1.0", &v1)
        .await
        .unwrap_err();
    let GuardError::OtherProfile(found) = &err else {
        panic!("{err}")
    };
    assert_eq!(found.unknown, vec![5, 7, 8, 9, 16]);
    assert_eq!(found.different, vec![10, 15]);
    let message = err.to_string();
    assert!(
        message.starts_with(
            "database `full` was migrated with another migration profile than `v1.0`: it records migration versions 005, 007, 008, 009, 016 that profile `v1.0` does not have"
        ),
        "{message}"
    );
    assert!(
        message.contains("A `v1.0` service cannot run on a database of the full profile"),
        "{message}"
    );
    assert!(message.ends_with("Nothing was changed."), "{message}");
    let after = (
        Fingerprint::read(&mut conn).await.unwrap(),
        applied::read(&mut conn).await.unwrap(),
    );
    assert!(after == before, "the guard changed the database");

    // The full profile's migrator on a v1.0 database.
    let mut conn = connect(&v1_url).await;
    let before = (
        Fingerprint::read(&mut conn).await.unwrap(),
        applied::read(&mut conn).await.unwrap(),
    );
    let err = profile_guard::check(&mut conn, "full", &full)
        .await
        .unwrap_err();
    let GuardError::OtherProfile(found) = &err else {
        panic!("{err}")
    };
    assert!(found.unknown.is_empty());
    assert_eq!(found.different, vec![10, 15]);
    let message = err.to_string();
    assert!(
        message.contains("versions 010, 015 were applied from other files than `full`'s"),
        "{message}"
    );
    assert!(
        message.contains(&format!("`{UPGRADE_COMMAND} --database-url <URL>`")),
        "{message}"
    );
    let after = (
        Fingerprint::read(&mut conn).await.unwrap(),
        applied::read(&mut conn).await.unwrap(),
    );
    assert!(after == before, "the guard changed the database");
    assert_eq!(before.1.map(|rows| rows.len()), Some(16));
}
