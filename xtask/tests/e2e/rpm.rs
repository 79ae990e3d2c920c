//! The rpm packages `dist` writes, read by rpm itself: `rpm -qpi`, `-qplv` and `-K` find the
//! arch, the files, root owners and sound digests; rpmlint finds no error but the by-design ones
//! packaging/rpm/rpmlint.toml names; each installs into a throwaway root (`rpm --root`) whose
//! /usr/bin/exonode runs on its CPU class; an upgrade to a higher release keeps the settings the
//! admin edited; verify names a tampered package.

use camino::Utf8Path;

use crate::support::*;

/// The tools these tests drive; ci/setup-host.sh installs them.
const TOOLS: [&str; 5] = ["rpm", "rpm2cpio", "rpmlint", "dnf", "createrepo_c"];

/// A qemu-user emulator and the CPU model to run on.
type Emulator = Option<(&'static str, &'static str)>;

/// (arch, rpm architecture, how to run it).
const PACKAGES: [(&str, &str, Emulator); 10] = [
    ("amd64", "x86_64", None),
    ("arm64v8", "aarch64", Some(("qemu-aarch64-static", "cortex-a53"))),
    ("arm32v7", "armv7hl", Some(("qemu-arm-static", "cortex-a7"))),
    ("arm32v6", "armv6hl", Some(("qemu-arm-static", "arm1176"))),
    ("arm32v5", "armv5tel", Some(("qemu-arm-static", "arm926"))),
    ("i386", "i686", None),
    ("riscv64", "riscv64", Some(("qemu-riscv64-static", "sifive-u54"))),
    ("ppc64le", "ppc64le", Some(("qemu-ppc64le-static", "power8"))),
    ("s390x", "s390x", Some(("qemu-s390x-static", "qemu"))),
    ("mips64le", "mips64el", Some(("qemu-mips64el-static", "MIPS64R2-generic"))),
];

const INSTALLED: [&str; 5] = [
    "/etc/default/exonode",
    "/usr/bin/exonode",
    "/usr/lib/systemd/system/exonode.service",
    "/usr/lib/sysusers.d/exonode.conf",
    "/usr/share/licenses/exonode/LICENSE",
];

fn rpm_of(dist: &Utf8Path, arch: &str) -> String {
    let rpm = artifact(dist, arch)["rpm"].clone();
    assert!(rpm.is_object(), "{arch} has no rpm in the manifest");
    rpm["name"].as_str().unwrap().to_string()
}

/// An empty root with an rpm database, for `rpm --root`.
fn empty_root(name: &str) -> camino::Utf8PathBuf {
    let root = scratch(name);
    run_ok("rpm", &["--root", root.as_str(), "--dbpath", "/var/lib/rpm", "--initdb"]);
    root
}

/// `rpm --root ROOT ARGS`, without dependencies (the root has no /bin/sh) or scriptlets (they
/// would run chrooted there).
fn rpm_in(root: &Utf8Path, args: &[&str]) -> String {
    let mut all = vec!["--root", root.as_str(), "--dbpath", "/var/lib/rpm"];
    all.extend(args);
    run_ok("rpm", &all)
}

#[test]
fn every_rpm_reads_right_lints_clean_and_installs_a_binary_that_runs_on_its_cpu_class() {
    require_tools(&TOOLS);
    let dist = shared_dist();
    let version = manifest(dist)["version"].as_str().unwrap().replace('-', "~");
    let epoch = manifest(dist)["source_date_epoch"].as_u64().unwrap();
    for (arch, rpm_arch, emulator) in PACKAGES {
        let name = rpm_of(dist, arch);
        assert_eq!(artifact(dist, arch)["rpm"]["architecture"], rpm_arch);
        assert_eq!(name, format!("exonode-{version}-1.{rpm_arch}.rpm"));
        let file = dist.join(&name);

        let info = run_ok("rpm", &["-qpi", file.as_str()]);
        assert!(info.contains(&format!("Architecture: {rpm_arch}")), "{info}");
        assert!(info.contains("Build Host  : reproducible") && info.contains("License     : MIT"), "{info}");
        let built = run_ok("rpm", &["-qp", "--qf", "%{BUILDTIME}", file.as_str()]);
        assert_eq!(built.trim(), epoch.to_string(), "the build time is the commit's");

        let listing = run_ok("rpm", &["-qplv", file.as_str()]);
        for path in INSTALLED {
            let line = listing.lines().find(|l| l.ends_with(&format!(" {path}")));
            let line = line.unwrap_or_else(|| panic!("{name} lacks {path}:\n{listing}"));
            let fields: Vec<&str> = line.split_whitespace().collect();
            assert_eq!((fields[2], fields[3]), ("root", "root"), "{line}");
            let mode = if path == "/usr/bin/exonode" { "-rwxr-xr-x" } else { "-rw-r--r--" };
            assert_eq!(fields[0], mode, "{line}");
        }
        assert_eq!(listing.lines().count(), INSTALLED.len(), "{listing}");
        let flags = run_ok("rpm", &["-qp", "--qf", "[%{FILEFLAGS:fflags} %{FILENAMES}\n]", file.as_str()]);
        assert!(flags.lines().any(|l| l == "cn /etc/default/exonode"), "%config(noreplace): {flags}");
        assert!(flags.lines().any(|l| l == "l /usr/share/licenses/exonode/LICENSE"), "{flags}");

        let digests = run_ok("rpm", &["-K", "--nosignature", file.as_str()]);
        assert!(digests.trim().ends_with("digests OK"), "{digests}");
        // The whole cpio archive comes out. rpm2cpio's exit status is not asserted: it is 1
        // because the rpm crate writes no RPMSIGTAG_PAYLOADSIZE to compare the copy against
        // (to be added with the signature header, when packages are signed).
        let payload = run("rpm2cpio", &[file.as_str()]).stdout;
        assert!(payload.starts_with(b"070701"), "rpm2cpio {name}: not a cpio archive");
        let trailer = payload.windows(10).rposition(|w| w == b"TRAILER!!!");
        assert!(trailer.is_some_and(|at| payload.len() - at < 512), "rpm2cpio {name}: cut short");

        let config = root().join("packaging/rpm/rpmlint.toml");
        let lint = run("rpmlint", &["-c", config.as_str(), file.as_str()]);
        let report = String::from_utf8_lossy(&lint.stdout).into_owned();
        assert!(!report.lines().any(|l| l.contains(": E: ")), "rpmlint on {name}:\n{report}");
        assert!(lint.status.success(), "rpmlint on {name}:\n{report}");

        // Installed into an empty root, the binary runs on its CPU class as installed.
        let target = empty_root(&format!("rpm-root-{arch}"));
        rpm_in(&target, &["-i", "--nodeps", "--ignorearch", "--noscripts", file.as_str()]);
        assert_eq!(rpm_in(&target, &["-q", "exonode"]).trim(), format!("exonode-{version}-1.{rpm_arch}"));
        let binary = target.join("usr/bin/exonode");
        let out = match emulator {
            Some((qemu, cpu)) => run_ok(qemu, &["-cpu", cpu, binary.as_str(), "--version"]),
            None => run_ok(binary.as_str(), &["--version"]),
        };
        assert!(out.contains(&target_of(arch)), "{name} on {emulator:?}: {out}");
        let _ = std::fs::remove_dir_all(&target);
    }
}

#[test]
fn an_upgrade_to_a_higher_release_keeps_the_settings_the_admin_edited() {
    require_tools(&TOOLS);
    let dist = shared_dist();
    let first = dist.join(rpm_of(dist, "amd64"));

    // The next release of the package: release 2, whose settings file gained a line.
    let dir = scratch("rpm-upgrade");
    let checkout = dir.join("exotool");
    checkout_like_root(&checkout);
    let toml = checkout.join("release.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    assert!(text.contains("\nrelease = 1\n"), "release.toml's [rpm] release moved");
    std::fs::write(&toml, text.replace("\nrelease = 1\n", "\nrelease = 2\n")).unwrap();
    let defaults = checkout.join("packaging/deb/exonode.default");
    let mut settings = std::fs::read_to_string(&defaults).unwrap();
    settings.push_str("# A setting of release 2.\n");
    std::fs::write(&defaults, settings).unwrap();
    let binary = dir.join("exonode");
    std::fs::write(&binary, shared_binary("amd64")).unwrap();
    std::fs::set_permissions(&binary, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = dir.join("dist");
    let prebuilt = format!("amd64={binary}");
    xtask_in(&checkout, &["dist", "--arch", "amd64", "--prebuilt", &prebuilt, "--out", out.as_str()]);
    let second = out.join(rpm_of(&out, "amd64"));
    assert!(second.as_str().ends_with("-2.x86_64.rpm"), "{second}");

    let target = empty_root("rpm-upgrade-root");
    rpm_in(&target, &["-i", "--nodeps", "--noscripts", first.as_str()]);
    let installed = target.join("etc/default/exonode");
    let mut edited = std::fs::read_to_string(&installed).unwrap();
    edited.push_str("EXONODE_LISTEN=0.0.0.0:7070\n");
    std::fs::write(&installed, &edited).unwrap();

    rpm_in(&target, &["-U", "--nodeps", "--noscripts", second.as_str()]);
    assert!(rpm_in(&target, &["-q", "exonode"]).trim().ends_with("-2.x86_64"));
    assert_eq!(std::fs::read_to_string(&installed).unwrap(), edited, "the admin's settings are kept");
    let new = std::fs::read_to_string(target.join("etc/default/exonode.rpmnew")).unwrap();
    assert!(new.ends_with("# A setting of release 2.\n"), "release 2's settings wait beside them: {new}");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&target);
}

#[test]
fn verify_names_a_tampered_rpm_and_one_holding_another_binary() {
    let dist = shared_dist();
    let name = rpm_of(dist, "arm32v7");

    let flipped = scratch("rpm-flipped");
    copy_dir(dist, &flipped);
    flip_byte(&flipped.join(&name), 5000);
    let stderr = xtask_fails(&["verify", flipped.as_str()]);
    assert!(stderr.contains(&format!("FAILED {name}: sha256")), "{stderr}");

    // The armv6hl package renamed as the armv7hl one, with every checksum and the manifest
    // made to agree: only the binary inside gives it away.
    let swapped = scratch("rpm-swapped");
    swap_package(dist, &swapped, "rpm", &rpm_of(dist, "arm32v6"), "arm32v7");
    let stderr = xtask_fails(&["verify", swapped.as_str()]);
    assert!(stderr.contains(&format!("FAILED {name}: /usr/bin/exonode has sha256")), "{stderr}");
}
