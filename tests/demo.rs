//! `tubewatch demo` as a newcomer runs it, slowed for a test build: the real binary on the embedded
//! SQLite and the simulator, kept running, then the pages and the API looked at with the log-in it
//! prints: a finished A/B test with its verdict and a running one, a channel outlier with its
//! factor, a thumbnail/title outlier with its lift, the digest in the outbox; the
//! progress stays off standard output.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn value_after<'a>(text: &'a str, marker: &str) -> &'a str {
    let at = text.find(marker).unwrap_or_else(|| panic!("no {marker:?} in:\n{text}")) + marker.len();
    text[at..].split_whitespace().next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shows_every_feature() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tubewatch"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("TUBEWATCH_")) {
        cmd.env_remove(key);
    }
    // The default world and week at a third of the speed (a virtual day every 12 s) with small
    // pages: a test build keeps up with that on a busy machine.
    let child = cmd
        .args(["demo", "--channels", "4", "--speed", "7200", "--page-bytes", "20000"])
        .args(["--keep-running", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut demo = Demo(child);
    let stdout = demo.0.stdout.take().unwrap();
    let stderr = demo.0.stderr.take().unwrap();
    let errors = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let serving = line.starts_with("serving at");
            tx.send(line).unwrap();
            if serving {
                break;
            }
        }
    });
    let mut printed = String::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(300)) {
            Ok(line) => {
                printed.push_str(&line);
                printed.push('\n');
                if line.starts_with("serving at") {
                    break;
                }
            }
            Err(_) => {
                let _ = demo.0.kill();
                panic!("the demo did not get to serving:\n{printed}\nstderr:\n{}", errors.join().unwrap());
            }
        }
    }

    assert!(printed.contains("slots due ("), "{printed}");
    // Progress went to standard error, not into the report.
    assert!(!printed.contains("virtual hours"), "{printed}");

    let url = value_after(&printed, "Web UI: ").trim_end_matches("/login").to_owned();
    let password = value_after(&printed, "with password ");
    let email = value_after(&printed, "/login   as ");
    let http = reqwest::Client::new();
    let login = http
        .post(format!("{url}/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body(serde_json::json!({"email": email, "password": password}).to_string())
        .send()
        .await
        .unwrap();
    assert!(login.status().is_success(), "logging in with the printed login: {}", login.status());
    let cookie: String = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("; ");
    let get = |path: &str| {
        let request = http.get(format!("{url}{path}")).header("cookie", cookie.clone());
        let path = path.to_owned();
        async move {
            let response = request.send().await.unwrap();
            assert!(response.status().is_success(), "GET {path}: {}", response.status());
            response.text().await.unwrap()
        }
    };
    let json = |text: String| -> serde_json::Value { serde_json::from_str(&text).unwrap() };

    // A/B tests: one finished with its verdict, one running.
    let tests = json(get("/api/v1/abtests").await);
    let items = tests["items"].as_array().unwrap();
    let of_state = |state: &str| items.iter().find(|t| t["state"] == state).map(|t| t["id"].as_i64().unwrap());
    let finished = of_state("finished").unwrap_or_else(|| panic!("no finished test: {tests}\n{printed}"));
    assert!(of_state("running").is_some(), "no running test: {tests}");
    let detail = json(get(&format!("/api/v1/abtests/{finished}")).await);
    let verdict = detail["result"]["analysis"]["verdict"]["verdict"].as_str().unwrap_or_else(|| panic!("{detail}"));
    assert!(["winner", "performed_same", "inconclusive"].contains(&verdict), "{detail}");
    let page = get(&format!("/abtests/{finished}")).await;
    assert!(page.contains("Result: "), "the test's page shows its result:\n{page}");

    // Outliers: a channel outlier with its factor; thumbnail/title outliers with their lift.
    let outliers = json(get("/api/v1/outliers").await);
    let items = outliers["items"].as_array().unwrap();
    let channel = items
        .iter()
        .find(|o| o["kind"] == "channel")
        .unwrap_or_else(|| panic!("no channel outlier: {outliers}\n{printed}"));
    let score = channel["score"].as_f64().unwrap();
    assert!(score >= 5.0, "{channel}");
    let page = get("/outliers").await;
    assert!(page.contains(&format!("{score:.1}×")), "the outliers page shows the factor {score:.1}×:\n{page}");
    // The creator's change the demo makes triple its video's views is flagged with its lift
    // (others may be too).
    let changes: Vec<_> = items.iter().filter(|o| o["kind"] == "thumbnail" || o["kind"] == "title").collect();
    assert!(!changes.is_empty(), "no thumbnail/title outlier: {outliers}\n{printed}");
    for change in &changes {
        let lift = change["lift"].as_f64().unwrap_or_else(|| panic!("a change outlier without its lift: {change}"));
        assert!(lift >= 0.2, "{change}");
        assert!(page.contains(&format!("+{:.0} %", lift * 100.0)), "the outliers page shows the lift:\n{page}");
    }

    // The weekly digest in the outbox, listing the outliers.
    let outbox: Vec<_> = std::fs::read_dir(data.join("outbox")).unwrap().map(|e| e.unwrap().path()).collect();
    let digest = outbox
        .iter()
        .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with("digest"))
        .unwrap_or_else(|| panic!("no digest in the outbox: {outbox:?}"));
    let mail = std::fs::read_to_string(digest).unwrap();
    assert!(mail.contains("outlier"), "{mail}");
    assert!(printed.contains(&digest.file_name().unwrap().to_string_lossy().into_owned()), "{printed}");
}
