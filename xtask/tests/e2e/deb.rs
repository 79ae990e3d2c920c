//! The Debian packages `dist` writes: each installs with dpkg in a Debian bookworm container
//! (foreign ones with `dpkg --add-architecture`) and its /usr/bin/exonode names its target on
//! its CPU class; lintian finds no error or warning; the amd64 package's unit runs under systemd
//! (PID 1 in a container) through install, restart, stop, remove and purge; verify names a
//! tampered package.

use std::process::Command;

use camino::Utf8Path;

use crate::support::*;

/// The systemd host image ci/setup-host.sh makes.
const SYSTEMD_IMAGE: &str = "exotool-test/bookworm-systemd";
const DEBIAN_IMAGE: &str = "debian:bookworm-slim";

/// A qemu-user emulator and the CPU model to run on.
type Emulator = Option<(&'static str, &'static str)>;

/// (arch, Debian architecture, how to run it).
const PACKAGES: [(&str, &str, Emulator); 9] = [
    ("amd64", "amd64", None),
    ("arm64v8", "arm64", Some(("qemu-aarch64-static", "cortex-a53"))),
    ("arm32v6", "armhf", Some(("qemu-arm-static", "arm1176"))),
    ("arm32v5", "armel", Some(("qemu-arm-static", "arm926"))),
    ("i386", "i386", None),
    ("riscv64", "riscv64", Some(("qemu-riscv64-static", "sifive-u54"))),
    ("ppc64le", "ppc64el", Some(("qemu-ppc64le-static", "power8"))),
    ("s390x", "s390x", Some(("qemu-s390x-static", "qemu"))),
    ("mips64le", "mips64el", Some(("qemu-mips64el-static", "MIPS64R2-generic"))),
];

fn deb_of(dist: &Utf8Path, arch: &str) -> serde_json::Value {
    let deb = artifact(dist, arch)["deb"].clone();
    assert!(deb.is_object(), "{arch} has no package in the manifest");
    deb
}

#[test]
fn every_package_installs_on_bookworm_and_runs_on_its_cpu_class() {
    require_docker();
    let dist = shared_dist();
    assert!(artifact(dist, "arm32v7").get("deb").is_none(), "arm32v7 has no package: armhf carries arm32v6");
    for (arch, deb_arch, emulator) in PACKAGES {
        let deb = deb_of(dist, arch);
        let name = deb["name"].as_str().unwrap();
        assert_eq!(deb["architecture"], deb_arch);
        assert_eq!(name, format!("exonode_{}-1_{deb_arch}.deb", manifest(dist)["version"].as_str().unwrap()));

        let info = run_ok("dpkg-deb", &["--info", dist.join(name).as_str()]);
        assert!(info.contains(&format!("Architecture: {deb_arch}")), "{info}");
        let contents = run_ok("dpkg-deb", &["--contents", dist.join(name).as_str()]);
        for path in ["usr/bin/exonode", "lib/systemd/system/exonode.service", "etc/default/exonode"] {
            let listed = contents
                .lines()
                .any(|l| l.ends_with(&format!(" {path}")) || l.ends_with(&format!("./{path}")));
            assert!(listed, "{name} lacks {path}:\n{contents}");
        }

        let lintian =
            Command::new("lintian").args(["--tag-display-limit", "0", dist.join(name).as_str()]).output();
        let lintian = lintian.expect("cannot run lintian: the README's test command installs it");
        let report = String::from_utf8_lossy(&lintian.stdout).into_owned();
        assert!(lintian.status.success(), "lintian on {name}:\n{report}");
        assert!(!report.lines().any(|l| l.starts_with("E:") || l.starts_with("W:")), "{name}:\n{report}");

        // The binary runs under its arch's CPU model (qemu-user from the host), as installed.
        let run = match emulator {
            Some((qemu, cpu)) => format!("{qemu} -cpu {cpu} /usr/bin/exonode --version"),
            None => "/usr/bin/exonode --version".to_string(),
        };
        let script = format!(
            "set -e; dpkg --add-architecture {deb_arch}; dpkg -i /dist/{name} >/dev/null; \
             test -x /usr/bin/exonode; getent passwd exonode; {run}"
        );
        let mut args = vec!["run".to_string(), "--rm".into(), "-v".into(), format!("{dist}:/dist:ro")];
        if let Some((qemu, _)) = emulator {
            args.extend(["-v".into(), format!("/usr/bin/{qemu}:/usr/bin/{qemu}:ro")]);
        }
        args.extend([DEBIAN_IMAGE.into(), "sh".into(), "-c".into(), script]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run_ok("docker", &args);
        assert!(out.contains(&target_of(arch)), "{name} on {emulator:?}: {out}");
        assert!(out.contains("exonode:x:") && out.contains("/usr/sbin/nologin"), "{name}: no account: {out}");
    }
}

/// A systemd container (privileged: systemd needs its cgroups and mounts), removed on drop.
struct SystemdHost {
    name: String,
}

impl SystemdHost {
    fn start(dist: &Utf8Path) -> SystemdHost {
        let name = unique("systemd").replace('/', "-");
        let mount = format!("{dist}:/dist:ro");
        run_ok(
            "docker",
            &[
                "run",
                "-d",
                "--name",
                &name,
                "--privileged",
                "--cgroupns=host",
                "-v",
                "/sys/fs/cgroup:/sys/fs/cgroup:rw",
                "--tmpfs",
                "/run",
                "--tmpfs",
                "/run/lock",
                "-v",
                &mount,
                SYSTEMD_IMAGE,
                "/sbin/init",
            ],
        );
        let host = SystemdHost { name };
        // Until systemd answers on its bus, then until it has finished booting.
        let state = host.sh("for i in $(seq 100); do s=$(systemctl is-system-running --wait 2>/dev/null); \
             case $s in running|degraded) echo $s; exit 0;; esac; sleep 0.2; done; echo ${s:-no answer}");
        assert!(state.trim() == "running" || state.trim() == "degraded", "systemd did not come up: {state}");
        host
    }

    /// Runs `script` in the container; its stdout (panics on failure).
    fn sh(&self, script: &str) -> String {
        run_ok("docker", &["exec", &self.name, "sh", "-c", script])
    }

    fn status_id(&self) -> String {
        let status = self
            .sh("for i in $(seq 50); do curl -fsS 127.0.0.1:7070/status && exit 0; sleep 0.1; done; \
             journalctl -u exonode --no-pager >&2; exit 1");
        let status: serde_json::Value = serde_json::from_str(&status).unwrap();
        status["id"].as_str().unwrap().to_string()
    }
}

impl Drop for SystemdHost {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.name]).output();
    }
}

#[test]
fn the_unit_runs_sandboxed_under_systemd_and_the_identity_survives_all_but_purge() {
    require_docker();
    let dist = shared_dist();
    let deb = format!("/dist/{}", deb_of(dist, "amd64")["name"].as_str().unwrap());
    let host = SystemdHost::start(dist);

    // Install: the account, the unit enabled and started.
    host.sh(&format!("dpkg -i {deb} >/dev/null"));
    assert_eq!(host.sh("systemctl is-enabled exonode").trim(), "enabled");
    let id = host.status_id();
    assert_eq!(host.sh("stat -c %U /var/lib/exonode").trim(), "exonode");
    let pid = host.sh("systemctl show -p MainPID --value exonode");
    let uid = host.sh(&format!("awk '/^Uid:/ {{print $2}}' /proc/{}/status", pid.trim()));
    assert_eq!(uid.trim(), host.sh("id -u exonode").trim(), "the daemon runs as its own account");

    // The quality gates on the installed unit.
    host.sh("systemd-analyze verify /lib/systemd/system/exonode.service");
    let security = host.sh("systemd-analyze security --threshold=20 exonode.service | tail -n 1");
    assert!(security.contains("OK"), "exposure above 2.0: {security}");

    // Restart keeps the id; so does an upgrade (the same package again).
    host.sh("systemctl restart exonode");
    assert_eq!(host.status_id(), id);
    host.sh(&format!("dpkg -i {deb} >/dev/null"));
    assert_eq!(host.status_id(), id, "an upgrade keeps the node's identity");

    // Stop is clean: SIGTERM, exit status 0.
    host.sh("systemctl stop exonode");
    assert_eq!(host.sh("systemctl show -p Result --value exonode").trim(), "success");
    assert_eq!(host.sh("systemctl show -p ExecMainStatus --value exonode").trim(), "0");

    // Remove keeps /var/lib/exonode, and a reinstall finds the same identity there.
    host.sh("systemctl start exonode; dpkg -r exonode >/dev/null");
    assert_eq!(host.sh("systemctl is-active exonode || true").trim(), "inactive");
    assert!(host.sh("cat /var/lib/exonode/node.json").contains(&id), "remove keeps the state");
    host.sh(&format!("dpkg -i {deb} >/dev/null"));
    assert_eq!(host.status_id(), id, "remove then install keeps the identity");

    // Purge deletes it.
    host.sh("dpkg -P exonode >/dev/null");
    assert_eq!(host.sh("test -e /var/lib/exonode && echo kept || echo gone").trim(), "gone");
    assert_eq!(
        host.sh("test -e /lib/systemd/system/exonode.service && echo kept || echo gone").trim(),
        "gone"
    );
}

#[test]
fn verify_names_a_tampered_package_and_one_holding_another_binary() {
    let dist = shared_dist();
    let name = deb_of(dist, "arm32v6")["name"].as_str().unwrap().to_string();

    let flipped = scratch("deb-flipped");
    copy_dir(dist, &flipped);
    flip_byte(&flipped.join(&name), 200);
    let stderr = xtask_fails(&["verify", flipped.as_str()]);
    assert!(stderr.contains(&format!("FAILED {name}: sha256")), "{stderr}");

    // The armel package renamed as the armhf one, with every checksum and the manifest made to
    // agree: only the binary inside gives it away.
    let swapped = scratch("deb-swapped");
    let armel = deb_of(dist, "arm32v5")["name"].as_str().unwrap().to_string();
    swap_package(dist, &swapped, "deb", &armel, "arm32v6");
    let stderr = xtask_fails(&["verify", swapped.as_str()]);
    assert!(stderr.contains(&format!("FAILED {name}: /usr/bin/exonode has sha256")), "{stderr}");
}
