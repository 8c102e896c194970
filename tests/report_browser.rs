//! The HTML report in a real browser: headless Chromium loads the page written by
//! `rnnsweep results report` for a real tiny sweep, and the test checks that it renders (the DOM
//! has the tables and the four inline SVG charts, a screenshot has ink in the charts' colours)
//! and that it makes no request: Chromium is sent through a recording proxy on 127.0.0.1, and a
//! control page with one external image proves the proxy would have seen a request. Chromium
//! itself still contacts a few Google hosts at start whatever the flags (`BROWSER_OWN`); those
//! are the browser's, not the page's, and are the only requests allowed.
//!
//! Chromium comes from Debian's `chromium` package (`.ci/run` installs it) or from
//! `RNNSWEEP_CHROMIUM`. Without one the test says so and passes, unless
//! `RNNSWEEP_BROWSER_TESTS=require` (set by `.ci/run`), which makes a missing browser a failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Hosts headless Chromium 147/148 contacts at start on its own, even with background
/// networking disabled (seen through the proxy with an empty page).
const BROWSER_OWN: [&str; 3] = [
    "accounts.google.com",
    "www.google.com",
    "clients2.google.com",
];

/// The host a proxied request goes to: "CONNECT host:443" or "GET http://host/path".
fn host_of(request: &str) -> &str {
    let target = request.split_whitespace().nth(1).unwrap_or("");
    let target = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
        .unwrap_or(target);
    let host_port = target.split('/').next().unwrap_or("");
    host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
}

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RNNSWEEP_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

/// A proxy that answers 404 to everything and remembers what was asked.
struct Recorder {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

fn recorder() -> Recorder {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for req in server.incoming_requests() {
            log.lock()
                .unwrap()
                .push(format!("{} {}", req.method(), req.url()));
            let _ = req.respond(tiny_http::Response::empty(404));
        }
    });
    Recorder { port, seen }
}

/// Runs headless Chromium on a local file through the recording proxy.
fn browse(chrome: &Path, page: &Path, proxy: u16, extra: &[String]) -> Output {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(chrome);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-default-apps",
        "--disable-domain-reliability",
        "--disable-client-side-phishing-detection",
        "--no-pings",
        "--dns-prefetch-disable",
        "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,Translate,MediaRouter,\
         AutofillServerCommunication,PreconnectToSearch,NetworkPrediction",
        // Every request the page makes goes to the recorder, loopback included.
        "--proxy-bypass-list=<-loopback>",
    ])
    .arg(format!("--proxy-server=http://127.0.0.1:{proxy}"))
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(extra)
    .arg(format!("file://{}", page.display()));
    let out = cmd.output().expect("starting chromium");
    // Give in-flight proxy requests a moment to be logged.
    std::thread::sleep(Duration::from_millis(200));
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn report_renders_offline_in_headless_chromium() {
    let Some(chrome) = chromium() else {
        let msg = "no Chromium (install Debian's `chromium` or set RNNSWEEP_CHROMIUM)";
        if std::env::var("RNNSWEEP_BROWSER_TESTS").as_deref() == Ok("require") {
            panic!("{msg}, and RNNSWEEP_BROWSER_TESTS=require");
        }
        eprintln!("SKIPPED report_renders_offline_in_headless_chromium: {msg}");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results");
    let grid = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/grids/tiny.toml");
    let bin = assert_cmd::cargo::cargo_bin("rnnsweep");
    let o = Command::new(&bin)
        .args(["sweep", grid.to_str().unwrap(), "-q", "--results"])
        .arg(&results)
        .env("RNNSWEEP_DATA", common::data_dir())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let page = tmp.path().join("report.html");
    let o = Command::new(&bin)
        .args(["results", "report", "--results"])
        .arg(&results)
        .arg("--out")
        .arg(&page)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));

    // Control: a page with one external image does reach the recorder.
    let proxy = recorder();
    let control = tmp.path().join("control.html");
    std::fs::write(
        &control,
        "<!DOCTYPE html><html><body><img src=\"http://rnnsweep.invalid/x.png\"></body></html>",
    )
    .unwrap();
    let o = browse(&chrome, &control, proxy.port, &["--dump-dom".into()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let seen = proxy.seen.lock().unwrap().clone();
    assert!(
        seen.iter().any(|r| r.contains("rnnsweep.invalid")),
        "the recorder did not see the control page's request: {seen:?}"
    );

    // The report: the DOM as rendered, and no request at all.
    let proxy = recorder();
    let o = browse(&chrome, &page, proxy.port, &["--dump-dom".into()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let dom = text(&o.stdout);
    assert!(
        dom.contains("<title>rnnsweep report: tiny</title>"),
        "{dom}"
    );
    assert_eq!(dom.matches("<svg").count(), 4, "four charts");
    for needle in [
        "id=\"summary\"",
        "id=\"curves\"",
        "Test accuracy — tiny",
        "Train loss — tiny",
        "6/6 runs loaded",
    ] {
        assert!(dom.contains(needle), "missing {needle:?}");
    }
    let shot = tmp.path().join("shot.png");
    let o = browse(
        &chrome,
        &page,
        proxy.port,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1200,2400".into(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let seen: Vec<String> = proxy
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|r| !BROWSER_OWN.contains(&host_of(r)))
        .cloned()
        .collect();
    assert!(seen.is_empty(), "the report made requests: {seen:?}");

    // The screenshot shows the charts: pixels in the first series' colour (Tableau blue).
    let img = image::open(&shot).unwrap().to_rgb8();
    let blue = img
        .pixels()
        .filter(|p| {
            let [r, g, b] = p.0;
            (r as i32 - 78).abs() < 12 && (g as i32 - 121).abs() < 12 && (b as i32 - 167).abs() < 12
        })
        .count();
    assert!(blue > 200, "only {blue} pixels of the first series' colour");
}

#[test]
fn proxy_requests_name_their_host() {
    assert_eq!(
        host_of("CONNECT accounts.google.com:443"),
        "accounts.google.com"
    );
    assert_eq!(
        host_of("GET http://rnnsweep.invalid/x.png"),
        "rnnsweep.invalid"
    );
    assert_eq!(
        host_of("GET http://clients2.google.com/time/1?x=1:2"),
        "clients2.google.com"
    );
}
