//! `cargo xtask dist` and `verify`, end to end: ten arches built, checked on their CPU class
//! under qemu-user, packed reproducibly, verified; bad input and failures leave no output.

use std::process::Command;

use camino::{Utf8Path, Utf8PathBuf};

use crate::support::*;

/// How to run a binary of each arch on its CPU class from this x86_64 host.
fn runner(arch: &str) -> Vec<&'static str> {
    match arch {
        "amd64" | "i386" => vec![],
        "arm64v8" => vec!["qemu-aarch64-static", "-cpu", "cortex-a53"],
        "arm32v7" => vec!["qemu-arm-static", "-cpu", "cortex-a7"],
        "arm32v6" => vec!["qemu-arm-static", "-cpu", "arm1176"],
        "arm32v5" => vec!["qemu-arm-static", "-cpu", "arm926"],
        "riscv64" => vec!["qemu-riscv64-static", "-cpu", "sifive-u54"],
        "ppc64le" => vec!["qemu-ppc64le-static", "-cpu", "power8"],
        "s390x" => vec!["qemu-s390x-static", "-cpu", "qemu"],
        "mips64le" => vec!["qemu-mips64el-static", "-cpu", "MIPS64R2-generic"],
        other => panic!("no runner for {other}"),
    }
}

/// Unpacks one arch's archive into a scratch folder and returns the binary's path.
fn unpack_binary(dist: &Utf8Path, arch: &str, into: &Utf8Path) -> camino::Utf8PathBuf {
    let artifact = artifact(dist, arch);
    let archive = dist.join(artifact["name"].as_str().unwrap());
    run_ok("tar", &["-xzf", archive.as_str(), "-C", into.as_str()]);
    into.join(artifact["binary"]["path"].as_str().unwrap())
}

fn run_on_cpu(arch: &str, binary: &Utf8Path, args: &[&str]) -> std::process::Output {
    let mut words = runner(arch);
    words.push(binary.as_str());
    words.extend_from_slice(args);
    Command::new(words[0]).args(&words[1..]).output().unwrap_or_else(|e| {
        panic!("cannot run {}: {e} (qemu-user-static comes with the README's test command)", words[0])
    })
}

#[test]
fn dist_builds_ten_static_binaries_that_run_on_their_cpu_class() {
    let dist = shared_dist();
    let sums = run_ok("sh", &["-c", &format!("cd {dist} && sha256sum -c SHA256SUMS")]);
    assert_eq!(sums.lines().filter(|l| l.ends_with(": OK")).count(), sums.lines().count());

    let manifest = manifest(dist);
    let arches: Vec<&str> =
        manifest["artifacts"].as_array().unwrap().iter().map(|a| a["arch"].as_str().unwrap()).collect();
    assert_eq!(arches, ALL_ARCHES, "artifacts follow the matrix order");
    let commit = manifest["commit"].as_str().unwrap().to_string();

    let unpack = scratch("dist-run");
    for arch in ALL_ARCHES {
        let artifact = artifact(dist, arch);
        let target = artifact["target"].as_str().unwrap();
        let binary = unpack_binary(dist, arch, &unpack);
        let file = run_ok("file", &["-b", binary.as_str()]);
        assert!(file.contains("statically linked") || file.contains("static-pie"), "{arch}: {file}");

        let output = run_on_cpu(arch, &binary, &["--version"]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{arch} does not run on its CPU class: {output:?}");
        assert!(stdout.contains(target), "{arch}: --version says {stdout:?}, not {target}");
        assert!(stdout.contains(&commit), "{arch}: --version lacks the commit: {stdout:?}");
        assert_eq!(stdout.lines().count(), 1, "--version prints one line");
    }
}

#[test]
fn an_arm32v7_binary_dies_on_an_armv5_cpu_so_the_cpu_check_means_something() {
    let unpack = scratch("dist-sigill");
    let binary = unpack_binary(shared_dist(), "arm32v7", &unpack);
    let output = Command::new("qemu-arm-static")
        .args(["-cpu", "arm926", binary.as_str(), "--version"])
        .output()
        .unwrap();
    assert!(!output.status.success(), "an ARMv7 binary must not run on an ARMv5TE CPU");
}

#[test]
fn manifest_records_what_each_artifact_is() {
    let dist = shared_dist();
    let manifest = manifest(dist);
    assert_eq!(manifest["name"], "exonode");
    assert_eq!(manifest["version"], env!("CARGO_PKG_VERSION"));
    for artifact in manifest["artifacts"].as_array().unwrap() {
        let name = artifact["name"].as_str().unwrap();
        let size = std::fs::metadata(dist.join(name)).unwrap().len();
        assert_eq!(artifact["size"].as_u64().unwrap(), size, "{name}");
        let sidecar = std::fs::read_to_string(dist.join(format!("{name}.sha256"))).unwrap();
        assert_eq!(sidecar, format!("{}  {name}\n", artifact["sha256"].as_str().unwrap()));
        // Which of the two depends on what rustup offers on this host; the dry-run test checks
        // that the plan names the backend each arch was really built with.
        let built_with = &artifact["built_with"];
        assert!(["cargo", "build-std"].contains(&built_with["backend"].as_str().unwrap()));
        assert!(built_with["rustc"].as_str().unwrap().starts_with("rustc "));
        // Every pin that made the bytes is recorded, in the manifest and in the SBOM.
        let (stable, nightly, zig) = pins();
        let (toolchain, zig_recorded) = if built_with["backend"] == "build-std" {
            (nightly.as_str(), Some(zig.as_str()))
        } else {
            (stable.as_str(), None)
        };
        assert_eq!(built_with["toolchain"], toolchain, "{name}");
        assert_eq!(built_with["zig"].as_str(), zig_recorded, "{name}");
        let sbom: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dist.join(format!("{name}.cdx.json"))).unwrap()).unwrap();
        let properties = sbom["metadata"]["properties"].as_array().unwrap();
        let recorded = |key: &str| properties.iter().find(|p| p["name"] == key).map(|p| p["value"].clone());
        assert_eq!(recorded("exotool:toolchain"), Some(toolchain.into()), "{name}");
        assert_eq!(recorded("exotool:zig").as_ref().and_then(|v| v.as_str()), zig_recorded, "{name}");
    }
}

/// The pins as written: rust-toolchain.toml's channel, release.toml's nightly and zig.
fn pins() -> (String, String, String) {
    let read = |file: &str| {
        toml::from_str::<toml::Table>(&std::fs::read_to_string(root().join(file)).unwrap()).unwrap()
    };
    let channel = read("rust-toolchain.toml")["toolchain"]["channel"].as_str().unwrap().to_string();
    let release = read("release.toml");
    let tool = |key: &str| release["toolchain"][key].as_str().unwrap().to_string();
    (channel, tool("nightly"), tool("zig"))
}

#[test]
fn a_rustc_other_than_the_pinned_one_is_refused() {
    let (stable, _, _) = pins();
    let output = xtask_env(&["dist", "--dry-run", "--arch", "amd64"], &[("RUSTUP_TOOLCHAIN", "nightly")]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a dist with another rustc must fail");
    assert!(
        stderr.contains(&format!("rust-toolchain.toml pins Rust {stable}")) && stderr.contains("-nightly"),
        "{stderr}"
    );
}

#[test]
fn verify_names_a_flipped_byte_a_missing_file_and_a_stray_file() {
    let dir = scratch("verify-tamper");
    copy_dir(shared_dist(), &dir);
    xtask_ok(&["verify", dir.as_str()]);

    let victim = artifact(&dir, "arm32v5")["name"].as_str().unwrap().to_string();
    flip_byte(&dir.join(&victim), 1000);
    std::fs::remove_file(dir.join("install.sh")).unwrap();
    std::fs::write(dir.join("extra.bin"), "slipped in").unwrap();
    let stderr = xtask_fails(&["verify", dir.as_str()]);
    assert!(stderr.contains(&format!("FAILED {victim}: sha256")), "{stderr}");
    assert!(stderr.contains("FAILED install.sh: missing"), "{stderr}");
    assert!(stderr.contains("FAILED extra.bin: not listed in SHA256SUMS"), "{stderr}");
}

#[test]
fn verify_compares_the_binary_inside_by_hash_and_by_elf_facts() {
    // Someone repacks the amd64 archive with the i386 binary at the same path and rewrites
    // every checksum file: the manifest's binary hash still gives it away.
    let dir = scratch("verify-swap");
    copy_dir(shared_dist(), &dir);
    let victim = artifact(&dir, "amd64");
    let (name, path) = (victim["name"].as_str().unwrap(), victim["binary"]["path"].as_str().unwrap());
    let i386 = unpack_binary(&dir, "i386", &scratch("verify-swap-unpack"));
    let foreign = std::fs::read(&i386).unwrap();
    repack_with_binary(&dir, "amd64", &foreign);
    reseal(&dir);
    let stderr = xtask_fails(&["verify", dir.as_str()]);
    assert!(
        stderr.contains(&format!(
            "FAILED {name}: the binary {path} has sha256 {}, the manifest says {}",
            sha256_hex(&foreign),
            victim["binary"]["sha256"].as_str().unwrap()
        )),
        "{stderr}"
    );

    // The binary's hash rewritten too: its ELF facts still say it is no amd64 binary.
    set_binary_sha256(&dir, "amd64", &sha256_hex(&foreign));
    reseal(&dir);
    let stderr = xtask_fails(&["verify", dir.as_str()]);
    assert!(
        stderr.contains(&format!(
            "FAILED {name}: the binary {path} is not fit for amd64: it is a Elf32 Intel 80386 binary, but amd64 needs Elf64 x86-64"
        )),
        "{stderr}"
    );
    // The amd64 packages still hold the real binary, which no longer matches the manifest.
    for format in ["deb", "rpm"] {
        let package = victim[format]["name"].as_str().unwrap();
        assert!(stderr.contains(&format!("FAILED {package}: /usr/bin/exonode has sha256")), "{stderr}");
    }
    let named: Vec<&str> = stderr.lines().filter(|l| l.starts_with("FAILED")).collect();
    assert_eq!(named.len(), 3, "only the swapped archive and its two packages are named: {stderr}");
}

#[test]
fn verify_names_a_changed_sbom_and_a_changed_sidecar_even_with_regenerated_sums() {
    let dir = scratch("verify-sbom-sidecar");
    copy_dir(shared_dist(), &dir);
    let amd64 = artifact(&dir, "amd64");
    let i386 = artifact(&dir, "i386");
    let (amd64_sbom, i386_sbom) = (amd64["sbom"].as_str().unwrap(), i386["sbom"].as_str().unwrap());

    // A flipped byte, sums untouched: SHA256SUMS names the file.
    flip_byte(&dir.join(amd64_sbom), 10);
    let stderr = xtask_fails(&["verify", dir.as_str()]);
    assert!(stderr.contains(&format!("FAILED {amd64_sbom}: sha256")), "{stderr}");

    // Another arch's SBOM in its place and SHA256SUMS regenerated: the SBOM's own subject
    // gives it away. Likewise a sidecar holding another archive's checksum.
    std::fs::copy(dir.join(i386_sbom), dir.join(amd64_sbom)).unwrap();
    let sidecar = format!("{}.sha256", i386["name"].as_str().unwrap());
    std::fs::write(
        dir.join(&sidecar),
        format!("{}  {}\n", amd64["sha256"].as_str().unwrap(), i386["name"].as_str().unwrap()),
    )
    .unwrap();
    rewrite_sums(&dir);
    let stderr = xtask_fails(&["verify", dir.as_str()]);
    assert!(
        stderr.contains(&format!(
            "FAILED {amd64_sbom}: describes {} (i686-unknown-linux-musl, version",
            i386["name"].as_str().unwrap()
        )) && stderr.contains(&format!(
            "not {} (x86_64-unknown-linux-musl, version",
            amd64["name"].as_str().unwrap()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "FAILED {sidecar}: does not hold the checksum of {}",
            i386["name"].as_str().unwrap()
        )),
        "{stderr}"
    );
    assert_eq!(stderr.matches("FAILED").count(), 2, "{stderr}");
}

#[test]
fn dry_run_prints_every_command_and_builds_nothing() {
    // The plan must name the backend the real build used, whatever this machine's rustup has.
    let built = manifest(shared_dist());
    let out = scratch("dry-run").join("dist");
    let stdout = xtask_ok(&["dist", "--dry-run", "--out", out.as_str()]);
    for artifact in built["artifacts"].as_array().unwrap() {
        let (arch, target) = (artifact["arch"].as_str().unwrap(), artifact["target"].as_str().unwrap());
        let backend = match artifact["built_with"]["backend"].as_str().unwrap() {
            "build-std" => "nightly -Zbuild-std + zig",
            "cargo" => "cargo + rust-lld",
            other => panic!("unexpected backend {other}"),
        };
        let row = format!("  {arch:<8} {target:<31} {backend}");
        assert!(stdout.contains(&row), "plan lacks {row:?}:\n{stdout}");
    }
    assert!(stdout.contains("cargo build --release --locked"), "{stdout}");
    assert!(stdout.contains("qemu-arm-static -cpu arm926"), "{stdout}");
    assert!(!out.exists(), "a dry run must not write {out}");
}

#[test]
fn bad_input_gets_one_clear_message() {
    let stderr = xtask_fails(&["dist", "--arch", "arm7"]);
    assert!(
        stderr.contains("--arch \"arm7\" is not a known arch; accepted values: amd64, arm64v8"),
        "{stderr}"
    );
    let stderr = xtask_fails(&["dist", "--target", "mips-unknown-linux-musl"]);
    assert!(stderr.contains("--target \"mips-unknown-linux-musl\" is not in the arch matrix"), "{stderr}");

    let precious = scratch("not-a-dist");
    std::fs::write(precious.join("notes.txt"), "keep me").unwrap();
    let stderr = xtask_fails(&["dist", "--arch", "amd64", "--out", precious.as_str()]);
    assert!(stderr.contains("refusing to replace"), "{stderr}");
    assert!(precious.join("notes.txt").exists());
}

#[test]
fn a_failed_build_leaves_no_output_that_looks_complete() {
    let root_dir = scratch("failed-build");
    let out = root_dir.join("dist");
    copy_dir(shared_dist(), &out);
    // CARGO_BUILD_JOBS=0 makes every cargo build fail at once: a stand-in for a broken compiler.
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["dist", "--arch", "amd64", "--arch", "i386", "--out", out.as_str()])
        .env("CARGO_BUILD_JOBS", "0")
        .current_dir(root())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    // Both build at once and fail at once: whichever failed first names itself.
    assert!(
        stderr.contains("amd64 (x86_64-unknown-linux-musl) failed")
            || stderr.contains("i386 (i686-unknown-linux-musl) failed"),
        "the failing arch names itself: {stderr}"
    );
    // cargo's own lines are not shown as they come (no --verbose); the error carries the
    // command and its last lines.
    assert!(
        stderr.contains("the build failed: command failed")
            && stderr.contains("cargo build --release --locked")
            && stderr.contains("its last lines:\n    error: jobs may not be 0"),
        "{stderr}"
    );
    let left: Vec<String> =
        root_dir.read_dir_utf8().unwrap().map(|e| e.unwrap().file_name().to_string()).collect();
    assert!(left.is_empty(), "nothing may remain, not even the earlier output: {left:?}");
}

#[test]
fn two_checkouts_at_different_paths_produce_identical_bytes() {
    // The sources as they are now (committed or not), as one commit object both clones share.
    let snapshot = snapshot();
    let base = scratch("reproducible");
    let mut outputs = Vec::new();
    for name in ["first checkout", "second/checkout-path"] {
        let checkout = base.join(name);
        checkout_at(&checkout, &snapshot);
        let out = base.join(format!("out-{}", outputs.len()));
        let status = Command::new("cargo")
            .args(["xtask", "dist", "--arch", "amd64", "--arch", "arm32v5", "--out", out.as_str()])
            .current_dir(&checkout)
            .env_remove("CARGO_TARGET_DIR")
            .status()
            .unwrap();
        assert!(status.success(), "dist failed in {checkout}");
        outputs.push(out);
    }
    let listing = |dir: &Utf8Path| {
        let mut names: Vec<String> =
            dir.read_dir_utf8().unwrap().map(|e| e.unwrap().file_name().to_string()).collect();
        names.sort();
        names
    };
    assert_eq!(listing(&outputs[0]), listing(&outputs[1]));
    for name in listing(&outputs[0]) {
        let a = std::fs::read(outputs[0].join(&name)).unwrap();
        let b = std::fs::read(outputs[1].join(&name)).unwrap();
        assert!(a == b, "{name} differs between the two checkouts");
    }
    let _ = std::fs::remove_dir_all(base.join("first checkout"));
    let _ = std::fs::remove_dir_all(base.join("second"));
}

/// Rebuilds `arch`'s archive in `dir` with `binary` in place of its binary, same path.
fn repack_with_binary(dir: &Utf8Path, arch: &str, binary: &[u8]) {
    use std::io::Read;
    let artifact = artifact(dir, arch);
    let archive = dir.join(artifact["name"].as_str().unwrap());
    let binary_path = artifact["binary"]["path"].as_str().unwrap();
    let mut entries = Vec::new();
    let file = std::fs::File::open(&archive).unwrap();
    for entry in tar::Archive::new(flate2::read::GzDecoder::new(file)).entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut header = entry.header().clone();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        if entry.path().unwrap().to_str() == Some(binary_path) {
            data = binary.to_vec();
            header.set_size(data.len() as u64);
            header.set_cksum();
        }
        entries.push((header, data));
    }
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (header, data) in entries {
        tar.append(&header, data.as_slice()).unwrap();
    }
    std::fs::write(&archive, tar.into_inner().unwrap().finish().unwrap()).unwrap();
}

fn edit_manifest(dir: &Utf8Path, edit: impl Fn(&mut serde_json::Value)) {
    let mut manifest = manifest(dir);
    edit(&mut manifest);
    std::fs::write(dir.join("dist-manifest.json"), serde_json::to_string_pretty(&manifest).unwrap()).unwrap();
}

fn set_binary_sha256(dir: &Utf8Path, arch: &str, sha256: &str) {
    edit_manifest(dir, |m| {
        for a in m["artifacts"].as_array_mut().unwrap().iter_mut().filter(|a| a["arch"] == arch) {
            a["binary"]["sha256"] = sha256.into();
        }
    });
}

/// SHA256SUMS over every other file, as someone who controls the folder would write it.
fn rewrite_sums(dir: &Utf8Path) {
    let mut names: Vec<String> = dir
        .read_dir_utf8()
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string())
        .filter(|n| n != "SHA256SUMS")
        .collect();
    names.sort();
    let sums: String = names
        .iter()
        .map(|n| format!("{}  {n}\n", sha256_hex(&std::fs::read(dir.join(n)).unwrap())))
        .collect();
    std::fs::write(dir.join("SHA256SUMS"), sums).unwrap();
}

/// Every checksum an attacker controls made to agree with the archives as they now are: the
/// manifest's archive hashes and sizes, the sidecars, SHA256SUMS.
fn reseal(dir: &Utf8Path) {
    edit_manifest(dir, |m| {
        for a in m["artifacts"].as_array_mut().unwrap() {
            let bytes = std::fs::read(dir.join(a["name"].as_str().unwrap())).unwrap();
            a["sha256"] = sha256_hex(&bytes).into();
            a["size"] = (bytes.len() as u64).into();
        }
    });
    for a in manifest(dir)["artifacts"].as_array().unwrap() {
        let name = a["name"].as_str().unwrap();
        std::fs::write(
            dir.join(format!("{name}.sha256")),
            format!("{}  {name}\n", a["sha256"].as_str().unwrap()),
        )
        .unwrap();
    }
    // The provenance's subjects too: an attacker who controls the folder rewrites them.
    let path = dir.join("provenance.intoto.json");
    let mut statement: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for (subject, a) in statement["subject"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .zip(manifest(dir)["artifacts"].as_array().unwrap())
    {
        subject["digest"]["sha256"] = a["sha256"].clone();
    }
    std::fs::write(&path, serde_json::to_string_pretty(&statement).unwrap()).unwrap();
    rewrite_sums(dir);
}

/// The file offset of a 32-bit little-endian ARM ELF's `.ARM.attributes` section header and
/// of its data. Fixtures are made by editing real binaries, so the offsets are read, not assumed.
fn arm_attributes(elf: &[u8]) -> (usize, usize, usize) {
    let u32_at = |at: usize| u32::from_le_bytes(elf[at..at + 4].try_into().unwrap()) as usize;
    let u16_at = |at: usize| u16::from_le_bytes(elf[at..at + 2].try_into().unwrap()) as usize;
    let (shoff, shentsize, shnum) = (u32_at(0x20), u16_at(0x2e), u16_at(0x30));
    (0..shnum)
        .map(|i| shoff + i * shentsize)
        .find(|&header| u32_at(header + 4) == 0x7000_0003)
        .map(|header| (header, u32_at(header + 16), u32_at(header + 20)))
        .expect("an ARM binary has .ARM.attributes")
}

/// Where the value of `Tag_CPU_arch` sits in the file (the ABI's tag/value stream of the
/// "aeabi" file attributes; a one-byte ULEB128 for every value that matters here).
fn tag_cpu_arch_offset(elf: &[u8]) -> usize {
    let (_, start, size) = arm_attributes(elf);
    let section = &elf[start..start + size];
    let mut at = section.windows(6).position(|w| w == b"aeabi\0").expect("aeabi attributes") + 6;
    assert_eq!(section[at], 1, "a Tag_File sub-subsection follows the vendor name");
    at += 5;
    loop {
        let tag = section[at];
        at += 1;
        if tag == 6 {
            return start + at;
        }
        let is_string = matches!(tag, 4 | 5) || (tag >= 32 && tag % 2 == 1);
        if tag == 32 {
            at += 1;
        }
        if is_string || tag == 32 {
            at += section[at..].iter().position(|&b| b == 0).unwrap() + 1;
        } else {
            while section[at] & 0x80 != 0 {
                at += 1;
            }
            at += 1;
        }
    }
}

/// A copy of the shared dist's `arch` binary, edited by `edit`, saved as an executable.
fn fixture(dir: &Utf8Path, name: &str, arch: &str, edit: impl FnOnce(&mut Vec<u8>)) -> Utf8PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let unpacked = dir.join("unpacked");
    std::fs::create_dir_all(&unpacked).unwrap();
    let mut bytes = std::fs::read(unpack_binary(shared_dist(), arch, &unpacked)).unwrap();
    edit(&mut bytes);
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A machine where no foreign binary can be started: a PATH holding everything the current
/// one does except qemu-user and apt-get (so dist cannot fetch an emulator either) and an
/// empty tool cache. Whatever refuses a binary then is the ELF check alone.
fn without_emulators(name: &str) -> [(&'static str, String); 2] {
    let path = path_without(&format!("{name}-path"), |name| name.starts_with("qemu-") || name == "apt-get");
    assert!(!Utf8Path::new(&path).join("qemu-arm-static").exists());
    [("PATH", path), ("EXOTOOL_TOOLS_DIR", scratch(&format!("{name}-tools")).to_string())]
}

fn env_of<'a>(pairs: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
fn the_elf_check_alone_refuses_the_wrong_cpu_level_float_abi_linkage_or_machine() {
    let work = scratch("elf-fixtures");
    let v7 = fixture(&work, "armv7", "arm32v7", |_| {});
    let v5 = fixture(&work, "armv5te", "arm32v5", |_| {});
    let arm64 = fixture(&work, "aarch64", "arm64v8", |_| {});
    let unreadable = fixture(&work, "armv7-no-attributes", "arm32v7", |elf| {
        // The section's type no longer says "ARM attributes": nothing can be read from it.
        let (header, _, _) = arm_attributes(elf);
        elf[header + 4..header + 8].copy_from_slice(&1u32.to_le_bytes());
    });
    // The 64-bit psABIs: each real binary with one e_flags fact changed (ELF64 keeps e_flags
    // at offset 48; these three are little-endian).
    let with_flags = |name: &str, arch: &str, flags: u32| {
        fixture(&work, name, arch, |elf| elf[48..52].copy_from_slice(&flags.to_le_bytes()))
    };
    let soft_riscv = with_flags("riscv64-soft-float", "riscv64", 0x1);
    let elfv1 = with_flags("ppc64le-elfv1", "ppc64le", 0x1);
    let n32 = with_flags("mips64el-n32", "mips64le", 0x8000_0027);
    let r6 = with_flags("mips64el-r6", "mips64le", 0xa000_0007);
    let s390x = fixture(&work, "s390x", "s390x", |_| {});
    let dynamic = Utf8PathBuf::from("/bin/sh");
    let hidden = without_emulators("elf-fixtures");
    for (arch, binary, expected) in [
        (
            "riscv64",
            &soft_riscv,
            "it uses the soft-float (lp64) ABI (e_flags 0x1), but riscv64 needs double-float (lp64d) with \
             compressed instructions (e_flags 0x5)",
        ),
        (
            "ppc64le",
            &elfv1,
            "it uses the 64-bit PowerPC ELFv1 ABI (e_flags 0x1, big-endian ppc64's), but ppc64le needs ELFv2",
        ),
        (
            "mips64le",
            &n32,
            "it uses the n32 ABI (EF_MIPS_ABI2 in e_flags 0x80000027), but mips64le needs n64",
        ),
        (
            "mips64le",
            &r6,
            "it is built for MIPS64R6 (e_flags 0xa0000007), but mips64le runs 64-bit code up to MIPS64R2",
        ),
        ("mips64le", &s390x, "it is a Elf64 IBM S/390 binary, but mips64le needs Elf64 MIPS"),
        ("arm32v5", &v7, "it uses the hard-float ABI, but arm32v5 needs soft-float"),
        (
            "arm32v6",
            &v7,
            "it is built for ARM v7 CPUs (Tag_CPU_arch 10), newer than arm32v6 allows (v6KZ at most)",
        ),
        ("arm32v7", &v5, "it uses the soft-float ABI, but arm32v7 needs hard-float"),
        ("arm32v7", &unreadable, "its ARM build attributes (Tag_CPU_arch in .ARM.attributes) cannot be read"),
        ("amd64", &dynamic, "it is dynamically linked (interpreter /lib"),
        ("amd64", &arm64, "it is a Elf64 AArch64 binary, but amd64 needs Elf64 x86-64"),
    ] {
        let out = work.join("dist");
        let prebuilt = format!("{arch}={binary}");
        let output = xtask_env(
            &["dist", "--allow-unrun", "--arch", arch, "--prebuilt", &prebuilt, "--out", out.as_str()],
            &env_of(&hidden),
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{arch} <- {binary} was accepted");
        let expected = format!("{arch} ({}) failed: refusing {binary}: {expected}", target_of(arch));
        assert!(stderr.contains(&expected), "expected {expected:?} in:\n{stderr}");
        assert!(!out.exists());
    }
}

/// `dist ARGS --prebuilt ARCH=BINARY...` of every arch's real binary (copied into `work`).
fn prebuilt_args(work: &Utf8Path, out: &Utf8Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["dist"].iter().chain(extra).map(|s| s.to_string()).collect();
    for arch in ALL_ARCHES {
        let binary = fixture(work, arch, arch, |_| {});
        args.extend(["--prebuilt".to_string(), format!("{arch}={binary}")]);
    }
    args.extend(["--out".to_string(), out.to_string()]);
    args
}

#[test]
fn real_binaries_of_every_arch_pass_the_elf_check_alone_and_pack_to_the_same_bytes() {
    // With no emulator to be had, the foreign run checks are skipped (--allow-unrun), so the
    // ELF check alone decides, on the real binary of every arch.
    let work = scratch("elf-real");
    let out = work.join("dist");
    let args = prebuilt_args(&work, &out, &["--allow-unrun"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let hidden = without_emulators("elf-real");
    let output = xtask_env(&args, &env_of(&hidden));
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "warning: not started on its CPU: qemu-arm-static is not on PATH and dist cannot fetch it"
        ),
        "{stderr}"
    );
    assert!(
        stdout.lines().any(|l| l
            == "8 of 10 binaries not started on their CPU (run_check \"skipped\" in dist-manifest.json)"),
        "{stdout}"
    );
    for arch in ALL_ARCHES {
        let (ours, shared) = (artifact(&out, arch), artifact(shared_dist(), arch));
        assert_eq!(ours["built_with"]["backend"], "prebuilt");
        assert_eq!(ours["sha256"], shared["sha256"], "{arch}: packing the same binary gave other bytes");
        let expected = if matches!(arch, "amd64" | "i386") { "this host" } else { "skipped" };
        assert_eq!(ours["run_check"], expected, "{arch}");
    }
    let verified = xtask_ok(&["verify", out.as_str()]);
    assert!(
        verified.contains(
            "8 of 10 binaries were packed without being started on their CPU (run_check \"skipped\"): arm64v8, \
             arm32v7, arm32v6, arm32v5, riscv64, ppc64le, s390x, mips64le"
        ),
        "{verified}"
    );
}

#[test]
fn with_no_emulator_to_be_had_dist_stops_before_building_and_names_the_fix() {
    let hidden = without_emulators("no-emulator");
    let out = scratch("no-emulator").join("dist");
    // A real build would come first in the plan's execution: nothing may be compiled.
    let args = ["dist", "--arch", "amd64", "--arch", "arm64v8", "--out", out.as_str()];
    let record = scratch("no-emulator-steps").join("steps");
    let mut env = env_of(&hidden);
    env.push(("EXOTOOL_RECORD_STEPS", record.as_str()));
    let output = xtask_env(&args, &env);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "dist packed arm64v8 without starting it");
    assert!(
        stderr.contains(
            "the run check cannot start arm64v8 on its CPU here: qemu-aarch64-static is not on PATH and dist \
             cannot fetch it (this host has no apt-get to fetch Debian's qemu-user-static with): install it \
             with `sudo apt-get install qemu-user-static`, or pass --allow-unrun"
        )
            && stderr.contains("--allow-unrun")
            && stderr.contains("dist.run-check = \"optional\""),
        "{stderr}"
    );
    assert_eq!(stderr.lines().filter(|l| l.starts_with("error:")).count(), 1, "{stderr}");
    assert!(!out.exists());
    assert!(!record.exists() || std::fs::read_to_string(&record).unwrap().is_empty(), "a step ran");
}

#[test]
fn without_qemu_user_dist_fetches_debians_emulator_and_starts_every_arch_on_its_cpu() {
    // qemu-user is off the PATH and the tool cache is empty: dist fetches the pinned
    // qemu-user-static with apt-get download (no root), checks its sha256, unpacks it and starts
    // each binary under it by path with the row's CPU model (so no binfmt handler is involved).
    let work = scratch("fetched-emulator");
    let path = path_without("fetched-emulator-path", |name| name.starts_with("qemu-"));
    let tools = scratch("fetched-emulator-tools");
    let out = work.join("dist");
    let args = prebuilt_args(&work, &out, &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env = [("PATH", path.as_str()), ("EXOTOOL_TOOLS_DIR", tools.as_str())];
    let dry: Vec<&str> = args.iter().copied().chain(["--dry-run"]).collect();
    let plan = xtask_env(&dry, &env);
    let plan = String::from_utf8_lossy(&plan.stdout).into_owned();
    assert!(
        plan.contains(
            "qemu-user-static from Debian bookworm (sha256-pinned, unpacked with dpkg-deb), for the run checks: cd "
        ) && plan
            .contains(&format!("apt-get -o Dir::Etc::SourceList={tools}/apt-bookworm-amd64/sources.list"))
            && plan.contains(" download qemu-user-static=1:7.2+dfsg-7+deb12u18+b3"),
        "{plan}"
    );
    let cache = tools.join("qemu-user-static-1_7.2+dfsg-7+deb12u18+b3-amd64/usr/bin");
    assert!(plan.contains(&format!("{cache}/qemu-arm-static -cpu arm1176 ")), "{plan}");
    let output = xtask_env(&args, &env);
    assert!(output.status.success(), "dist with a fetched emulator failed");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("not started on their CPU"), "{stdout}");
    for (arch, words) in ALL_ARCHES.iter().map(|arch| (*arch, runner(arch))) {
        let expected = if words.is_empty() { "this host".to_string() } else { words[2].to_string() };
        assert_eq!(artifact(&out, arch)["run_check"], expected.as_str(), "{arch}");
    }
    // The next run finds it in the cache and fetches nothing.
    let again = xtask_env(&dry, &env);
    let again = String::from_utf8_lossy(&again.stdout);
    assert!(!again.contains(" download qemu-user-static"), "{again}");
    assert!(again.contains(&format!("{cache}/qemu-aarch64-static -cpu cortex-a53 ")), "{again}");
}

#[test]
fn an_opted_in_loongarch64_is_built_and_every_arch_started_on_its_cpu_with_fetched_emulators() {
    // A release that opts into loongarch64 (release.toml's dist.arches), on a machine with no
    // qemu-user on PATH and an empty tool cache: dist fetches bookworm's qemu-user-static for
    // the ten and trixie's qemu-user for loongarch64 (whose LSX code bookworm's qemu 7.2 cannot
    // run) and starts every binary on its CPU model. The ten are the shared dist's binaries.
    let work = scratch("loongarch64");
    let checkout = work.join("checkout");
    checkout_at(&checkout, &snapshot());
    let path = checkout.join("release.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let from = "\"s390x\", \"mips64le\"]";
    assert!(text.contains(from), "release.toml's dist.arches moved: update this test");
    std::fs::write(&path, text.replace(from, "\"s390x\", \"mips64le\", \"loongarch64\"]")).unwrap();
    let out = work.join("dist");
    let args = prebuilt_args(&work, &out, &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let qemu_free = path_without("loongarch64-path", |name| name.starts_with("qemu-"));
    let tools = scratch("loongarch64-tools");
    let env = [("PATH", qemu_free.as_str()), ("EXOTOOL_TOOLS_DIR", tools.as_str())];
    let output = xtask_in_env(&checkout, &args, &env);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "dist with loongarch64 failed");
    for step in [
        "qemu-user-static from Debian bookworm (sha256-pinned, unpacked with dpkg-deb), for the run checks",
        "qemu-user from Debian trixie (sha256-pinned, unpacked with dpkg-deb), for the run checks",
    ] {
        assert!(stderr.lines().any(|l| l == step), "no step line {step:?}:\n{stderr}");
    }
    let built = artifact(&out, "loongarch64");
    assert_eq!(built["run_check"], "la464", "{built}");
    assert_eq!(built["platform"], "linux/loong64");
    assert_eq!(built["built_with"]["backend"], "build-std");
    assert_eq!(built["deb"]["architecture"], "loong64");
    assert_eq!(built["rpm"]["architecture"], "loongarch64");
    for arch in ALL_ARCHES {
        let words = runner(arch);
        let expected = if words.is_empty() { "this host" } else { words[2] };
        assert_eq!(artifact(&out, arch)["run_check"], expected, "{arch}");
    }
    xtask_ok(&["verify", out.as_str()]);
    // The fetched emulator really is what the row needs: bookworm's qemu dies on its code.
    let unpacked = work.join("unpacked-la");
    std::fs::create_dir_all(&unpacked).unwrap();
    let binary = unpack_binary(&out, "loongarch64", &unpacked);
    let old = Command::new("qemu-loongarch64-static")
        .args(["-cpu", "la464", binary.as_str(), "--version"])
        .output()
        .expect("qemu-user-static comes with the README's test command");
    assert!(!old.status.success(), "bookworm's qemu ran LSX code: the trixie pin may no longer be needed");
}

#[test]
fn the_run_check_refuses_what_does_not_run_on_its_cpu_class_or_does_not_serve() {
    let work = scratch("run-check");
    // ARMv7 code whose attributes claim ARMv6: the ELF check is fooled, the CPU is not.
    let v7_as_v6 = fixture(&work, "armv7-claims-v6", "arm32v7", |elf| {
        let at = tag_cpu_arch_offset(elf);
        assert_eq!(elf[at], 10, "an ARMv7 binary says Tag_CPU_arch 10");
        elf[at] = 6;
    });
    let out = work.join("dist");
    let prebuilt = format!("arm32v6={v7_as_v6}");
    let stderr = xtask_fails(&["dist", "--arch", "arm32v6", "--prebuilt", &prebuilt, "--out", out.as_str()]);
    assert!(
        stderr.contains("arm32v6 (arm-unknown-linux-musleabihf) failed: the binary does not run on its CPU class (arm1176)")
            && stderr.contains("Illegal instruction"),
        "{stderr}"
    );
    assert!(!out.exists());

    // A static binary that answers --version but is no daemon: the smoke run refuses it.
    let source = work.join("fake.c");
    std::fs::write(
        &source,
        "#include <stdio.h>\n#include <string.h>\nint main(int c, char **v) {\n\
         if (c > 1 && !strcmp(v[1], \"--version\")) { puts(\"exonode 0.0.0 (fake)\"); return 0; }\n\
         fputs(\"fake: no daemon here\\n\", stderr); return 1; }\n",
    )
    .unwrap();
    let fake = work.join("fake");
    run_ok("cc", &["-static", "-o", fake.as_str(), source.as_str()]);
    let prebuilt = format!("amd64={fake}");
    let stderr = xtask_fails(&["dist", "--arch", "amd64", "--prebuilt", &prebuilt, "--out", out.as_str()]);
    assert!(
        stderr.contains("the smoke run (dist.smoke) failed on its CPU class (this host)")
            && stderr.contains("it exited (exit status: 1) before answering GET /healthz")
            && stderr.contains("fake: no daemon here"),
        "{stderr}"
    );
    assert!(!out.exists());
}

#[test]
fn a_failure_in_the_last_arch_leaves_no_output_and_no_staging() {
    let root_dir = scratch("failed-last-arch");
    let out = root_dir.join("dist");
    copy_dir(shared_dist(), &out);
    // amd64 is built and packed for real, then i386 is refused (one at a time, in order).
    let stderr = xtask_fails(&[
        "dist",
        "--jobs",
        "1",
        "--arch",
        "amd64",
        "--arch",
        "i386",
        "--prebuilt",
        "i386=/bin/sh",
        "--out",
        out.as_str(),
    ]);
    assert!(stderr.contains("[1/2] amd64: exonode-"), "amd64 was packed first: {stderr}");
    assert!(stderr.contains("i386 (i686-unknown-linux-musl) failed: refusing /bin/sh"), "{stderr}");
    assert_eq!(listing(&root_dir), Vec::<String>::new(), "no output, no staging, no earlier output");
}

#[test]
fn a_failing_arch_stops_the_arches_built_beside_it() {
    let root_dir = scratch("failed-parallel");
    let out = root_dir.join("dist");
    // A cold target dir: amd64's build takes far longer than refusing i386 takes.
    let target_dir = scratch("failed-parallel-target");
    let output = xtask_env(
        &[
            "dist",
            "--jobs",
            "2",
            "--arch",
            "amd64",
            "--arch",
            "i386",
            "--prebuilt",
            "i386=/bin/sh",
            "--out",
            out.as_str(),
        ],
        &[("CARGO_TARGET_DIR", target_dir.as_str())],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("i386 (i686-unknown-linux-musl) failed: refusing /bin/sh"), "{stderr}");
    assert!(stderr.contains("[1/2] amd64: building"), "amd64 was started beside i386: {stderr}");
    assert!(!stderr.contains("[1/2] amd64: exonode-"), "amd64 was stopped, not packed: {stderr}");
    assert_eq!(listing(&root_dir), Vec::<String>::new(), "no output, no staging");
    assert_eq!(
        processes_mentioning(target_dir.as_str()),
        Vec::<String>::new(),
        "the amd64 build was left running"
    );
    let _ = std::fs::remove_dir_all(&target_dir);
}

#[test]
fn one_job_or_many_give_the_same_bytes() {
    // The shared dist was built with the default (one arch per CPU); the builds are up to
    // date, so this checks, runs and packs all ten again one at a time.
    let out = scratch("jobs-1").join("dist");
    xtask_ok(&["dist", "--jobs", "1", "--out", out.as_str()]);
    for file in ["SHA256SUMS", "dist-manifest.json", "Dockerfile.release", "install.sh"] {
        assert_eq!(
            std::fs::read(out.join(file)).unwrap(),
            std::fs::read(shared_dist().join(file)).unwrap(),
            "{file} differs between --jobs 1 and the default"
        );
    }
    xtask_ok(&["verify", out.as_str()]);
}

/// Processes whose command line mentions `needle` (children the xtask may have left behind).
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) {
            found.push(format!("{}: {cmdline}", entry.file_name().to_string_lossy()));
        }
    }
    found
}

/// Starts `cargo xtask ARGS`, sends `signal` once `ready(stderr so far)` holds, and returns
/// its exit code and stderr.
fn interrupt_xtask(
    args: &[&str],
    env: &[(&str, &str)],
    signal: i32,
    ready: impl Fn(&str) -> bool,
) -> (Option<i32>, String) {
    use std::io::BufRead;
    use std::sync::{Arc, Mutex};
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(root())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = Arc::new(Mutex::new(String::new()));
    let reader = {
        let stderr = Arc::clone(&stderr);
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                eprintln!("xtask: {line}");
                stderr.lock().unwrap().push_str(&format!("{line}\n"));
            }
        })
    };
    wait_until("the moment to interrupt", std::time::Duration::from_secs(600), || {
        ready(&stderr.lock().unwrap()) || matches!(child.try_wait(), Ok(Some(_)))
    });
    assert!(child.try_wait().unwrap().is_none(), "the xtask ended before it could be interrupted");
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, signal) };
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let text = stderr.lock().unwrap().clone();
    (status.code(), text)
}

#[test]
fn sigint_or_sigterm_during_a_build_stops_the_compiler_and_leaves_nothing() {
    for (signal, name) in [(libc::SIGTERM, "SIGTERM"), (libc::SIGINT, "SIGINT")] {
        let root_dir = scratch(&format!("interrupt-build-{name}"));
        let out = root_dir.join("dist");
        copy_dir(shared_dist(), &out);
        // A target dir of its own, so the build has real work to do when the signal comes.
        let target_dir = scratch(&format!("interrupt-build-target-{name}"));
        let (code, stderr) = interrupt_xtask(
            &["dist", "--arch", "amd64", "--out", out.as_str()],
            &[("CARGO_TARGET_DIR", target_dir.as_str())],
            signal,
            |stderr| {
                stderr.contains("[1/1] amd64: building")
                    && processes_mentioning(target_dir.as_str()).iter().any(|p| p.contains("rustc"))
            },
        );
        assert_eq!(code, Some(128 + signal), "{name}: {stderr}");
        assert!(stderr.contains(&format!("interrupted by {name}: stopped 1 running command(s)")), "{stderr}");
        assert_eq!(listing(&root_dir), Vec::<String>::new(), "{name}: no output, no staging");
        assert_eq!(processes_mentioning(target_dir.as_str()), Vec::<String>::new(), "{name}: orphans");
        let _ = std::fs::remove_dir_all(&target_dir);
    }
}

#[test]
fn sigint_or_sigterm_after_some_arches_were_packed_leaves_nothing() {
    let work = scratch("interrupt-pack");
    let mut args = vec!["dist".to_string()];
    for arch in ALL_ARCHES {
        let binary = fixture(&work, &format!("{arch}-prebuilt"), arch, |_| {});
        args.extend(["--prebuilt".to_string(), format!("{arch}={binary}")]);
    }
    for (signal, name) in [(libc::SIGINT, "SIGINT"), (libc::SIGTERM, "SIGTERM")] {
        let root_dir = work.join(format!("out-{name}"));
        let out = root_dir.join("dist");
        copy_dir(shared_dist(), &out);
        let mut args = args.clone();
        args.extend(["--out".to_string(), out.to_string()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        // Two archives are in the staging folder and the third arch is being run on its CPU class.
        let (code, stderr) =
            interrupt_xtask(&args, &[], signal, |stderr| stderr.contains("[2/10] arm64v8: exonode-"));
        assert_eq!(code, Some(128 + signal), "{name}: {stderr}");
        assert_eq!(listing(&root_dir), Vec::<String>::new(), "{name}: no output, no staging");
        assert_eq!(
            processes_mentioning(work.as_str()),
            Vec::<String>::new(),
            "{name}: a smoke daemon was left running"
        );
    }
}

#[test]
fn each_archive_holds_the_binary_readme_and_license_with_fixed_owner_mode_and_time() {
    use std::io::Read;
    let dist = shared_dist();
    let epoch = manifest(dist)["source_date_epoch"].as_u64().unwrap();
    for arch in ALL_ARCHES {
        let artifact = artifact(dist, arch);
        let stem = artifact["name"].as_str().unwrap().trim_end_matches(".tar.gz").to_string();
        let file = std::fs::File::open(dist.join(artifact["name"].as_str().unwrap())).unwrap();
        let mut seen = Vec::new();
        for entry in tar::Archive::new(flate2::read::GzDecoder::new(file)).entries().unwrap() {
            let mut entry = entry.unwrap();
            let header = entry.header().clone();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            assert_eq!((header.uid().unwrap(), header.gid().unwrap()), (0, 0), "{path}");
            assert_eq!(header.username().unwrap(), Some("root"), "{path}");
            assert_eq!(header.mtime().unwrap(), epoch, "{path}");
            let mut contents = Vec::new();
            entry.read_to_end(&mut contents).unwrap();
            if let Some(name) =
                path.strip_prefix(&format!("{stem}/")).filter(|n| ["README.md", "LICENSE"].contains(n))
            {
                assert_eq!(contents, std::fs::read(root().join(name)).unwrap(), "{arch}: {name}");
            }
            seen.push((path, header.mode().unwrap()));
        }
        assert_eq!(
            seen,
            [
                (format!("{stem}/"), 0o755),
                (format!("{stem}/LICENSE"), 0o644),
                (format!("{stem}/README.md"), 0o644),
                (format!("{stem}/exonode"), 0o755),
            ],
            "{arch}"
        );
    }
}
