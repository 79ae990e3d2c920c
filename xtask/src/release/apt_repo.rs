//! apt's repository files, as text: `Packages` stanzas (the .deb's control fields, then where
//! the file is and its size and digests, as `dpkg-scanpackages` writes them) and the `Release`
//! file that lists every index with its size and SHA-256. Written by hand: the formats are a
//! few lines of deb822, and no maintained crate writes apt repositories.

use std::collections::BTreeSet;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{bail, Context, Result};

use crate::release::checksum;

/// One paragraph of a deb822 file: its fields in order, each value with its continuation
/// lines (` ...`) as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stanza {
    pub fields: Vec<(String, String)>,
}

impl Stanza {
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields.iter().find(|(name, _)| name.eq_ignore_ascii_case(field)).map(|(_, value)| value.as_str())
    }

    /// The `Packages` stanza of a .deb: its control fields, then Filename (from the
    /// repository's root), Size, MD5sum and SHA256.
    pub fn for_package(control: &str, filename: &str, deb: &[u8]) -> Result<Stanza> {
        let mut stanzas = parse(control).context("cannot read the package's control file")?;
        if stanzas.len() != 1 {
            bail!("the control file holds {} paragraphs, not one", stanzas.len());
        }
        let mut stanza = stanzas.remove(0);
        for field in ["Package", "Version", "Architecture"] {
            if stanza.get(field).is_none() {
                bail!("the control file has no {field} field");
            }
        }
        stanza.fields.extend([
            ("Filename".to_string(), filename.to_string()),
            ("Size".to_string(), deb.len().to_string()),
            ("MD5sum".to_string(), checksum::md5_hex(deb)),
            ("SHA256".to_string(), checksum::sha256_hex(deb)),
        ]);
        Ok(stanza)
    }

    fn render(&self) -> String {
        self.fields.iter().map(|(name, value)| format!("{name}: {value}\n")).collect()
    }
}

/// The paragraphs of a deb822 text (a control file, or a `Packages` index).
pub fn parse(text: &str) -> Result<Vec<Stanza>> {
    let mut stanzas = Vec::new();
    let mut fields: Vec<(String, String)> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            if !fields.is_empty() {
                stanzas.push(Stanza { fields: std::mem::take(&mut fields) });
            }
        } else if line.starts_with([' ', '\t']) {
            let Some((_, value)) = fields.last_mut() else {
                bail!("line {}: a continuation line before any field", number + 1);
            };
            value.push('\n');
            value.push_str(line);
        } else {
            let Some((name, value)) = line.split_once(':') else {
                bail!("line {}: `{line}` is neither `Field: value` nor a continuation line", number + 1);
            };
            fields.push((name.to_string(), value.trim().to_string()));
        }
    }
    if !fields.is_empty() {
        stanzas.push(Stanza { fields });
    }
    Ok(stanzas)
}

/// A `Packages` index: its stanzas, one blank line between them.
pub fn render_packages(stanzas: &[Stanza]) -> String {
    stanzas.iter().map(Stanza::render).collect::<Vec<_>>().join("\n")
}

/// What a suite's `Release` file says about itself.
pub struct ReleaseHeader<'a> {
    pub origin: &'a str,
    pub label: &'a str,
    pub suite: &'a str,
    pub components: &'a [&'a str],
    pub architectures: &'a BTreeSet<String>,
    pub date: u64,
    pub description: &'a str,
}

/// The `Release` file: the header, then every index file (path from the suite's folder) with
/// its size and SHA-256; apt refuses an index whose digest differs.
pub fn render_release(header: &ReleaseHeader, indexes: &[(String, Vec<u8>)]) -> String {
    let architectures: Vec<&str> = header.architectures.iter().map(String::as_str).collect();
    let mut text = format!(
        "Origin: {}\nLabel: {}\nSuite: {}\nCodename: {}\nDate: {}\nArchitectures: {}\nComponents: {}\n\
         Description: {}\nSHA256:\n",
        header.origin,
        header.label,
        header.suite,
        header.suite,
        rfc2822(header.date),
        architectures.join(" "),
        header.components.join(" "),
        header.description,
    );
    for (path, bytes) in indexes {
        text.push_str(&format!(" {} {:>8} {path}\n", checksum::sha256_hex(bytes), bytes.len()));
    }
    text
}

/// A `Release` file's `Date:`, as seconds since the epoch.
pub fn release_date(release: &str) -> Result<u64> {
    let stanzas = parse(release)?;
    let date = stanzas.first().and_then(|s| s.get("Date")).context("it has no Date field")?;
    parse_rfc2822(date)
}

/// `Mon, 07 Dec 2026 08:45:00 UTC`, the form apt and Debian's archive use.
pub fn rfc2822(epoch: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    let rfc3339 = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(epoch)).to_string();
    let (year, month, day, time) = (&rfc3339[0..4], &rfc3339[5..7], &rfc3339[8..10], &rfc3339[11..19]);
    let month = MONTHS[month.parse::<usize>().expect("humantime writes a month") - 1];
    format!("{}, {day} {month} {year} {time} UTC", DAYS[(epoch / 86_400 % 7) as usize])
}

const MONTHS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

fn parse_rfc2822(date: &str) -> Result<u64> {
    let bad = || format!("`{date}` is not a date like `Mon, 07 Dec 2026 08:45:00 UTC`");
    let parts: Vec<&str> = date.split_whitespace().collect();
    let [_, day, month, year, time, "UTC"] = parts[..] else { bail!(bad()) };
    let month = MONTHS.iter().position(|m| *m == month).with_context(bad)? + 1;
    let rfc3339 = format!("{year}-{month:02}-{:0>2}T{time}Z", day);
    let time = humantime::parse_rfc3339(&rfc3339).with_context(bad)?;
    Ok(time.duration_since(UNIX_EPOCH).with_context(bad)?.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTROL: &str = "Package: exonode\nVersion: 0.1.0-1\nArchitecture: armhf\nMaintainer: A <a@b.c>\n\
        Installed-Size: 812\nDescription: the node\n a second line\n .\n a third\n";

    #[test]
    fn a_stanza_is_the_control_file_then_where_the_package_is_and_its_digests() {
        let stanza = Stanza::for_package(CONTROL, "pool/main/e/exonode/x.deb", b"deb bytes").unwrap();
        let text = render_packages(&[stanza.clone(), stanza]);
        let first = format!(
            "{CONTROL}Filename: pool/main/e/exonode/x.deb\nSize: 9\nMD5sum: {}\nSHA256: {}\n",
            checksum::md5_hex(b"deb bytes"),
            checksum::sha256_hex(b"deb bytes")
        );
        assert_eq!(text, format!("{first}\n{first}"));
        let parsed = parse(&text).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(render_packages(&parsed), text, "parsing and writing back changes nothing");
        assert_eq!(parsed[0].get("description"), Some("the node\n a second line\n .\n a third"));
    }

    #[test]
    fn a_control_file_without_its_identity_is_refused() {
        let err = Stanza::for_package("Package: exonode\nVersion: 1\n", "x.deb", b"").unwrap_err();
        assert_eq!(err.to_string(), "the control file has no Architecture field");
        let err = parse("Package: x\nno colon here\n").unwrap_err();
        assert!(err.to_string().starts_with("line 2: `no colon here`"), "{err}");
    }

    #[test]
    fn dates_are_written_as_apt_reads_them_and_read_back() {
        assert_eq!(rfc2822(0), "Thu, 01 Jan 1970 00:00:00 UTC");
        assert_eq!(rfc2822(1_796_633_100), "Mon, 07 Dec 2026 08:45:00 UTC");
        for epoch in [0, 86_399, 951_782_400, 1_796_633_100] {
            assert_eq!(parse_rfc2822(&rfc2822(epoch)).unwrap(), epoch);
        }
        assert!(parse_rfc2822("07 Dec 2026").is_err());
    }

    #[test]
    fn the_release_file_lists_each_index_with_its_size_and_digest() {
        let architectures: BTreeSet<String> = ["arm64".to_string(), "amd64".to_string()].into();
        let header = ReleaseHeader {
            origin: "exonode",
            label: "exonode",
            suite: "stable",
            components: &["main"],
            architectures: &architectures,
            date: 0,
            description: "exonode packages",
        };
        let text = render_release(&header, &[("main/binary-amd64/Packages".into(), b"abc".to_vec())]);
        assert!(text.contains("\nArchitectures: amd64 arm64\nComponents: main\n"), "{text}");
        assert!(text.ends_with(&format!(
            "SHA256:\n {}        3 main/binary-amd64/Packages\n",
            checksum::sha256_hex(b"abc")
        )));
        assert_eq!(release_date(&text).unwrap(), 0);
    }
}
