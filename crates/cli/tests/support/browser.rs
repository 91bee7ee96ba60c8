//! A headless Chromium driven over raw W3C WebDriver (`chromedriver`) with the `reqwest` the
//! tests already use: open UI pages of a test server, wait for the DOM conventions of
//! docs/UI.md, click and type, take screenshots (`target/ui-screenshots/<test>/`), and collect
//! the browser's console errors and every response (with its body) the browser received.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use super::{cannot_run, free_port};

/// The W3C key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long `wait_*` wait by default.
pub const WAIT: Duration = Duration::from_secs(10);

/// One response the browser received: from the performance log's `Network.responseReceived`,
/// with its body when Chromium still had it (`Network.getResponseBody`).
#[derive(Debug, Clone)]
pub struct Response {
    pub url: String,
    pub status: u64,
    pub mime_type: String,
    /// `None` when the body could not be read (a stream still open, a redirect, evicted).
    pub body: Option<String>,
}

/// A browser session on a test server: its chromedriver is killed and its session deleted on
/// drop. End every test with [`Browser::finish`] (it fails on console errors).
pub struct Browser {
    driver: Child,
    /// chromedriver's and Chromium's temporary directory (their `TMPDIR`): Chromium leaves
    /// its profile and scoped directories behind even after its session is deleted (two
    /// hundred after a few test runs here), so they go with this directory, after the
    /// driver is stopped (fields drop after `Drop::drop`).
    _tmp: tempfile::TempDir,
    driver_url: String,
    session: String,
    http: reqwest::Client,
    /// The faasbox server's base URL (`http://127.0.0.1:PORT`).
    pub base: String,
    test: String,
    shots: usize,
    shot_dir: PathBuf,
    /// SEVERE console entries seen so far (drained from the browser after each step).
    console: Vec<Value>,
    /// Substrings that mark an expected console entry (a request the test makes fail).
    allowed: Vec<String>,
    /// Whether responses (and their bodies) are collected at each step.
    record: bool,
    responses: Vec<Response>,
}

/// Where screenshots go: `<target>/ui-screenshots`.
pub fn screenshot_root() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            // crates/cli → the workspace's target directory.
            let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
            manifest
                .ancestors()
                .nth(2)
                .unwrap_or(manifest)
                .join("target")
        });
    target.join("ui-screenshots")
}

impl Browser {
    /// Starts chromedriver and a headless Chromium for the server at `base`; `test` names the
    /// screenshot directory. `None` (after [`cannot_run`], which fails under `CI`) when
    /// chromedriver is not installed.
    pub async fn start(base: &str, test: &str) -> Option<Browser> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("HTTP client");
        let shot_dir = screenshot_root().join(test);
        let _ = std::fs::remove_dir_all(&shot_dir);
        std::fs::create_dir_all(&shot_dir).expect("creating the screenshot directory");
        let mut last_error = String::new();
        for _ in 0..3 {
            let tmp = tempfile::Builder::new()
                .prefix("faasbox-test-browser-")
                .tempdir()
                .expect("a temporary directory for the browser");
            let port = free_port();
            let spawned = Command::new("chromedriver")
                .env("TMPDIR", tmp.path())
                .arg(format!("--port={port}"))
                .arg(format!(
                    "--log-path={}",
                    shot_dir.join("chromedriver.log").display()
                ))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            let mut driver = match spawned {
                Ok(child) => child,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    cannot_run(
                        "chromedriver is not installed (scripts/install-deps.sh installs \
                         chromium and chromium-driver)",
                    );
                    return None;
                }
                Err(e) => panic!("starting chromedriver: {e}"),
            };
            let driver_url = format!("http://127.0.0.1:{port}");
            if !driver_ready(&http, &driver_url, &mut driver).await {
                let _ = driver.kill();
                let _ = driver.wait();
                last_error = format!("chromedriver on port {port} never answered /status");
                continue;
            }
            let capabilities = json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"args": [
                    "--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                    "--window-size=1280,900"
                ]},
                "goog:loggingPrefs": {"browser": "ALL", "performance": "ALL"}
            }}});
            let answer = http
                .post(format!("{driver_url}/session"))
                .json(&capabilities)
                .send()
                .await;
            let value: Value = match answer {
                Ok(r) => r.json().await.unwrap_or(Value::Null),
                Err(e) => {
                    last_error = format!("new session: {e}");
                    let _ = driver.kill();
                    let _ = driver.wait();
                    continue;
                }
            };
            let Some(session) = value["value"]["sessionId"].as_str() else {
                let _ = driver.kill();
                let _ = driver.wait();
                panic!(
                    "chromedriver refused a session (is chromium installed, matching \
                     chromedriver's version? scripts/install-deps.sh): {value}"
                );
            };
            return Some(Browser {
                driver,
                _tmp: tmp,
                driver_url,
                session: session.to_string(),
                http,
                base: base.trim_end_matches('/').to_string(),
                test: test.to_string(),
                shots: 0,
                shot_dir,
                console: Vec::new(),
                allowed: Vec::new(),
                record: false,
                responses: Vec::new(),
            });
        }
        panic!("could not start chromedriver: {last_error}");
    }

    /// One WebDriver command on this session: its `value`, or the WebDriver error text.
    async fn command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let url = format!("{}/session/{}{}", self.driver_url, self.session, path);
        let mut request = self.http.request(method.clone(), &url);
        if let Some(body) = body {
            request = request.json(&body);
        } else if method == reqwest::Method::POST {
            request = request.json(&json!({}));
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("WebDriver {method} {path}: {e}"))?;
        let status = response.status();
        let value: Value = response
            .json()
            .await
            .map_err(|e| format!("WebDriver {method} {path}: not JSON: {e}"))?;
        if status.is_success() {
            Ok(value["value"].clone())
        } else {
            Err(format!(
                "WebDriver {method} {path}: {} {}",
                value["value"]["error"].as_str().unwrap_or("error"),
                value["value"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .lines()
                    .next()
                    .unwrap_or_default()
            ))
        }
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        self.command(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Result<Value, String> {
        self.command(reqwest::Method::GET, path, None).await
    }

    /// Fails the test with `what`, the page's URL and text, and the console errors so far;
    /// saves a `failure` screenshot first.
    pub async fn fail(&mut self, what: &str) {
        let report = self.report(what).await;
        panic!("{report}");
    }

    /// `what` with the page's URL and text and the console errors so far, for a failure.
    async fn report(&mut self, what: &str) -> String {
        self.drain_console().await;
        let _ = self.screenshot("failure").await;
        let state = self
            .post(
                "/execute/sync",
                json!({"script": "const m = document.getElementById('main'); \
                    return [location.href, m ? (m.dataset.page || '') + ' ready=' + (m.dataset.ready || '') : 'no main', \
                    (m || document.body).innerText]", "args": []}),
            )
            .await
            .unwrap_or(Value::Null);
        let text: String = state[2]
            .as_str()
            .unwrap_or_default()
            .chars()
            .take(3000)
            .collect();
        format!(
            "{what}\n  at {} (page {})\n  page text:\n{}\n  console errors: {:#?}\n  screenshots: {}",
            state[0].as_str().unwrap_or("?"),
            state[1].as_str().unwrap_or("?"),
            text,
            self.console,
            self.shot_dir.display()
        )
    }

    async fn ok<T>(&mut self, result: Result<T, String>) -> T {
        match result {
            Ok(v) => v,
            Err(e) => {
                let report = self.report(&e).await;
                panic!("{report}")
            }
        }
    }

    /// Opens `path` (below the server's base URL, e.g. `/ui/ns/demo/functions`).
    pub async fn open(&mut self, path: &str) {
        self.step().await;
        let url = format!("{}{}", self.base, path);
        let r = self.post("/url", json!({ "url": url })).await;
        self.ok(r).await;
    }

    /// The page's current URL.
    pub async fn url(&mut self) -> String {
        let r = self.get("/url").await;
        self.ok(r).await.as_str().unwrap_or_default().to_string()
    }

    async fn find_now(&self, css: &str) -> Option<String> {
        let found = self
            .post("/elements", json!({"using": "css selector", "value": css}))
            .await
            .ok()?;
        found.as_array()?.first()?[ELEMENT]
            .as_str()
            .map(str::to_string)
    }

    /// The number of elements matching `css` now.
    pub async fn count(&mut self, css: &str) -> usize {
        let r = self
            .post("/elements", json!({"using": "css selector", "value": css}))
            .await;
        self.ok(r).await.as_array().map_or(0, Vec::len)
    }

    /// Waits (10 s) for an element matching `css`; its reference.
    pub async fn wait_for(&mut self, css: &str) -> String {
        self.wait_for_within(css, WAIT).await
    }

    /// [`Browser::wait_for`] with its own bound.
    pub async fn wait_for_within(&mut self, css: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(id) = self.find_now(css).await {
                return id;
            }
            if Instant::now() > deadline {
                self.fail(&format!("waited {within:?} for `{css}`, in vain"))
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for `main[data-page=PAGE][data-ready=true]`: the page's first data shown.
    pub async fn wait_ready(&mut self, page: &str) {
        self.wait_for(&format!("main[data-page=\"{page}\"][data-ready=\"true\"]"))
            .await;
        self.step().await;
    }

    /// Waits until the text of the first element matching `css` contains `text`; that text.
    pub async fn wait_text(&mut self, css: &str, text: &str) -> String {
        self.wait_text_within(css, text, WAIT).await
    }

    /// [`Browser::wait_text`] with its own bound.
    pub async fn wait_text_within(&mut self, css: &str, text: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        let mut seen = String::new();
        loop {
            if let Some(id) = self.find_now(css).await {
                if let Ok(Value::String(now)) = self.get(&format!("/element/{id}/text")).await {
                    if now.contains(text) {
                        return now;
                    }
                    seen = now;
                }
            }
            if Instant::now() > deadline {
                self.fail(&format!(
                    "waited {within:?} for `{css}` to contain {text:?}, in vain; its text: {seen:?}"
                ))
                .await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The visible text of the first element matching `css` (waited for).
    pub async fn text(&mut self, css: &str) -> String {
        let id = self.wait_for(css).await;
        let r = self.get(&format!("/element/{id}/text")).await;
        self.ok(r).await.as_str().unwrap_or_default().to_string()
    }

    /// The text content of every element matching `css` now.
    pub async fn texts(&mut self, css: &str) -> Vec<String> {
        let v = self
            .js(
                "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.textContent)",
                json!([css]),
            )
            .await;
        v.as_array()
            .into_iter()
            .flatten()
            .map(|t| t.as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// The value of attribute `name` of the first element matching `css` (waited for).
    pub async fn attribute(&mut self, css: &str, name: &str) -> Option<String> {
        let id = self.wait_for(css).await;
        let r = self.get(&format!("/element/{id}/attribute/{name}")).await;
        self.ok(r).await.as_str().map(str::to_string)
    }

    /// Clicks the first element matching `css` (waited for; retried while it cannot be
    /// clicked yet, e.g. covered or disabled).
    pub async fn click(&mut self, css: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let id = self.wait_for(css).await;
            match self.post(&format!("/element/{id}/click"), json!({})).await {
                Ok(_) => break,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => self.fail(&format!("clicking `{css}`: {e}")).await,
            }
        }
        self.step().await;
    }

    /// Clears the field matching `css` and types `text` into it (key by key, as a user).
    pub async fn type_into(&mut self, css: &str, text: &str) {
        let id = self.wait_for(css).await;
        let cleared = self.post(&format!("/element/{id}/clear"), json!({})).await;
        if let Err(e) = cleared {
            self.fail(&format!("clearing `{css}`: {e}")).await;
        }
        let typed = self
            .post(&format!("/element/{id}/value"), json!({ "text": text }))
            .await;
        if let Err(e) = typed {
            self.fail(&format!("typing into `{css}`: {e}")).await;
        }
    }

    /// Picks the local file `path` in the file input matching `css` (the browser runs on this
    /// machine, so WebDriver's keys to a file input are its path).
    pub async fn upload(&mut self, css: &str, path: &std::path::Path) {
        let id = self.wait_for(css).await;
        let typed = self
            .post(
                &format!("/element/{id}/value"),
                json!({ "text": path.display().to_string() }),
            )
            .await;
        if let Err(e) = typed {
            self.fail(&format!("picking {} in `{css}`: {e}", path.display()))
                .await;
        }
    }

    /// Sets the value of the field matching `css` at once and fires `input` and `change` (for
    /// editors that act on keys, such as indentation on Enter: the text arrives unchanged).
    pub async fn set_value(&mut self, css: &str, text: &str) {
        self.wait_for(css).await;
        self.js(
            "const e = document.querySelector(arguments[0]); e.focus(); e.value = arguments[1]; \
             e.dispatchEvent(new Event('input', {bubbles: true})); \
             e.dispatchEvent(new Event('change', {bubbles: true}));",
            json!([css, text]),
        )
        .await;
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page; its result.
    pub async fn js(&mut self, script: &str, args: Value) -> Value {
        let r = self
            .post("/execute/sync", json!({"script": script, "args": args}))
            .await;
        self.ok(r).await
    }

    /// Saves a screenshot as `target/ui-screenshots/<test>/<nn>-<name>.png`.
    pub async fn screenshot(&mut self, name: &str) -> Result<PathBuf, String> {
        self.shots += 1;
        let png = self.get("/screenshot").await?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap_or_default())
            .map_err(|e| format!("screenshot not base64: {e}"))?;
        let path = self.shot_dir.join(format!("{:02}-{name}.png", self.shots));
        std::fs::write(&path, bytes).map_err(|e| format!("writing {}: {e}", path.display()))?;
        Ok(path)
    }

    /// [`Browser::screenshot`] that fails the test when it cannot be taken.
    pub async fn shot(&mut self, name: &str) {
        let r = self.screenshot(name).await;
        self.ok(r).await;
    }

    /// Marks console entries containing `text` as expected (e.g. the `401` of `/ui/session`
    /// before signing in, or the `404` an error page shows): [`Browser::finish`] ignores them.
    pub fn allow_console(&mut self, text: &str) {
        self.allowed.push(text.to_string());
    }

    /// Collects every response (and its body) from now on, at each step.
    pub fn record_responses(&mut self) {
        self.record = true;
    }

    /// Reads the console (the browser drains it at each read) and, when recording, the
    /// network log: after every action.
    async fn step(&mut self) {
        self.drain_console().await;
        if self.record {
            self.drain_network().await;
        }
    }

    async fn drain_console(&mut self) {
        if let Ok(Value::Array(entries)) = self.post("/se/log", json!({"type": "browser"})).await {
            for entry in entries {
                if entry["level"] == "SEVERE" {
                    self.console.push(entry);
                }
            }
        }
    }

    async fn drain_network(&mut self) {
        let Ok(Value::Array(entries)) = self.post("/se/log", json!({"type": "performance"})).await
        else {
            return;
        };
        for entry in entries {
            let Some(message) = entry["message"].as_str() else {
                continue;
            };
            let Ok(message) = serde_json::from_str::<Value>(message) else {
                continue;
            };
            let message = &message["message"];
            if message["method"] != "Network.responseReceived" {
                continue;
            }
            let params = &message["params"];
            let response = &params["response"];
            let body = match params["requestId"].as_str() {
                Some(id) => self
                    .post(
                        "/goog/cdp/execute",
                        json!({"cmd": "Network.getResponseBody", "params": {"requestId": id}}),
                    )
                    .await
                    .ok()
                    .and_then(|v| {
                        let text = v["body"].as_str()?.to_string();
                        if v["base64Encoded"] == true {
                            base64::engine::general_purpose::STANDARD
                                .decode(&text)
                                .ok()
                                .map(|b| String::from_utf8_lossy(&b).into_owned())
                        } else {
                            Some(text)
                        }
                    }),
                None => None,
            };
            self.responses.push(Response {
                url: response["url"].as_str().unwrap_or_default().to_string(),
                status: response["status"].as_u64().unwrap_or(0),
                mime_type: response["mimeType"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                body,
            });
        }
    }

    /// Every response the browser received since [`Browser::record_responses`] (read now).
    pub async fn responses(&mut self) -> Vec<Response> {
        self.drain_network().await;
        self.responses.clone()
    }

    /// The browser's cookies for the current page (`name`, `value`, `httpOnly`, `sameSite`,
    /// `path`, …).
    pub async fn cookies(&mut self) -> Vec<Value> {
        let r = self.get("/cookie").await;
        self.ok(r).await.as_array().cloned().unwrap_or_default()
    }

    /// The whole document as HTML now (to search it for what must not be there).
    pub async fn html(&mut self) -> String {
        self.js("return document.documentElement.outerHTML", json!([]))
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Opens `path`, waits until page `page` is ready, and prints `page <path>: <ms> ms`
    /// (wall time from the navigation to `data-ready`); returns the milliseconds.
    pub async fn timed_open(&mut self, path: &str, page: &str) -> u128 {
        let began = Instant::now();
        self.open(path).await;
        self.wait_ready(page).await;
        let ms = began.elapsed().as_millis();
        eprintln!("page {path}: {ms} ms");
        ms
    }

    /// Signs in with `token` on the sign-in page and waits for the first page after it.
    pub async fn sign_in(&mut self, token: &str) {
        // Before signing in, the shell's GET /ui/session answers 401 (the console shows it).
        self.allow_console(
            "/ui/session - Failed to load resource: the server responded with a status of 401",
        );
        self.open("/ui/signin").await;
        self.wait_ready("signin").await;
        self.type_into("input[name=token]", token).await;
        self.click("button[data-action=sign-in]").await;
        self.wait_for("main[data-ready=\"true\"]:not([data-page=\"signin\"])")
            .await;
        self.step().await;
    }

    /// The console errors not marked expected.
    pub async fn console_errors(&mut self) -> Vec<Value> {
        self.drain_console().await;
        self.console
            .iter()
            .filter(|e| {
                let message = e["message"].as_str().unwrap_or_default();
                !self.allowed.iter().any(|a| message.contains(a.as_str()))
            })
            .cloned()
            .collect()
    }

    /// Ends the test: a last screenshot, and fails if the console had any error (uncaught
    /// exceptions, failed requests, CSP violations) not marked expected.
    pub async fn finish(mut self) {
        let _ = self.screenshot("end").await;
        let errors = self.console_errors().await;
        if !errors.is_empty() {
            self.fail(&format!(
                "the browser's console had errors: {}",
                serde_json::to_string_pretty(&errors).unwrap_or_default()
            ))
            .await;
        }
        eprintln!("{}: screenshots in {}", self.test, self.shot_dir.display());
    }
}

/// Polls chromedriver's `/status` until it is ready (10 s), or it exited.
async fn driver_ready(http: &reqwest::Client, url: &str, driver: &mut Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = driver.try_wait() {
            return false;
        }
        if let Ok(r) = http.get(format!("{url}/status")).send().await {
            if let Ok(v) = r.json::<Value>().await {
                if v["value"]["ready"] == true {
                    return true;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Drop cannot await: delete the session with a blocking request on its own thread
        // (a tokio runtime may be running on this one), then stop chromedriver.
        let url = format!("{}/session/{}", self.driver_url, self.session);
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async {
                    let client = reqwest::Client::new();
                    let _ =
                        tokio::time::timeout(Duration::from_secs(10), client.delete(&url).send())
                            .await;
                });
            }
        })
        .join();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
