//! Unit-test fixtures: a small but complete dist folder written by the real writers (archive,
//! checksums, manifest, generated files), so checks can be tested without a cross build.

use camino::{Utf8Path, Utf8PathBuf};

use crate::project::config::Config;
use crate::project::matrix;
use crate::project::workspace::{Member, PackageInfo, ProjectFacts, Release, Workspace};
use crate::release::archive;
use crate::release::checksum;
use crate::release::files;
use crate::release::layout;
use crate::release::manifest::{Artifact, BuiltWith, Manifest};
use crate::sign::key::KeyPair;

/// A fresh empty folder under the system's temp dir, unique to this test.
/// A repository key made for tests only (`gpg --quick-gen-key ... ed25519 sign never`, no
/// passphrase).
pub const REPO_KEY: &str = include_str!("sign/testdata/test-repo-key.asc");

pub fn scratch(name: &str) -> Utf8PathBuf {
    let dir = Utf8PathBuf::from_path_buf(std::env::temp_dir())
        .unwrap()
        .join(format!("xtask-unit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The smallest file the ELF check takes for a static executable: a 64-byte ELF header
/// (x86-64 or i386 layout per `machine`) with no program headers, so no interpreter and no
/// `DT_NEEDED`.
pub fn static_elf(class64: bool, machine: u16) -> Vec<u8> {
    let mut elf = vec![0u8; if class64 { 64 } else { 52 }];
    elf[..4].copy_from_slice(b"\x7fELF");
    elf[4] = if class64 { 2 } else { 1 };
    elf[5] = 1; // little-endian
    elf[6] = 1; // EV_CURRENT
    elf[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf[18..20].copy_from_slice(&machine.to_le_bytes());
    elf[20..24].copy_from_slice(&1u32.to_le_bytes());
    let ehsize_at = if class64 { 52 } else { 40 };
    let ehsize = elf.len() as u16;
    elf[ehsize_at..ehsize_at + 2].copy_from_slice(&ehsize.to_le_bytes());
    elf
}

pub fn release() -> Release {
    Release {
        name: "exonode".into(),
        version: "1.2.3".into(),
        commit: "c0ffee".repeat(6) + "ab",
        source_date_epoch: 86400,
    }
}

/// exonode's release.toml in small: two arches, and the daemon's `[image]` keys (none of them
/// is a default).
pub fn config() -> Config {
    Config::parse(
        "[dist]\npackage = \"exonode\"\narches = [\"amd64\", \"i386\"]\ndownload-url = \"https://example.org/{version}\"\n\
         [image]\nvolume = \"/data\"\nport = 7070\ncommand = [\"run\"]\nhealthcheck = [\"healthcheck\"]\n",
        Utf8Path::new("release.toml"),
    )
    .unwrap()
}

/// This repository's workspace as if checked out at /work/exotool, with its real release.toml:
/// plans rendered from it change when release.toml does, and only then.
pub fn workspace() -> Workspace {
    let mut config =
        Config::parse(include_str!("../../release.toml"), Utf8Path::new("release.toml")).unwrap();
    config.toolchain.stable = Some("1.95.0".into());
    Workspace {
        root: "/work/exotool".into(),
        target_dir: "/work/exotool/target".into(),
        config,
        package: PackageInfo {
            version: "1.2.3".into(),
            license: "MIT".into(),
            repository: "https://example.org/src".into(),
            description: "A node".into(),
            needs_c_toolchain: false,
        },
        members: vec![
            Member { manifest: "node/Cargo.toml".into(), target_files: vec!["node/src/main.rs".into()] },
            Member { manifest: "xtask/Cargo.toml".into(), target_files: vec!["xtask/src/main.rs".into()] },
        ],
    }
}

pub fn facts() -> ProjectFacts {
    ProjectFacts {
        source: "https://example.org/src".into(),
        licenses: "MIT".into(),
        description: "A node".into(),
    }
}

/// The image spec of `config()`'s release.toml for `release()`.
pub fn image_spec(base: crate::project::config::BaseKind) -> crate::project::image_spec::ImageSpec {
    crate::project::image_spec::ImageSpec::new(&config().image, &facts(), &release(), base)
}

/// An SBOM that says which archive it describes, the way `sbom::document` writes one.
pub fn sbom_text(release: &Release, archive: &str, target: &str) -> String {
    serde_json::json!({
        "bomFormat": "CycloneDX",
        "metadata": {
            "component": {"name": release.name, "version": release.version},
            "properties": [
                {"name": "cdx:rustc:sbom:target:triple", "value": target},
                {"name": "exotool:archive", "value": archive},
                {"name": "exotool:commit", "value": release.commit},
            ]
        }
    })
    .to_string()
}

/// The binary `write_dist` packs for `arch`.
pub fn binary_for(arch: &str) -> Vec<u8> {
    match arch {
        "amd64" => static_elf(true, matrix::EM_X86_64),
        "i386" => static_elf(false, matrix::EM_386),
        "arm64v8" => static_elf(true, matrix::EM_AARCH64),
        // Tag_CPU_arch: 10 = v7, 6 = v6, 4 = v5TE.
        "arm32v7" => ElfSpec::arm(true, Some(arm_attributes(&[6, 10]))).build(),
        "arm32v6" => ElfSpec::arm(true, Some(arm_attributes(&[6, 6]))).build(),
        "arm32v5" => ElfSpec::arm(false, Some(arm_attributes(&[6, 4]))).build(),
        other => panic!("no fixture binary for {other}"),
    }
}

/// Writes a complete dist folder for amd64 and i386 into `dir`, as `dist` would.
pub fn write_dist(dir: &Utf8Path) -> Manifest {
    write_dist_of(dir, &["amd64", "i386"])
}

/// Writes a complete dist folder for `arches` (amd64 and/or i386) into `dir`.
pub fn write_dist_of(dir: &Utf8Path, arches: &[&str]) -> Manifest {
    write_dist_signed_by(dir, arches, None)
}

/// `write_dist_of`, signed by `signer` when given.
pub fn write_dist_signed_by(dir: &Utf8Path, arches: &[&str], signer: Option<&KeyPair>) -> Manifest {
    let release = release();
    let mut artifacts = Vec::new();
    for &name in arches {
        let arch = matrix::by_name(name).unwrap();
        let binary = binary_for(name);
        let archive_name = layout::archive_name(&release, arch.target);
        let bytes = archive::pack(&release, arch.target, &binary, &[]).unwrap();
        let built_with = BuiltWith::fixture();
        let artifact = Artifact::packed(&release, arch, &bytes, &binary, built_with);
        std::fs::write(dir.join(&archive_name), &bytes).unwrap();
        checksum::write_sidecar(dir, &archive_name, &artifact.sha256).unwrap();
        std::fs::write(dir.join(&artifact.sbom), sbom_text(&release, &archive_name, arch.target)).unwrap();
        artifacts.push(artifact);
    }
    let manifest = Manifest::new(&release, artifacts);
    files::write_all(dir, &manifest, &config(), &facts(), &inputs(), signer).unwrap();
    manifest
}

/// The digests a provenance records of Cargo.lock and release.toml.
pub fn inputs() -> crate::release::provenance::Inputs {
    crate::release::provenance::Inputs {
        cargo_lock_sha256: "1".repeat(64),
        release_toml_sha256: "2".repeat(64),
    }
}

/// The test key pair of `sign::key` (made by `cosign generate-key-pair`).
pub fn key_pair() -> KeyPair {
    KeyPair::parse(crate::sign::key::tests::KEY, "secret").unwrap()
}

/// Makes every checksum file agree with the folder as it now is, as someone who controls the
/// whole folder would: the manifest's archive hashes and sizes, the sidecars, the provenance's
/// subjects and SHA256SUMS (it cannot re-sign).
pub fn reseal(dir: &Utf8Path, manifest: &mut Manifest) {
    for artifact in &mut manifest.artifacts {
        let bytes = std::fs::read(dir.join(&artifact.name)).unwrap();
        artifact.sha256 = checksum::sha256_hex(&bytes);
        artifact.size = bytes.len() as u64;
        checksum::write_sidecar(dir, &artifact.name, &artifact.sha256).unwrap();
    }
    std::fs::write(dir.join(layout::MANIFEST_FILE), manifest.to_json()).unwrap();
    let statement = crate::release::provenance::statement(manifest, &facts(), &inputs());
    std::fs::write(dir.join(layout::PROVENANCE_FILE), statement).unwrap();
    files::write_sums(dir).unwrap();
}

/// Repacks `artifact`'s archive with `binary` at the same path.
pub fn repack(dir: &Utf8Path, artifact: &Artifact, binary: &[u8]) {
    let bytes = archive::pack(&release(), &artifact.target, binary, &[]).unwrap();
    std::fs::write(dir.join(&artifact.name), bytes).unwrap();
}

/// An ELF executable (little-endian unless `big_endian`) built field by field, with just what `elf::inspect` reads:
/// program headers (`PT_INTERP`, `PT_DYNAMIC` with `DT_NEEDED` and other entries) and sections
/// (an `.ARM.attributes` one, and one of another type before it).
#[derive(Debug, Clone, Default)]
pub struct ElfSpec {
    pub class64: bool,
    pub big_endian: bool,
    pub machine: u16,
    pub flags: u32,
    pub interpreter: Option<&'static str>,
    pub needed: usize,
    pub other_dynamic: usize,
    pub attributes: Option<Vec<u8>>,
}

impl ElfSpec {
    pub fn arm(hard_float: bool, attributes: Option<Vec<u8>>) -> ElfSpec {
        let flags = 0x0500_0000 | if hard_float { 0x400 } else { 0x200 };
        ElfSpec { machine: matrix::EM_ARM, flags, attributes, ..ElfSpec::default() }
    }

    /// A static 64-bit executable for `machine` with these `e_flags`.
    pub fn elf64(machine: u16, big_endian: bool, flags: u32) -> ElfSpec {
        ElfSpec { class64: true, big_endian, machine, flags, ..ElfSpec::default() }
    }

    pub fn build(&self) -> Vec<u8> {
        let wide = self.class64;
        let big = self.big_endian;
        let (ehsize, phentsize, shentsize, dynsize) = if wide { (64, 56, 64, 16) } else { (52, 32, 40, 8) };
        let mut out = vec![0u8; ehsize];
        let put = |out: &mut Vec<u8>, at: usize, value: u64, width: usize| {
            if out.len() < at + width {
                out.resize(at + width, 0);
            }
            let bytes = if big {
                value.to_be_bytes()[8 - width..].to_vec()
            } else {
                value.to_le_bytes()[..width].to_vec()
            };
            out[at..at + width].copy_from_slice(&bytes);
        };
        let word = if wide { 8 } else { 4 };
        // The reader maps tables onto aligned structs: start each at a multiple of 8.
        let align = |out: &mut Vec<u8>| out.resize(out.len().div_ceil(8) * 8, 0);

        // Segment and section contents first, then the tables that point at them.
        let interp = self.interpreter.map(|path| {
            let at = out.len();
            out.extend_from_slice(path.as_bytes());
            out.push(0);
            (at, path.len() + 1)
        });
        align(&mut out);
        let dynamic = (self.needed + self.other_dynamic > 0).then(|| {
            let at = out.len();
            let tags = std::iter::repeat_n(1u64, self.needed) // DT_NEEDED
                .chain(std::iter::repeat_n(12u64, self.other_dynamic)) // DT_INIT
                .chain([0u64]); // DT_NULL
            for (i, tag) in tags.enumerate() {
                put(&mut out, at + i * dynsize, tag, word);
                put(&mut out, at + i * dynsize + word, 0, word);
            }
            (at, (self.needed + self.other_dynamic + 1) * dynsize)
        });
        let names = out.len();
        out.push(0); // the section-name table: every name is ""
        let attributes = self.attributes.as_ref().map(|bytes| {
            let at = out.len();
            out.extend_from_slice(bytes);
            (at, bytes.len())
        });

        let segments: Vec<(u32, usize, usize)> =
            [interp.map(|(a, s)| (3, a, s)), dynamic.map(|(a, s)| (2, a, s))].into_iter().flatten().collect();
        align(&mut out);
        let phoff = out.len();
        for (i, &(kind, at, size)) in segments.iter().enumerate() {
            let base = phoff + i * phentsize;
            put(&mut out, base, u64::from(kind), 4);
            if wide {
                put(&mut out, base + 8, at as u64, 8);
                put(&mut out, base + 32, size as u64, 8);
                put(&mut out, base + 40, size as u64, 8);
            } else {
                put(&mut out, base + 4, at as u64, 4);
                put(&mut out, base + 16, size as u64, 4);
                put(&mut out, base + 20, size as u64, 4);
            }
        }
        out.resize(phoff + segments.len() * phentsize, 0);

        // Sections: the null one, the name table (a STRTAB), then .ARM.attributes if any.
        let mut sections: Vec<(u32, usize, usize)> = vec![(0, 0, 0), (3, names, 1)];
        sections.extend(attributes.map(|(at, size)| (0x7000_0003, at, size)));
        align(&mut out);
        let shoff = out.len();
        for (i, &(kind, at, size)) in sections.iter().enumerate() {
            let base = shoff + i * shentsize;
            put(&mut out, base + 4, u64::from(kind), 4);
            if wide {
                put(&mut out, base + 24, at as u64, 8);
                put(&mut out, base + 32, size as u64, 8);
            } else {
                put(&mut out, base + 16, at as u64, 4);
                put(&mut out, base + 20, size as u64, 4);
            }
        }
        out.resize(shoff + sections.len() * shentsize, 0);

        out[..4].copy_from_slice(b"\x7fELF");
        out[4] = if wide { 2 } else { 1 };
        out[5] = if big { 2 } else { 1 };
        out[6] = 1;
        put(&mut out, 16, 2, 2); // ET_EXEC
        put(&mut out, 18, u64::from(self.machine), 2);
        put(&mut out, 20, 1, 4);
        let (phoff_at, shoff_at, flags_at, sizes_at) = if wide { (32, 40, 48, 52) } else { (28, 32, 36, 40) };
        put(&mut out, phoff_at, if segments.is_empty() { 0 } else { phoff as u64 }, word);
        put(&mut out, shoff_at, shoff as u64, word);
        put(&mut out, flags_at, u64::from(self.flags), 4);
        for (i, value) in
            [ehsize, phentsize, segments.len(), shentsize, sections.len(), 1].into_iter().enumerate()
        {
            put(&mut out, sizes_at + 2 * i, value as u64, 2);
        }
        out
    }
}

/// An `.ARM.attributes` section: one "aeabi" subsection whose file attributes are `tags`
/// (already encoded), behind a subsection of another vendor that must be skipped.
pub fn arm_attributes(tags: &[u8]) -> Vec<u8> {
    let subsection = |vendor: &[u8], tags: &[u8]| {
        let mut file = vec![1u8]; // Tag_File
        file.extend_from_slice(&((tags.len() + 5) as u32).to_le_bytes());
        file.extend_from_slice(tags);
        let mut sub = Vec::new();
        sub.extend_from_slice(&((4 + vendor.len() + file.len()) as u32).to_le_bytes());
        sub.extend_from_slice(vendor);
        sub.extend_from_slice(&file);
        sub
    };
    let mut section = vec![b'A'];
    section.extend(subsection(b"gnu\0", &[6, 1]));
    section.extend(subsection(b"aeabi\0", tags));
    section
}

/// File attributes as a real toolchain writes them, with `Tag_CPU_arch` = `cpu_arch` behind
/// every kind of tag that must be skipped: CPU names (tags 5 and 4, strings), conformance (tag
/// 67, string), an unknown odd tag above 32 (string), compatibility (tag 32: integer and
/// string), an even tag above 32 and an odd one below (integers).
pub fn toolchain_tags(cpu_arch: u8) -> Vec<u8> {
    let mut tags = vec![5];
    tags.extend_from_slice(b"7-A\0");
    tags.push(67);
    tags.extend_from_slice(b"2.09\0");
    tags.push(69); // an unknown odd tag above 32: a string by the ABI's rule
    tags.extend_from_slice(b"v\0");
    tags.extend_from_slice(&[32, 1]);
    tags.extend_from_slice(b"gnu\0");
    tags.extend_from_slice(&[34, 1, 9, 2, 8, 1]); // an odd tag below 32 is an integer
    tags.extend_from_slice(&[4, b'7', 0]); // a raw CPU name right before: one string byte
    tags.extend_from_slice(&[6, cpu_arch, 7, b'A']);
    tags
}
