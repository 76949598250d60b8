//! Scaled out as an operator runs it: `serve` and `worker` on an S3 bucket (ready, or refusing to
//! start with the reason), and `bench scaleout` at a small size on PostgreSQL + S3, a worker killed
//! mid-burst without a slot lost or duplicated.
//!
//! The S3 server comes from `TUBEWATCH_TEST_S3_*` (`eval "$(scripts/s3-test-server)"`), PostgreSQL
//! from `TUBEWATCH_TEST_POSTGRES_URL`. Unset, the tests are skipped with a message; under CI (`CI`
//! set) a missing S3 server fails them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn tubewatch() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tubewatch"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("TUBEWATCH_") || k.starts_with("AWS_")) {
        cmd.env_remove(key);
    }
    cmd
}

/// The test server's settings as `TUBEWATCH_S3_*` variables, or `None` after saying why.
fn s3_env() -> Option<Vec<(String, String)>> {
    let var = |name: &str| std::env::var(format!("TUBEWATCH_TEST_S3_{name}")).ok().filter(|v| !v.is_empty());
    let Some(endpoint) = var("ENDPOINT") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the S3 tests: set TUBEWATCH_TEST_S3_ENDPOINT and the rest"
        );
        eprintln!("skipped: set TUBEWATCH_TEST_S3_ENDPOINT (eval \"$(scripts/s3-test-server)\") to run the S3 tests");
        return None;
    };
    let mut env = vec![
        ("TUBEWATCH_S3_BUCKET".to_owned(), var("BUCKET").unwrap_or_else(|| "tubewatch-test".into())),
        ("TUBEWATCH_S3_ALLOW_HTTP".to_owned(), endpoint.starts_with("http://").to_string()),
        ("TUBEWATCH_S3_ENDPOINT".to_owned(), endpoint),
        ("TUBEWATCH_S3_ACCESS_KEY_ID".to_owned(), var("ACCESS_KEY_ID").expect("TUBEWATCH_TEST_S3_ACCESS_KEY_ID")),
        ("TUBEWATCH_S3_SECRET_ACCESS_KEY".to_owned(), var("SECRET_ACCESS_KEY").expect("…_SECRET_ACCESS_KEY")),
    ];
    if let Some(region) = var("REGION") {
        env.push(("TUBEWATCH_S3_REGION".to_owned(), region));
    }
    Some(env)
}

fn with(env: &[(String, String)], name: &str, value: &str) -> Vec<(String, String)> {
    env.iter().map(|(k, v)| (k.clone(), if k == name { value.to_owned() } else { v.clone() })).collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

#[test]
fn a_worker_will_not_start_on_a_bucket_it_cannot_use() {
    let Some(env) = s3_env() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/tw.db", dir.path().display());
    for (name, value, says) in [
        ("TUBEWATCH_S3_SECRET_ACCESS_KEY", "not-the-secret", "refused the credentials (SignatureDoesNotMatch)"),
        ("TUBEWATCH_S3_BUCKET", "tubewatch-no-such-bucket", "the bucket \"tubewatch-no-such-bucket\" does not exist"),
    ] {
        let out = tubewatch()
            .args(["worker", "--database-url", &db])
            .envs(with(&env, name, value))
            .stdout(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}: the worker started: {stderr}");
        assert!(stderr.contains(says), "{name}: {stderr}");
        assert!(!stderr.contains("not-the-secret"), "a secret is shown: {stderr}");
    }
}

#[test]
fn serve_on_a_bucket_is_ready_and_config_check_says_where_the_blobs_go() {
    let Some(env) = s3_env() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/tw.db", dir.path().display());
    let out = tubewatch().args(["config", "check", "--database-url", &db]).envs(env.clone()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("Blobs: S3 bucket") && stdout.contains("credentials from the access key in the settings"));
    let secret = &env.iter().find(|(k, _)| k == "TUBEWATCH_S3_SECRET_ACCESS_KEY").unwrap().1;
    assert!(!stdout.contains(secret.as_str()), "the secret is shown: {stdout}");

    let port = free_port();
    let mut child = tubewatch()
        .args(["serve", "--role", "web", "--database-url", &db, "--listen", &format!("127.0.0.1:{port}")])
        // The folder must not be used: point it somewhere that cannot be created.
        .args(["--blob-dir", "/proc/tubewatch-blobs"])
        .envs(env)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let ready = loop {
        if let Ok(body) = http_get(port, "/readyz") {
            break body;
        }
        assert!(Instant::now() < deadline, "serve did not answer /readyz");
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    assert!(ready.contains("\"blobs\":\"ok\""), "{ready}");
}

/// Worker processes on PostgreSQL + S3 share the burst; one SIGKILLed mid-burst loses nothing.
#[test]
fn bench_scaleout_loses_no_slot_when_a_worker_is_killed() {
    let Some(env) = s3_env() else { return };
    let Ok(postgres) = std::env::var("TUBEWATCH_TEST_POSTGRES_URL") else {
        eprintln!("skipped: set TUBEWATCH_TEST_POSTGRES_URL to run the scale-out bench on PostgreSQL");
        return;
    };
    let out = tubewatch()
        .args(["bench", "scaleout", "--workers", "2", "--kill-round-workers", "2", "--channels", "6"])
        .args(["--videos", "60", "--page-bytes", "20000", "--latency-ms", "50", "--concurrency", "2"])
        .args(["--lease-seconds", "3", "--sim-port", &free_port().to_string(), "--json"])
        .args(["--postgres-url", &postgres])
        .envs(env)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let rounds = report["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 3, "baseline, steady and the kill round: {report}");
    for round in rounds {
        assert!(round["slots_expected"].as_u64().unwrap() >= 50, "{round}");
        assert_eq!(round["slots_missing"], 0, "{round}");
        assert_eq!(round["duplicate_records"], 0, "{round}");
        assert!(round["checks_per_second"].as_f64().unwrap() > 0.0, "{round}");
        assert!(round["postgres_transactions_per_check"].as_f64().unwrap() > 0.0, "{round}");
    }
    let kill = rounds.iter().find(|r| r["round"] == "kill").unwrap();
    assert_eq!(kill["workers_killed"], 1, "{kill}");
    assert_eq!(report["thumbnails_found_in_s3"], report["thumbnails_sampled"], "{report}");
    assert!(report["thumbnails_sampled"].as_u64().unwrap() > 0);
}
