//! A minimal Chrome DevTools Protocol client over `--remote-debugging-pipe`, for the browser
//! test: it starts headless Chromium, opens one page target, and records the network requests
//! of that page's own session. The browser's own traffic (component updater, safe browsing,
//! whatever a future Chromium adds) belongs to no page target, so it is never seen here: the test
//! tells page requests from browser requests by construction, not by host names.
//!
//! The pipe protocol: Chromium reads JSON commands from fd 3 and writes JSON replies and events
//! to fd 4, each message ended by a NUL byte. Commands for a page carry the `sessionId` that
//! `Target.attachToTarget` (flattened) returned, and so do its events.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long one command or one awaited event may take before the test fails.
const TIMEOUT: Duration = Duration::from_secs(60);

/// A running headless Chromium driven through the DevTools pipe.
pub struct Browser {
    child: Child,
    to_browser: std::io::PipeWriter,
    from_browser: Receiver<Value>,
    next_id: u64,
    /// Events that arrived while waiting for something else, in order.
    backlog: Vec<Value>,
    _profile: tempfile::TempDir,
}

/// One page target and the requests its session announced (`Network.requestWillBeSent`).
pub struct Page {
    session: String,
    pub requests: Vec<String>,
}

impl Browser {
    /// Starts Chromium at `exe` with a fresh profile. `proxy` sends every request the browser
    /// makes, loopback included, to a local server, so that nothing leaves the machine and a
    /// page's external fetch fails at once instead of waiting on DNS.
    pub fn launch(exe: &Path, proxy: u16) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let (cmd_read, cmd_write) = std::io::pipe().unwrap();
        let (evt_read, evt_write) = std::io::pipe().unwrap();
        let (cr, ew) = (cmd_read.as_raw_fd(), evt_write.as_raw_fd());
        let mut cmd = Command::new(exe);
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
            "--remote-debugging-pipe",
            "--proxy-bypass-list=<-loopback>",
        ])
        .arg(format!("--proxy-server=http://127.0.0.1:{proxy}"))
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork and exec. The pipe ends
        // are first moved above fd 9 so that placing one at 3 cannot overwrite the other.
        unsafe {
            cmd.pre_exec(move || {
                let hi_r = libc::fcntl(cr, libc::F_DUPFD_CLOEXEC, 10);
                let hi_w = libc::fcntl(ew, libc::F_DUPFD_CLOEXEC, 10);
                if hi_r < 0 || hi_w < 0 || libc::dup2(hi_r, 3) < 0 || libc::dup2(hi_w, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("starting chromium");
        // The child holds its own copies; ours must close so that EOF reaches each side.
        drop(cmd_read);
        drop(evt_write);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(evt_read);
            loop {
                let mut buf = Vec::new();
                match reader.read_until(0, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                if buf.last() == Some(&0) {
                    buf.pop();
                }
                let v = serde_json::from_slice::<Value>(&buf).unwrap_or_else(
                    |e| json!({"unreadable": e.to_string(), "text": String::from_utf8_lossy(&buf)}),
                );
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        Browser {
            child,
            to_browser: cmd_write,
            from_browser: rx,
            next_id: 0,
            backlog: Vec::new(),
            _profile: profile,
        }
    }

    fn recv(&mut self, deadline: Instant, what: &str) -> Value {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.from_browser.recv_timeout(left) {
            Ok(v) => v,
            Err(RecvTimeoutError::Timeout) => panic!("Chromium did not answer in time: {what}"),
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.child.try_wait().ok().flatten();
                panic!(
                    "Chromium closed the DevTools pipe while waiting for {what} (exit {status:?})"
                )
            }
        }
    }

    /// Sends one command (to the browser, or to a page's session) and returns its result.
    pub fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.to_browser
            .write_all(&bytes)
            .expect("writing to the DevTools pipe");
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let v = self.recv(deadline, method);
            if v.get("id").and_then(Value::as_u64) == Some(id) {
                if let Some(err) = v.get("error") {
                    panic!("DevTools {method} failed: {err}");
                }
                return v["result"].clone();
            }
            self.backlog.push(v);
        }
    }

    /// Opens a new page target, attaches to it and enables its network and page events.
    pub fn new_page(&mut self) -> Page {
        let target = self.call(None, "Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"].as_str().expect("a target id").to_owned();
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        );
        let session = attached["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        self.call(Some(&session), "Network.enable", json!({}));
        self.call(Some(&session), "Page.enable", json!({}));
        Page {
            session,
            requests: Vec::new(),
        }
    }

    /// Moves this page's `Network.requestWillBeSent` URLs from the backlog into `page`, and
    /// returns whether a `Page.loadEventFired` of this page was among the events.
    fn drain(&mut self, page: &mut Page) -> bool {
        let mut loaded = false;
        for v in std::mem::take(&mut self.backlog) {
            if v.get("sessionId").and_then(Value::as_str) != Some(page.session.as_str()) {
                continue;
            }
            match v.get("method").and_then(Value::as_str) {
                Some("Network.requestWillBeSent") => {
                    let url = v["params"]["request"]["url"].as_str().unwrap_or("?");
                    page.requests.push(url.to_owned());
                }
                Some("Page.loadEventFired") => loaded = true,
                _ => {}
            }
        }
        loaded
    }

    /// Navigates `page` to `url`, waits for its load event and then for `settle` more, so that
    /// requests started late are recorded too.
    pub fn load(&mut self, page: &mut Page, url: &str, settle: Duration) {
        let session = page.session.clone();
        let nav = self.call(Some(&session), "Page.navigate", json!({"url": url}));
        if let Some(err) = nav.get("errorText") {
            panic!("navigating to {url} failed: {err}");
        }
        let deadline = Instant::now() + TIMEOUT;
        while !self.drain(page) {
            let v = self.recv(deadline, "the page's load event");
            self.backlog.push(v);
        }
        let until = Instant::now() + settle;
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            match self.from_browser.recv_timeout(left) {
                Ok(v) => self.backlog.push(v),
                Err(_) => break,
            }
        }
        self.drain(page);
    }

    /// Evaluates a JavaScript expression in the page and returns its value.
    pub fn eval(&mut self, page: &Page, expression: &str) -> Value {
        let r = self.call(
            Some(&page.session.clone()),
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("evaluating {expression} threw: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Lays the page out in a viewport of `width`×`height` CSS pixels.
    pub fn viewport(&mut self, page: &Page, width: u32, height: u32) {
        self.call(
            Some(&page.session.clone()),
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        );
    }

    /// A PNG screenshot of the page at `width`×`height` CSS pixels.
    pub fn screenshot(&mut self, page: &Page, width: u32, height: u32) -> Vec<u8> {
        use base64::Engine as _;
        self.viewport(page, width, height);
        let s = page.session.clone();
        let shot = self.call(Some(&s), "Page.captureScreenshot", json!({"format": "png"}));
        let data = shot["data"].as_str().expect("screenshot data");
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("base64 screenshot")
    }

    /// The browser's version string (`Browser.getVersion`), e.g. "Chrome/156.0.8078.108".
    pub fn version(&mut self) -> String {
        let v = self.call(None, "Browser.getVersion", json!({}));
        v["product"].as_str().unwrap_or("?").to_owned()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let mut bytes = serde_json::to_vec(&json!({"id": 0, "method": "Browser.close"})).unwrap();
        bytes.push(0);
        let _ = self.to_browser.write_all(&bytes);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
