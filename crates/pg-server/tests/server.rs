//! pg-server on a real PostgreSQL (a throwaway local cluster): a fresh migrated database, a
//! failed migration leaving nothing behind, the same server reached by URL.

use std::path::Path;

use pg_server::{Backend, Migrations, Server};
use sqlx::Connection as _;

fn write(dir: &Path, name: &str, sql: &str) {
    std::fs::write(dir.join(name), sql).unwrap();
}

async fn versions(url: &str) -> Vec<i64> {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let v =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    conn.close().await.unwrap();
    v
}

#[tokio::test]
async fn migrated_database_applies_the_folder_and_a_failure_leaves_nothing() {
    let server = Server::local().await.expect("a local PostgreSQL");
    assert_eq!(server.backend(), Backend::Local);
    assert!(server.version_num() >= 130000);

    let good = tempfile::tempdir().unwrap();
    write(
        good.path(),
        "001_a.sql",
        "CREATE TABLE a (id int PRIMARY KEY);",
    );
    write(
        good.path(),
        "002_b.sql",
        "CREATE TABLE b (a int REFERENCES a);",
    );
    let migrations = Migrations::read("good", good.path()).await.unwrap();
    assert_eq!(migrations.len(), 2);
    let url = server
        .migrated_database("migrated", &migrations)
        .await
        .unwrap();
    assert_eq!(versions(&url).await, vec![1, 2]);
    assert!(server.database_exists("migrated").await.unwrap());

    // Same content, same hash; one changed byte, another.
    let again = Migrations::read("good", good.path()).await.unwrap();
    assert_eq!(migrations.hash(), again.hash());
    write(
        good.path(),
        "002_b.sql",
        "CREATE TABLE b (a int REFERENCES a); ",
    );
    let changed = Migrations::read("good", good.path()).await.unwrap();
    assert_ne!(migrations.hash(), changed.hash());

    let bad = tempfile::tempdir().unwrap();
    write(bad.path(), "001_a.sql", "CREATE TABLE a (id int);");
    write(
        bad.path(),
        "002_b.sql",
        "ALTER TABLE missing ADD COLUMN x int;",
    );
    let migrations = Migrations::read("bad", bad.path()).await.unwrap();
    let err = server
        .migrated_database("half", &migrations)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("profile bad") && err.contains("missing"),
        "{err}"
    );
    assert!(
        !server.database_exists("half").await.unwrap(),
        "the half-migrated database is dropped"
    );

    let err = server
        .create_database("a\"b")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a usable database name"), "{err}");

    // The same server by URL: it answers, may create databases, and names the URL without
    // its password.
    let by_url = Server::at_url(&server.url("postgres")).await.unwrap();
    assert_eq!(by_url.backend(), Backend::Url);
    assert!(
        by_url.description().contains(":***@"),
        "{}",
        by_url.description()
    );
    assert!(by_url.database_exists("migrated").await.unwrap());
    by_url.drop_database("migrated").await.unwrap();
    assert!(!server.database_exists("migrated").await.unwrap());
}

#[tokio::test]
async fn a_server_that_does_not_answer_is_a_clear_error() {
    let err = Server::at_url("postgres://nobody:secret@127.0.0.1:1/postgres")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(!err.contains("secret"), "the password is not shown: {err}");
    let err = Server::at_url("mysql://h/db")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not postgres://"), "{err}");
}
