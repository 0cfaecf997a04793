//! Who may use the admin endpoint. Three checks, before a request is read:
//!
//! - **Host**: the request's `Host` header must name the endpoint itself (the
//!   configured address, the address it is bound to, or `localhost:PORT` on
//!   loopback). A page that rebinds its own domain name to 127.0.0.1 sends
//!   its own name, and is refused: it can neither act nor read.
//! - **Origin**: a request a browser sends from a page has an `Origin`; it must
//!   be the endpoint's own. A "simple" cross-site POST needs no preflight, so
//!   this is what stops a page the operator opens from acting.
//! - **Token**: every request that changes something, or reads events or the
//!   read model (parked events, the explorer: they may hold personal data),
//!   carries `Authorization: Bearer TOKEN`. The host's own state (status,
//!   metrics, health, the console's page) needs no token: it passes the Host
//!   and Origin checks, as a Prometheus scrape or a health probe expects.
//!
//! The token comes from `PROJECTOR_ADMIN_TOKEN`, or from the token file
//! (`admin_token_file`, `.projector/admin.token` by default): a host makes it
//! when it is missing (random, mode 0600) and the CLI reads it there. A token
//! file that others can read, or that belongs to another user, is refused.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{bail, Context, Result};
use subtle::ConstantTimeEq;

use crate::private;

/// The environment variable that gives the token instead of the token file.
pub const TOKEN_ENV: &str = "PROJECTOR_ADMIN_TOKEN";
/// Random bytes in a token a host makes (written as hex).
pub const TOKEN_BYTES: usize = 32;
/// The shortest token taken from the environment or a file.
pub const MIN_TOKEN_CHARS: usize = 16;

/// A credential for the admin endpoint. Never printed.
#[derive(Clone)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    fn new(text: &str, from: &str) -> Result<Self> {
        let text = text.trim();
        if text.len() < MIN_TOKEN_CHARS || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            bail!("the admin token in {from} must be at least {MIN_TOKEN_CHARS} characters, without spaces");
        }
        Ok(Self(text.to_owned()))
    }

    /// The `Authorization` header's value.
    pub fn header(&self) -> String {
        format!("Bearer {}", self.0)
    }

    fn matches(&self, header: &str) -> bool {
        header.strip_prefix("Bearer ").is_some_and(|given| given.trim().as_bytes().ct_eq(self.0.as_bytes()).into())
    }
}

/// Where a host's token came from: an operator's (the environment, or a token
/// file that was there before the host started), or made by the host now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provenance {
    Provisioned,
    Made,
}

/// The token a host serves with.
pub fn host_token(file: &Path) -> Result<(Token, Provenance)> {
    if let Some(token) = env_token()? {
        return Ok((token, Provenance::Provisioned));
    }
    if let Some(token) = read_token_file(file)? {
        return Ok((token, Provenance::Provisioned));
    }
    match make_token_file(file)? {
        Some(token) => Ok((token, Provenance::Made)),
        // Another host made it at the same moment: take that one.
        None => Ok((read_token_file(file)?.context("the admin token file vanished")?, Provenance::Made)),
    }
}

/// The token the CLI sends, if it has one.
pub fn client_token(file: &Path) -> Result<Option<Token>> {
    match env_token()? {
        Some(token) => Ok(Some(token)),
        None => read_token_file(file),
    }
}

fn env_token() -> Result<Option<Token>> {
    match std::env::var(TOKEN_ENV) {
        Ok(text) => Token::new(&text, TOKEN_ENV).map(Some),
        Err(_) => Ok(None),
    }
}

const TOKEN_FILE: &str = "the admin token file";

/// Reads the token file; `None` when there is none (see [`crate::private`]).
fn read_token_file(file: &Path) -> Result<Option<Token>> {
    let Some(bytes) = private::read(file, TOKEN_FILE)? else { return Ok(None) };
    let text = String::from_utf8(bytes).with_context(|| format!("{TOKEN_FILE} {} is not text", file.display()))?;
    Token::new(&text, &file.display().to_string()).map(Some)
}

/// Makes the token file. `None`: it exists already.
fn make_token_file(file: &Path) -> Result<Option<Token>> {
    let bytes: [u8; TOKEN_BYTES] = rand::random();
    let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if !private::make(file, text.as_bytes(), TOKEN_FILE)? {
        return Ok(None);
    }
    tracing::info!(file = %file.display(), "made an admin token (mode 0600); the CLI reads it there");
    Ok(Some(Token(text)))
}

/// What the endpoint lets through.
#[derive(Debug)]
pub struct Access {
    token: Token,
    /// The `Host` values that name the endpoint, lowercase.
    hosts: Vec<String>,
}

/// A request refused: the status and why.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub why: String,
}

/// What of a request the checks look at.
#[derive(Debug, Default)]
pub struct Asked<'a> {
    /// A change, or a read of data ([`super::routes::needs_token`]).
    pub needs_token: bool,
    pub host: Option<&'a str>,
    pub origin: Option<&'a str>,
    pub authorization: Option<&'a str>,
}

impl Access {
    /// For an endpoint configured as `configured` and bound to `bound`.
    pub fn new(token: Token, configured: &str, bound: SocketAddr) -> Self {
        let mut hosts = vec![configured.to_ascii_lowercase(), bound.to_string()];
        if bound.ip().is_loopback() {
            hosts.push(format!("localhost:{}", bound.port()));
        }
        hosts.dedup();
        Self { token, hosts }
    }

    pub fn check(&self, asked: &Asked) -> Result<(), Refusal> {
        let forbidden = |why: String| Err(Refusal { status: 403, why });
        let Some(host) = asked.host else {
            return forbidden("the request has no Host header".into());
        };
        if !self.hosts.contains(&host.to_ascii_lowercase()) {
            return forbidden(format!("Host {host:?} is not this endpoint ({})", self.hosts.join(", ")));
        }
        if let Some(origin) = asked.origin {
            let own = origin.to_ascii_lowercase().strip_prefix("http://").is_some_and(|o| self.hosts.iter().any(|h| h == o));
            if !own {
                return forbidden(format!("Origin {origin:?} is not this endpoint: the admin endpoint takes no requests from web pages of other sites"));
            }
        }
        if asked.needs_token && !asked.authorization.is_some_and(|a| self.token.matches(a)) {
            let why = if asked.authorization.is_some() { "the admin token is wrong" } else { "no admin token" };
            return Err(Refusal {
                status: 401,
                why: format!("{why}: send `Authorization: Bearer TOKEN`, the token in the host's admin token file or {TOKEN_ENV} (the CLI does)"),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access() -> Access {
        Access::new(Token::new("0123456789abcdef0123", "test").unwrap(), "127.0.0.1:7931", "127.0.0.1:7931".parse().unwrap())
    }

    fn status(asked: Asked) -> u16 {
        access().check(&asked).err().map_or(200, |r| r.status)
    }

    const TOKEN: &str = "Bearer 0123456789abcdef0123";

    #[test]
    fn changes_need_the_token_and_reads_do_not() {
        let host = Some("127.0.0.1:7931");
        assert_eq!(status(Asked { needs_token: true, host, authorization: Some(TOKEN), ..Default::default() }), 200);
        assert_eq!(status(Asked { needs_token: true, host, ..Default::default() }), 401);
        assert_eq!(status(Asked { needs_token: true, host, authorization: Some("Bearer 0123456789abcdef0124"), ..Default::default() }), 401);
        assert_eq!(status(Asked { needs_token: true, host, authorization: Some("0123456789abcdef0123"), ..Default::default() }), 401);
        assert_eq!(status(Asked { host, ..Default::default() }), 200);
    }

    #[test]
    fn a_foreign_host_or_origin_is_refused_even_with_the_token() {
        let with = |host, origin| Asked { needs_token: true, host, origin, authorization: Some(TOKEN) };
        assert_eq!(status(with(Some("evil.example:7931"), None)), 403);
        assert_eq!(status(with(None, None)), 403);
        assert_eq!(status(with(Some("LOCALHOST:7931"), None)), 200);
        assert_eq!(status(with(Some("127.0.0.1:7931"), Some("http://evil.example"))), 403);
        assert_eq!(status(with(Some("127.0.0.1:7931"), Some("null"))), 403);
        assert_eq!(status(with(Some("127.0.0.1:7931"), Some("http://127.0.0.1:7931"))), 200);
        assert_eq!(status(Asked { host: Some("evil.example:7931"), ..Default::default() }), 403, "reads are checked too");
    }

    #[test]
    fn a_made_token_file_is_private_and_read_back_and_a_readable_one_is_refused() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/admin.token");
        let (made, provenance) = host_token(&file).unwrap();
        assert_eq!(provenance, Provenance::Made);
        assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o777, 0o600);
        let (again, provenance) = host_token(&file).unwrap();
        assert_eq!((again.0 == made.0, provenance), (true, Provenance::Provisioned), "a second host takes the same token");
        assert_eq!(made.0.len(), TOKEN_BYTES * 2);

        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = format!("{:#}", client_token(&file).unwrap_err());
        assert!(error.contains("may be read by others") && error.contains("chmod 600"), "{error}");

        let link = dir.path().join("link.token");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(format!("{:#}", client_token(&link).unwrap_err()).contains("not a regular file"));
        assert!(client_token(&dir.path().join("none")).unwrap().is_none());
    }
}
