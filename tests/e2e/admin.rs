//! Who may use the admin endpoint: a request that changes something needs the
//! host's token; a request naming another Host, or sent from a page of another
//! Origin, is refused whatever it carries; the CLI, run beside the host, works.

use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use crate::support::{plugin, signal, wait_until, Workspace};
use crate::swap::{deploy, follow, with_admin};

/// Sends a raw HTTP request with exactly these headers; the status code.
fn send(addr: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> u16 {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: 0\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or_else(|| panic!("not an HTTP answer: {answer}"))
}

#[test]
fn changes_need_the_token_and_foreign_hosts_and_origins_are_refused_while_the_cli_works() {
    let ws = with_admin(Workspace::new(&["recorder"]));
    std::fs::write(ws.path("projector.toml"), "watch = false\n").unwrap();
    let addr = ws.config.admin.clone();
    let status = || String::from_utf8(ws.command(&["plugins", "status"]).output().unwrap().stdout).unwrap();
    let mut host = follow(&ws);
    wait_until("the admin endpoint answers", Duration::from_secs(30), || status().contains("0.1.0 "));

    let file = ws.path(".projector/admin.token");
    let meta = std::fs::metadata(&file).expect("the host made its token file");
    assert_eq!(meta.mode() & 0o777, 0o600, "the token file is the operator's alone");
    let token = std::fs::read_to_string(&file).unwrap();
    let bearer = format!("Bearer {token}");

    // A new build waits in the plugins directory: every refused request leaves it there.
    deploy(&plugin("recorder-healed"), &ws.config.plugins);
    let here = addr.as_str();
    let cases = [
        ("no token", vec![("Host", here), ("Content-Type", "text/plain")], 401u16),
        ("a wrong token", vec![("Host", here), ("Authorization", "Bearer 00000000000000000000")], 401),
        ("a page of another site", vec![("Host", here), ("Origin", "http://evil.example"), ("Authorization", &bearer)], 403),
        ("a rebound name", vec![("Host", "evil.example:7931"), ("Authorization", &bearer)], 403),
        ("no Host", vec![("Authorization", &bearer)], 403),
        ("an opaque origin", vec![("Host", here), ("Origin", "null"), ("Authorization", &bearer)], 403),
    ];
    for (what, headers, expected) in &cases {
        for path in ["/plugins/reload", "/plugins/rollback?name=recorder", "/parked/replay?id=1", "/parked/discard?id=1&reason=x"] {
            assert_eq!(send(&addr, "POST", path, headers), *expected, "POST {path} with {what}");
        }
    }
    assert_eq!(send(&addr, "GET", "/status", &[("Host", "evil.example:7931")]), 403, "reads check the Host too");
    assert_eq!(send(&addr, "GET", "/status", &[("Host", here)]), 200, "reads need no token");
    for data in ["/parked", "/parked/show?id=1", "/graph/labels", "/graph/node?label=Seen&key=x"] {
        assert_eq!(send(&addr, "GET", data, &[("Host", here)]), 401, "GET {data}: events and the read model need the token");
    }
    assert_eq!(send(&addr, "GET", "/parked", &[("Host", here), ("Authorization", &bearer)]), 200);
    assert!(status().contains("0.1.0 ") && !status().contains("healed"), "nothing was swapped: {}", status());

    // The CLI beside the host reads the token and is let through.
    let out = ws.command(&["plugins", "reload"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(status().contains("0.1.0+healed"), "{}", status());

    // Without the token file (another directory, no PROJECTOR_ADMIN_TOKEN) it says where to find one.
    let out = ws.command(&["plugins", "reload"]).current_dir(std::env::temp_dir()).output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && said.contains("no admin token") && said.contains("PROJECTOR_ADMIN_TOKEN"), "{said}");

    signal(&host.0, "TERM");
    assert!(host.0.wait().unwrap().success());
    let log = std::fs::read_to_string(ws.path("host.log")).unwrap();
    assert!(log.contains("admin request refused"), "refusals are logged: {log}");
}

#[test]
fn an_admin_address_beyond_loopback_needs_a_token_given_by_the_operator() {
    let mut ws = Workspace::new(&["recorder"]);
    ws.config.admin = "192.0.2.1:7931".into();
    let out = ws.command(&["run", "--quiet"]).env("PROJECTOR_LOG", "warn").output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && said.contains("is not a loopback address") && said.contains("PROJECTOR_ADMIN_TOKEN"), "{said}");
    assert!(!ws.path(".projector/admin.token").exists(), "no token is made for an address the host refuses");

    // A wildcard address cannot be named in a Host header: refused, whatever the token.
    ws.config.admin = "0.0.0.0:0".into();
    let out = ws.command(&["run", "--quiet"]).env("PROJECTOR_ADMIN_TOKEN", "0123456789abcdef0123").output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("listens on every interface"), "{said}");
}
