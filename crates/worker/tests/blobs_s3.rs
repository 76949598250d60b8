//! The blob store against a real S3-compatible server (moto in server mode, with signature
//! checking on): round trip, a missing object, wrong credentials, an absent bucket, an endpoint
//! that does not answer, and the pipeline archiving thumbnails into the bucket.
//!
//! The server comes from `TUBEWATCH_TEST_S3_ENDPOINT`, `…_BUCKET`, `…_REGION`, `…_ACCESS_KEY_ID`
//! and `…_SECRET_ACCESS_KEY`, which `scripts/s3-test-server` prints after finding or starting one
//! (`.ci/run` does this). Unset, the tests are skipped with a message, except under CI (`CI` set),
//! where they fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::Duration;
use tubewatch_core::{Clock, Slot};
use tubewatch_sim::{SimConfig, Simulator};
use tubewatch_store::{Store, StoreOptions, connect};
use tubewatch_worker::{BlobError, Blobs, Metrics, Pipeline, PipelineConfig, S3Config, Tracker};
use tubewatch_youtube::{RetryPolicy, YoutubeClient, YoutubeConfig};

/// The test server's bucket and credentials, or `None` (after saying why) when none is configured.
fn test_server() -> Option<S3Config> {
    let var = |name: &str| std::env::var(format!("TUBEWATCH_TEST_S3_{name}")).ok().filter(|v| !v.is_empty());
    let Some(endpoint) = var("ENDPOINT") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the S3 tests: set TUBEWATCH_TEST_S3_ENDPOINT and the rest (eval \"$(scripts/s3-test-server)\")"
        );
        eprintln!("skipped: set TUBEWATCH_TEST_S3_ENDPOINT (eval \"$(scripts/s3-test-server)\") to run the S3 tests");
        return None;
    };
    Some(S3Config {
        bucket: var("BUCKET").unwrap_or_else(|| "tubewatch-test".into()),
        region: var("REGION"),
        allow_http: endpoint.starts_with("http://"),
        endpoint: Some(endpoint),
        virtual_hosted_style: false,
        access_key_id: Some(var("ACCESS_KEY_ID").expect("TUBEWATCH_TEST_S3_ACCESS_KEY_ID")),
        secret_access_key: Some(var("SECRET_ACCESS_KEY").expect("TUBEWATCH_TEST_S3_SECRET_ACCESS_KEY")),
    })
}

/// A key no other test (or earlier run) uses.
fn unique_key(name: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("tests/{}-{nanos}/{name}", std::process::id())
}

fn blobs(config: &S3Config) -> Blobs {
    // The test's own AWS_* environment must not matter: the keys are in the config.
    Blobs::s3_with_env(config, |_| None).unwrap()
}

fn kind(err: &anyhow::Error) -> &BlobError {
    err.downcast_ref::<BlobError>().unwrap_or_else(|| panic!("not a BlobError: {err:#}"))
}

#[tokio::test]
async fn upload_then_read_back() {
    let Some(config) = test_server() else { return };
    let store = blobs(&config);
    store.check_writable().await.unwrap();
    let key = unique_key("thumb.jpg");
    let bytes: Vec<u8> = (0..=255).cycle().take(70_000).collect();
    store.put(&key, bytes.clone()).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap().unwrap().as_ref(), bytes.as_slice());
    // A retried archive writes the same key again: still one object with the same bytes.
    store.put(&key, bytes.clone()).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap().unwrap().as_ref(), bytes.as_slice());
    // A second client (another process, another machine) sees it.
    assert_eq!(blobs(&config).get(&key).await.unwrap().unwrap().len(), bytes.len());
}

#[tokio::test]
async fn a_missing_object_is_none_not_an_error() {
    let Some(config) = test_server() else { return };
    assert!(blobs(&config).get(&unique_key("never-written.jpg")).await.unwrap().is_none());
}

#[tokio::test]
async fn wrong_credentials_are_refused_clearly_and_change_nothing() {
    let Some(config) = test_server() else { return };
    let key = unique_key("refused.jpg");
    let wrong_secret = S3Config { secret_access_key: Some("not-the-secret".into()), ..config.clone() };
    let unknown_key = S3Config { access_key_id: Some("AKIAUNKNOWNUNKNOWN00".into()), ..config.clone() };
    for (wrong, code) in [(&wrong_secret, "SignatureDoesNotMatch"), (&unknown_key, "InvalidAccessKeyId")] {
        let store = blobs(wrong);
        let err = store.put(&key, vec![1, 2, 3]).await.unwrap_err();
        assert!(matches!(kind(&err), BlobError::Credentials { .. }), "{err:#}");
        let text = format!("{err:#}");
        assert!(text.contains("refused the credentials") && text.contains(code), "{text}");
        assert!(text.contains(&config.bucket), "names the bucket: {text}");
        assert!(!text.contains("not-the-secret"), "a secret is shown: {text}");
        // Reading with them is an error too, not "no such thumbnail".
        let err = store.get(&key).await.unwrap_err();
        assert!(matches!(kind(&err), BlobError::Credentials { .. }), "{err:#}");
        assert!(matches!(kind(&store.check_writable().await.unwrap_err()), BlobError::Credentials { .. }));
    }
    assert!(blobs(&config).get(&key).await.unwrap().is_none(), "nothing was written");
}

#[tokio::test]
async fn an_absent_bucket_is_named_and_not_created() {
    let Some(config) = test_server() else { return };
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let absent = S3Config { bucket: format!("tubewatch-absent-{nanos}"), ..config.clone() };
    let store = blobs(&absent);
    let key = unique_key("x.jpg");
    let err = store.put(&key, vec![1]).await.unwrap_err();
    assert!(matches!(kind(&err), BlobError::NoBucket { .. }), "{err:#}");
    assert!(format!("{err:#}").contains(&format!("the bucket {:?} does not exist", absent.bucket)), "{err:#}");
    // A read is an error as well (not a missing thumbnail), and the bucket is still absent.
    let err = store.get(&key).await.unwrap_err();
    assert!(matches!(kind(&err), BlobError::NoBucket { .. }), "{err:#}");
    assert!(matches!(kind(&store.check_writable().await.unwrap_err()), BlobError::NoBucket { .. }));
}

#[tokio::test]
async fn an_endpoint_that_does_not_answer_is_said_so_promptly() {
    // No server needed: a closed loopback port.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = S3Config {
        bucket: "tubewatch-test".into(),
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        allow_http: true,
        access_key_id: Some("k".into()),
        secret_access_key: Some("s".into()),
        ..S3Config::default()
    };
    let started = Instant::now();
    let err = blobs(&config).put("x/y.jpg", vec![1]).await.unwrap_err();
    assert!(matches!(kind(&err), BlobError::Unreachable { .. }), "{err:#}");
    assert!(format!("{err:#}").contains("does not answer"), "{err:#}");
    assert!(started.elapsed() < StdDuration::from_secs(30), "gave up after {:?}", started.elapsed());
}

/// The pipeline archives thumbnails into the bucket: every video's current thumbnail (both
/// sizes) can be read back from S3 by another client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_archives_thumbnails_in_the_bucket() {
    let Some(config) = test_server() else { return };
    let (sim_config, clock) = SimConfig::for_tests(5, 3);
    let sim = Simulator::start(sim_config, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        connect(&format!("sqlite://{}/tw.db", dir.path().display()), &StoreOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    let mut yt = YoutubeConfig::single_base(&sim.base_url).unwrap();
    yt.retry = RetryPolicy { max_attempts: 1, ..RetryPolicy::default() };
    let youtube = YoutubeClient::new(yt).unwrap();
    let clock_dyn: Arc<dyn Clock> = clock.clone();
    let pipeline = Pipeline {
        store: store.clone(),
        youtube: youtube.clone(),
        blobs: blobs(&config),
        clock: clock_dyn.clone(),
        metrics: Arc::new(Metrics::default()),
        writer: Default::default(),
        config: PipelineConfig::default(),
    };
    let tracker = Tracker { store: store.clone(), youtube, clock: clock_dyn, config: PipelineConfig::default() };
    let channel = sim.sim.channels()[0].id.clone();
    tracker.track_channel(None, channel.as_str()).await.unwrap();
    for _ in 0..3 {
        let next_hour = Slot::hour_of(clock.now()).start() + Duration::hours(1);
        for at in [next_hour - Duration::minutes(5), next_hour + Duration::seconds(30)] {
            clock.set(at);
            pipeline.drain("s3-test", StdDuration::from_secs(60), 16).await.unwrap();
        }
    }
    let videos = store.channel_videos(&channel).await.unwrap();
    assert!(!videos.is_empty(), "the channel's videos are tracked");
    let other_client = blobs(&config);
    for video in &videos {
        let key = video.thumb.as_ref().and_then(|t| t.blob_key.clone()).expect("a thumbnail archived");
        let small = other_client.get(&key).await.unwrap().expect("the small thumbnail is in the bucket");
        assert!(small.starts_with(&[0xFF, 0xD8]), "a JPEG");
        let large = key.replace("/default.jpg", "/hqdefault.jpg");
        assert!(other_client.get(&large).await.unwrap().is_some(), "the large thumbnail is in the bucket");
    }
}
