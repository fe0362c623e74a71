//! Checkpoints and shards: the replicate statistics of a run's resampling
//! streams kept on disk in ranges, so that a killed run resumes where it
//! stopped and a run split over machines merges into the single run.
//!
//! A *stream* is one call of the aggregator (the pooled model, each other
//! mediator set, each group, each contrast, each side of a label test), in
//! the run's fixed order; a stream's rows are its engine's replicate
//! statistics. They are stored as *segments*: `sSSSS-FROM-TO.bin`, a
//! 24-byte header (magic, stream, width, first replicate), the rows as
//! little-endian f64 and a 4-byte CRC-32C of all that comes before it (so
//! flipped bytes are found, not only a short file), written to a
//! temporary file, flushed to disk and
//! renamed into place, so a segment either exists whole or not at all (a
//! SIGKILL loses at most the rows since the last checkpoint). The folder's
//! `run.json` ([`Header`]) says which command wrote it, with which config
//! and medsim version.
//!
//! A resumed or merged run goes through the same aggregator over the same
//! rows in the same order, so its summary is the uninterrupted run's, bit
//! for bit; the aggregator's state is rebuilt by replaying the stored rows
//! (seconds) rather than saved, and the BCa jackknife (G replicates) is
//! recomputed.

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::replicate::StatLayout;
use crate::resample::engine::{Backend, Engine};

const MAGIC: &[u8; 8] = b"MEDSIMR2";
const HEADER_BYTES: u64 = 24;
/// The CRC-32C after the rows.
const TRAILER_BYTES: u64 = 4;
/// Rows held in memory before they go to the open segment's temporary file:
/// a few engine chunks, so a run's memory does not grow with the rows
/// between checkpoints (64 MiB, doubled by the vector's growth, was a third
/// of a 1e6-replicate GPU run's peak).
const SPILL_BYTES: usize = 8 << 20;
/// The header file of a checkpoint or shard folder.
pub const HEADER_FILE: &str = "run.json";

fn io_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Output {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

fn bad(path: &Path, message: impl Into<String>) -> Error {
    Error::InvalidOption {
        option: path.display().to_string(),
        message: message.into(),
    }
}

/// Part `index` of `count` (0-based): `--shard I/N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    /// `I/N` with `0 <= I < N`.
    pub fn parse(text: &str) -> Result<Shard> {
        let err = |m: &str| Error::InvalidOption {
            option: "scale.shard".into(),
            message: format!("'{text}': {m}"),
        };
        let (i, n) = text
            .split_once('/')
            .ok_or_else(|| err("expected I/N, e.g. 0/8 for the first of 8 parts"))?;
        let index: u64 = i
            .trim()
            .parse()
            .map_err(|_| err("I is not a whole number"))?;
        let count: u64 = n
            .trim()
            .parse()
            .map_err(|_| err("N is not a whole number"))?;
        if count == 0 || index >= count {
            return Err(err(
                "I counts from 0 and must be below N (0/8 .. 7/8 for 8 parts)",
            ));
        }
        Ok(Shard { index, count })
    }

    /// This part's items `from .. to` of `total` (contiguous, the parts in
    /// order covering every item once).
    pub fn range(&self, total: u64) -> (u64, u64) {
        let at = |i: u64| (total as u128 * i as u128 / self.count as u128) as u64;
        (at(self.index), at(self.index + 1))
    }

    /// The shard's folder name, `III-of-NNN`.
    pub fn folder(&self) -> String {
        format!("{:03}-of-{:03}", self.index, self.count)
    }
}

/// `run.json` of a checkpoint or shard folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub medsim: String,
    pub git_revision: String,
    /// The subcommand (`run`, `sensitivity`, `sweep`, `simulate`).
    pub command: String,
    /// The command line and the folder it ran in, which `--resume` and
    /// `medsim merge` run again.
    pub argv: Vec<String>,
    pub cwd: PathBuf,
    /// What the results depend on: the configs after the flags (less the
    /// output settings, threads and batch sizes) and the inputs' SHA-256.
    pub config: serde_json::Value,
    pub fingerprint: String,
    pub shard: Option<Shard>,
    /// Set when a shard finished its part.
    pub complete: bool,
    /// The engine of the replicates (a shard's, for the merged summary).
    pub engine: Option<Backend>,
}

impl Header {
    /// The header of a run of `command` whose results depend on `config`.
    pub fn new(command: &str, config: serde_json::Value, shard: Option<Shard>) -> Result<Header> {
        let text = serde_json::to_string(&config).map_err(|e| Error::Numerical(e.to_string()))?;
        Ok(Header {
            medsim: env!("CARGO_PKG_VERSION").into(),
            git_revision: crate::provenance::GIT_REVISION.into(),
            command: command.into(),
            argv: std::env::args().collect(),
            cwd: std::env::current_dir().unwrap_or_default(),
            fingerprint: crate::provenance::sha256_hex(text.as_bytes()),
            config,
            shard,
            complete: false,
            engine: None,
        })
    }

    /// The header in folder `dir`.
    pub fn read(dir: &Path) -> Result<Header> {
        let path = dir.join(HEADER_FILE);
        let text = fs::read_to_string(&path).map_err(|e| {
            bad(
                dir,
                format!(
                    "no checkpoint or shard here ({HEADER_FILE}: {e}); a run writes its checkpoint \
                     into RESULTS/checkpoint and a shard into RESULTS-shards/I-of-N"
                ),
            )
        })?;
        serde_json::from_str(&text)
            .map_err(|e| bad(&path, format!("not a medsim {HEADER_FILE}: {e}")))
    }

    /// Write it into `dir`, atomically.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let text =
            serde_json::to_string_pretty(self).map_err(|e| Error::Numerical(e.to_string()))?;
        write_atomic(&dir.join(HEADER_FILE), text.as_bytes())
    }

    /// Refuse a header written by another medsim or for other results:
    /// `what` names the folder's role in the message.
    pub fn check_same(&self, other: &Header, what: &str) -> Result<()> {
        if (self.medsim.as_str(), self.git_revision.as_str())
            != (other.medsim.as_str(), other.git_revision.as_str())
        {
            return Err(Error::InvalidOption {
                option: what.into(),
                message: format!(
                    "written by medsim {} ({}), but this is medsim {} ({}); replicates of \
                     different versions may differ, so they are not combined",
                    other.medsim, other.git_revision, self.medsim, self.git_revision
                ),
            });
        }
        if self.command != other.command {
            return Err(Error::InvalidOption {
                option: what.into(),
                message: format!(
                    "written by `medsim {}`, not `medsim {}`",
                    other.command, self.command
                ),
            });
        }
        if self.fingerprint != other.fingerprint {
            let at = describe_difference(&self.config, &other.config)
                .unwrap_or_else(|| "the inputs".into());
            return Err(Error::InvalidOption {
                option: what.into(),
                message: format!(
                    "written for a different run: {at}; the same config, data and seed are needed"
                ),
            });
        }
        Ok(())
    }
}

/// The first key where two JSON values differ, with both values.
fn first_difference(a: &serde_json::Value, b: &serde_json::Value, at: &str) -> Option<String> {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                let key = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                match y.get(k) {
                    Some(w) => {
                        if let Some(d) = first_difference(v, w, &key) {
                            return Some(d);
                        }
                    }
                    None => return Some(format!("{key} is {v} here and absent there")),
                }
            }
            y.keys()
                .find(|k| !x.contains_key(*k))
                .map(|k| format!("{at}.{k} is absent here and {} there", y[k]))
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (v, w))| first_difference(v, w, &format!("{at}[{i}]"))),
        _ if a == b => None,
        _ => Some(format!("{at} is {a} here and {b} there")),
    }
}

/// [`first_difference`] of two results configs (`scale::results_config`)
/// in a reader's words: a config key, a sweep point's key, or a data file.
fn describe_difference(a: &serde_json::Value, b: &serde_json::Value) -> Option<String> {
    let d = first_difference(a, b, "")?;
    if let Some(rest) = d.strip_prefix("configs[0].") {
        return Some(rest.to_string());
    }
    if let Some(rest) = d.strip_prefix("inputs.") {
        return Some(format!("the input file {rest} (SHA-256): it changed"));
    }
    if let Some((index, rest)) = d.strip_prefix("configs[").and_then(|r| r.split_once("]."))
        && let Ok(i) = index.parse::<usize>()
    {
        return Some(format!("sweep point {}: {rest}", i + 1));
    }
    Some(d)
}

/// `values` as little-endian bytes (on a little-endian machine, their own).
fn le_bytes(values: &[f64]) -> std::borrow::Cow<'_, [u8]> {
    if cfg!(target_endian = "little") {
        std::borrow::Cow::Borrowed(bytemuck::cast_slice(values))
    } else {
        std::borrow::Cow::Owned(values.iter().flat_map(|v| v.to_le_bytes()).collect())
    }
}

/// Write `bytes` to `path` through a flushed temporary file and a rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
    f.write_all(bytes).map_err(|e| io_err(&tmp, e))?;
    f.sync_all().map_err(|e| io_err(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| io_err(path, e))
}

/// One stored range of a stream.
#[derive(Debug, Clone, PartialEq)]
struct Segment {
    stream: u32,
    width: u32,
    from: u64,
    to: u64,
    path: PathBuf,
}

fn segment_name(stream: u32, from: u64, to: u64) -> String {
    format!("s{stream:04}-{from:015}-{to:015}.bin")
}

/// What to do with a damaged segment.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Damaged {
    /// Refuse, naming the file (a merge: the part must be run again).
    Refuse,
    /// Remove it with a warning, so its replicates are computed again (a
    /// resumed run).
    Recompute,
}

/// The segments in `dir`, each checked against its name, its size and its
/// checksum.
fn load_segments(dir: &Path, damaged: Damaged) -> Result<Vec<Segment>> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_err(dir, e)),
    };
    let mut paths: Vec<PathBuf> = Vec::new();
    for entry in entries {
        paths.push(entry.map_err(|e| io_err(dir, e))?.path());
    }
    paths.sort();
    for path in paths {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !(name.starts_with('s') && name.ends_with(".bin")) {
            continue;
        }
        match check_segment(&path) {
            Ok(segment) => out.push(segment),
            Err(problem) if damaged == Damaged::Refuse => {
                return Err(bad(
                    &path,
                    format!(
                        "{problem}: the file is damaged; run the part that wrote it again \
                         (it recomputes what is missing), then merge"
                    ),
                ));
            }
            Err(problem) => {
                crate::notices::notify(format!(
                    "warning: {}: {problem}: the file is damaged; its replicates are computed again",
                    path.display()
                ));
                fs::remove_file(&path).map_err(|e| io_err(&path, e))?;
            }
        }
    }
    out.sort_by_key(|s| (s.stream, s.from));
    Ok(out)
}

/// The segment at `path`, or what is wrong with it.
fn check_segment(path: &Path) -> std::result::Result<Segment, String> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let parts: Vec<&str> = name
        .strip_suffix(".bin")
        .and_then(|s| s.strip_prefix('s'))
        .map(|stem| stem.split('-').collect())
        .unwrap_or_default();
    let parsed = (parts.len() == 3)
        .then(|| {
            Some((
                parts[0].parse::<u32>().ok()?,
                parts[1].parse::<u64>().ok()?,
                parts[2].parse::<u64>().ok()?,
            ))
        })
        .flatten();
    let (stream, from, to) = parsed.ok_or("not a segment name")?;
    let mut f = fs::File::open(path).map_err(|e| e.to_string())?;
    let len = f.metadata().map_err(|e| e.to_string())?.len();
    let mut head = [0u8; HEADER_BYTES as usize];
    f.read_exact(&mut head)
        .map_err(|_| "shorter than a segment header")?;
    let word = |i: usize| u32::from_le_bytes(head[i..i + 4].try_into().expect("4 bytes"));
    let first = u64::from_le_bytes(head[16..24].try_into().expect("8 bytes"));
    let width = word(12);
    if &head[..8] != MAGIC {
        return Err("not a segment of this medsim version".into());
    }
    if word(8) != stream || first != from || to <= from || width == 0 {
        return Err("its header does not match its name".into());
    }
    let body = (to - from)
        .checked_mul(width as u64 * 8)
        .ok_or("its header does not match its name")?;
    if len != HEADER_BYTES + body + TRAILER_BYTES {
        return Err("its length does not match its replicates".into());
    }
    // The checksum over header and rows, read in blocks.
    let mut crc = crc32c::crc32c(&head);
    let mut left = body;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        f.read_exact(&mut buf[..n]).map_err(|e| e.to_string())?;
        crc = crc32c::crc32c_append(crc, &buf[..n]);
        left -= n as u64;
    }
    let mut trailer = [0u8; TRAILER_BYTES as usize];
    f.read_exact(&mut trailer).map_err(|e| e.to_string())?;
    if u32::from_le_bytes(trailer) != crc {
        return Err("its checksum does not match its contents (bytes changed)".into());
    }
    Ok(Segment {
        stream,
        width,
        from,
        to,
        path: path.to_path_buf(),
    })
}

/// Remove temporary segments a killed run left in `dir`.
fn remove_temporaries(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "tmp") {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

/// The replicate statistics of a run's streams on disk.
pub struct Store {
    /// Folder new segments go to (None: a merge, which only reads).
    write: Option<PathBuf>,
    /// Seconds between checkpoints: rows computed are made durable at
    /// least this often.
    every: Duration,
    /// A shard computes only this part of each stream.
    shard: Option<Shard>,
    segments: Vec<Segment>,
    next_stream: AtomicU32,
    /// Replicates served from disk rather than computed.
    reused: AtomicU64,
    /// The engine the stored replicates came from (a merge's summary
    /// reports it).
    engine: Option<Backend>,
    opened: Instant,
    /// The last checkpoint (or the opening).
    last: Mutex<Instant>,
    /// A checkpoint could not be written (a full disk): the run goes on
    /// without (a shard, whose part is its output, stops instead).
    broken: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Store({:?}, {} segments)",
            self.write,
            self.segments.len()
        )
    }
}

impl Store {
    /// A checkpoint (or, with `shard`, a shard) in folder `dir`, keeping its
    /// segments when `keep` (resuming) and starting empty otherwise.
    pub fn open(dir: &Path, every: Duration, shard: Option<Shard>, keep: bool) -> Result<Store> {
        fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        remove_temporaries(dir);
        if !keep {
            // Every segment, damaged ones too.
            if let Ok(entries) = fs::read_dir(dir) {
                for e in entries.flatten() {
                    if e.path().extension().is_some_and(|x| x == "bin") {
                        let _ = fs::remove_file(e.path());
                    }
                }
            }
        }
        Ok(Store {
            write: Some(dir.to_path_buf()),
            every,
            shard,
            segments: if keep {
                load_segments(dir, Damaged::Recompute)?
            } else {
                vec![]
            },
            next_stream: AtomicU32::new(0),
            reused: AtomicU64::new(0),
            engine: None,
            opened: Instant::now(),
            last: Mutex::new(Instant::now()),
            broken: Default::default(),
        })
    }

    /// The union of shard folders `dirs`, read only; `engine` is theirs.
    /// Refuses ranges stored twice.
    pub fn merge(dirs: &[PathBuf], engine: Option<Backend>) -> Result<Store> {
        let mut segments = Vec::new();
        for d in dirs {
            segments.extend(load_segments(d, Damaged::Refuse)?);
        }
        segments.sort_by_key(|s| (s.stream, s.from));
        for w in segments.windows(2) {
            if w[0].stream == w[1].stream && w[1].from < w[0].to {
                return Err(Error::InvalidOption {
                    option: "medsim merge".into(),
                    message: format!(
                        "replicates {}..{} of stream {} are in two shards ({} and {}): \
                         the shards overlap; give each part once",
                        w[1].from,
                        w[0].to.min(w[1].to),
                        w[0].stream,
                        w[0].path.display(),
                        w[1].path.display()
                    ),
                });
            }
        }
        Ok(Store {
            write: None,
            every: Duration::MAX,
            shard: None,
            segments,
            next_stream: AtomicU32::new(0),
            reused: AtomicU64::new(0),
            engine,
            opened: Instant::now(),
            last: Mutex::new(Instant::now()),
            broken: Default::default(),
        })
    }

    /// The part this store computes, if it is a shard's.
    pub fn shard(&self) -> Option<Shard> {
        self.shard
    }

    /// Whether a checkpoint is due (the interval passed since the last);
    /// if so, the clock restarts.
    fn due(&self) -> bool {
        let mut last = self.last.lock().expect("checkpoint clock");
        let due = last.elapsed() >= self.every;
        if due {
            *last = Instant::now();
        }
        due
    }

    /// Replicates served from disk so far.
    pub fn reused(&self) -> u64 {
        self.reused.load(Ordering::Relaxed)
    }

    /// Replicates stored, over every stream.
    pub fn stored(&self) -> u64 {
        self.segments.iter().map(|s| s.to - s.from).sum()
    }

    /// Refuse a stream whose rows cannot fit on the disk the store is on
    /// (`--checkpoint-every 0` keeps none); a large one is announced.
    fn check_disk(
        &self,
        dir: &Path,
        id: u32,
        width: usize,
        total: u64,
        segments: &[Segment],
    ) -> Result<()> {
        let (from, to) = self.shard.map_or((0, total), |s| s.range(total));
        let stored: u64 = segments
            .iter()
            .map(|s| s.to.min(to).saturating_sub(s.from.max(from)))
            .sum();
        let rows = (to - from).saturating_sub(stored);
        let bytes = rows as f64 * width as f64 * 8.0;
        let Some(free) = crate::resources::free_disk(dir) else {
            return Ok(());
        };
        let human = crate::resources::human;
        if bytes > free as f64 {
            return Err(Error::InvalidOption {
                option: "scale.checkpoint_every".into(),
                message: format!(
                    "the stored replicates of resampling {} ({rows} replicates x {width} \
                     statistics x 8 bytes) need {}, and the disk holding {} has {} free; \
                     free space, store them elsewhere (another results folder), or keep no \
                     checkpoints (scale.checkpoint_every = 0)",
                    id + 1,
                    human(bytes),
                    dir.display(),
                    human(free as f64)
                ),
            });
        }
        if bytes > 1e9 || bytes > 0.1 * free as f64 {
            crate::notices::notify(format!(
                "note: checkpoints of resampling {} may take {} of the {} free on the disk \
                 holding {} (scale.checkpoint_every = 0 keeps none)",
                id + 1,
                human(bytes),
                human(free as f64),
                dir.display()
            ));
        }
        Ok(())
    }

    /// The run's next stream, `inner` computing what is not stored;
    /// `total` replicates.
    pub fn stream<'a>(&'a self, inner: &'a dyn Engine, total: u64) -> Result<Stored<'a>> {
        self.next(Source::Engine(inner), inner.layout().len(), total)
    }

    /// The run's next stream of `total` items that are not replicates (a
    /// simulation cell's datasets), `width` values each, `compute(first,
    /// out)` filling the rows of items `first ..` (`chunk` at a time).
    pub fn items<'a>(
        &'a self,
        width: usize,
        total: u64,
        chunk: usize,
        compute: &'a (dyn Fn(u64, &mut [f64]) -> Result<()> + Sync),
    ) -> Result<Stored<'a>> {
        self.next(Source::Items { chunk, compute }, width, total)
    }

    fn next<'a>(&'a self, source: Source<'a>, width: usize, total: u64) -> Result<Stored<'a>> {
        let id = self.next_stream.fetch_add(1, Ordering::Relaxed);
        let segments: Vec<Segment> = self
            .segments
            .iter()
            .filter(|s| s.stream == id)
            .cloned()
            .collect();
        if let Some(s) = segments.iter().find(|s| s.width as usize != width) {
            return Err(bad(
                &s.path,
                format!(
                    "holds {} statistics per replicate where this run's stream {id} has {width}: \
                     it is another run's",
                    s.width
                ),
            ));
        }
        if let Some(s) = segments.iter().find(|s| s.to > total) {
            return Err(bad(
                &s.path,
                format!(
                    "holds replicates up to {} of a stream of {total}: it is another run's",
                    s.to
                ),
            ));
        }
        if let Some(dir) = &self.write {
            self.check_disk(dir, id, width, total, &segments)?;
        }
        Ok(Stored {
            store: self,
            source,
            id,
            width,
            segments,
            written: Mutex::new(Vec::new()),
            pending: Mutex::new(Pending::default()),
        })
    }
}

/// A run's store, shared by its resampling specs (equal when the same).
#[derive(Clone)]
pub struct StoreRef(pub Arc<Store>);

impl PartialEq for StoreRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl std::fmt::Debug for StoreRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Rows computed since the last checkpoint.
#[derive(Default)]
struct Pending {
    from: u64,
    next: u64,
    rows: Vec<f64>,
    /// CRC-32C of the bytes written to the temporary file so far.
    crc: u32,
    /// The segment's temporary file, once the rows outgrew memory.
    file: Option<(PathBuf, std::io::BufWriter<fs::File>)>,
}

/// What computes a stream's rows that are not stored.
enum Source<'a> {
    Engine(&'a dyn Engine),
    Items {
        chunk: usize,
        compute: &'a (dyn Fn(u64, &mut [f64]) -> Result<()> + Sync),
    },
}

/// One stream of a [`Store`]: an engine serving stored replicates from disk
/// and computing the others with the run's engine, recording them.
pub struct Stored<'a> {
    store: &'a Store,
    source: Source<'a>,
    id: u32,
    width: usize,
    segments: Vec<Segment>,
    /// Segments this stream wrote.
    written: Mutex<Vec<Segment>>,
    pending: Mutex<Pending>,
}

impl Stored<'_> {
    /// Compute (or find stored) replicates `from .. to`, making them
    /// durable: a shard's part.
    pub fn fill(&self, from: u64, to: u64) -> Result<()> {
        let chunk = self.chunk().max(1) as u64;
        let mut buf = vec![0.0; (chunk.min(to - from) as usize).max(1) * self.width];
        let mut r = from;
        while r < to {
            let n = chunk.min(to - r) as usize;
            if self.covered(r).is_none() {
                self.rows(r, &mut buf[..n * self.width])?;
            }
            r = match self.covered(r) {
                Some(s) => s.to.min(to),
                None => r + n as u64,
            };
        }
        self.flush()
    }

    /// The stored segment holding replicate `r` (stored before, or
    /// written by this stream).
    fn covered(&self, r: u64) -> Option<Segment> {
        let held = |s: &&Segment| s.from <= r && r < s.to;
        if let Some(s) = self.segments.iter().find(held) {
            return Some(s.clone());
        }
        let written = self.written.lock().expect("checkpoint lock");
        written.iter().find(held).cloned()
    }

    /// The first stored replicate after `r`, if any.
    fn next_stored(&self, r: u64) -> Option<u64> {
        let written = self.written.lock().expect("checkpoint lock");
        self.segments
            .iter()
            .chain(written.iter())
            .filter(|s| s.from > r)
            .map(|s| s.from)
            .min()
    }

    /// Rows `from .. from + out.len() / width` of segment `s` into `out`.
    fn read(&self, s: &Segment, from: u64, out: &mut [f64]) -> Result<()> {
        let mut f = fs::File::open(&s.path).map_err(|e| io_err(&s.path, e))?;
        f.seek(SeekFrom::Start(
            HEADER_BYTES + (from - s.from) * self.width as u64 * 8,
        ))
        .map_err(|e| io_err(&s.path, e))?;
        if cfg!(target_endian = "little") {
            // The file's bytes are the values' own.
            return f
                .read_exact(bytemuck::cast_slice_mut(out))
                .map_err(|e| io_err(&s.path, e));
        }
        let mut bytes = vec![0u8; out.len() * 8];
        f.read_exact(&mut bytes).map_err(|e| io_err(&s.path, e))?;
        for (v, b) in out.iter_mut().zip(bytes.chunks_exact(8)) {
            *v = f64::from_le_bytes(b.try_into().expect("8 bytes"));
        }
        Ok(())
    }

    /// Whether rows are being recorded.
    fn recording(&self) -> Option<&Path> {
        let broken = self.store.broken.load(Ordering::Relaxed);
        self.store.write.as_deref().filter(|_| !broken)
    }

    /// The outcome of writing a checkpoint: a shard's failure is the run's;
    /// a plain run warns once and goes on without checkpoints.
    fn tolerate(&self, written: Result<()>) -> Result<()> {
        match written {
            Err(e) if self.store.shard.is_none() => {
                if !self.store.broken.swap(true, Ordering::Relaxed) {
                    crate::notices::notify(format!(
                        "warning: the checkpoint cannot be written ({e}); the run goes on \
                         without checkpoints"
                    ));
                }
                if let Ok(mut p) = self.pending.lock() {
                    if let Some((tmp, _)) = p.file.take() {
                        let _ = fs::remove_file(tmp);
                    }
                    *p = Pending::default();
                }
                Ok(())
            }
            other => other,
        }
    }

    /// Record freshly computed rows starting at replicate `start`.
    fn record(&self, start: u64, rows: &[f64]) -> Result<()> {
        let Some(dir) = self.recording() else {
            return Ok(());
        };
        let written = self.record_in(dir, start, rows);
        self.tolerate(written)
    }

    fn record_in(&self, dir: &Path, start: u64, rows: &[f64]) -> Result<()> {
        let mut p = self.pending.lock().expect("checkpoint lock");
        if p.next != p.from && start != p.next {
            self.finish_segment(&mut p, dir)?;
        }
        if p.next == p.from {
            p.from = start;
            p.next = start;
        }
        p.rows.extend_from_slice(rows);
        p.next += (rows.len() / self.width) as u64;
        if p.rows.len() * 8 >= SPILL_BYTES {
            self.spill(&mut p, dir)?;
        }
        if self.store.due() {
            self.finish_segment(&mut p, dir)?;
        }
        Ok(())
    }

    /// Move the pending rows into the segment's temporary file.
    fn spill(&self, p: &mut Pending, dir: &Path) -> Result<()> {
        if p.file.is_none() {
            let path = dir.join(format!("s{:04}-{:015}.tmp", self.id, p.from));
            let f = fs::File::create(&path).map_err(|e| io_err(&path, e))?;
            let mut w = std::io::BufWriter::new(f);
            let mut head = Vec::with_capacity(HEADER_BYTES as usize);
            head.extend_from_slice(MAGIC);
            head.extend_from_slice(&self.id.to_le_bytes());
            head.extend_from_slice(&(self.width as u32).to_le_bytes());
            head.extend_from_slice(&p.from.to_le_bytes());
            w.write_all(&head).map_err(|e| io_err(&path, e))?;
            p.crc = crc32c::crc32c(&head);
            p.file = Some((path, w));
        }
        let (path, w) = p.file.as_mut().expect("opened above");
        let bytes = le_bytes(&p.rows);
        w.write_all(&bytes).map_err(|e| io_err(path, e))?;
        p.crc = crc32c::crc32c_append(p.crc, &bytes);
        p.rows.clear();
        Ok(())
    }

    /// Make the pending rows a segment: flushed to disk, then renamed.
    fn finish_segment(&self, p: &mut Pending, dir: &Path) -> Result<()> {
        if p.next == p.from {
            return Ok(());
        }
        self.spill(p, dir)?;
        let (tmp, mut w) = p.file.take().expect("spilled above");
        w.write_all(&p.crc.to_le_bytes())
            .map_err(|e| io_err(&tmp, e))?;
        let f = w.into_inner().map_err(|e| io_err(&tmp, e.error()))?;
        f.sync_all().map_err(|e| io_err(&tmp, e))?;
        let path = dir.join(segment_name(self.id, p.from, p.next));
        fs::rename(&tmp, &path).map_err(|e| io_err(&path, e))?;
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        if self.store.shard.is_none() {
            static NOTED: std::sync::Once = std::sync::Once::new();
            NOTED.call_once(|| {
                crate::notices::notify(format!(
                    "note: checkpointing the replicates computed so far into {} ({} bytes per \
                     replicate of each resampling; scale.checkpoint_every = 0 keeps none)",
                    dir.display(),
                    self.width * 8
                ));
            });
        }
        self.written.lock().expect("checkpoint lock").push(Segment {
            stream: self.id,
            width: self.width as u32,
            from: p.from,
            to: p.next,
            path,
        });
        *p = Pending::default();
        Ok(())
    }

    /// Make every computed row durable now.
    pub fn flush(&self) -> Result<()> {
        let Some(dir) = self.recording() else {
            return Ok(());
        };
        let written = {
            let mut p = self.pending.lock().expect("checkpoint lock");
            self.finish_segment(&mut p, dir)
        };
        self.tolerate(written)
    }
}

impl Stored<'_> {
    /// Rows `start ..` into `out`: those stored read back, the others
    /// computed and recorded; returns how many are degenerate replicates.
    pub fn rows(&self, start: u64, out: &mut [f64]) -> Result<u64> {
        let w = self.width;
        let end = start + (out.len() / w) as u64;
        let mut failed = 0;
        let mut r = start;
        while r < end {
            let at = ((r - start) as usize) * w;
            if self.recording().is_some() {
                // A replay (the streaming aggregator's second pass) reads
                // back what this stream computed: make it all durable first.
                let behind = {
                    let p = self.pending.lock().expect("checkpoint lock");
                    p.next != p.from && r < p.next
                };
                if behind {
                    self.flush()?;
                }
            }
            if let Some(s) = self.covered(r) {
                let to = s.to.min(end);
                let rows = &mut out[at..((to - start) as usize) * w];
                self.read(&s, r, rows)?;
                failed += rows.chunks(w).filter(|row| self.failed(row)).count() as u64;
                self.store.reused.fetch_add(to - r, Ordering::Relaxed);
                r = to;
                continue;
            }
            let to = self.next_stored(r).unwrap_or(u64::MAX).min(end);
            if self.store.write.is_none() {
                return Err(Error::InvalidOption {
                    option: "medsim merge".into(),
                    message: format!(
                        "replicates {r}..{to} of stream {} are in none of the shards given: \
                         a shard is missing or did not finish",
                        self.id
                    ),
                });
            }
            let rows = &mut out[at..((to - start) as usize) * w];
            let counted = match &self.source {
                Source::Engine(e) => e.compute(r, rows)?,
                Source::Items { compute, .. } => {
                    compute(r, rows)?;
                    0
                }
            };
            let marked = rows.chunks(w).filter(|row| self.failed(row)).count() as u64;
            if counted != marked {
                return Err(Error::Numerical(format!(
                    "the engine counted {counted} degenerate replicates in {r}..{to} but marked {marked}"
                )));
            }
            failed += counted;
            self.record(r, rows)?;
            r = to;
        }
        Ok(failed)
    }
}

impl Engine for Stored<'_> {
    fn backend(&self) -> Backend {
        match (&self.store.engine, &self.source) {
            (Some(b), _) => b.clone(),
            (None, Source::Engine(e)) => e.backend(),
            (None, Source::Items { .. }) => Backend::cpu(),
        }
    }

    fn chunk(&self) -> usize {
        match &self.source {
            Source::Engine(e) => e.chunk(),
            Source::Items { chunk, .. } => *chunk,
        }
    }

    /// The engine's layout (an items stream has none of its own: its rows
    /// are read with [`Stored::rows`], never aggregated).
    fn layout(&self) -> StatLayout {
        match &self.source {
            Source::Engine(e) => e.layout(),
            Source::Items { .. } => StatLayout::plain(0),
        }
    }

    fn failed(&self, row: &[f64]) -> bool {
        match &self.source {
            Source::Engine(e) => e.failed(row),
            Source::Items { .. } => false,
        }
    }

    fn compute(&self, start: u64, out: &mut [f64]) -> Result<u64> {
        self.rows(start, out)
    }
}

impl Drop for Stored<'_> {
    fn drop(&mut self) {
        // A stream finished (or abandoned on an error): in a run that has
        // gone on for a checkpoint interval, what it computed is kept for
        // the next attempt; a shorter run writes nothing (losing it costs
        // less than the interval).
        if self.store.opened.elapsed() >= self.store.every {
            let _ = self.flush();
        } else if let Ok(mut p) = self.pending.lock()
            && let Some((tmp, _)) = p.file.take()
        {
            let _ = fs::remove_file(tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    /// Replicate r's statistics are all r; counts the rows computed.
    struct Counting {
        computed: AtomicU64,
    }

    impl Engine for Counting {
        fn backend(&self) -> Backend {
            Backend::cpu()
        }
        fn layout(&self) -> StatLayout {
            StatLayout::plain(1)
        }
        fn compute(&self, start: u64, out: &mut [f64]) -> Result<u64> {
            let n = self.layout().len();
            for (i, row) in out.chunks_mut(n).enumerate() {
                row.fill((start + i as u64) as f64);
            }
            self.computed
                .fetch_add((out.len() / n) as u64, Ordering::Relaxed);
            Ok(0)
        }
    }

    fn rows(e: &dyn Engine, start: u64, count: usize) -> Vec<f64> {
        let mut out = vec![0.0; count * e.layout().len()];
        e.compute(start, &mut out).unwrap();
        out
    }

    #[test]
    fn a_replay_reads_back_and_a_resumed_stream_computes_only_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let inner = Counting {
            computed: AtomicU64::new(0),
        };
        let hour = Duration::from_secs(3600);
        let store = Store::open(dir.path(), hour, None, false).unwrap();
        let stream = store.stream(&inner, 30).unwrap();
        let first: Vec<f64> = [rows(&stream, 0, 10), rows(&stream, 10, 10)].concat();
        // The second pass from 0: the pending rows are made durable and
        // read back, not computed again.
        assert_eq!(rows(&stream, 0, 20), first);
        assert_eq!(inner.computed.load(Ordering::Relaxed), 20);
        assert_eq!(store.reused(), 20);
        drop(stream);

        // Resumed: replicates 0..20 come from disk, 20..30 are computed.
        let resumed = Store::open(dir.path(), hour, None, true).unwrap();
        assert_eq!(resumed.stored(), 20);
        let stream = resumed.stream(&inner, 30).unwrap();
        let all = rows(&stream, 5, 25);
        assert_eq!(all, rows(&inner, 5, 25));
        assert_eq!(inner.computed.load(Ordering::Relaxed), 20 + 10 + 25);
        assert_eq!(resumed.reused(), 15);
    }

    /// Replicates r = 3 (mod 5) degenerate (all NaN), r = 4 (mod 5) with
    /// one NaN statistic (not degenerate).
    struct Gappy;

    impl Engine for Gappy {
        fn backend(&self) -> Backend {
            Backend::cpu()
        }
        fn layout(&self) -> StatLayout {
            StatLayout::plain(1)
        }
        fn compute(&self, start: u64, out: &mut [f64]) -> Result<u64> {
            let n = self.layout().len();
            let mut failed = 0;
            for (i, row) in out.chunks_mut(n).enumerate() {
                let r = start + i as u64;
                row.fill(r as f64);
                match r % 5 {
                    3 => {
                        row.fill(f64::NAN);
                        failed += 1;
                    }
                    4 => row[0] = f64::NAN,
                    _ => {}
                }
            }
            Ok(failed)
        }
    }

    #[test]
    fn stored_nan_rows_are_counted_as_the_engine_counted_them() {
        let dir = tempfile::tempdir().unwrap();
        let n = Gappy.layout().len();
        let mut direct = vec![0.0; 40 * n];
        let want = Gappy.compute(0, &mut direct).unwrap();
        assert_eq!(want, 8);
        let store = Store::open(dir.path(), Duration::ZERO, None, false).unwrap();
        let stream = store.stream(&Gappy, 40).unwrap();
        let mut first = vec![0.0; 25 * n];
        assert_eq!(stream.compute(0, &mut first).unwrap(), 5);
        stream.flush().unwrap();
        drop(stream);
        let resumed = Store::open(dir.path(), Duration::ZERO, None, true).unwrap();
        let stream = resumed.stream(&Gappy, 40).unwrap();
        let mut again = vec![0.0; 40 * n];
        assert_eq!(stream.compute(0, &mut again).unwrap(), want);
        assert_eq!(resumed.reused(), 25);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&again), bits(&direct));
    }

    #[test]
    fn a_merge_refuses_replicates_no_shard_holds() {
        let dir = tempfile::tempdir().unwrap();
        let inner = Counting {
            computed: AtomicU64::new(0),
        };
        let part = Shard { index: 0, count: 2 };
        let store = Store::open(dir.path(), Duration::ZERO, Some(part), false).unwrap();
        let (from, to) = part.range(10);
        assert_eq!((from, to), (0, 5));
        store.stream(&inner, 10).unwrap().fill(from, to).unwrap();
        let merged = Store::merge(&[dir.path().to_path_buf()], None).unwrap();
        let stream = merged.stream(&inner, 10).unwrap();
        assert_eq!(rows(&stream, 0, 5), rows(&inner, 0, 5));
        let mut out = vec![0.0; 10 * inner.layout().len()];
        let err = stream.compute(0, &mut out).unwrap_err().to_string();
        assert!(
            err.contains("replicates 5..10 of stream 0 are in none of the shards"),
            "{err}"
        );
    }

    #[test]
    fn a_checkpoint_that_cannot_be_written_is_left_but_a_shard_fails() {
        let dir = tempfile::tempdir().unwrap();
        let inner = Counting {
            computed: AtomicU64::new(0),
        };
        let gone = dir.path().join("checkpoint");
        let store = Store::open(&gone, Duration::ZERO, None, false).unwrap();
        let stream = store.stream(&inner, 10).unwrap();
        std::fs::remove_dir_all(&gone).unwrap(); // as a full disk would refuse
        assert_eq!(rows(&stream, 0, 10), rows(&inner, 0, 10));
        assert!(store.broken.load(Ordering::Relaxed));

        let shard = Some(Shard { index: 0, count: 1 });
        let store = Store::open(&gone, Duration::ZERO, shard, false).unwrap();
        std::fs::remove_dir_all(&gone).unwrap();
        let err = store.stream(&inner, 10).unwrap().fill(0, 10).unwrap_err();
        assert!(err.to_string().contains("cannot write results"), "{err}");
    }

    #[test]
    fn shard_ranges_cover_every_item_once() {
        for total in [0u64, 1, 7, 10_000_019] {
            for count in [1u64, 2, 3, 8, 64] {
                let mut next = 0;
                for index in 0..count {
                    let (from, to) = Shard { index, count }.range(total);
                    assert_eq!(from, next);
                    next = to;
                }
                assert_eq!(next, total);
            }
        }
        assert!(Shard::parse("7/8").is_ok());
        for bad in ["8/8", "0/0", "x/2", "3"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }
}
