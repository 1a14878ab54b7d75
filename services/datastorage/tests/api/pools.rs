//! The service's two connection pools and how their connections are set up.

use std::time::Duration;

use datastorage::db;

use crate::helpers::database;

#[tokio::test]
async fn writes_keep_cached_plans_and_filtered_queries_are_planned_per_execution() {
    let db = database().await;
    let sizes = db::PoolSizes {
        writes: 1,
        queries: 1,
    };
    let (writes, queries) = db::pools(
        db.url(),
        Duration::from_secs(7),
        sizes,
        Duration::from_secs(5),
    )
    .unwrap();
    for (pool, expected) in [(&writes, "auto"), (&queries, "force_custom_plan")] {
        let (plan_cache_mode, statement_timeout, application): (String, String, String) =
            sqlx::query_as(
                "SELECT current_setting('plan_cache_mode'), current_setting('statement_timeout'), \
                 current_setting('application_name')",
            )
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(plan_cache_mode, expected);
        assert_eq!(statement_timeout, "7s");
        assert_eq!(application, "datastorage");
    }
    writes.close().await;
    queries.close().await;
}
