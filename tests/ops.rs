//! The operator's side of the `tubewatch` binary: `config check` and `config example`, each
//! command's help showing the settings it uses, shell completions, the man page, and JSON logs
//! carrying request ids.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn tubewatch() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tubewatch"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("TUBEWATCH_")) {
        cmd.env_remove(key);
    }
    cmd
}

fn run(cmd: &mut Command) -> (Output, String, String) {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

fn example_path() -> String {
    format!("{}/tubewatch.example.toml", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn config_check_prints_the_effective_settings_with_secrets_redacted() {
    let (out, stdout, stderr) = run(tubewatch()
        .args(["config", "check", "--config", &example_path(), "--listen", "0.0.0.0:9000"])
        .env("TUBEWATCH_WORKER_BATCH_SIZE", "17")
        .env("TUBEWATCH_YOUTUBE_API_KEY", "AIza-very-secret")
        .env("TUBEWATCH_MAIL_SMTP_PASSWORD", "smtp-very-secret"));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("The settings are valid"), "{stdout}");
    assert!(stdout.contains("listen: 0.0.0.0:9000"), "the flag: {stdout}");
    assert!(stdout.contains("batch_size: 17"), "the variable: {stdout}");
    assert!(stdout.contains("[redacted]"), "{stdout}");
    assert!(!stdout.contains("very-secret"), "a secret is shown: {stdout}");

    // A misspelt variable is named (and otherwise ignored).
    let (out, _, stderr) = run(tubewatch().args(["config", "check"]).env("TUBEWATCH_WORKER_BACH_SIZE", "3"));
    assert!(out.status.success());
    assert!(stderr.contains("warning: TUBEWATCH_WORKER_BACH_SIZE is ignored"), "{stderr}");

    // The settings flags are still taken before the subcommand, as older scripts give them.
    let (out, stdout, _) = run(tubewatch().args(["--database-url", "postgres://tw@db.internal/tw", "config", "check"]));
    assert!(out.status.success());
    assert!(stdout.contains("postgres://tw@db.internal/tw"), "{stdout}");
}

#[test]
fn config_check_exits_2_naming_the_invalid_setting() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tubewatch.toml");
    std::fs::write(&file, "[outliers]\nhour = 24\n").unwrap();
    let file = file.to_str().unwrap();
    for (args, env, setting) in [
        (&["--config", file][..], None, "`outliers.hour`"),
        (&[], Some(("TUBEWATCH_WORKER_BATCH_SIZE", "many")), "`worker.batch_size`"),
        (&["--database-url", "mysql://x"], None, "`database_url`"),
        (&["--config", "/nonexistent/tw.toml"], None, "`config`"),
    ] {
        let mut cmd = tubewatch();
        cmd.args(["config", "check"]).args(args).envs(env);
        let (out, stdout, stderr) = run(&mut cmd);
        assert_eq!(out.status.code(), Some(2), "{setting}: {stderr}");
        assert!(stdout.is_empty(), "{stdout}");
        assert_eq!(stderr.lines().count(), 1, "one message: {stderr}");
        assert!(stderr.starts_with(&format!("error: invalid setting {setting}")), "{stderr}");
    }
}

#[test]
fn config_example_prints_the_example_file() {
    let (out, stdout, _) = run(tubewatch().args(["config", "example"]));
    assert!(out.status.success());
    assert_eq!(stdout, std::fs::read_to_string(example_path()).unwrap());
}

#[test]
fn each_command_shows_only_the_settings_it_uses() {
    let help = |args: &[&str]| {
        let (out, stdout, stderr) = run(tubewatch().args(args));
        assert!(out.status.success(), "{args:?}: {stderr}");
        stdout
    };
    let all = ["--config", "--database-url", "--blob-dir", "--clock", "--youtube-base-url", "--listen"];
    let serve = help(&["serve", "--help"]);
    for flag in all.iter().chain(&["--stripe-secret-key", "--stripe-webhook-secret"]) {
        assert!(serve.contains(flag), "serve lacks {flag}: {serve}");
    }
    assert!(serve.contains("TUBEWATCH_DATABASE_URL"), "{serve}");
    let migrate = help(&["migrate", "--help"]);
    assert!(migrate.contains("--database-url") && migrate.contains("--config"), "{migrate}");
    for flag in ["--stripe-secret-key", "--listen", "--youtube-api-key", "--blob-dir"] {
        assert!(!migrate.contains(flag), "migrate shows {flag}: {migrate}");
    }
    let worker = help(&["worker", "--help"]);
    assert!(worker.contains("--youtube-api-key") && !worker.contains("--stripe") && !worker.contains("--listen"));
    // (`sim --clock` is the simulator's own.)
    for args in [&["sim", "--help"][..], &["inspect", "--help"], &["completions", "--help"], &["--help"]] {
        let text = help(args);
        for flag in all.iter().filter(|f| **f != "--clock").chain(&["--stripe-secret-key"]) {
            assert!(!text.contains(&format!("{flag} <")), "{args:?} shows {flag}: {text}");
        }
    }
    // Commands with subcommands take their settings after those too.
    let user_add = help(&["user", "add", "--help"]);
    assert!(user_add.contains("--database-url") && !user_add.contains("--stripe"), "{user_add}");
}

#[test]
fn completions_are_generated_for_each_shell() {
    for (shell, marker) in [("bash", "_tubewatch()"), ("zsh", "#compdef tubewatch"), ("fish", "complete -c tubewatch")]
    {
        let (out, stdout, stderr) = run(tubewatch().args(["completions", shell]));
        assert!(out.status.success(), "{shell}: {stderr}");
        assert!(stdout.contains(marker), "{shell}: {stdout}");
        for word in ["serve", "worker", "migrate", "config", "database-url"] {
            assert!(stdout.contains(word), "{shell} completion lacks {word}");
        }
    }
    let (out, _, stderr) = run(tubewatch().args(["completions", "tcsh"]));
    assert!(!out.status.success() && stderr.contains("invalid value"), "{stderr}");
}

#[test]
fn the_man_page_documents_every_command() {
    let (out, page, stderr) = run(tubewatch().arg("man"));
    assert!(out.status.success(), "{stderr}");
    assert!(page.starts_with(".ie \\n(.g .ds Aq") || page.contains(".TH tubewatch 1"), "{page}");
    assert!(page.contains(".TH tubewatch 1"), "{page}");
    for command in ["serve", "worker", "migrate", "config", "completions", "man"] {
        assert!(page.contains(command), "the page lacks {command}");
    }
    let dir = tempfile::tempdir().unwrap();
    let (out, _, stderr) = run(tubewatch().args(["man", "--dir", dir.path().to_str().unwrap()]));
    assert!(out.status.success(), "{stderr}");
    for name in ["tubewatch.1", "tubewatch-serve.1", "tubewatch-config-check.1"] {
        let text = std::fs::read_to_string(dir.path().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(text.contains(".TH"), "{name}");
    }
    let serve = std::fs::read_to_string(dir.path().join("tubewatch-serve.1")).unwrap();
    assert!(serve.contains("database\\-url"), "serve's page lists its settings");
}

/// A GET with an `x-request-id`, answered with the response's head.
fn get_with_id(port: u16, path: &str, id: &str) -> std::io::Result<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nx-request-id: {id}\r\nConnection: close\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

#[test]
fn json_logs_carry_the_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = tubewatch()
        .args(["--log-format", "json", "serve", "--role", "web", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--database-url", &format!("sqlite://{}/tw.db", dir.path().display())])
        .args(["--blob-dir", dir.path().join("blobs").to_str().unwrap()])
        .env("TUBEWATCH_MAIL_OUTBOX_DIR", dir.path().join("outbox"))
        .env("RUST_LOG", "info,tower_http=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let head = loop {
        if let Ok(head) = get_with_id(port, "/readyz", "ops-test-7") {
            break head;
        }
        assert!(Instant::now() < deadline, "serve did not answer");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains("x-request-id: ops-test-7"), "{head}");
    std::thread::sleep(Duration::from_millis(200));
    let _ = child.kill();
    let _ = child.wait();
    let lines: Vec<String> = BufReader::new(child.stderr.take().unwrap()).lines().map(Result::unwrap).collect();
    let logs: Vec<serde_json::Value> = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(logs.iter().any(|l| l["fields"]["message"].as_str().is_some_and(|m| m.contains("serving"))), "{lines:?}");
    let request = logs
        .iter()
        .find(|l| l["span"]["request_id"] == "ops-test-7")
        .unwrap_or_else(|| panic!("no log line in the request's span: {lines:?}"));
    assert_eq!(request["span"]["path"], "/readyz");
}

/// The compose file's `TUBEWATCH_*` variables (with compose's `${VAR:-default}` defaults, and a
/// stand-in for the required passwords) make valid settings, every one of them read.
#[test]
fn the_compose_file_sets_valid_settings() {
    let compose = std::fs::read_to_string(format!("{}/deploy/compose.yaml", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let mut cmd = tubewatch();
    cmd.args(["config", "check"]);
    let mut count = 0;
    for line in compose.lines().map(str::trim) {
        let Some((name, value)) = line.split_once(": ") else { continue };
        if !(name.starts_with("TUBEWATCH_") || name == "RUST_LOG") {
            continue;
        }
        let mut value = value.trim_matches('"').to_owned();
        while let Some(start) = value.find("${") {
            let end = start + value[start..].find('}').unwrap();
            let inner = &value[start + 2..end];
            let replacement = match inner.split_once(":-") {
                Some((_, default)) => default.to_owned(),
                None => "stand-in".to_owned(),
            };
            value.replace_range(start..=end, &replacement);
        }
        cmd.env(name, value);
        count += 1;
    }
    assert!(count >= 5, "the compose file's variables were not found");
    let (out, stdout, stderr) = run(&mut cmd);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    assert!(stdout.contains("postgres://tubewatch:***@postgres:5432/tubewatch"), "the password is hidden: {stdout}");
    // No shared folder: the blobs go to the MinIO bucket, with the key from the settings.
    assert!(
        stdout.contains(
            "Blobs: S3 bucket tubewatch at http://minio:9000; credentials from the access key in the settings"
        ),
        "{stdout}"
    );
    assert!(!compose.contains("TUBEWATCH_BLOB_DIR"), "a blob folder is set");
}
