//! One conformance suite for [`RecordingStore`], run on every backend that
//! can run here: the local directory, S3 (s3s-fs), SFTP (a private sshd) and
//! Azure Blob (azurite, in `azure.rs`). Each case checks one sentence of the
//! trait's documentation.

mod common;

use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use callrec_media::encode::Format;
use callrec_storage::{
    ObjectKey, RecordingKeys, RecordingStore, StoreErrorKind, StoredCallId, open_store,
    test_connection,
};
use callrec_storage::{Secret, StorageConfig};
use futures::StreamExt;
use sha2::{Digest, Sha256};

fn key(s: &str) -> ObjectKey {
    ObjectKey::new(s).unwrap()
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Deterministic, non-repeating test content.
fn content(len: usize, seed: u8) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9 ^ u32::from(seed);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

pub async fn suite(store: Arc<dyn RecordingStore>) {
    let name = store.describe();

    // put then stat: the store reports what was written.
    let a = key("recordings/2026/11/24/call-a.wav");
    let body = content(70_001, 1);
    let receipt = store
        .put_bytes(&a, Bytes::from(body.clone()))
        .await
        .unwrap();
    assert_eq!(receipt.size, body.len() as u64, "{name}");
    assert_eq!(receipt.sha256, sha(&body), "{name}");
    let st = store.stat(&a).await.unwrap();
    assert_eq!(
        (st.size, st.sha256.as_str()),
        (body.len() as u64, sha(&body).as_str()),
        "{name}"
    );
    assert_eq!(store.size(&a).await.unwrap(), body.len() as u64, "{name}");

    // put replaces.
    let body2 = content(1234, 2);
    store
        .put_bytes(&a, Bytes::from(body2.clone()))
        .await
        .unwrap();
    let st = store.stat(&a).await.unwrap();
    assert_eq!(
        (st.size, st.sha256),
        (1234, sha(&body2)),
        "{name}: overwrite"
    );

    // put_file, larger than one read piece and than one upload part.
    let big = content(9 * 1024 * 1024 + 77, 3);
    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tmp.path(), &big).unwrap();
    let b = key("recordings/2026/11/25/call-b.mp3");
    let receipt = store.put_file(&b, tmp.path()).await.unwrap();
    assert_eq!(
        (receipt.size, receipt.sha256.clone()),
        (big.len() as u64, sha(&big)),
        "{name}"
    );
    let st = store.stat(&b).await.unwrap();
    assert_eq!(
        (st.size, st.sha256),
        (big.len() as u64, sha(&big)),
        "{name}: big file"
    );

    // put_stream of many chunks.
    let c = key("recordings/2026/11/25/call-c.json");
    let chunks: Vec<Bytes> = (0..10)
        .map(|i| Bytes::from(content(1000 + i, i as u8)))
        .collect();
    let all: Vec<u8> = chunks.iter().flat_map(|c| c.to_vec()).collect();
    let stream = futures::stream::iter(chunks.into_iter().map(Ok));
    store.put_stream(&c, Box::pin(stream)).await.unwrap();
    assert_eq!(
        store.stat(&c).await.unwrap().sha256,
        sha(&all),
        "{name}: stream"
    );

    // read_range returns exactly the range.
    let got = store.read_range(&b, 1_000_000..1_000_100).await.unwrap();
    assert_eq!(&got[..], &big[1_000_000..1_000_100], "{name}: range");
    let got = store.read_range(&a, 0..1234).await.unwrap();
    assert_eq!(&got[..], &body2[..], "{name}: whole range");
    assert!(
        store.read_range(&a, 5..5).await.unwrap().is_empty(),
        "{name}: empty range"
    );
    let e = store.read_range(&a, 1000..1235).await.unwrap_err();
    assert_eq!(e.kind(), StoreErrorKind::InvalidRequest, "{name}: {e}");

    // read_stream with and without a range.
    let mut s = store
        .read_stream(&b, Some(5..(big.len() as u64 - 5)))
        .await
        .unwrap();
    let mut streamed = Vec::new();
    while let Some(chunk) = s.next().await {
        streamed.extend_from_slice(&chunk.unwrap());
    }
    assert!(
        streamed == big[5..big.len() - 5],
        "{name}: ranged stream differs"
    );
    let mut s = store.read_stream(&c, None).await.unwrap();
    let mut streamed = Vec::new();
    while let Some(chunk) = s.next().await {
        streamed.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(streamed, all, "{name}: full stream");

    // Missing objects are NotFound.
    let missing = key("recordings/1999/01/01/nobody.wav");
    for e in [
        store.stat(&missing).await.unwrap_err(),
        store.size(&missing).await.unwrap_err(),
        store.read_range(&missing, 0..1).await.unwrap_err(),
    ] {
        assert_eq!(e.kind(), StoreErrorKind::NotFound, "{name}: {e}");
        assert!(
            e.to_string().contains("nobody.wav"),
            "{name}: error names the key: {e}"
        );
    }

    // list: everything under the prefix, any depth, sorted, with sizes.
    let listed = store.list("recordings/").await.unwrap();
    let got: Vec<(String, u64)> = listed.iter().map(|o| (o.key.to_string(), o.size)).collect();
    assert_eq!(
        got,
        vec![
            ("recordings/2026/11/24/call-a.wav".to_owned(), 1234),
            (
                "recordings/2026/11/25/call-b.mp3".to_owned(),
                big.len() as u64
            ),
            (
                "recordings/2026/11/25/call-c.json".to_owned(),
                all.len() as u64
            ),
        ],
        "{name}: list"
    );
    let day: Vec<String> = store
        .list("recordings/2026/11/25/")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key.to_string())
        .collect();
    assert_eq!(
        day,
        [
            "recordings/2026/11/25/call-b.mp3",
            "recordings/2026/11/25/call-c.json"
        ],
        "{name}"
    );
    assert!(
        store.list("nothing-here/").await.unwrap().is_empty(),
        "{name}: empty prefix"
    );
    assert_eq!(
        store.list("recordings").await.unwrap_err().kind(),
        StoreErrorKind::InvalidRequest,
        "{name}: prefix without /"
    );

    // delete removes; deleting again is fine.
    store.delete(&a).await.unwrap();
    assert_eq!(
        store.stat(&a).await.unwrap_err().kind(),
        StoreErrorKind::NotFound,
        "{name}"
    );
    store.delete(&a).await.unwrap();
    store.delete(&missing).await.unwrap();
    store.delete(&b).await.unwrap();
    store.delete(&c).await.unwrap();
    assert!(
        store.list("recordings/").await.unwrap().is_empty(),
        "{name}: all deleted"
    );

    // The layout's keys are accepted by the store as they are.
    let id = StoredCallId::new("0193f1e2-call@pbx+1").unwrap();
    let keys = RecordingKeys::new(
        &id,
        time::macros::datetime!(2026-11-24 10:00 UTC),
        Format::Mp3,
    );
    store
        .put_bytes(&keys.audio, Bytes::from_static(b"mp3"))
        .await
        .unwrap();
    store
        .put_bytes(&keys.metadata, Bytes::from_static(b"{}"))
        .await
        .unwrap();
    let listed: Vec<String> = store
        .list("recordings/2026/11/24/")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key.to_string())
        .collect();
    assert_eq!(
        listed,
        [keys.metadata.to_string(), keys.audio.to_string()], // sorted by key
        "{name}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_directory() {
    let dir = tempfile::tempdir().unwrap();
    let config = callrec_storage::StorageConfig::Local {
        root: dir.path().join("storage"),
    };
    test_connection(&config).await.unwrap();
    suite(open_store(&config).unwrap()).await;
    // The objects are plain files under the root, in the layout.
    assert!(
        dir.path()
            .join("storage/recordings/2026/11/24/0193f1e2-call@pbx+1.mp3")
            .is_file()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_on_s3s_fs() {
    let server = common::S3Server::start_new("recordings-bucket");
    let config = server.config("recordings-bucket");
    let report = test_connection(&config).await.unwrap();
    assert!(report.storage.contains("recordings-bucket"));
    suite(open_store(&config).unwrap()).await;
    // s3s-fs keeps objects as files: the prefix and layout are where we said.
    assert!(
        server
            .dir
            .path()
            .join("recordings-bucket/callrec/recordings/2026/11/24/0193f1e2-call@pbx+1.json")
            .is_file()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_on_sshd() {
    let server = common::SftpServer::start();
    let config = server.config();
    test_connection(&config).await.unwrap();
    suite(open_store(&config).unwrap()).await;
    assert!(
        server
            .root
            .join("recordings/2026/11/24/0193f1e2-call@pbx+1.mp3")
            .is_file()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_blob_on_azurite() {
    let azurite = common::Azurite::start();
    azurite.create_container("recordings");
    let config = azurite.config("recordings");
    test_connection(&config).await.unwrap();
    suite(open_store(&config).unwrap()).await;

    let e = test_connection(&azurite.config("no-such-container"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), StoreErrorKind::BucketNotFound, "{e}");

    let mut wrong = azurite.config("recordings");
    if let StorageConfig::Azure { account_key, .. } = &mut wrong {
        *account_key =
            Secret::new(base64::engine::general_purpose::STANDARD.encode(b"not the key"));
    }
    let e = test_connection(&wrong).await.unwrap_err();
    assert_eq!(e.kind(), StoreErrorKind::Credentials, "{e}");
}
