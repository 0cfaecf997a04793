//! A real browser for the console's tests: Debian's Chromium, headless,
//! driven through chromedriver's W3C WebDriver API on loopback (plain JSON
//! over HTTP). `tests/servers/browser.sh` installs both; `just test` runs it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::os::unix::process::CommandExt;

use base64::Engine;
use serde_json::{json, Value};

use crate::support::{repo, Reaped};

/// The WebDriver's name for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long a wait for the page lasts before the test fails.
pub const PAGE_WAIT: Duration = Duration::from_secs(60);

pub struct Browser {
    /// chromedriver, and the Chromium it starts in its process group, stopped
    /// (by the group's id) when the browser is dropped.
    driver: Reaped,
    base: String,
    session: String,
    agent: ureq::Agent,
    _profile: tempfile::TempDir,
}

/// Where the console's screenshots go.
pub fn screenshots() -> PathBuf {
    let dir = repo().join("target/test-output/console");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Browser {
    /// Starts chromedriver on a free loopback port and a headless Chromium session.
    pub fn start() -> Self {
        let path_of = |tool: &str| {
            let found = std::process::Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().ok().filter(|o| o.status.success());
            let found = found.unwrap_or_else(|| panic!("no {tool}: the console's tests drive a real browser; run tests/servers/browser.sh (just test does) to install Chromium and chromedriver"));
            String::from_utf8_lossy(&found.stdout).trim().to_owned()
        };
        let (chromium, chromedriver) = (path_of("chromium"), path_of("chromedriver"));
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = std::process::Command::new(&chromedriver)
            .args([&format!("--port={port}"), "--allowed-ips=127.0.0.1"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let driver = Reaped(driver);
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(120))).build().into();
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        // Ready when chromedriver itself says so (not whatever else took the port).
        let ready = |agent: &ureq::Agent| -> bool {
            let Ok(mut response) = agent.get(&format!("{base}/status")).call() else { return false };
            let text = response.body_mut().read_to_string().unwrap_or_default();
            serde_json::from_str::<Value>(&text).is_ok_and(|v| v["value"]["ready"] == true)
        };
        while !ready(&agent) {
            assert!(started.elapsed() < PAGE_WAIT, "chromedriver did not answer on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1280,1000".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {"binary": chromium, "args": args}}}});
        let mut browser = Self { driver, base, session: String::new(), agent, _profile: profile };
        // A busy machine can make Chromium miss chromedriver's start deadline: once more, then fail.
        for attempt in 1..=2 {
            let answer = browser.call("POST", "/session", capabilities.clone());
            match answer["sessionId"].as_str() {
                Some(id) => {
                    browser.session = id.to_owned();
                    break;
                }
                None if attempt == 2 => panic!("no browser session: {answer}"),
                None => std::thread::sleep(Duration::from_secs(1)),
            }
        }
        browser
    }

    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.base);
        let response = match method {
            "GET" => self.agent.get(&url).call(),
            "DELETE" => self.agent.delete(&url).call(),
            _ => self.agent.post(&url).header("Content-Type", "application/json").send(body.to_string()),
        };
        let mut response = response.unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let text = response.body_mut().read_to_string().unwrap_or_default();
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        answer.get("value").cloned().unwrap_or(answer)
    }

    fn session_call(&self, method: &str, path: &str, body: Value) -> Value {
        let value = self.call(method, &format!("/session/{}{path}", self.session), body);
        if let Some(error) = value.get("error") {
            panic!("WebDriver {method} {path}: {error}: {}", value["message"]);
        }
        value
    }

    pub fn open(&self, url: &str) {
        self.session_call("POST", "/url", json!({"url": url}));
    }

    /// Runs `script` in the page (its `arguments` are `args`), and gives its result.
    pub fn run(&self, script: &str, args: Value) -> Value {
        self.session_call("POST", "/execute/sync", json!({"script": script, "args": args}))
    }

    /// The element `css` picks, once the page has it.
    pub fn find(&self, css: &str) -> String {
        let mut found = String::new();
        self.wait_until(&format!("the page has {css}"), |b| {
            let answer = b.call("POST", &format!("/session/{}/element", b.session), json!({"using": "css selector", "value": css}));
            found = answer[ELEMENT].as_str().unwrap_or_default().to_owned();
            !found.is_empty()
        });
        found
    }

    pub fn click(&self, css: &str) {
        let element = self.find(css);
        self.session_call("POST", &format!("/element/{element}/click"), json!({}));
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css);
        self.session_call("POST", &format!("/element/{element}/clear"), json!({}));
        self.session_call("POST", &format!("/element/{element}/value"), json!({"text": text}));
    }

    /// The text of the elements `css` picks, in page order.
    pub fn texts(&self, css: &str) -> Vec<String> {
        let texts = self.run("return [...document.querySelectorAll(arguments[0])].map(e => e.textContent.trim())", json!([css]));
        texts.as_array().unwrap().iter().map(|t| t.as_str().unwrap_or_default().to_owned()).collect()
    }

    /// Waits until `done` holds for what the page shows, failing the test (naming `what`) after [`PAGE_WAIT`].
    pub fn wait_until(&self, what: &str, mut done: impl FnMut(&Self) -> bool) {
        let started = Instant::now();
        while !done(self) {
            if started.elapsed() > PAGE_WAIT {
                let page = self.run("return document.body.innerText", json!([]));
                panic!("timed out waiting until {what}; the page shows:\n{}", page.as_str().unwrap_or_default());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Saves a screenshot of the window as `name`.png in `dir`.
    pub fn screenshot(&self, dir: &Path, name: &str) -> PathBuf {
        let png = self.session_call("GET", "/screenshot", Value::Null);
        let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap()).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.agent.delete(&format!("{}/session/{}", self.base, self.session)).call();
        }
        // chromedriver's group: Chromium too, whatever the session's end did.
        let _ = std::process::Command::new("kill").args(["-KILL", "--", &format!("-{}", self.driver.0.id())]).status();
    }
}
