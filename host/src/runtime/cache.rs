//! The compiled-plugin cache. A compiled component is native code that the
//! host maps and runs outside the sandbox, so the cache vouches for each
//! artifact it hands back:
//!
//! - the directory is private ([`crate::private::directory`]: made 0700,
//!   refused when others may write it or another user owns it);
//! - an artifact is named by the full sha256 of its component and the
//!   engine's compatibility hash (wasmtime's version and settings);
//! - each artifact carries an HMAC-SHA256, under a key kept beside the
//!   directory (`DIR.key`, 0600, made on first use), of the component's
//!   digest and the artifact: an artifact made for another component, or
//!   changed in any byte, fails the check and is compiled again.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::private;

/// The bytes of the cache's key.
pub const KEY_BYTES: usize = 32;
/// What a cached file starts with: the format, then the MAC.
pub const MAGIC: &[u8; 8] = b"PJCWASM1";
const MAC_BYTES: usize = 32;

pub struct Cache {
    dir: PathBuf,
    key: [u8; KEY_BYTES],
    engine: u64,
}

impl Cache {
    /// Opens (making it if missing) the cache in `dir`, for an engine whose
    /// compatibility hash is `engine`.
    pub fn open(dir: &Path, engine: impl std::hash::Hash) -> Result<Self> {
        private::directory(dir, "the compiled-plugin cache")?;
        let key_file = key_file(dir)?;
        let what = "the compiled-plugin cache's key";
        let key = match private::read(&key_file, what)? {
            Some(key) => key,
            None => {
                let fresh: [u8; KEY_BYTES] = rand::random();
                private::make(&key_file, &fresh, what)?;
                // Another host may have made it first: use whichever is there.
                private::read(&key_file, what)?.with_context(|| format!("{what} {} vanished", key_file.display()))?
            }
        };
        let key: [u8; KEY_BYTES] = key.try_into().map_err(|_| {
            anyhow::anyhow!("{what} {} is not {KEY_BYTES} bytes: remove it (the cache is then compiled again)", key_file.display())
        })?;
        use std::hash::Hasher;
        let mut hasher = std::hash::DefaultHasher::new();
        engine.hash(&mut hasher);
        Ok(Self { dir: dir.to_owned(), key, engine: hasher.finish() })
    }

    fn path(&self, digest: &[u8; 32]) -> PathBuf {
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{hex}-{:016x}.cwasm", self.engine))
    }

    fn mac(&self, digest: &[u8; 32], artifact: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        mac.update(digest);
        mac.update(artifact);
        mac
    }

    /// The artifact cached for the component with sha256 `digest`, if there
    /// is one; an error when there is one that fails its check.
    pub fn get(&self, digest: &[u8; 32]) -> Result<Option<Vec<u8>>> {
        let path = self.path(digest);
        let Some(mut bytes) = private::read(&path, "the cached compiled plugin")? else { return Ok(None) };
        let shown = path.display();
        if bytes.len() < MAGIC.len() + MAC_BYTES || !bytes.starts_with(MAGIC) {
            bail!("{shown} is not an artifact of this cache");
        }
        let artifact = bytes.split_off(MAGIC.len() + MAC_BYTES);
        let tag = &bytes[MAGIC.len()..];
        if self.mac(digest, &artifact).verify_slice(tag).is_err() {
            bail!("{shown} was not made by this host for this component (its MAC does not match): it was changed or replaced");
        }
        Ok(Some(artifact))
    }

    /// Caches `artifact`, compiled from the component with sha256 `digest`.
    pub fn put(&self, digest: &[u8; 32], artifact: &[u8]) -> Result<()> {
        let tag = self.mac(digest, artifact).finalize().into_bytes();
        let mut bytes = Vec::with_capacity(MAGIC.len() + MAC_BYTES + artifact.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&tag);
        bytes.extend_from_slice(artifact);
        private::replace(&self.path(digest), &bytes, "the cached compiled plugin")
    }
}

/// `DIR.key`, beside the directory: whoever may only write the directory
/// cannot forge a MAC.
fn key_file(dir: &Path) -> Result<PathBuf> {
    let name = dir.file_name().with_context(|| format!("the compiled-plugin cache {} must name a directory (not `..` or `/`)", dir.display()))?;
    let mut key = name.to_owned();
    key.push(".key");
    Ok(dir.with_file_name(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_artifact_is_given_back_only_for_its_own_component_and_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(&dir.path().join("cache"), 1u8).unwrap();
        assert!(dir.path().join("cache.key").exists(), "the key lives beside the directory");
        let (a, b) = ([1u8; 32], [2u8; 32]);
        assert!(cache.get(&a).unwrap().is_none());
        cache.put(&a, b"native code of a").unwrap();
        cache.put(&b, b"native code of b").unwrap();
        assert_eq!(cache.get(&a).unwrap().unwrap(), b"native code of a");

        // b's file put in a's place: refused.
        std::fs::copy(cache.path(&b), cache.path(&a)).unwrap();
        assert!(format!("{:#}", cache.get(&a).unwrap_err()).contains("MAC does not match"));

        // One byte of b's code changed: refused.
        let mut bytes = std::fs::read(cache.path(&b)).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        private::replace(&cache.path(&b), &bytes, "test").unwrap();
        assert!(cache.get(&b).is_err());

        // The same cache opened again keeps its key: a's artifact, put again, reads back.
        cache.put(&a, b"native code of a").unwrap();
        let again = Cache::open(&dir.path().join("cache"), 1u8).unwrap();
        assert_eq!(again.get(&a).unwrap().unwrap(), b"native code of a");
        // Another engine does not see it.
        assert!(Cache::open(&dir.path().join("cache"), 2u8).unwrap().get(&a).unwrap().is_none());
    }
}
