//! The HTML report in a real browser: headless Chromium loads the page written by
//! `rnnsweep results report` for a tiny sweep (fake trainer: no MNIST), and the test checks that it renders (the DOM
//! has the tables, the variants' network pictures and the two effect charts of the Effects
//! section, laid out and drawn, and the four curve charts; the numbers of the variant table do
//! not wrap; a screenshot has ink in the first series' colour) and that the page makes no
//! request.
//!
//! Chromium is driven through the DevTools protocol (`common/cdp.rs`): the test opens one page
//! target and records the `Network.requestWillBeSent` events of that page's session only. What
//! the browser fetches on its own (update checks, safe browsing…) belongs to no page, so it is
//! never counted, whatever hosts a Chromium version contacts. A control page with one external
//! image shows that a page's request is seen. Every request the browser makes goes to a local
//! proxy that answers 404, so nothing leaves the machine and failed fetches end at once.
//!
//! Chromium comes from Debian's `chromium` package (`.ci/run` installs it) or from
//! `RNNSWEEP_CHROMIUM`. Without one the test says so and passes, unless
//! `RNNSWEEP_BROWSER_TESTS=require` (set by `.ci/run`), which makes a missing browser a failure.

#[path = "common/cdp.rs"]
mod cdp;
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

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

/// A local proxy that answers 404 to everything, so the browser reaches nothing outside.
fn sink_proxy() -> u16 {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    std::thread::spawn(move || {
        for req in server.incoming_requests() {
            let _ = req.respond(tiny_http::Response::empty(404));
        }
    });
    port
}

/// A page's requests other than the document itself (and inline `data:` URLs, which fetch
/// nothing).
fn fetches(requests: &[String], page_url: &str) -> Vec<String> {
    requests
        .iter()
        .filter(|u| u.as_str() != page_url && !u.starts_with("data:"))
        .cloned()
        .collect()
}

fn file_url(p: &Path) -> String {
    format!("file://{}", p.display())
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
    let o = common::fake_sweep(&grid, &results, &["-q"], "");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let page_path = tmp.path().join("report.html");
    let o = Command::new(&bin)
        .args(["results", "report", "--results"])
        .arg(&results)
        .arg("--out")
        .arg(&page_path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));

    let mut browser = cdp::Browser::launch(&chrome, sink_proxy());
    eprintln!("browser: {}", browser.version());

    // Control: a page with one external image is seen making that request.
    let control = tmp.path().join("control.html");
    std::fs::write(
        &control,
        "<!DOCTYPE html><html><body><img src=\"http://rnnsweep.invalid/x.png\"></body></html>",
    )
    .unwrap();
    let mut page = browser.new_page();
    let url = file_url(&control);
    browser.load(&mut page, &url, Duration::from_millis(500));
    let seen = fetches(&page.requests, &url);
    assert_eq!(
        seen,
        ["http://rnnsweep.invalid/x.png"],
        "the control page's one request was not seen as exactly that"
    );

    // The report: the DOM as rendered, a screenshot, and no request but the document itself.
    let mut page = browser.new_page();
    let url = file_url(&page_path);
    browser.load(&mut page, &url, Duration::from_millis(500));
    let dom = browser.eval(&page, "document.documentElement.outerHTML");
    let dom = dom.as_str().expect("the page's HTML");
    assert!(
        dom.contains("<title>rnnsweep report: tiny</title>"),
        "{dom}"
    );
    // The variants are the one setting that varies: three networks (one per cell kind), two
    // effect charts, then the four curves.
    assert_eq!(
        dom.matches("<svg").count(),
        9,
        "three networks, two effect charts and four curve charts"
    );
    for needle in [
        "id=\"summary\"",
        "id=\"curves\"",
        "id=\"effects\"",
        "Final test accuracy vs variant — tiny",
        "Training samples/s vs variant — tiny",
        "Test accuracy — tiny",
        "Train loss — tiny",
        "6/6 runs loaded",
    ] {
        assert!(dom.contains(needle), "missing {needle:?}");
    }
    assert!(
        dom.find("id=\"effects\"") < dom.find("id=\"curves\""),
        "the Effects section comes before the curves"
    );
    // The effect charts are drawn: laid out at a real size, with a marker per variant (three
    // variants, every run completed, so each point has a mean) and the variants as x ticks.
    let drawn = browser.eval(
        &page,
        "JSON.stringify(Array.from(document.querySelectorAll('figure.effect svg')).map(s => { \
           const r = s.getBoundingClientRect(); \
           return [s.closest('figure').id, Math.round(r.width), Math.round(r.height), \
                   s.querySelectorAll('circle').length, \
                   ['RNN', 'LSTM', 'GRU'].every(v => Array.from(s.querySelectorAll('text')).some(t => t.textContent.trim() === v))]; }))",
    );
    let drawn: Vec<(String, u32, u32, usize, bool)> =
        serde_json::from_str(drawn.as_str().expect("a JSON string")).unwrap();
    assert_eq!(
        drawn.iter().map(|d| d.0.as_str()).collect::<Vec<_>>(),
        [
            "effect-variant-final_test_acc",
            "effect-variant-samples_per_sec"
        ]
    );
    for (id, w, h, circles, ticks) in &drawn {
        assert!(*w > 300 && *h > 150, "{id} is laid out at {w}×{h}");
        assert!(*circles >= 3, "{id}: {circles} markers");
        assert!(*ticks, "{id}: the variants are the x ticks");
    }
    // The networks are laid out (a real size, inside the page) and drawn (a box per block,
    // the cell kind and the head in their text), each captioned with its variant, and each
    // variant's parameter count links to its picture.
    let nets = browser.eval(
        &page,
        "JSON.stringify(Array.from(document.querySelectorAll('figure.network')).map(f => { \
           const s = f.querySelector('svg'); const r = s.getBoundingClientRect(); \
           const texts = Array.from(s.querySelectorAll('text')).map(t => t.textContent.trim()); \
           const page = document.documentElement; \
           return [f.id, f.querySelector('figcaption').textContent, Math.round(r.width), Math.round(r.height), \
                   r.left >= 0 && r.top >= 0 && r.right <= page.scrollWidth && r.bottom <= page.scrollHeight, \
                   s.querySelectorAll('rect').length, \
                   texts.some(t => t.startsWith('Linear: 8 → 10')) && texts.some(t => t === 'B × 28 × 8')]; }))",
    );
    let nets: Vec<(String, String, u32, u32, bool, usize, bool)> =
        serde_json::from_str(nets.as_str().expect("a JSON string")).unwrap();
    assert_eq!(nets.len(), 3, "{nets:?}");
    for (id, caption, w, h, inside, rects, texts) in &nets {
        assert!(*w >= 200 && *h > *w, "{id} is laid out at {w}×{h}");
        assert!(*inside, "{id} lies inside the page");
        // The background, then a filled box and its border per block: input, the one layer,
        // last step, head, logits.
        assert_eq!(*rects, 11, "{id}: {rects} rects");
        assert!(*texts, "{id}: the head and an edge's shape are written");
        assert!(
            ["RNN", "LSTM", "GRU"]
                .iter()
                .any(|v| caption.starts_with(&format!("{v}: "))),
            "{id}: {caption}"
        );
    }
    let links = browser.eval(
        &page,
        "JSON.stringify(Array.from(document.querySelectorAll('#summary a')).map(a => \
           [a.getAttribute('href'), !!document.getElementById(a.getAttribute('href').slice(1))]))",
    );
    let links: Vec<(String, bool)> =
        serde_json::from_str(links.as_str().expect("a JSON string")).unwrap();
    assert_eq!(links.len(), 3, "a link per variant: {links:?}");
    assert!(
        links.iter().all(|l| l.1),
        "every link has its picture: {links:?}"
    );

    // Numbers do not wrap: at a laptop's width the final-accuracy cell ("0.9585 ± 0.0053") and
    // the best point's ("e1 it30") are one line high, as high as the one-number cell beside the
    // first (their text's box, not the cell's, which takes the row's height).
    browser.viewport(&page, 900, 1200);
    let cells = browser.eval(
        &page,
        "JSON.stringify(Array.from(document.querySelectorAll('#summary tbody tr')).map(tr => { \
           const h = td => { const r = document.createRange(); r.selectNodeContents(td); \
                             return [td.textContent, r.getBoundingClientRect().height, r.getClientRects().length]; }; \
           return [h(tr.children[4]), h(tr.children[5]), h(tr.children[8])]; }))",
    );
    type Measured = (String, f64, usize);
    let cells: Vec<(Measured, Measured, Measured)> =
        serde_json::from_str(cells.as_str().expect("a JSON string")).unwrap();
    assert_eq!(cells.len(), 3);
    for (acc, (n, n_h, _), at) in &cells {
        assert!(acc.0.contains(" ± "), "{acc:?} is a mean ± std");
        assert!(at.0.starts_with('e'), "{at:?} is the best point");
        for (text, h, lines) in [acc, at] {
            assert!(
                *h < 1.5 * n_h && *lines == 1,
                "{text:?} wraps: {h} px high in {lines} boxes, one line ({n:?}) is {n_h} px"
            );
        }
    }

    let png = browser.screenshot(&page, 1200, 2400);
    assert_eq!(
        page.requests.first().map(String::as_str),
        Some(url.as_str()),
        "the page's own document request is recorded (the recording works)"
    );
    let seen = fetches(&page.requests, &url);
    assert!(seen.is_empty(), "the report made requests: {seen:?}");
    drop(browser);

    // The screenshot shows the charts: pixels in the first series' colour (Tableau blue).
    let img = image::load_from_memory(&png).unwrap().to_rgb8();
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
fn only_fetches_count_as_requests() {
    let page = "file:///tmp/r.html";
    let reqs = [
        page.to_owned(),
        "data:image/png;base64,AAAA".to_owned(),
        "http://example.invalid/a.png".to_owned(),
    ];
    assert_eq!(fetches(&reqs, page), ["http://example.invalid/a.png"]);
}
