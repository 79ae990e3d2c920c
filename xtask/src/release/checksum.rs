//! SHA-256 of files and the `SHA256SUMS` format: sorted `<hex>  <name>` lines, LF endings,
//! no trailing blank line, so both GNU coreutils and BusyBox `sha256sum -c` accept it.

use std::fs::File;
use std::io::{self, Read};

use anyhow::{bail, Context, Result};
use camino::Utf8Path;
use sha2::{Digest, Sha256};

use crate::release::layout;

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// MD5, which apt's `Packages` and dpkg's `md5sums` still list beside SHA-256.
pub fn md5_hex(bytes: &[u8]) -> String {
    hex(&md5::Md5::digest(bytes))
}

/// Hashes a file in 1 MiB reads; returns (hex digest, size in bytes).
pub fn sha256_file(path: &Utf8Path) -> Result<(String, u64)> {
    let mut file = File::open(path).with_context(|| format!("cannot open {path}"))?;
    sha256_reader(&mut file).with_context(|| format!("cannot read {path}"))
}

pub fn sha256_reader(reader: &mut impl Read) -> io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex(&hasher.finalize()), size))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SumsEntry {
    pub sha256: String,
    pub name: String,
}

/// One line per file, sorted by name (byte order, as `LC_ALL=C sort`).
pub fn render_sums(entries: &[SumsEntry]) -> String {
    let mut sorted: Vec<&SumsEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    sorted.iter().map(|e| format!("{}  {}\n", e.sha256, e.name)).collect()
}

/// Writes `<archive>.sha256` into `dir`: the one line of SHA256SUMS for that file.
pub fn write_sidecar(dir: &Utf8Path, archive_name: &str, sha256: &str) -> Result<()> {
    let path = dir.join(layout::sidecar_name(archive_name));
    let entry = SumsEntry { sha256: sha256.to_string(), name: archive_name.to_string() };
    std::fs::write(&path, render_sums(&[entry])).with_context(|| format!("cannot write {path}"))
}

/// Parses strictly: names must be plain file names (no directories), so a sums file can never
/// point a verifier outside the folder it sits in.
pub fn parse_sums(text: &str, source: &str) -> Result<Vec<SumsEntry>> {
    let mut entries: Vec<SumsEntry> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let Some((sha, rest)) = line.split_once(' ') else {
            bail!("{source}:{line_no}: expected `<sha256>  <file name>`, got {line:?}");
        };
        let name = rest.strip_prefix(' ').or_else(|| rest.strip_prefix('*')).unwrap_or("");
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("{source}:{line_no}: {sha:?} is not a SHA-256 (64 hex digits)");
        }
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            bail!("{source}:{line_no}: {name:?} is not a plain file name");
        }
        if entries.iter().any(|e| e.name == name) {
            bail!("{source}:{line_no}: {name} is listed twice");
        }
        entries.push(SumsEntry { sha256: sha.to_ascii_lowercase(), name: name.to_string() });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(sha: char, name: &str) -> SumsEntry {
        SumsEntry { sha256: sha.to_string().repeat(64), name: name.into() }
    }

    #[test]
    fn known_digest() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let (hex, size) = sha256_reader(&mut &b"abc"[..]).unwrap();
        assert_eq!(
            (hex.as_str(), size),
            ("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", 3)
        );
    }

    #[test]
    fn sums_are_sorted_two_space_lf_without_blank_last_line() {
        let text = render_sums(&[entry('b', "b.tar.gz"), entry('a', "SHA-file"), entry('c', "a.tar.gz")]);
        assert_eq!(
            text,
            format!(
                "{}  SHA-file\n{}  a.tar.gz\n{}  b.tar.gz\n",
                "a".repeat(64),
                "c".repeat(64),
                "b".repeat(64)
            )
        );
        assert!(!text.ends_with("\n\n"));
        assert!(!text.contains('\r'));
    }

    #[test]
    fn parse_roundtrips_and_accepts_binary_marker() {
        let entries = vec![entry('a', "a"), entry('b', "b")];
        assert_eq!(parse_sums(&render_sums(&entries), "S").unwrap(), entries);
        let starred = format!("{} *a\n", "a".repeat(64));
        assert_eq!(parse_sums(&starred, "S").unwrap(), vec![entry('a', "a")]);
    }

    #[test]
    fn parse_rejects_paths_and_garbage_with_line_numbers() {
        let a = "a".repeat(64);
        for (text, expected) in [
            (format!("{a}  ../etc/passwd\n"), "S:1: \"../etc/passwd\" is not a plain file name"),
            (format!("{a}  ok\nxyz  file\n"), "S:2: \"xyz\" is not a SHA-256"),
            (format!("{a}  ok\n{a}  ok\n"), "S:2: ok is listed twice"),
            ("justoneword\n".to_string(), "S:1: expected"),
            (format!("{a}  ok\n\n"), "S:2: expected"),
            (format!("{}  ok\n", "g".repeat(64)), "S:1: \"gggg"),
            (format!("{}  ok\n", "a".repeat(63)), "S:1: \"aaaa"),
            (format!("{a}  .\n"), "S:1: \".\" is not a plain file name"),
            (format!("{a}  ..\n"), "S:1: \"..\" is not a plain file name"),
            (format!("{a}  dir/file\n"), "S:1: \"dir/file\" is not a plain file name"),
            (format!("{a} \n"), "S:1: \"\" is not a plain file name"),
        ] {
            let err = parse_sums(&text, "S").unwrap_err().to_string();
            assert!(err.starts_with(expected), "expected {expected:?}, got {err:?}");
        }
    }
}
