//! The `tubewatch` binary as a user runs it: migrate, serve and `/healthz`, clear errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn tubewatch() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tubewatch"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("TUBEWATCH_")) {
        cmd.env_remove(key);
    }
    cmd
}

/// The eval runs are timing-sensitive (an accelerated clock); they run one at a time.
static EVAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn migrate_then_serve(database_url: &str) {
    let out = tubewatch().args(["migrate", "--database-url", database_url]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("migrations applied"));

    let port = free_port();
    let mut child = tubewatch()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("TUBEWATCH_DATABASE_URL", database_url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        if let Ok(body) = http_get(port, "/healthz") {
            break body;
        }
        assert!(Instant::now() < deadline, "serve did not answer /healthz");
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("\"status\":\"ok\""), "{body}");
}

/// A minimal HTTP/1.1 GET over a socket, so this test needs no HTTP client crate.
fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

#[test]
fn migrate_and_serve_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    migrate_then_serve(&format!("sqlite://{}/data/tw.db", dir.path().display()));
}

#[test]
fn migrate_and_serve_on_postgres() {
    let Ok(url) = std::env::var("TUBEWATCH_TEST_POSTGRES_URL") else {
        eprintln!("skipped: set TUBEWATCH_TEST_POSTGRES_URL to run against PostgreSQL");
        return;
    };
    migrate_then_serve(&url);
}

#[test]
fn bad_configuration_is_named() {
    for (args, want) in [
        (vec!["migrate", "--database-url", "mysql://x"], "invalid setting `database_url`"),
        (vec!["serve", "--listen", "nowhere"], "invalid setting `listen`"),
        (vec!["serve", "--youtube-base-url", "gopher://x"], "invalid setting `youtube.base_url`"),
        (vec!["serve", "--clock", "fast"], "invalid setting `clock`"),
        (vec!["serve", "--config", "/nonexistent.toml"], "invalid setting `config`"),
    ] {
        let out = tubewatch().args(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

#[test]
fn help_and_version() {
    let out = tubewatch().arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("tubewatch "));
    let out = tubewatch().args(["serve", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("--database-url"));
}

/// The tracking pipeline end to end at a small size: worker processes killed with SIGKILL while
/// the simulator injects faults; nothing is lost or duplicated and changes match the truth.
#[test]
fn eval_tracking_loses_nothing_under_faults_and_kills() {
    let _one_at_a_time = EVAL.lock().unwrap_or_else(|e| e.into_inner());
    let out = tubewatch()
        .args(["eval", "tracking", "--channels", "4", "--days", "1", "--speed", "3600", "--page-bytes", "20000"])
        .args(["--faults", "--kill-worker-every", "2", "--timeout-seconds", "2", "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(report["workers_killed"].as_u64().unwrap() >= 1, "{report}");
    assert!(report["slots_expected"].as_u64().unwrap() > 30, "{report}");
    for zero in ["slots_missing", "duplicate_records", "false_positives", "false_negatives"] {
        assert_eq!(report[zero], 0, "{zero}: {report}");
    }
    assert_eq!(report["slots_expected"], report["slots_recorded"]);
}

/// `tubewatch sim` as its own process serves YouTube's formats on the address it is given.
#[test]
fn sim_runs_as_its_own_process() {
    let port = free_port();
    let mut child = tubewatch()
        .args(["sim", "--channels", "5", "--bind", &format!("127.0.0.1:{port}"), "--page-bytes", "20000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let channels = loop {
        if let Ok(body) = http_get(port, "/_sim/channels?limit=1") {
            break body;
        }
        assert!(Instant::now() < deadline, "sim did not answer");
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(channels.starts_with("HTTP/1.1 200"), "{channels}");
    assert!(channels.contains("\"id\":\"UC"), "{channels}");
}

/// Scaled out: two `tubewatch worker` processes and a `tubewatch serve` share one PostgreSQL
/// database as state and queue; every slot is filled exactly once.
#[test]
fn workers_and_serve_share_the_work_on_postgres() {
    let Ok(url) = std::env::var("TUBEWATCH_TEST_POSTGRES_URL") else {
        eprintln!("skipped: set TUBEWATCH_TEST_POSTGRES_URL to run against PostgreSQL");
        return;
    };
    let _one_at_a_time = EVAL.lock().unwrap_or_else(|e| e.into_inner());
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let db = format!("tw_eval_{}_{nanos}", std::process::id());
    let psql = |sql: &str| {
        let out = Command::new("psql").args([url.as_str(), "-qAtc", sql]).output().expect("psql runs");
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    };
    psql(&format!("DROP DATABASE IF EXISTS {db}"));
    psql(&format!("CREATE DATABASE {db}"));
    let (base, _) = url.rsplit_once('/').expect("a database URL");
    let out = tubewatch()
        .args(["--database-url", &format!("{base}/{db}")])
        .args(["eval", "tracking", "--channels", "4", "--days", "1", "--speed", "3600", "--page-bytes", "20000"])
        .args(["--workers", "2", "--with-serve", "--timeout-seconds", "2", "--json"])
        .output()
        .unwrap();
    psql(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(report["slots_expected"].as_u64().unwrap() > 30, "{report}");
    assert_eq!(report["slots_expected"], report["slots_recorded"], "{report}");
    assert_eq!(report["duplicate_records"], 0, "{report}");
}
