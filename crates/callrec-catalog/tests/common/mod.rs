//! Test databases for the catalog tests: a fresh SQLite file in a temporary
//! directory, or a fresh schema in the PostgreSQL at
//! `CALLREC_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), dropped when the test ends,
//! also when it fails. Tests never share a database, so they run in
//! parallel.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use callrec_catalog::{OpenOptions, SqlCatalog};
use sqlx::{AssertSqlSafe, Executor};

pub fn postgres_url() -> String {
    std::env::var("CALLREC_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// One test's own catalog database.
pub struct TestDb {
    pub catalog: SqlCatalog,
    pub url: String,
    pub options: OpenOptions,
    schema: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("catalog.db").display());
        let options = OpenOptions::default();
        let catalog = SqlCatalog::open_with(&url, &options)
            .await
            .expect("open the SQLite catalog");
        TestDb {
            catalog,
            url,
            options,
            schema: None,
            _dir: Some(dir),
        }
    }

    pub async fn postgres() -> TestDb {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .subsec_nanos();
        let schema = format!(
            "catalog_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            nanos
        );
        let url = postgres_url();
        let options = OpenOptions {
            postgres_schema: Some(schema.clone()),
            max_connections: 4,
            acquire_timeout: Duration::from_secs(30),
        };
        let catalog = SqlCatalog::open_with(&url, &options).await.expect(
            "open the PostgreSQL catalog: is PostgreSQL running on 127.0.0.1:5432 with database `test`? \
             (pg_ctlcluster --skip-systemctl-redirect 15 main start)",
        );
        TestDb {
            catalog,
            url,
            options,
            schema: Some(schema),
            _dir: None,
        }
    }

    /// Opens the same database again, as a restart or a second node would.
    pub async fn reopen(&self) -> SqlCatalog {
        SqlCatalog::open_with(&self.url, &self.options)
            .await
            .expect("open the catalog a second time")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(schema) = self.schema.take() else {
            return;
        };
        let url = self.url.clone();
        // Drop runs outside async: clean up on a thread with its own runtime.
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            rt.block_on(async move {
                sqlx::any::install_default_drivers();
                if let Ok(pool) = sqlx::any::AnyPoolOptions::new()
                    .max_connections(1)
                    .connect(&url)
                    .await
                {
                    let _ = pool
                        .execute(AssertSqlSafe(format!(
                            "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
                        )))
                        .await;
                    pool.close().await;
                }
            });
        });
        let _ = cleanup.join();
    }
}
