//! Unit-test fixtures: a small but complete dist folder written by the real writers (archive,
//! checksums, manifest, generated files), so checks can be tested without a cross build.

use camino::{Utf8Path, Utf8PathBuf};

use crate::archive::{self, ArchiveEntry};
use crate::checksum::{self, SumsEntry};
use crate::config::Config;
use crate::manifest::{Artifact, Binary, BuiltWith, Manifest};
use crate::matrix;
use crate::release_files::{self, ProjectFacts};
use crate::workspace::Release;

/// A fresh empty folder under the system's temp dir, unique to this test.
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

pub fn config() -> Config {
    Config::parse(
        "[dist]\npackage = \"exonode\"\narches = [\"amd64\", \"i386\"]\ndownload-url = \"https://example.org/{version}\"\n",
        Utf8Path::new("release.toml"),
    )
    .unwrap()
}

pub fn facts() -> ProjectFacts {
    ProjectFacts {
        source: "https://example.org/src".into(),
        licenses: "MIT".into(),
        description: "A node".into(),
    }
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
        other => panic!("no fixture binary for {other}"),
    }
}

/// Writes a complete dist folder for amd64 and i386 into `dir`, as `dist` would.
pub fn write_dist(dir: &Utf8Path) -> Manifest {
    let release = release();
    let mut artifacts = Vec::new();
    for name in ["amd64", "i386"] {
        let arch = matrix::by_name(name).unwrap();
        let binary = binary_for(name);
        let archive_name = release.archive_name(arch.target);
        let stem = release.archive_stem(arch.target);
        let entries =
            [ArchiveEntry { path: release.name.clone(), contents: binary.clone(), executable: true }];
        let bytes = archive::tar_gz(&stem, &entries, release.source_date_epoch).unwrap();
        let sha256 = checksum::sha256_hex(&bytes);
        std::fs::write(dir.join(&archive_name), &bytes).unwrap();
        let sidecar =
            checksum::render_sidecar(&SumsEntry { sha256: sha256.clone(), name: archive_name.clone() });
        std::fs::write(dir.join(checksum::sidecar_name(&archive_name)), sidecar).unwrap();
        let sbom = crate::sbom::file_name(&archive_name);
        std::fs::write(dir.join(&sbom), sbom_text(&release, &archive_name, arch.target)).unwrap();
        artifacts.push(Artifact {
            target: arch.target.into(),
            arch: name.into(),
            platform: arch.platform.to_string(),
            size: bytes.len() as u64,
            sha256,
            binary: Binary {
                path: format!("{stem}/{}", release.name),
                size: binary.len() as u64,
                sha256: checksum::sha256_hex(&binary),
            },
            sbom,
            built_with: BuiltWith { backend: "cargo".into(), rustc: "rustc 1.95.0".into() },
            name: archive_name,
        });
    }
    let manifest = Manifest::new(&release, artifacts);
    release_files::write_all(dir, &manifest, &config(), &facts()).unwrap();
    manifest
}

/// Makes every checksum file agree with the folder as it now is, as someone who controls the
/// whole folder would: the manifest's archive hashes and sizes, the sidecars and SHA256SUMS.
pub fn reseal(dir: &Utf8Path, manifest: &mut Manifest) {
    for artifact in &mut manifest.artifacts {
        let bytes = std::fs::read(dir.join(&artifact.name)).unwrap();
        artifact.sha256 = checksum::sha256_hex(&bytes);
        artifact.size = bytes.len() as u64;
        let line = checksum::render_sidecar(&SumsEntry {
            sha256: artifact.sha256.clone(),
            name: artifact.name.clone(),
        });
        std::fs::write(dir.join(checksum::sidecar_name(&artifact.name)), line).unwrap();
    }
    std::fs::write(dir.join(crate::manifest::MANIFEST_FILE), manifest.to_json()).unwrap();
    release_files::write_sums(dir).unwrap();
}

/// Repacks `artifact`'s archive with `binary` at the same path.
pub fn repack(dir: &Utf8Path, artifact: &Artifact, binary: &[u8]) {
    let release = release();
    let stem = release.archive_stem(&artifact.target);
    let entries = [ArchiveEntry { path: release.name.clone(), contents: binary.to_vec(), executable: true }];
    std::fs::write(dir.join(&artifact.name), archive::tar_gz(&stem, &entries, 86400).unwrap()).unwrap();
}
