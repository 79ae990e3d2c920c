//! Whether an output is up to date without asking cargo: a record kept beside it of what made
//! it, a key over the fixed inputs (the command, its environment, the toolchain) and the size
//! and mtime of every file it read (for a build, the files cargo's dep-info lists, plus the
//! manifests and Cargo.lock). Files are compared by size and mtime as cargo compares them, so
//! a touched source rebuilds here as it does for cargo; anything unreadable counts as changed.

use std::fmt::Write as _;
use std::time::SystemTime;

use anyhow::Result;
use camino::{Utf8Path, Utf8PathBuf};
use sha2::{Digest, Sha256};

use crate::util::staging::write_atomically;

/// The record of one output: where it is kept, the key it must match, the files read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub path: Utf8PathBuf,
    key: String,
    /// Inputs known before the build (manifests, Cargo.lock).
    inputs: Vec<Utf8PathBuf>,
    /// cargo's dep-info file, which lists the sources the build read (known after it).
    dep_info: Option<Utf8PathBuf>,
    /// What the build made: changed or gone, the output is not up to date.
    outputs: Vec<Utf8PathBuf>,
}

impl Record {
    pub fn new(path: Utf8PathBuf, key_parts: &[String], inputs: Vec<Utf8PathBuf>) -> Record {
        let mut hasher = Sha256::new();
        for part in key_parts {
            // Length-prefixed, so two lists of parts never hash alike.
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        Record { path, key: format!("{:x}", hasher.finalize()), inputs, dep_info: None, outputs: Vec::new() }
    }

    pub fn with_dep_info(mut self, dep_info: Utf8PathBuf) -> Record {
        self.dep_info = Some(dep_info);
        self
    }

    pub fn with_output(mut self, output: Utf8PathBuf) -> Record {
        self.outputs.push(output);
        self
    }

    /// The stored record has this key and every file it names is as it was then.
    pub fn is_up_to_date(&self) -> bool {
        let Ok(text) = std::fs::read_to_string(&self.path) else { return false };
        let mut lines = text.lines();
        if lines.next() != Some(&format!("key {}", self.key)) {
            return false;
        }
        let mut files = 0;
        for line in lines {
            let Some((stamp, path)) = line.split_once('\t') else { return false };
            if stamp_of(Utf8Path::new(path)).as_deref() != Some(stamp) {
                return false;
            }
            files += 1;
        }
        files > 0
    }

    /// After a successful build that started at `started`: records its inputs and outputs.
    /// An input changed since `started` (or unreadable) leaves no record, so the next run
    /// builds again rather than trust a build that may have read the old file.
    pub fn write(&self, started: SystemTime) -> Result<()> {
        let _ = std::fs::remove_file(&self.path);
        let mut inputs = self.inputs.clone();
        if let Some(dep_info) = &self.dep_info {
            let Ok(text) = std::fs::read_to_string(dep_info) else { return Ok(()) };
            inputs.extend(dep_info_files(&text));
        }
        inputs.sort();
        inputs.dedup();
        let mut text = format!("key {}\n", self.key);
        for input in &inputs {
            let changed = std::fs::metadata(input).and_then(|m| m.modified()).is_ok_and(|t| t >= started);
            let Some(stamp) = stamp_of(input).filter(|_| !changed) else { return Ok(()) };
            let _ = writeln!(text, "{stamp}\t{input}");
        }
        for output in &self.outputs {
            let Some(stamp) = stamp_of(output).filter(|stamp| stamp != ABSENT) else { return Ok(()) };
            let _ = writeln!(text, "{stamp}\t{output}");
        }
        write_atomically(&self.path, text.as_bytes())
    }
}

/// The stamp of a file that is not there (an optional config file): creating it is a change.
const ABSENT: &str = "absent";

/// A file's size and mtime (nanoseconds), ABSENT if there is no such file, or None if it
/// cannot be read.
fn stamp_of(path: &Utf8Path) -> Option<String> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(ABSENT.to_string()),
        Err(_) => return None,
    };
    let mtime = meta.modified().ok()?.duration_since(SystemTime::UNIX_EPOCH).ok()?;
    Some(format!("{} {}", meta.len(), mtime.as_nanos()))
}

/// The files a Makefile-style dep-info (`out: a.rs b\ c.rs`) names as prerequisites.
fn dep_info_files(text: &str) -> Vec<Utf8PathBuf> {
    let mut files = Vec::new();
    for line in text.lines() {
        // `out: deps`; a path may hold an escaped space or colon, the separator is `: `.
        let Some((_, deps)) = line.split_once(": ") else { continue };
        let mut current = String::new();
        let mut chars = deps.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => current.extend(chars.next()),
                ' ' => {
                    if !current.is_empty() {
                        files.push(Utf8PathBuf::from(std::mem::take(&mut current)));
                    }
                }
                c => current.push(c),
            }
        }
        if !current.is_empty() {
            files.push(Utf8PathBuf::from(current));
        }
    }
    files
}

/// The environment cargo, rustc and C build scripts read, sorted, PATH included: part of a
/// build's key.
pub fn build_environment() -> Vec<String> {
    let mut vars = cargo_environment();
    vars.extend(std::env::var("PATH").ok().map(|path| format!("PATH={path}")));
    vars.sort();
    vars
}

/// The environment cargo, rustc and C build scripts read (cargo's and rustup's settings,
/// RUSTFLAGS, the C compiler's variables), sorted. Variables cargo sets for the program it
/// runs (CARGO_PKG_*, CARGO_MANIFEST_*) are left out.
pub fn cargo_environment() -> Vec<String> {
    const READ: &[&str] = &[
        "CARGO", "RUST", "CC", "CXX", "CFLAGS", "CXXFLAGS", "CPPFLAGS", "LDFLAGS", "AR", "TARGET_", "HOST_",
        "ZIG",
    ];
    const SET_BY_CARGO_RUN: &[&str] = &[
        "CARGO_PKG_",
        "CARGO_MANIFEST_",
        "CARGO_BIN_",
        "CARGO_CRATE_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
    ];
    let mut vars: Vec<String> = std::env::vars_os()
        .filter_map(|(key, value)| Some((key.into_string().ok()?, value.into_string().ok()?)))
        .filter(|(key, _)| READ.iter().any(|p| key.starts_with(p)))
        .filter(|(key, _)| !SET_BY_CARGO_RUN.iter().any(|p| key.starts_with(p)))
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    vars.sort();
    vars
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    fn later() -> SystemTime {
        SystemTime::now() + std::time::Duration::from_secs(3600)
    }

    /// A source, a dep-info naming it, a binary; and the record of a build of them.
    fn built(name: &str) -> (Utf8PathBuf, Record) {
        let dir = fixtures::scratch(name);
        let source = dir.join("main with space.rs");
        std::fs::write(&source, "fn main() {}\n").unwrap();
        let manifest = dir.join("Cargo.toml");
        std::fs::write(&manifest, "[package]\n").unwrap();
        let escaped = source.as_str().replace(' ', "\\ ");
        std::fs::write(dir.join("bin.d"), format!("{dir}/bin: {escaped}\n")).unwrap();
        std::fs::write(dir.join("bin"), "ELF").unwrap();
        let optional = dir.join("config.toml");
        let record = Record::new(dir.join("bin.inputs"), &["cargo build".into()], vec![manifest, optional])
            .with_dep_info(dir.join("bin.d"))
            .with_output(dir.join("bin"));
        (source, record)
    }

    #[test]
    fn nothing_touched_is_up_to_date_and_a_changed_byte_is_not() {
        let (source, record) = built("fingerprint-byte");
        assert!(!record.is_up_to_date(), "no record yet");
        record.write(later()).unwrap();
        assert!(record.is_up_to_date());
        let text = std::fs::read_to_string(&record.path).unwrap();
        assert!(text.contains("main with space.rs") && text.contains("Cargo.toml"), "{text}");

        // Another byte, same size: the mtime tells it, as it tells cargo.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&source, "fn xain() {}\n").unwrap();
        assert!(!record.is_up_to_date(), "a changed source must rebuild");
    }

    #[test]
    fn an_optional_input_that_appears_is_a_change_and_a_missing_binary_leaves_no_record() {
        let (source, record) = built("fingerprint-absent");
        record.write(later()).unwrap();
        assert!(record.is_up_to_date(), "an absent config file is recorded as absent");
        std::fs::write(source.with_file_name("config.toml"), "[build]\n").unwrap();
        assert!(!record.is_up_to_date(), "a config file created since must rebuild");

        std::fs::remove_file(&record.outputs[0]).unwrap();
        record.write(later()).unwrap();
        assert!(!record.path.exists(), "no binary, no record");
    }

    #[test]
    fn another_key_a_changed_binary_or_a_file_changed_during_the_build_is_not_up_to_date() {
        let (_, record) = built("fingerprint-key");
        record.write(later()).unwrap();
        let other =
            Record { key: Record::new("x".into(), &["cargo build -v".into()], vec![]).key, ..record.clone() };
        assert!(!other.is_up_to_date(), "another command or environment must rebuild");

        std::fs::write(record.outputs[0].as_path(), "ELF but other").unwrap();
        assert!(!record.is_up_to_date(), "a binary changed since must be rebuilt");

        // The sources changed while cargo ran (their mtime is after the start): no record.
        record.write(SystemTime::UNIX_EPOCH).unwrap();
        assert!(!record.path.exists());
        assert!(!record.is_up_to_date());
    }

    #[test]
    fn dep_info_paths_keep_their_escaped_spaces() {
        let files = dep_info_files("/t/bin: /a/b.rs /my\\ work/c.rs\n\n/t/bin.d: /x.rs\n");
        let files: Vec<&str> = files.iter().map(|f| f.as_str()).collect();
        assert_eq!(files, ["/a/b.rs", "/my work/c.rs", "/x.rs"]);
    }
}
