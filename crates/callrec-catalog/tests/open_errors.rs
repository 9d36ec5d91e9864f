//! Opening a catalog with bad input: the error names what failed and what
//! to do, and never shows a password.

mod common;

use std::time::Duration;

use callrec_catalog::{CatalogError, OpenOptions, SqlCatalog};

fn quick() -> OpenOptions {
    OpenOptions {
        acquire_timeout: Duration::from_secs(3),
        ..OpenOptions::default()
    }
}

#[tokio::test]
async fn unknown_url_scheme_names_the_supported_ones() {
    for (url, scheme) in [
        ("mysql://root@127.0.0.1/callrec", "mysql"),
        ("/var/lib/callrec/catalog.db", "(none)"),
        ("sqlit://catalog.db", "sqlit"),
    ] {
        let err = SqlCatalog::open_with(url, &quick()).await.unwrap_err();
        match &err {
            CatalogError::UnsupportedUrl { scheme: got } => assert_eq!(got, scheme, "{url}"),
            other => panic!("{url}: expected UnsupportedUrl, got {other}"),
        }
        let message = err.to_string();
        assert!(message.contains("sqlite://"), "{message}");
        assert!(message.contains("postgres://"), "{message}");
    }
}

#[tokio::test]
async fn unreachable_postgres_says_what_and_what_to_do() {
    // Port 1 on loopback: nothing listens there.
    let url = "postgres://callrec:hunter2@127.0.0.1:1/callrec";
    let err = SqlCatalog::open_with(url, &quick()).await.unwrap_err();
    assert!(matches!(err, CatalogError::Connect { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("127.0.0.1:1"), "{message}");
    assert!(
        message.contains("check that the PostgreSQL server is running"),
        "{message}"
    );
    assert!(
        message.to_lowercase().contains("refused"),
        "the cause is shown: {message}"
    );
    assert!(!message.contains("hunter2"), "password leaked: {message}");
    assert!(
        !format!("{err:?}").contains("hunter2"),
        "password leaked in Debug"
    );
}

#[tokio::test]
async fn unknown_postgres_database_is_a_connect_error() {
    let base = common::postgres_url();
    let Some((server, _db)) = base.rsplit_once('/') else {
        panic!("CALLREC_TEST_POSTGRES_URL has no database: {base}");
    };
    let url = format!("{server}/callrec_no_such_database");
    let err = SqlCatalog::open_with(&url, &quick()).await.unwrap_err();
    assert!(matches!(err, CatalogError::Connect { .. }), "{err}");
    assert!(
        err.to_string().contains("callrec_no_such_database"),
        "{err}"
    );
}

#[tokio::test]
async fn sqlite_in_a_missing_directory_is_a_connect_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/catalog.db");
    let url = format!("sqlite://{}", path.display());
    let err = SqlCatalog::open_with(&url, &quick()).await.unwrap_err();
    assert!(matches!(err, CatalogError::Connect { .. }), "{err}");
    assert!(err.to_string().contains("no/such/dir"), "{err}");
}

#[tokio::test]
async fn bad_postgres_schema_name_is_refused() {
    let options = OpenOptions {
        postgres_schema: Some("public; DROP TABLE x".to_owned()),
        ..quick()
    };
    let err = SqlCatalog::open_with(&common::postgres_url(), &options)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CatalogError::Invalid {
                what: "postgres schema name",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn sqlite_in_memory_keeps_its_data_across_calls() {
    use callrec_catalog::{Catalog, NewSettings, UnixMillis};
    let catalog = SqlCatalog::open("sqlite::memory:").await.unwrap();
    let saved = catalog
        .save_settings(
            0,
            &NewSettings {
                document: serde_json::json!({"a": 1}),
                author: "admin".to_owned(),
                summary: "first".to_owned(),
                at: UnixMillis(1),
            },
        )
        .await
        .unwrap();
    assert_eq!(catalog.current_settings().await.unwrap(), Some(saved));
}
