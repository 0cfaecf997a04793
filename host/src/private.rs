//! Files and directories only the operator may use: the admin token, the
//! compiled-plugin cache and its key. They are made private (files 0600,
//! directories 0700) and all at once, and refused, as ssh refuses its keys,
//! when they are links, belong to another user, or others may write them
//! (files: or read them).

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use anyhow::{bail, Context, Result};

fn own_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Reads the private file `what` at `path`; `None` when there is none.
pub fn read(path: &Path, what: &str) -> Result<Option<Vec<u8>>> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {what} {}", path.display())),
    };
    let shown = path.display();
    if !meta.file_type().is_file() {
        bail!("{what} {shown} is not a regular file (a link or a directory): remove it, and a new one is made");
    }
    if meta.uid() != own_uid() {
        bail!("{what} {shown} belongs to another user (uid {}): it must be the operator's own", meta.uid());
    }
    if meta.mode() & 0o077 != 0 {
        bail!("{what} {shown} may be read by others (mode {:o}): `chmod 600 {shown}`", meta.mode() & 0o777);
    }
    std::fs::read(path).map(Some).with_context(|| format!("cannot read {what} {shown}"))
}

/// Makes the private file `what` at `path` holding `bytes`, mode 0600, all at
/// once (written aside, then linked in: no reader sees it half written).
/// `false`: it exists already, and is left as it is.
pub fn make(path: &Path, bytes: &[u8], what: &str) -> Result<bool> {
    let shown = path.display();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot make the directory of {what} {shown}"))?;
    }
    let aside = path.with_extension(format!("new-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut out = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&aside)?;
        out.write_all(bytes)?;
        out.sync_all()
    };
    let written = write().and_then(|()| std::fs::hard_link(&aside, path));
    let _ = std::fs::remove_file(&aside);
    match written {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot write {what} {shown}")),
    }
}

/// Replaces the file at `path` with one holding `bytes`, mode 0600, all at
/// once (written aside, then renamed over it).
pub fn replace(path: &Path, bytes: &[u8], what: &str) -> Result<()> {
    let aside = path.with_extension(format!("new-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let _ = std::fs::remove_file(&aside);
        let mut out = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&aside)?;
        out.write_all(bytes)?;
        drop(out);
        std::fs::rename(&aside, path)
    };
    write().inspect_err(|_| drop(std::fs::remove_file(&aside))).with_context(|| format!("cannot write {what} {}", path.display()))
}

/// Makes the private directory `what` at `path` (mode 0700) if it is missing;
/// refuses one that is a link, another user's, or writable by others.
pub fn directory(path: &Path, what: &str) -> Result<()> {
    // `DIR/` and `DIR/.` would follow a link named DIR: look at DIR itself.
    let path: std::path::PathBuf = path.components().collect();
    let path = path.as_path();
    let shown = path.display();
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).with_context(|| format!("cannot make the parent of {what} {shown}"))?;
            }
            match std::fs::DirBuilder::new().mode(0o700).create(path) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::symlink_metadata(path)?,
                Err(e) => return Err(e).with_context(|| format!("cannot make {what} {shown}")),
            }
        }
        Err(e) => return Err(e).with_context(|| format!("cannot use {what} {shown}")),
    };
    if !meta.file_type().is_dir() {
        bail!("{what} {shown} is not a directory (a link or a file): point it at a directory of your own");
    }
    if meta.uid() != own_uid() {
        bail!("{what} {shown} belongs to another user (uid {}): what is in it would run in this host; use a directory of your own", meta.uid());
    }
    if meta.mode() & 0o022 != 0 {
        bail!("{what} {shown} may be written by others (mode {:o}), and what is in it would run in this host: `chmod go-w {shown}`", meta.mode() & 0o777);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_made_file_is_private_and_once_made_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/secret");
        assert!(make(&file, b"one", "the secret").unwrap());
        assert!(!make(&file, b"two", "the secret").unwrap());
        assert_eq!(read(&file, "the secret").unwrap().unwrap(), b"one");
        assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o777, 0o600);
        replace(&file, b"three", "the secret").unwrap();
        assert_eq!(read(&file, "the secret").unwrap().unwrap(), b"three");
        assert!(read(&dir.path().join("none"), "the secret").unwrap().is_none());
    }

    #[test]
    fn files_others_may_read_links_and_open_directories_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        make(&file, b"x", "the secret").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = format!("{:#}", read(&file, "the secret").unwrap_err());
        assert!(error.contains("may be read by others") && error.contains(&file.display().to_string()), "{error}");

        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(format!("{:#}", read(&link, "the secret").unwrap_err()).contains("not a regular file"));

        let cache = dir.path().join("cache");
        directory(&cache, "the cache").unwrap();
        assert_eq!(std::fs::metadata(&cache).unwrap().mode() & 0o777, 0o700);
        let link = dir.path().join("cache-link");
        std::os::unix::fs::symlink(&cache, &link).unwrap();
        for named in ["cache-link", "cache-link/", "cache-link/."] {
            let error = format!("{:#}", directory(&dir.path().join(named), "the cache").unwrap_err());
            assert!(error.contains("not a directory (a link"), "{named}: {error}");
        }
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
        let error = format!("{:#}", directory(&cache, "the cache").unwrap_err());
        assert!(error.contains("may be written by others") && error.contains("chmod go-w"), "{error}");
    }
}
