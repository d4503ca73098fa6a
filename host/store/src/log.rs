//! The commit log in front of the redb file: where a commit is made durable.
//!
//! Why a log: a redb commit rewrites every B-tree page a batch touches. A round of
//! events reaches sessions all over the table, so each commit dirtied a leaf and a
//! branch per session (about 190 KB written for 32 events, most of the engine's
//! time). Appending the batch's records to a file is one sequential write and one
//! `fdatasync`; the folder ([`crate::fold`]) writes them into the tables later, in
//! large batches in which each page is written once for many commits and each
//! session once for all its events.
//!
//! The log is a run of segment files `<store file>.log.<first seq>`, each a run of
//! frames `len: u32, crc32: u32, payload` (little-endian; the CRC covers the
//! payload). A payload is one [`Entry`]. Entries are numbered without gaps; the
//! redb file records the last one folded, so recovery (at open) folds exactly the
//! entries after it. A crash mid-append leaves a torn last frame: it was never
//! acknowledged (a commit returns after the sync), so it is cut off, with a
//! warning. Anything else that does not read back is damage and stops the open.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A new segment is started once the current one holds this many bytes, so that
/// folded entries are freed a segment at a time.
const SEGMENT_BYTES: u64 = 32 << 20;

/// Bytes of a frame's header: the payload's length and its CRC.
const HEADER: usize = 8;

/// What an entry writes, in the order the tables' keys name it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Key {
    /// A session, by tenant and session id.
    Session(String, String),
    /// A webhook delivery, by request id.
    Delivery(u64),
    /// A chat-action callback, by sequence number.
    Callback(u64),
    /// A tenant's held events.
    Held(String),
    /// One step of a session's history, by its number (the steps the session ever
    /// kept, counted from 0): written once, not with every change of the session.
    Step(String, String, u64),
    /// Removes a session's steps numbered below the value (8 bytes, little-endian):
    /// those its history dropped, or all of them (`u64::MAX`) when it was forgotten.
    /// Applied before the writes of the same fold.
    Trim(String, String),
}

/// The counters every commit writes whole.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Meta {
    /// The next request id.
    pub next_request: u64,
    /// The host time.
    pub now: u64,
    /// The next callback sequence number.
    pub next_callback: u64,
}

/// One write: the record's bytes, or `None` to remove it.
pub(crate) type Op = (Key, Option<Vec<u8>>);

/// One commit: its place in the log, the counters and the records it wrote, in the
/// order it wrote them (so that applying them in order gives the commit's result).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Its number: one more than the entry before it.
    pub seq: u64,
    /// The counters after it.
    pub meta: Meta,
    /// The records written and removed.
    pub ops: Vec<Op>,
}

/// Op tags in a payload.
mod tag {
    pub const SESSION: u8 = 1;
    pub const DELIVERY: u8 = 2;
    pub const CALLBACK: u8 = 3;
    pub const HELD: u8 = 4;
    pub const STEP: u8 = 5;
    pub const TRIM: u8 = 6;
    /// Added to a tag when the op writes a record (else it removes one).
    pub const PUT: u8 = 0x80;
}

impl Entry {
    /// Appends the entry's frame to `out`.
    fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0; HEADER]);
        for n in [
            self.seq,
            self.meta.next_request,
            self.meta.now,
            self.meta.next_callback,
        ] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        out.extend_from_slice(&(self.ops.len() as u32).to_le_bytes());
        for (key, value) in &self.ops {
            let put = if value.is_some() { tag::PUT } else { 0 };
            match key {
                Key::Session(tenant, session) => {
                    out.push(tag::SESSION | put);
                    put_bytes(out, tenant.as_bytes());
                    put_bytes(out, session.as_bytes());
                }
                Key::Delivery(request) => {
                    out.push(tag::DELIVERY | put);
                    out.extend_from_slice(&request.to_le_bytes());
                }
                Key::Callback(seq) => {
                    out.push(tag::CALLBACK | put);
                    out.extend_from_slice(&seq.to_le_bytes());
                }
                Key::Held(tenant) => {
                    out.push(tag::HELD | put);
                    put_bytes(out, tenant.as_bytes());
                }
                Key::Step(tenant, session, n) => {
                    out.push(tag::STEP | put);
                    put_bytes(out, tenant.as_bytes());
                    put_bytes(out, session.as_bytes());
                    out.extend_from_slice(&n.to_le_bytes());
                }
                Key::Trim(tenant, session) => {
                    out.push(tag::TRIM | put);
                    put_bytes(out, tenant.as_bytes());
                    put_bytes(out, session.as_bytes());
                }
            }
            if let Some(value) = value {
                put_bytes(out, value);
            }
        }
        let payload = &out[start + HEADER..];
        let len = payload.len() as u32;
        let crc = crc32fast::hash(payload);
        out[start..start + 4].copy_from_slice(&len.to_le_bytes());
        out[start + 4..start + HEADER].copy_from_slice(&crc.to_le_bytes());
    }

    /// Reads a payload whose CRC matched: an error here is a payload this build did
    /// not write.
    fn decode(payload: &[u8]) -> Result<Entry, &'static str> {
        let mut r = Reader(payload);
        let seq = r.u64()?;
        let meta = Meta {
            next_request: r.u64()?,
            now: r.u64()?,
            next_callback: r.u64()?,
        };
        let count = r.u32()? as usize;
        let mut ops = Vec::with_capacity(count.min(payload.len()));
        for _ in 0..count {
            let op = r.u8()?;
            let key = match op & !tag::PUT {
                tag::SESSION => Key::Session(r.string()?, r.string()?),
                tag::DELIVERY => Key::Delivery(r.u64()?),
                tag::CALLBACK => Key::Callback(r.u64()?),
                tag::HELD => Key::Held(r.string()?),
                tag::STEP => Key::Step(r.string()?, r.string()?, r.u64()?),
                tag::TRIM => Key::Trim(r.string()?, r.string()?),
                _ => return Err("an unknown record kind"),
            };
            let value = if op & tag::PUT != 0 {
                Some(r.bytes()?.to_vec())
            } else {
                None
            };
            ops.push((key, value));
        }
        if !r.0.is_empty() {
            return Err("bytes after the last record");
        }
        Ok(Entry { seq, meta, ops })
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Reads a payload front to back; every read checks the length left.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.0.len() < n {
            return Err("a record cut short");
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, &'static str> {
        let mut b = [0; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(b))
    }

    fn u64(&mut self) -> Result<u64, &'static str> {
        let mut b = [0; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }

    fn bytes(&mut self) -> Result<&'a [u8], &'static str> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    fn string(&mut self) -> Result<String, &'static str> {
        std::str::from_utf8(self.bytes()?)
            .map(str::to_owned)
            .map_err(|_| "a name that is not UTF-8")
    }
}

/// Why the log could not be read back.
#[derive(Debug)]
pub(crate) struct Damage {
    /// The segment.
    pub path: PathBuf,
    /// The byte offset of the bad frame.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
}

/// One segment read back.
#[derive(Debug, Default)]
pub(crate) struct Segment {
    /// Its entries, in order.
    pub entries: Vec<Entry>,
    /// Where a torn last frame starts and how many bytes it has, if there is one.
    pub torn: Option<(u64, u64)>,
}

/// Reads the segment `bytes` of `path`. A bad frame at the end (a header or payload
/// cut short, or a bad CRC with nothing but zeros after the frame) is a torn
/// append, reported in [`Segment::torn`]; a bad frame with data after it is
/// [`Damage`], and so is any frame of a segment that is not the last (`last`).
pub(crate) fn read_segment(path: &Path, bytes: &[u8], last: bool) -> Result<Segment, Damage> {
    let damage = |offset: usize, reason: String| Damage {
        path: path.to_owned(),
        offset: offset as u64,
        reason,
    };
    let mut segment = Segment::default();
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        let bad = if rest.len() < HEADER {
            Some((rest.len(), "a frame header cut short".to_owned()))
        } else {
            let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
            let end = HEADER.saturating_add(len);
            if len == 0 {
                Some((HEADER, "an empty frame".to_owned()))
            } else if rest.len() < end {
                Some((rest.len(), format!("a frame of {len} bytes cut short")))
            } else if crc32fast::hash(&rest[HEADER..end]) != crc {
                Some((end, "a frame whose checksum does not match".to_owned()))
            } else {
                let entry = Entry::decode(&rest[HEADER..end])
                    .map_err(|reason| damage(at, reason.to_owned()))?;
                segment.entries.push(entry);
                at += end;
                None
            }
        };
        if let Some((frame, reason)) = bad {
            let torn = rest[frame..].iter().all(|b| *b == 0);
            if !(last && torn) {
                return Err(damage(at, reason));
            }
            segment.torn = Some((at as u64, rest.len() as u64));
            break;
        }
    }
    Ok(segment)
}

/// The segments of the store `name` in `dir`, by first entry number.
pub(crate) fn segments(dir: &Path, name: &str) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let prefix = format!("{name}.log.");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let first = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(first) = first {
            found.push((first, path));
        }
    }
    found.sort();
    Ok(found)
}

/// Removes the segments all of whose entries are at most `folded`: each one whose
/// successor starts at or before `folded + 1`. The newest segment is always kept.
pub(crate) fn remove_folded(dir: &Path, name: &str, folded: u64) -> std::io::Result<()> {
    let found = segments(dir, name)?;
    for pair in found.windows(2) {
        if pair[1].0 <= folded.saturating_add(1) {
            std::fs::remove_file(&pair[0].1)?;
        }
    }
    Ok(())
}

/// The segment being appended to.
pub(crate) struct Log {
    dir: PathBuf,
    name: String,
    file: File,
    written: u64,
    next_seq: u64,
    buffer: Vec<u8>,
}

impl Log {
    /// Starts a new segment whose first entry is `next_seq`, and makes its name
    /// durable in `dir`.
    pub(crate) fn start(dir: &Path, name: &str, next_seq: u64) -> std::io::Result<Log> {
        let file = Self::create(dir, name, next_seq)?;
        Ok(Log {
            dir: dir.to_owned(),
            name: name.to_owned(),
            file,
            written: 0,
            next_seq,
            buffer: Vec::new(),
        })
    }

    fn create(dir: &Path, name: &str, first: u64) -> std::io::Result<File> {
        let path = dir.join(format!("{name}.log.{first:020}"));
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)?;
        File::open(dir)?.sync_all()?;
        Ok(file)
    }

    /// The number the next entry gets.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Writes `entry` (numbered [`Log::next_seq`]) and syncs it: when this returns
    /// `Ok`, the entry survives a crash of the process or the machine.
    pub(crate) fn append(&mut self, entry: &Entry) -> std::io::Result<()> {
        debug_assert_eq!(entry.seq, self.next_seq);
        if self.written >= SEGMENT_BYTES {
            self.file = Self::create(&self.dir, &self.name, self.next_seq)?;
            self.written = 0;
        }
        self.buffer.clear();
        entry.encode(&mut self.buffer);
        self.file.write_all(&self.buffer)?;
        self.file.sync_data()?;
        self.written += self.buffer.len() as u64;
        self.next_seq += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64) -> Entry {
        Entry {
            seq,
            meta: Meta {
                next_request: seq * 3,
                now: 1_000 + seq,
                next_callback: 7,
            },
            ops: vec![
                (
                    Key::Session("acme".into(), "s-é".into()),
                    Some(b"{\"a\":1}".to_vec()),
                ),
                (Key::Session("acme".into(), "gone".into()), None),
                (Key::Delivery(9), Some(Vec::new())),
                (Key::Callback(u64::MAX), None),
                (Key::Held("globex".into()), Some(vec![0, 255])),
                (
                    Key::Step("acme".into(), "s-é".into(), 41),
                    Some(b"{}".to_vec()),
                ),
                (
                    Key::Trim("acme".into(), "s-é".into()),
                    Some(40_u64.to_le_bytes().to_vec()),
                ),
            ],
        }
    }

    fn frames(seqs: std::ops::Range<u64>) -> Vec<u8> {
        let mut out = Vec::new();
        for seq in seqs {
            entry(seq).encode(&mut out);
        }
        out
    }

    #[test]
    fn entries_read_back_as_written() {
        let bytes = frames(1..4);
        let segment = read_segment(Path::new("s"), &bytes, false).expect("read");
        assert_eq!(segment.entries, vec![entry(1), entry(2), entry(3)]);
        assert!(segment.torn.is_none());
    }

    #[test]
    fn a_torn_last_frame_is_cut_off_only_in_the_last_segment() {
        let whole = frames(1..3);
        let first = frames(1..2).len();
        for cut in [first + 3, first + HEADER + 5, whole.len() - 1] {
            let bytes = &whole[..cut];
            let segment = read_segment(Path::new("s"), bytes, true).expect("torn tail");
            assert_eq!(segment.entries, vec![entry(1)], "cut at {cut}");
            assert_eq!(segment.torn, Some((first as u64, (cut - first) as u64)));
            let damage = read_segment(Path::new("s"), bytes, false).expect_err("not last");
            assert_eq!(damage.offset, first as u64);
        }
        // A frame zeroed by the file system after a crash, with zeros after it.
        let mut zeroed = frames(1..2);
        zeroed.extend_from_slice(&[0; 64]);
        let segment = read_segment(Path::new("s"), &zeroed, true).expect("zeros");
        assert_eq!(segment.entries.len(), 1);
        assert_eq!(segment.torn, Some((first as u64, 64)));
    }

    #[test]
    fn a_damaged_frame_with_data_after_it_stops_the_read() {
        let mut bytes = frames(1..4);
        let first = frames(1..2).len();
        bytes[first + HEADER + 3] ^= 0x40;
        let damage = read_segment(Path::new("seg"), &bytes, true).expect_err("damage");
        assert_eq!(damage.offset, first as u64);
        assert!(damage.reason.contains("checksum"), "{}", damage.reason);
    }

    #[test]
    fn segments_are_listed_in_order_and_folded_ones_removed() {
        let dir = std::env::temp_dir().join(format!("autoclose-log-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        for first in [1_u64, 40, 100] {
            Log::start(&dir, "x.redb", first).expect("start");
        }
        std::fs::write(dir.join("other.redb.log.00000000000000000002"), b"").expect("write");
        let firsts = |dir: &Path| -> Vec<u64> {
            segments(dir, "x.redb")
                .expect("list")
                .into_iter()
                .map(|(first, _)| first)
                .collect()
        };
        assert_eq!(firsts(&dir), vec![1, 40, 100]);
        remove_folded(&dir, "x.redb", 38).expect("remove");
        assert_eq!(firsts(&dir), vec![1, 40, 100], "entry 39 is not folded yet");
        remove_folded(&dir, "x.redb", 39).expect("remove");
        assert_eq!(firsts(&dir), vec![40, 100]);
        remove_folded(&dir, "x.redb", 5_000).expect("remove");
        assert_eq!(firsts(&dir), vec![100], "the newest segment stays");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
