//! The node's persistent state in its data directory: a random identity created on first
//! start and a start counter. Written atomically so a crash never leaves a torn file, and
//! never reset silently: a damaged file is an error that names it.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const STATE_FILE: &str = "node.json";
const ID_BYTES: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeState {
    /// 32 random bytes, lower-case hex.
    pub id: String,
    /// How many times the node has started with this data directory, this start included.
    pub starts: u64,
}

#[derive(Debug)]
pub enum StateError {
    /// The data directory cannot be created or written by this process.
    NotWritable {
        dir: PathBuf,
        source: io::Error,
    },
    /// The state file exists but is not a valid state.
    Corrupt {
        file: PathBuf,
        reason: String,
    },
    Io {
        path: PathBuf,
        action: &'static str,
        source: io::Error,
    },
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::NotWritable { dir, source } => {
                // SAFETY: getuid/getgid cannot fail and touch no memory.
                let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
                write!(
                    f,
                    "cannot write to data directory {} ({source}); running as uid {uid}, gid {gid}",
                    dir.display()
                )?;
                match fs::metadata(dir) {
                    Ok(meta) => write!(
                        f,
                        ", but it is owned by uid {}, gid {} with mode {:o}. Fix: run as its owner \
                         (docker run --user {}:{}), or give it to this user (chown {uid}:{gid} {})",
                        meta.uid(),
                        meta.gid(),
                        meta.mode() & 0o7777,
                        meta.uid(),
                        meta.gid(),
                        dir.display()
                    ),
                    Err(_) => write!(
                        f,
                        ". Fix: create it writable for this user (mkdir -p {0} && chown {uid}:{gid} {0}), \
                         or choose another with --data-dir",
                        dir.display()
                    ),
                }
            }
            StateError::Corrupt { file, reason } => write!(
                f,
                "state file {} is damaged: {reason}. It holds this node's identity, so it is not \
                 replaced automatically; restore it from a backup, or move it aside to start as a new node",
                file.display()
            ),
            StateError::Io { path, action, source } => {
                write!(f, "cannot {action} {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for StateError {}

/// Loads the state from `dir` (creating a new identity on first start), counts this start
/// and writes it back.
pub fn open_and_count_start(dir: &Path) -> Result<NodeState, StateError> {
    fs::create_dir_all(dir).map_err(|source| classify_write_error(dir, dir, "create", source))?;
    let file = dir.join(STATE_FILE);
    let state = match fs::read(&file) {
        Ok(bytes) => {
            let mut state = parse(&file, &bytes)?;
            state.starts += 1;
            state
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => NodeState { id: new_id(), starts: 1 },
        Err(source) => return Err(StateError::Io { path: file, action: "read", source }),
    };
    write_atomically(dir, &file, &state)?;
    Ok(state)
}

fn parse(file: &Path, bytes: &[u8]) -> Result<NodeState, StateError> {
    let corrupt = |reason: String| StateError::Corrupt { file: file.to_path_buf(), reason };
    if bytes.is_empty() {
        return Err(corrupt("the file is empty".into()));
    }
    let state: NodeState =
        serde_json::from_slice(bytes).map_err(|e| corrupt(format!("not valid state JSON ({e})")))?;
    let id_ok =
        state.id.len() == ID_BYTES * 2 && state.id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !id_ok {
        return Err(corrupt(format!("`id` must be {} lower-case hex digits", ID_BYTES * 2)));
    }
    if state.starts == 0 {
        return Err(corrupt("`starts` must be at least 1".into()));
    }
    Ok(state)
}

fn new_id() -> String {
    let mut bytes = [0u8; ID_BYTES];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Temp file in the same directory, fsync, rename over the old file, fsync the directory.
fn write_atomically(dir: &Path, file: &Path, state: &NodeState) -> Result<(), StateError> {
    let tmp = dir.join(format!(".{STATE_FILE}.tmp-{}", std::process::id()));
    let mut body = serde_json::to_vec_pretty(state).expect("state serializes");
    body.push(b'\n');
    let result = (|| {
        let mut out = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|source| classify_write_error(dir, &tmp, "create", source))?;
        out.write_all(&body)
            .and_then(|()| out.sync_all())
            .map_err(|source| classify_write_error(dir, &tmp, "write", source))?;
        fs::rename(&tmp, file).map_err(|source| StateError::Io {
            path: file.to_path_buf(),
            action: "replace",
            source,
        })?;
        File::open(dir).and_then(|d| d.sync_all()).map_err(|source| StateError::Io {
            path: dir.to_path_buf(),
            action: "sync",
            source,
        })
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn classify_write_error(dir: &Path, path: &Path, action: &'static str, source: io::Error) -> StateError {
    let denied = matches!(source.kind(), io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem)
        || source.raw_os_error() == Some(libc::EROFS);
    if denied {
        StateError::NotWritable { dir: dir.to_path_buf(), source }
    } else {
        StateError::Io { path: path.to_path_buf(), action, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("exonode-state-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn first_start_creates_identity_and_later_starts_reuse_it() {
        let dir = scratch_dir("reuse");
        let first = open_and_count_start(&dir).unwrap();
        assert_eq!(first.starts, 1);
        assert_eq!(first.id.len(), 64);
        let second = open_and_count_start(&dir).unwrap();
        assert_eq!(second, NodeState { id: first.id.clone(), starts: 2 });
        let leftovers: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from(STATE_FILE)]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn damaged_state_is_refused_and_kept() {
        let dir = scratch_dir("damaged");
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join(STATE_FILE);
        for (content, expected) in [
            ("", "empty"),
            ("{\"id\": \"ab", "not valid state JSON"),
            ("{\"id\": \"xyz\", \"starts\": 1}", "hex digits"),
            (&format!("{{\"id\": \"{}\", \"starts\": 0}}", "a".repeat(64)), "at least 1"),
        ] {
            fs::write(&file, content).unwrap();
            let err = open_and_count_start(&dir).unwrap_err().to_string();
            assert!(err.contains(expected) && err.contains(&file.display().to_string()), "{err}");
            assert_eq!(fs::read_to_string(&file).unwrap(), content, "a damaged file must not be rewritten");
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
