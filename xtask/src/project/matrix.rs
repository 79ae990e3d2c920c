//! The architecture matrix: every CPU we ship for, as one row of plain data. Adding an
//! architecture means adding a row here; nothing else in the xtask matches on arch names.
//! The tables outside the xtask (docker/hooks/common.sh, ci/setup-host.sh, the e2e tests' arch
//! lists) are renderings of it, rewritten by a test here when they drift.

use std::fmt;

/// ELF `e_machine` values (from the System V ABI supplements).
pub const EM_386: u16 = 3;
pub const EM_ARM: u16 = 40;
pub const EM_X86_64: u16 = 62;
pub const EM_AARCH64: u16 = 183;
pub const EM_MIPS: u16 = 8;
pub const EM_PPC64: u16 = 21;
pub const EM_S390: u16 = 22;
pub const EM_RISCV: u16 = 243;
pub const EM_LOONGARCH: u16 = 258;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElfClass {
    Elf32,
    Elf64,
}

/// The ARM EABI float calling convention recorded in `e_flags`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatAbi {
    Hard,
    Soft,
}

/// The byte order of an ELF file (`EI_DATA`): ppc64 and mips64 exist in both, and only the
/// little-endian ones are ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteOrder {
    Little,
    Big,
}

/// What a machine's psABI records in `e_flags` that decides whether the binary runs on the
/// arch's userland (ARM's float ABI and CPU level are the `float_abi` and `max_arm_cpu_arch`
/// fields, read from `.ARM.attributes` too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbiFlags {
    /// Nothing beyond machine, class and byte order (x86, AArch64, s390x).
    None,
    /// RISC-V: the double-float calling convention (lp64d, `EF_RISCV_FLOAT_ABI_DOUBLE` 0x4)
    /// and compressed instructions (`EF_RISCV_RVC` 0x1): rv64gc Linux's ABI, e_flags 0x5.
    RiscvLp64dRvc,
    /// 64-bit PowerPC ELF ABI version 2 (`e_flags & 3` = 2), which ppc64le Linux requires.
    PowerElfV2,
    /// MIPS64 n64: `EF_MIPS_ABI2` (n32) clear, no 32-bit `EF_MIPS_ABI` (o32/o64/eabi), and
    /// an ISA no newer than MIPS64R2 (R6 changed encodings and does not run R2 code).
    MipsN64R2,
    /// LoongArch LP64D: the double-float base ABI (`e_flags & 7` = 3), Linux's on LA64.
    LoongLp64d,
}

/// What a correct binary for the arch looks like in its ELF header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElfKind {
    pub class: ElfClass,
    pub machine: u16,
    pub byte_order: ByteOrder,
    pub float_abi: Option<FloatAbi>,
    /// ARM only: the newest `Tag_CPU_arch` the CPU class executes (4 = v5TE, 6 = v6, 10 = v7).
    pub max_arm_cpu_arch: Option<u64>,
    pub abi_flags: AbiFlags,
}

/// How to prove a binary runs on the arch's CPU class from an x86_64 host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOn {
    /// The host kernel runs it directly (x86_64 also runs i386).
    Host,
    /// qemu-user with a CPU model of the arch's class, e.g. `qemu-arm-static -cpu arm1176`,
    /// from `package` when dist fetches it.
    Qemu { emulator: &'static str, cpu: &'static str, package: QemuPackage },
}

/// The Debian package a row's emulator comes from when it is not on PATH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QemuPackage {
    /// bookworm's qemu-user-static (7.2), `qemu-*-static`; an installed one on PATH serves too.
    BookwormStatic,
    /// trixie's qemu-user (10.0), static `qemu-*`: for a row whose code bookworm's qemu cannot
    /// run (LoongArch's LSX arrived in qemu 8.1), so PATH's qemu is never taken for it.
    TrixieUser,
}

impl QemuPackage {
    pub const ALL: [QemuPackage; 2] = [QemuPackage::BookwormStatic, QemuPackage::TrixieUser];

    /// Debian's package name, also release.toml's `[toolchain.NAME]` of its pins.
    pub const fn name(self) -> &'static str {
        match self {
            QemuPackage::BookwormStatic => "qemu-user-static",
            QemuPackage::TrixieUser => "qemu-user",
        }
    }

    /// The Debian release its pins come from unless they say otherwise.
    pub const fn suite(self) -> &'static str {
        match self {
            QemuPackage::BookwormStatic => "bookworm",
            QemuPackage::TrixieUser => "trixie",
        }
    }

    /// Whether an emulator of the same name on PATH may stand in for it.
    pub const fn path_serves(self) -> bool {
        matches!(self, QemuPackage::BookwormStatic)
    }
}

/// A row whose emulator is bookworm's qemu-user-static (or any on PATH).
const fn qemu(emulator: &'static str, cpu: &'static str) -> RunOn {
    RunOn::Qemu { emulator, cpu, package: QemuPackage::BookwormStatic }
}

/// An OCI/Docker platform: `os/architecture[/variant]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform {
    pub os: &'static str,
    pub architecture: &'static str,
    pub variant: Option<&'static str>,
}

impl Platform {
    /// The form buildx and registries report: `linux/arm64/v8` becomes `linux/arm64`, and
    /// `linux/amd64/v1` becomes `linux/amd64`.
    pub fn normalized(&self) -> String {
        normalize_platform(&self.to_string())
    }

    /// The spellings buildx's TARGETPLATFORM may use for it, once each: normalized, then as
    /// written (`linux/arm64` and `linux/arm64/v8`).
    pub fn spellings(&self) -> Vec<String> {
        let mut spellings = vec![self.normalized(), self.to_string()];
        spellings.dedup();
        spellings
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// Normalizes a platform string the way buildx does, so platforms compare equal. The one place
/// that knows which variants are the default ones.
pub fn normalize_platform(platform: &str) -> String {
    match platform {
        "linux/arm64/v8" => "linux/arm64".to_string(),
        "linux/amd64/v1" => "linux/amd64".to_string(),
        other => other.to_string(),
    }
}

/// The normalized platform of an image config or index entry's `os`, `architecture` and
/// `variant` fields.
pub fn normalize_platform_of(os: &str, architecture: &str, variant: Option<&str>) -> String {
    match variant {
        Some(variant) => normalize_platform(&format!("{os}/{architecture}/{variant}")),
        None => normalize_platform(&format!("{os}/{architecture}")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arch {
    /// Docker Hub's namespace for the arch, also the image tag suffix: `arm32v7`.
    pub name: &'static str,
    pub target: &'static str,
    pub platform: Platform,
    pub debian_arch: &'static str,
    /// The Debian architecture of the .deb this arch's build is packaged as, if any. armhf
    /// carries the ARMv6 (VFPv2 hard-float) build, which runs on Raspberry Pi OS's armhf
    /// (ARMv6) and Debian's armhf (ARMv7) alike; the ARMv7 build gets no package of its own.
    pub deb_arch: Option<&'static str>,
    /// The rpm architecture of this arch's `.rpm` (`uname -m` on Fedora and its kin), if any.
    /// Each arm32 class has its own: armv7hl, armv6hl (ARMv6 hard-float), armv5tel.
    pub rpm_arch: Option<&'static str>,
    pub elf: ElfKind,
    pub run_on: RunOn,
    /// `uname -m` answers on machines of this arch, for install.sh.
    pub uname_machines: &'static [&'static str],
    /// `uname -m` prints the same name for both byte orders (mips64), so install.sh checks
    /// the host's byte order as well.
    pub uname_both_endians: bool,
    /// The default base image of the arch's container image.
    pub base_image: &'static str,
    /// In Docker's official set of ten: releases build these unless release.toml's
    /// `dist.arches` says otherwise; a row outside it is built only when listed.
    pub docker_official: bool,
}

const fn platform(architecture: &'static str, variant: Option<&'static str>) -> Platform {
    Platform { os: "linux", architecture, variant }
}

const fn elf(class: ElfClass, machine: u16) -> ElfKind {
    ElfKind {
        class,
        machine,
        byte_order: ByteOrder::Little,
        float_abi: None,
        max_arm_cpu_arch: None,
        abi_flags: AbiFlags::None,
    }
}

const fn arm(float_abi: FloatAbi, max_arm_cpu_arch: u64) -> ElfKind {
    ElfKind {
        class: ElfClass::Elf32,
        machine: EM_ARM,
        byte_order: ByteOrder::Little,
        float_abi: Some(float_abi),
        max_arm_cpu_arch: Some(max_arm_cpu_arch),
        abi_flags: AbiFlags::None,
    }
}

pub const MATRIX: &[Arch] = &[
    Arch {
        name: "amd64",
        target: "x86_64-unknown-linux-musl",
        platform: platform("amd64", None),
        debian_arch: "amd64",
        deb_arch: Some("amd64"),
        rpm_arch: Some("x86_64"),
        elf: elf(ElfClass::Elf64, EM_X86_64),
        run_on: RunOn::Host,
        uname_machines: &["x86_64", "amd64"],
        uname_both_endians: false,
        base_image: "busybox",
        docker_official: true,
    },
    Arch {
        name: "arm64v8",
        target: "aarch64-unknown-linux-musl",
        platform: platform("arm64", Some("v8")),
        debian_arch: "arm64",
        deb_arch: Some("arm64"),
        rpm_arch: Some("aarch64"),
        elf: elf(ElfClass::Elf64, EM_AARCH64),
        run_on: qemu("qemu-aarch64-static", "cortex-a53"),
        uname_machines: &["aarch64", "arm64"],
        uname_both_endians: false,
        base_image: "arm64v8/busybox",
        docker_official: true,
    },
    Arch {
        name: "arm32v7",
        target: "armv7-unknown-linux-musleabihf",
        platform: platform("arm", Some("v7")),
        debian_arch: "armhf",
        deb_arch: None,
        rpm_arch: Some("armv7hl"),
        elf: arm(FloatAbi::Hard, 10),
        run_on: qemu("qemu-arm-static", "cortex-a7"),
        uname_machines: &["armv7l", "armv8l"],
        uname_both_endians: false,
        base_image: "arm32v7/busybox",
        docker_official: true,
    },
    Arch {
        name: "arm32v6",
        target: "arm-unknown-linux-musleabihf",
        platform: platform("arm", Some("v6")),
        // Debian's armhf needs ARMv7; its armel runs on ARMv6.
        debian_arch: "armel",
        // v6KZ is the ARM1176 of the Raspberry Pi 1 and Zero; v6T2 and v6K are not.
        deb_arch: Some("armhf"),
        rpm_arch: Some("armv6hl"),
        elf: arm(FloatAbi::Hard, 7),
        run_on: qemu("qemu-arm-static", "arm1176"),
        uname_machines: &["armv6l"],
        uname_both_endians: false,
        base_image: "arm32v6/busybox",
        docker_official: true,
    },
    Arch {
        name: "arm32v5",
        target: "armv5te-unknown-linux-musleabi",
        platform: platform("arm", Some("v5")),
        debian_arch: "armel",
        deb_arch: Some("armel"),
        rpm_arch: Some("armv5tel"),
        elf: arm(FloatAbi::Soft, 5),
        run_on: qemu("qemu-arm-static", "arm926"),
        uname_machines: &["armv5tel", "armv5tejl", "armv5l"],
        uname_both_endians: false,
        base_image: "arm32v5/busybox",
        docker_official: true,
    },
    Arch {
        name: "i386",
        target: "i686-unknown-linux-musl",
        platform: platform("386", None),
        debian_arch: "i386",
        deb_arch: Some("i386"),
        rpm_arch: Some("i686"),
        elf: elf(ElfClass::Elf32, EM_386),
        run_on: RunOn::Host,
        uname_machines: &["i386", "i486", "i586", "i686", "x86"],
        uname_both_endians: false,
        base_image: "i386/busybox",
        docker_official: true,
    },
    Arch {
        name: "riscv64",
        target: "riscv64gc-unknown-linux-musl",
        platform: platform("riscv64", None),
        debian_arch: "riscv64",
        deb_arch: Some("riscv64"),
        rpm_arch: Some("riscv64"),
        elf: ElfKind { abi_flags: AbiFlags::RiscvLp64dRvc, ..elf(ElfClass::Elf64, EM_RISCV) },
        // The SiFive U54 (HiFive Unleashed) is RV64GC and nothing more: the ISA the target
        // promises, where qemu's generic rv64 also offers newer extensions.
        run_on: qemu("qemu-riscv64-static", "sifive-u54"),
        uname_machines: &["riscv64"],
        uname_both_endians: false,
        base_image: "riscv64/busybox",
        docker_official: true,
    },
    Arch {
        name: "ppc64le",
        target: "powerpc64le-unknown-linux-musl",
        platform: platform("ppc64le", None),
        debian_arch: "ppc64el",
        deb_arch: Some("ppc64el"),
        rpm_arch: Some("ppc64le"),
        elf: ElfKind { abi_flags: AbiFlags::PowerElfV2, ..elf(ElfClass::Elf64, EM_PPC64) },
        // POWER8 is the first little-endian POWER and the ELFv2 ABI's baseline.
        run_on: qemu("qemu-ppc64le-static", "power8"),
        uname_machines: &["ppc64le"],
        uname_both_endians: false,
        base_image: "ppc64le/busybox",
        docker_official: true,
    },
    Arch {
        name: "s390x",
        target: "s390x-unknown-linux-musl",
        platform: platform("s390x", None),
        debian_arch: "s390x",
        deb_arch: Some("s390x"),
        rpm_arch: Some("s390x"),
        elf: ElfKind { byte_order: ByteOrder::Big, ..elf(ElfClass::Elf64, EM_S390) },
        // qemu-user cannot give the crypto and decimal-float facilities of IBM's named models
        // (z10EC and later refuse to start); its `qemu` model is the z/Architecture baseline it
        // implements, which holds the z10 instructions Rust's s390x target uses.
        run_on: qemu("qemu-s390x-static", "qemu"),
        uname_machines: &["s390x"],
        uname_both_endians: false,
        base_image: "s390x/busybox",
        docker_official: true,
    },
    Arch {
        name: "mips64le",
        target: "mips64el-unknown-linux-muslabi64",
        platform: platform("mips64le", None),
        debian_arch: "mips64el",
        deb_arch: Some("mips64el"),
        rpm_arch: Some("mips64el"),
        elf: ElfKind { abi_flags: AbiFlags::MipsN64R2, ..elf(ElfClass::Elf64, EM_MIPS) },
        // The target's CPU is mips64r2; qemu's MIPS64R2-generic is that ISA and no later one.
        run_on: qemu("qemu-mips64el-static", "MIPS64R2-generic"),
        uname_machines: &["mips64"],
        uname_both_endians: true,
        base_image: "mips64le/busybox",
        docker_official: true,
    },
    // Opt-in (`dist.arches`): Docker ships no official loong64 images, so its image starts
    // from scratch.
    Arch {
        name: "loongarch64",
        target: "loongarch64-unknown-linux-musl",
        platform: platform("loong64", None),
        debian_arch: "loong64",
        deb_arch: Some("loong64"),
        rpm_arch: Some("loongarch64"),
        elf: ElfKind { abi_flags: AbiFlags::LoongLp64d, ..elf(ElfClass::Elf64, EM_LOONGARCH) },
        // Rust's target enables LSX (128-bit SIMD), which bookworm's qemu 7.2 cannot execute
        // (SIGILL); trixie's qemu runs it. The LA464 (Loongson 3A5000) is the first LA64 core
        // with LSX: the oldest CPU the target's code runs on.
        run_on: RunOn::Qemu { emulator: "qemu-loongarch64", cpu: "la464", package: QemuPackage::TrixieUser },
        uname_machines: &["loongarch64"],
        uname_both_endians: false,
        base_image: "scratch",
        docker_official: false,
    },
];

/// The arches a release builds when release.toml's `dist.arches` does not say: Docker's ten.
pub fn default_arches() -> Vec<&'static Arch> {
    MATRIX.iter().filter(|arch| arch.docker_official).collect()
}

pub fn names() -> Vec<&'static str> {
    MATRIX.iter().map(|arch| arch.name).collect()
}

pub fn by_name(name: &str) -> Option<&'static Arch> {
    MATRIX.iter().find(|arch| arch.name == name)
}

pub fn by_target(target: &str) -> Option<&'static Arch> {
    MATRIX.iter().find(|arch| arch.target == target)
}

/// Position in the matrix: outputs list arches in this order whatever order they were asked in.
pub fn rank(arch: &Arch) -> usize {
    MATRIX.iter().position(|a| a.name == arch.name).expect("arch comes from the matrix")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::workspace::project_root;
    use std::collections::HashSet;

    #[test]
    fn names_targets_and_platforms_are_unique() {
        for field in [
            |a: &Arch| a.name.to_string(),
            |a: &Arch| a.target.to_string(),
            |a: &Arch| a.platform.normalized(),
        ] {
            let values: Vec<String> = MATRIX.iter().map(field).collect();
            let unique: HashSet<&String> = values.iter().collect();
            assert_eq!(values.len(), unique.len(), "duplicate in {values:?}");
        }
    }

    /// Docker Hub's namespace prefix of an official arch's images: "" for amd64 ("busybox").
    fn namespace(arch: &Arch) -> String {
        if arch.name == "amd64" {
            String::new()
        } else {
            format!("{}/", arch.name)
        }
    }

    #[test]
    fn package_architectures_are_unique_where_they_exist() {
        for field in [|a: &Arch| a.deb_arch, |a: &Arch| a.rpm_arch] {
            let values: Vec<&str> = MATRIX.iter().filter_map(field).collect();
            let unique: HashSet<&&str> = values.iter().collect();
            assert_eq!(values.len(), unique.len(), "duplicate in {values:?}");
        }
        assert_eq!(by_name("arm32v6").unwrap().rpm_arch, Some("armv6hl"));
    }

    #[test]
    fn default_matrix_matches_the_documented_table() {
        let rows: Vec<(&str, &str, String)> =
            MATRIX.iter().map(|a| (a.name, a.target, a.platform.to_string())).collect();
        assert_eq!(
            rows,
            [
                ("amd64", "x86_64-unknown-linux-musl", "linux/amd64"),
                ("arm64v8", "aarch64-unknown-linux-musl", "linux/arm64/v8"),
                ("arm32v7", "armv7-unknown-linux-musleabihf", "linux/arm/v7"),
                ("arm32v6", "arm-unknown-linux-musleabihf", "linux/arm/v6"),
                ("arm32v5", "armv5te-unknown-linux-musleabi", "linux/arm/v5"),
                ("i386", "i686-unknown-linux-musl", "linux/386"),
                ("riscv64", "riscv64gc-unknown-linux-musl", "linux/riscv64"),
                ("ppc64le", "powerpc64le-unknown-linux-musl", "linux/ppc64le"),
                ("s390x", "s390x-unknown-linux-musl", "linux/s390x"),
                ("mips64le", "mips64el-unknown-linux-muslabi64", "linux/mips64le"),
                ("loongarch64", "loongarch64-unknown-linux-musl", "linux/loong64"),
            ]
            .map(|(n, t, p)| (n, t, p.to_string()))
        );
    }

    #[test]
    fn every_arch_is_static_musl_and_consistent() {
        for arch in MATRIX {
            assert!(arch.target.contains("-linux-musl"), "{} must be a musl target", arch.name);
            let is_arm32 = arch.elf.machine == EM_ARM;
            assert_eq!(is_arm32, arch.platform.architecture == "arm", "{}", arch.name);
            assert_eq!(is_arm32, arch.elf.float_abi.is_some(), "{}: ARM needs a float ABI", arch.name);
            assert_eq!(
                arch.target.ends_with("hf"),
                arch.elf.float_abi == Some(FloatAbi::Hard),
                "{}",
                arch.name
            );
            assert!(!arch.uname_machines.is_empty());
            // Docker Hub has a busybox for each official arch; the others start from scratch.
            let base =
                if arch.docker_official { format!("{}busybox", namespace(arch)) } else { "scratch".into() };
            assert_eq!(arch.base_image, base, "{}", arch.name);
            let big = arch.elf.byte_order == ByteOrder::Big;
            assert_eq!(big, arch.name == "s390x", "{}: only s390x is big-endian", arch.name);
        }
    }

    #[test]
    fn platforms_normalize_like_buildx() {
        assert_eq!(by_name("arm64v8").unwrap().platform.normalized(), "linux/arm64");
        assert_eq!(normalize_platform("linux/amd64/v1"), "linux/amd64");
        assert_eq!(by_name("arm32v6").unwrap().platform.normalized(), "linux/arm/v6");
        assert_eq!(normalize_platform_of("linux", "arm64", Some("v8")), "linux/arm64");
        assert_eq!(normalize_platform_of("linux", "arm", Some("v5")), "linux/arm/v5");
        assert_eq!(normalize_platform_of("linux", "386", None), "linux/386");
        assert_eq!(by_name("arm64v8").unwrap().platform.spellings(), ["linux/arm64", "linux/arm64/v8"]);
        assert_eq!(by_name("arm32v7").unwrap().platform.spellings(), ["linux/arm/v7"]);
    }

    /// docker/hooks/common.sh's ARCH_TABLE: arch, Docker platform (as written), base image.
    /// Docker Hub's ten only: the opt-in rows have no Docker Hub base image.
    fn hooks_arch_table() -> String {
        let rows: Vec<String> =
            default_arches().iter().map(|a| format!("{} {} {}", a.name, a.platform, a.base_image)).collect();
        format!("ARCH_TABLE='{}'\n", rows.join("\n"))
    }

    /// ci/setup-host.sh's BASE_IMAGES: base image, Debian architecture of its busybox-static,
    /// normalized platform (what `docker image inspect` reports).
    fn setup_host_base_images() -> String {
        let rows: String = default_arches()
            .iter()
            .map(|a| format!("  \"{} {} {}\"\n", a.base_image, a.debian_arch, a.platform.normalized()))
            .collect();
        format!("BASE_IMAGES=(\n{rows})\n")
    }

    /// ci/setup-host.sh's QEMU_BINFMT: the qemu-user handlers containers of foreign arches
    /// (buildx RUN steps, `docker run --platform`) need, by their binfmt.d names.
    fn setup_host_binfmt() -> String {
        let mut names: Vec<&str> = MATRIX
            .iter()
            .filter_map(|a| match a.run_on {
                RunOn::Qemu { emulator, .. } => emulator.strip_suffix("-static"),
                RunOn::Host => None,
            })
            .collect();
        names.dedup();
        format!("QEMU_BINFMT=({})\n", names.join(" "))
    }

    /// The release workflow's per-arch dist jobs: Docker's ten, as our release.toml builds.
    fn release_workflow_arches() -> String {
        let names: Vec<&str> = default_arches().iter().map(|a| a.name).collect();
        format!("        arch: [{}]\n", names.join(", "))
    }

    /// The e2e tests' ALL_ARCHES (the arches our release.toml builds: Docker's ten). Compared
    /// without whitespace: rustfmt decides the layout.
    fn e2e_all_arches() -> String {
        let arches = default_arches();
        let quoted: Vec<String> = arches.iter().map(|a| format!("{:?}", a.name)).collect();
        format!("pub const ALL_ARCHES: [&str; {}] = [{}];\n", arches.len(), quoted.join(", "))
    }

    /// The e2e tests' PLATFORMS: each arch with its platform as registries list it (normalized).
    fn e2e_platforms() -> String {
        let arches = default_arches();
        let rows: String =
            arches.iter().map(|a| format!("    ({:?}, {:?}),\n", a.name, a.platform.normalized())).collect();
        format!("pub const PLATFORMS: [(&str, &str); {}] = [\n{rows}];\n", arches.len())
    }

    /// `text` with the lines from the one starting with `first` to the next one `last` accepts
    /// (inclusive) replaced by `rendering`; `None` when there is no such region.
    fn replace_region(text: &str, first: &str, last: fn(&str) -> bool, rendering: &str) -> Option<String> {
        let start = text.find(&format!("\n{first}"))? + 1;
        let mut end = start;
        for line in text[start..].split_inclusive('\n') {
            end += line.len();
            if last(line.trim_end()) {
                return Some(format!("{}{rendering}{}", &text[..start], &text[end..]));
            }
        }
        None
    }

    /// A table in a committed file: the lines from the one starting with `first` to the next
    /// one `last` accepts, to be `rendering`.
    struct Rendering {
        path: &'static str,
        first: &'static str,
        last: fn(&str) -> bool,
        rendering: String,
    }

    impl Rendering {
        fn new(path: &'static str, first: &'static str, last: fn(&str) -> bool, rendering: String) -> Self {
            Rendering { path, first, last, rendering }
        }
    }

    /// Rust text as rustfmt may lay it out: without whitespace or a trailing comma.
    fn without_layout(text: &str) -> String {
        text.chars().filter(|c| !c.is_whitespace()).collect::<String>().replace(",]", "]")
    }

    /// The committed renderings of the matrix (rust-analyzer's codegen pattern): when a row
    /// changed, they are rewritten here and the test fails until they are committed.
    #[test]
    fn the_hooks_setup_host_and_e2e_tables_are_renderings_of_the_matrix() {
        let support = "xtask/tests/e2e/support.rs";
        let renderings = [
            Rendering::new(
                "docker/hooks/common.sh",
                "ARCH_TABLE='",
                |l| l.ends_with('\''),
                hooks_arch_table(),
            ),
            Rendering::new("ci/setup-host.sh", "BASE_IMAGES=(", |l| l == ")", setup_host_base_images()),
            Rendering::new("ci/setup-host.sh", "QEMU_BINFMT=(", |l| l.ends_with(')'), setup_host_binfmt()),
            Rendering::new(
                ".github/workflows/release.yml",
                "        arch: [",
                |l| l.ends_with(']'),
                release_workflow_arches(),
            ),
            Rendering::new(support, "pub const ALL_ARCHES", |l| l.ends_with("];"), e2e_all_arches()),
            Rendering::new(support, "pub const PLATFORMS", |l| l == "];", e2e_platforms()),
        ];
        let mut stale = Vec::new();
        for Rendering { path, first, last, rendering } in renderings {
            let full = project_root().join(path);
            let text = std::fs::read_to_string(&full).unwrap();
            let updated = replace_region(&text, first, last, &rendering)
                .unwrap_or_else(|| panic!("{path} has no table starting with {first:?}"));
            // The e2e lists are Rust: rustfmt decides their layout, the matrix their contents.
            let same = match path.ends_with(".rs") {
                true => without_layout(&updated) == without_layout(&text),
                false => updated == text,
            };
            if !same {
                std::fs::write(&full, updated).unwrap();
                stale.push(path);
            }
        }
        assert!(
            stale.is_empty(),
            "{stale:?} were out of date with xtask/src/project/matrix.rs; they have been regenerated: \
             review and commit them (and run `cargo test` again)"
        );
    }

    #[test]
    fn a_region_is_replaced_from_its_first_line_to_its_last() {
        let text = "a\nT='x\ny'\nb\n";
        assert_eq!(replace_region(text, "T='", |l| l.ends_with('\''), "T='z'\n").unwrap(), "a\nT='z'\nb\n");
        assert_eq!(replace_region(text, "U=", |l| l.ends_with('\''), ""), None);
    }

    #[test]
    fn lookups() {
        assert_eq!(by_target("i686-unknown-linux-musl").unwrap().name, "i386");
        assert!(by_name("arm32v8").is_none());
        assert_eq!(rank(by_name("i386").unwrap()), 5);
        assert_eq!(rank(by_name("loongarch64").unwrap()), MATRIX.len() - 1);
        assert_eq!(default_arches().len(), 10, "Docker's official set");
    }
}
