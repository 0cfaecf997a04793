//! `projector import`: a file of JSON lines into the event store, whole or not
//! at all, and once however often it is run.
//!
//! The file is read twice. The first pass checks every line (an error names the
//! file and the line, and nothing is written) and hashes the file's bytes. The
//! second writes: an event without an `id` gets one made from the file's hash
//! and its line, so importing the same file again finds every event present,
//! while two equal lines stay two events. The embedded log writes the whole
//! file in one transaction; EventStoreDB, which appends one stream at a time,
//! recognises events it holds by their ids.

use std::io::{BufRead, Cursor, Read};
use std::path::Path;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use super::{NewEvent, Writer};
use crate::runtime::limits::MAX_EVENT_BYTES;

/// Events per chunk handed to the writer, and the bytes of lines one chunk holds at most.
pub const IMPORT_CHUNK: usize = 10_000;
pub const IMPORT_CHUNK_BYTES: usize = 32 << 20;

/// The longest line `import` reads: the largest event, and room for its
/// stream, type, id and the JSON around them.
pub const MAX_LINE_BYTES: usize = MAX_EVENT_BYTES + (64 << 10);

/// The namespace of the ids `import` makes (a UUID v5 of the file's hash and the line).
pub const IMPORT_ID_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x5d1c_7a0e_2f4b_4c1e_9b8a_6f3d_2e1c_0b9a);

/// What an import did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Imported {
    /// Events appended now.
    pub appended: u64,
    /// Events the store held already (from an earlier import of the file).
    pub present: u64,
}

/// A file of JSON lines ("-": standard input, read whole first).
pub struct ImportFile {
    name: String,
    bytes: Option<Vec<u8>>,
    path: std::path::PathBuf,
}

impl ImportFile {
    pub fn open(path: &Path) -> Result<Self> {
        if path.as_os_str() == "-" {
            let mut bytes = Vec::new();
            std::io::stdin().lock().read_to_end(&mut bytes).context("cannot read standard input")?;
            return Ok(Self { name: "standard input".into(), bytes: Some(bytes), path: path.to_owned() });
        }
        if path.is_dir() {
            bail!("{} is a directory, not a file of JSON lines", path.display());
        }
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        Ok(Self { name: path.display().to_string(), bytes: None, path: path.to_owned() })
    }

    fn reader(&self) -> Result<Box<dyn BufRead + '_>> {
        Ok(match &self.bytes {
            Some(bytes) => Box::new(Cursor::new(bytes.as_slice())),
            None => Box::new(std::io::BufReader::new(
                std::fs::File::open(&self.path).with_context(|| format!("cannot open {}", self.name))?,
            )),
        })
    }

    /// Calls `each` with every event, its line number and the line's length, in order.
    fn lines(&self, mut each: impl FnMut(usize, NewEvent, usize) -> Result<()>) -> Result<Sha256> {
        let mut reader = self.reader()?;
        let mut hash = Sha256::new();
        let mut line = Vec::new();
        let mut number = 0;
        loop {
            line.clear();
            // Never more than one line beyond the largest event is read into memory.
            let read = (&mut reader)
                .take(MAX_LINE_BYTES as u64 + 1)
                .read_until(b'\n', &mut line)
                .with_context(|| format!("cannot read {}", self.name))?;
            if read == 0 {
                return Ok(hash);
            }
            number += 1;
            if line.len() > MAX_LINE_BYTES {
                bail!(
                    "{} line {number} is longer than {} bytes: the largest event Projector takes is {} MiB of data and metadata; nothing was written",
                    self.name,
                    MAX_LINE_BYTES,
                    MAX_EVENT_BYTES >> 20
                );
            }
            hash.update(&line);
            let text = std::str::from_utf8(&line).map_err(|e| anyhow::anyhow!("{} line {number} is not UTF-8 text: {e}", self.name))?;
            if text.trim().is_empty() {
                continue;
            }
            let event: NewEvent = serde_json::from_str(text).with_context(|| format!("{} line {number} is not an event", self.name))?;
            event.check().with_context(|| format!("{} line {number}", self.name))?;
            each(number, event, line.len())?;
        }
    }

    /// Checks every line, then writes every event through `writer`.
    pub fn import(&self, writer: &mut dyn Writer) -> Result<Imported> {
        let first = self.lines(|_, _, _| Ok(()))?.finalize();
        let digest = hex(&first);
        let mut session = writer.begin_import()?;
        let mut imported = Imported::default();
        let mut chunk = Vec::with_capacity(IMPORT_CHUNK);
        let mut chunk_bytes = 0;
        let second = self.lines(|number, mut event, bytes| {
            event.id.get_or_insert_with(|| uuid::Uuid::new_v5(&IMPORT_ID_NAMESPACE, format!("{digest}:{number}").as_bytes()));
            chunk.push(event);
            chunk_bytes += bytes;
            if chunk.len() == IMPORT_CHUNK || chunk_bytes >= IMPORT_CHUNK_BYTES {
                chunk_bytes = 0;
                imported.add(session.add(&chunk).with_context(|| format!("cannot import {} (before line {number})", self.name))?);
                chunk.clear();
            }
            Ok(())
        })?;
        imported.add(session.add(&chunk).with_context(|| format!("cannot import {}", self.name))?);
        if second.finalize() != first {
            bail!("{} changed while it was imported; nothing was written: import it again", self.name);
        }
        session.commit().with_context(|| format!("cannot import {}", self.name))?;
        Ok(imported)
    }
}

impl Imported {
    fn add(&mut self, other: Imported) {
        self.appended += other.appended;
        self.present += other.present;
    }
}

/// An import under way; what it added is kept only once `commit` returns,
/// where the store can do that (the embedded log).
pub trait ImportSession {
    /// Appends the events the store does not hold yet (by id); says how many
    /// it appended and how many it held.
    fn add(&mut self, events: &[NewEvent]) -> Result<Imported>;

    fn commit(self: Box<Self>) -> Result<()>;
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
