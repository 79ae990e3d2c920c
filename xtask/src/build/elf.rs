//! Checks a built binary before it is packaged: a static ELF executable for the arch's
//! machine, class, byte order and psABI (`e_flags`: float ABI, ABI version, ISA level), and
//! (for ARM) built for no newer CPU than the arch's class.

use anyhow::{bail, Context, Result};
use object::elf::{self as e, FileHeader32, FileHeader64};
use object::read::elf::{Dyn, FileHeader, ProgramHeader, SectionHeader};
use object::{Endianness, FileKind};

use crate::project::matrix::{
    AbiFlags, Arch, ByteOrder, ElfClass, ElfKind, FloatAbi, EM_386, EM_AARCH64, EM_ARM, EM_LOONGARCH,
    EM_MIPS, EM_PPC64, EM_RISCV, EM_S390, EM_X86_64,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfFacts {
    pub class: ElfClass,
    pub machine: u16,
    pub byte_order: ByteOrder,
    /// The raw `e_flags`: what each psABI records there is checked in `check_abi_flags`.
    pub flags: u32,
    pub interpreter: Option<String>,
    pub needed: usize,
    pub arm_hard_float: bool,
    /// ARM `Tag_CPU_arch` from `.ARM.attributes`.
    pub arm_cpu_arch: Option<u64>,
}

pub fn machine_name(machine: u16) -> String {
    match machine {
        EM_386 => "Intel 80386".into(),
        EM_ARM => "ARM".into(),
        EM_X86_64 => "x86-64".into(),
        EM_AARCH64 => "AArch64".into(),
        EM_MIPS => "MIPS".into(),
        EM_PPC64 => "PowerPC64".into(),
        EM_S390 => "IBM S/390".into(),
        EM_RISCV => "RISC-V".into(),
        EM_LOONGARCH => "LoongArch".into(),
        other => format!("machine {other}"),
    }
}

/// ARM `Tag_CPU_arch` values (ARM IHI 0045) as names.
pub fn arm_cpu_arch_name(value: u64) -> String {
    const NAMES: &[&str] = &[
        "pre-v4", "v4", "v4T", "v5T", "v5TE", "v5TEJ", "v6", "v6KZ", "v6T2", "v6K", "v7", "v6-M", "v6S-M",
        "v7E-M", "v8",
    ];
    NAMES.get(value as usize).map_or_else(|| format!("CPU arch {value}"), |n| n.to_string())
}

pub fn inspect(bytes: &[u8]) -> Result<ElfFacts> {
    match FileKind::parse(bytes).context("not an ELF file")? {
        FileKind::Elf32 => facts::<FileHeader32<Endianness>>(bytes, ElfClass::Elf32),
        FileKind::Elf64 => facts::<FileHeader64<Endianness>>(bytes, ElfClass::Elf64),
        other => bail!("not an ELF file ({other:?})"),
    }
}

fn facts<H: FileHeader<Endian = Endianness>>(bytes: &[u8], class: ElfClass) -> Result<ElfFacts> {
    let header = H::parse(bytes).context("damaged ELF header")?;
    let endian = header.endian().context("unknown ELF byte order")?;
    let machine = header.e_machine(endian);
    if header.e_type(endian) != e::ET_EXEC && header.e_type(endian) != e::ET_DYN {
        bail!("not an executable (ELF type {})", header.e_type(endian));
    }

    let mut interpreter = None;
    let mut needed = 0;
    for segment in header.program_headers(endian, bytes).context("damaged program headers")? {
        match segment.p_type(endian) {
            e::PT_INTERP => {
                let data = segment.data(endian, bytes).map_err(|()| anyhow::anyhow!("damaged PT_INTERP"))?;
                interpreter = Some(String::from_utf8_lossy(data).trim_end_matches('\0').to_string());
            }
            e::PT_DYNAMIC => {
                if let Some(entries) =
                    segment.dynamic(endian, bytes).map_err(|_| anyhow::anyhow!("damaged PT_DYNAMIC"))?
                {
                    needed +=
                        entries.iter().filter(|d| d.d_tag(endian).into() == u64::from(e::DT_NEEDED)).count();
                }
            }
            _ => {}
        }
    }

    let flags = header.e_flags(endian);
    let byte_order = if endian == Endianness::Little { ByteOrder::Little } else { ByteOrder::Big };
    let arm_hard_float = machine == EM_ARM && flags & e::EF_ARM_ABI_FLOAT_HARD != 0;
    let arm_cpu_arch = if machine == EM_ARM { arm_cpu_arch::<H>(header, endian, bytes)? } else { None };
    Ok(ElfFacts { class, machine, byte_order, flags, interpreter, needed, arm_hard_float, arm_cpu_arch })
}

/// Reads `Tag_CPU_arch` from the `aeabi` file attributes. The attribute stream has no
/// self-describing types: by the ABI's convention tags below 32 are integers except the
/// CPU name strings (4, 5), and from 32 on odd tags are strings (67, conformance, is one).
fn arm_cpu_arch<H: FileHeader<Endian = Endianness>>(
    header: &H,
    endian: Endianness,
    bytes: &[u8],
) -> Result<Option<u64>> {
    const TAG_FILE: u8 = 1;
    const TAG_CPU_ARCH: u64 = 6;
    let sections = header.sections(endian, bytes).context("damaged section headers")?;
    for section in sections.iter() {
        if section.sh_type(endian) != e::SHT_ARM_ATTRIBUTES {
            continue;
        }
        let attributes = section.attributes(endian, bytes).context("damaged .ARM.attributes")?;
        let mut subsections = attributes.subsections().context("damaged .ARM.attributes")?;
        while let Some(subsection) = subsections.next().context("damaged .ARM.attributes")? {
            if subsection.vendor() != b"aeabi" {
                continue;
            }
            let mut subsubsections = subsection.subsubsections();
            while let Some(sub) = subsubsections.next().context("damaged .ARM.attributes")? {
                if sub.tag() != TAG_FILE {
                    continue;
                }
                let mut reader = sub.attributes();
                while let Some(tag) = reader.read_tag().context("damaged .ARM.attributes")? {
                    let is_string = matches!(tag, 4 | 5) || (tag >= 32 && tag % 2 == 1);
                    if tag == 32 {
                        reader.read_integer().context("damaged .ARM.attributes")?;
                        reader.read_string().context("damaged .ARM.attributes")?;
                    } else if is_string {
                        reader.read_string().context("damaged .ARM.attributes")?;
                    } else {
                        let value = reader.read_integer().context("damaged .ARM.attributes")?;
                        if tag == TAG_CPU_ARCH {
                            return Ok(Some(value));
                        }
                    }
                }
            }
        }
    }
    Ok(None)
}

/// Why `facts` do not fit `arch`, or `Ok` if they do.
pub fn check(arch: &Arch, facts: &ElfFacts) -> Result<()> {
    let expected = &arch.elf;
    if facts.machine != expected.machine || facts.class != expected.class {
        bail!(
            "it is a {:?} {} binary, but {} needs {:?} {}",
            facts.class,
            machine_name(facts.machine),
            arch.name,
            expected.class,
            machine_name(expected.machine)
        );
    }
    if facts.byte_order != expected.byte_order {
        let name = |order: ByteOrder| match order {
            ByteOrder::Little => "little-endian",
            ByteOrder::Big => "big-endian",
        };
        bail!(
            "it is a {} {} binary, but {} needs {} code",
            name(facts.byte_order),
            machine_name(facts.machine),
            arch.name,
            name(expected.byte_order)
        );
    }
    if let Some(interpreter) = &facts.interpreter {
        bail!("it is dynamically linked (interpreter {interpreter}); release binaries must be static");
    }
    if facts.needed > 0 {
        bail!("it needs {} shared libraries (DT_NEEDED); release binaries must be static", facts.needed);
    }
    if let Some(abi) = expected.float_abi {
        let hard = abi == FloatAbi::Hard;
        if facts.arm_hard_float != hard {
            let name = |hard: bool| if hard { "hard-float" } else { "soft-float" };
            bail!("it uses the {} ABI, but {} needs {}", name(facts.arm_hard_float), arch.name, name(hard));
        }
    }
    check_abi_flags(arch, facts.flags)?;
    if let Some(max) = expected.max_arm_cpu_arch {
        // No attribute is no evidence: a binary whose CPU level cannot be read is refused,
        // or an ARMv7 build could ship as arm32v5 whenever qemu-user is absent.
        let Some(actual) = facts.arm_cpu_arch else {
            bail!(
                "its ARM build attributes (Tag_CPU_arch in .ARM.attributes) cannot be read, so nothing shows \
                 it runs on {} ({} at most); rebuild it without stripping .ARM.attributes",
                arch.name,
                arm_cpu_arch_name(max)
            );
        };
        if actual > max {
            bail!(
                "it is built for ARM {} CPUs (Tag_CPU_arch {actual}), newer than {} allows ({} at most)",
                arm_cpu_arch_name(actual),
                arch.name,
                arm_cpu_arch_name(max)
            );
        }
    }
    Ok(())
}

/// What the plan's check line adds for byte order and psABI (nothing for the little-endian
/// arches without `e_flags` rules).
pub fn abi_note(kind: &ElfKind) -> String {
    let order = match kind.byte_order {
        ByteOrder::Big => ", big-endian",
        ByteOrder::Little => "",
    };
    let abi = match kind.abi_flags {
        AbiFlags::None => "",
        AbiFlags::RiscvLp64dRvc => ", lp64d ABI with RVC (e_flags 0x5)",
        AbiFlags::PowerElfV2 => ", little-endian ELFv2 ABI",
        AbiFlags::MipsN64R2 => ", little-endian n64 ABI, MIPS64R2 at most",
        AbiFlags::LoongLp64d => ", LP64D ABI",
    };
    format!("{order}{abi}")
}

/// The psABI facts of `e_flags` that decide whether the binary runs on `arch`'s userland.
fn check_abi_flags(arch: &Arch, flags: u32) -> Result<()> {
    match arch.elf.abi_flags {
        AbiFlags::None => Ok(()),
        AbiFlags::RiscvLp64dRvc => check_riscv(arch, flags),
        AbiFlags::PowerElfV2 => match flags & e::EF_PPC64_ABI {
            2 => Ok(()),
            1 => bail!(
                "it uses the 64-bit PowerPC ELFv1 ABI (e_flags {flags:#x}, big-endian ppc64's), but {} needs ELFv2 \
                 (e_flags & 3 = 2)",
                arch.name
            ),
            other => bail!(
                "its 64-bit PowerPC ABI version is {other} (e_flags {flags:#x}), but {} needs ELFv2 (e_flags & 3 = 2)",
                arch.name
            ),
        },
        AbiFlags::MipsN64R2 => check_mips64(arch, flags),
        AbiFlags::LoongLp64d => check_loongarch(arch, flags),
    }
}

/// LoongArch's base ABI is the low three bits of `e_flags` (LP64S, LP64F, LP64D); Linux on LA64
/// calls with double-float registers.
fn check_loongarch(arch: &Arch, flags: u32) -> Result<()> {
    let abi = match flags & e::EF_LARCH_ABI_MODIFIER_MASK {
        e::EF_LARCH_ABI_SOFT_FLOAT => "soft-float (LP64S)",
        e::EF_LARCH_ABI_SINGLE_FLOAT => "single-float (LP64F)",
        e::EF_LARCH_ABI_DOUBLE_FLOAT => return Ok(()),
        _ => "an unknown",
    };
    bail!(
        "it uses the {abi} ABI (e_flags {flags:#x}), but {} needs double-float (LP64D, e_flags & 7 = 3)",
        arch.name
    )
}

fn check_riscv(arch: &Arch, flags: u32) -> Result<()> {
    let float = match flags & e::EF_RISCV_FLOAT_ABI {
        e::EF_RISCV_FLOAT_ABI_SOFT => "soft-float (lp64)",
        e::EF_RISCV_FLOAT_ABI_SINGLE => "single-float (lp64f)",
        e::EF_RISCV_FLOAT_ABI_DOUBLE => "double-float (lp64d)",
        _ => "quad-float (lp64q)",
    };
    if flags & e::EF_RISCV_FLOAT_ABI != e::EF_RISCV_FLOAT_ABI_DOUBLE {
        bail!(
            "it uses the {float} ABI (e_flags {flags:#x}), but {} needs double-float (lp64d) with compressed \
             instructions (e_flags 0x5)",
            arch.name
        );
    }
    if flags & e::EF_RISCV_RVE != 0 {
        bail!("it is built for the embedded RV64E base (e_flags {flags:#x}), but {} needs RV64GC", arch.name);
    }
    if flags & e::EF_RISCV_TSO != 0 {
        bail!(
            "it needs the TSO memory model (Ztso, e_flags {flags:#x}), which {} CPUs do not promise",
            arch.name
        );
    }
    if flags & e::EF_RISCV_RVC == 0 {
        bail!(
            "it is not built for compressed instructions (no RVC in e_flags {flags:#x}), so it is not an RV64GC \
             build as {} expects",
            arch.name
        );
    }
    Ok(())
}

fn check_mips64(arch: &Arch, flags: u32) -> Result<()> {
    const EF_MIPS_ABI_O32: u32 = 0x1000;
    if flags & e::EF_MIPS_ABI2 != 0 {
        bail!("it uses the n32 ABI (EF_MIPS_ABI2 in e_flags {flags:#x}), but {} needs n64", arch.name);
    }
    if flags & e::EF_MIPS_ABI != 0 {
        let found = match flags & e::EF_MIPS_ABI {
            EF_MIPS_ABI_O32 => "o32",
            0x2000 => "o64",
            0x3000 => "eabi32",
            _ => "eabi64",
        };
        bail!("it uses the {found} ABI (e_flags {flags:#x}), but {} needs n64", arch.name);
    }
    // EF_MIPS_ARCH values 0..=10: MIPS I-V, MIPS32, MIPS64, MIPS32R2, MIPS64R2, MIPS32R6, MIPS64R6.
    const ISAS: [&str; 11] = [
        "MIPS I", "MIPS II", "MIPS III", "MIPS IV", "MIPS V", "MIPS32", "MIPS64", "MIPS32R2", "MIPS64R2",
        "MIPS32R6", "MIPS64R6",
    ];
    let isa = ((flags & e::EF_MIPS_ARCH) >> 28) as usize;
    // The 64-bit ISAs up to R2 run on a MIPS64R2 CPU; the 32-bit ones are not n64, and R6
    // changed encodings.
    if !matches!(isa, 2..=4 | 6 | 8) {
        let name = ISAS.get(isa).map_or_else(|| format!("ISA {isa}"), |n| n.to_string());
        bail!(
            "it is built for {name} (e_flags {flags:#x}), but {} runs 64-bit code up to MIPS64R2",
            arch.name
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::matrix::by_name;

    fn host_binary() -> Vec<u8> {
        std::fs::read("/bin/sh").expect("every Linux host has /bin/sh")
    }

    #[test]
    fn a_dynamic_host_binary_is_refused_with_its_interpreter() {
        let facts = inspect(&host_binary()).unwrap();
        assert_eq!(facts.machine, EM_X86_64);
        let err = check(by_name("amd64").unwrap(), &facts).unwrap_err().to_string();
        assert!(err.contains("dynamically linked (interpreter /lib"), "{err}");
    }

    #[test]
    fn the_wrong_machine_is_named() {
        let facts = inspect(&host_binary()).unwrap();
        let err = check(by_name("arm64v8").unwrap(), &facts).unwrap_err().to_string();
        assert_eq!(err, "it is a Elf64 x86-64 binary, but arm64v8 needs Elf64 AArch64");
    }

    #[test]
    fn arm_facts_are_checked_against_the_cpu_class() {
        let v7_binary = ElfFacts {
            class: ElfClass::Elf32,
            machine: EM_ARM,
            byte_order: ByteOrder::Little,
            flags: 0x0500_0400,
            interpreter: None,
            needed: 0,
            arm_hard_float: true,
            arm_cpu_arch: Some(10),
        };
        assert!(check(by_name("arm32v7").unwrap(), &v7_binary).is_ok());
        let err = check(by_name("arm32v6").unwrap(), &v7_binary).unwrap_err().to_string();
        assert_eq!(
            err,
            "it is built for ARM v7 CPUs (Tag_CPU_arch 10), newer than arm32v6 allows (v6KZ at most)"
        );
        let err = check(by_name("arm32v5").unwrap(), &v7_binary).unwrap_err().to_string();
        assert!(err.contains("hard-float ABI, but arm32v5 needs soft-float"), "{err}");
    }

    #[test]
    fn executables_of_both_kinds_pass_and_objects_do_not() {
        use crate::fixtures::static_elf;
        let mut elf = static_elf(true, EM_X86_64);
        let facts = inspect(&elf).unwrap();
        assert_eq!(
            (facts.class, facts.machine, facts.interpreter.clone(), facts.needed),
            (ElfClass::Elf64, EM_X86_64, None, 0)
        );
        assert!(check(by_name("amd64").unwrap(), &facts).is_ok());
        elf[16] = 3; // ET_DYN: a static-pie executable
        assert!(inspect(&elf).is_ok());
        elf[16] = 1; // ET_REL: an object file
        assert_eq!(inspect(&elf).unwrap_err().to_string(), "not an executable (ELF type 1)");
        let facts = inspect(&static_elf(false, EM_386)).unwrap();
        assert_eq!((facts.class, facts.machine), (ElfClass::Elf32, EM_386));
        assert!(check(by_name("i386").unwrap(), &facts).is_ok());
    }

    #[test]
    fn garbage_is_not_an_elf() {
        assert!(inspect(b"#!/bin/sh\necho hi\n").is_err());
    }
}

#[cfg(test)]
mod fixture_tests {
    use super::*;
    use crate::fixtures::{arm_attributes, toolchain_tags, ElfSpec};
    use crate::project::matrix::by_name;

    fn arm(hard: bool, cpu_arch: Option<u8>) -> ElfFacts {
        let attributes = cpu_arch.map(|v| arm_attributes(&toolchain_tags(v)));
        inspect(&ElfSpec::arm(hard, attributes).build()).unwrap()
    }

    #[test]
    fn the_arm_cpu_level_and_float_abi_are_read_from_real_attribute_streams() {
        let v7 = arm(true, Some(10));
        assert_eq!((v7.machine, v7.arm_hard_float, v7.arm_cpu_arch), (EM_ARM, true, Some(10)));
        let v5 = arm(false, Some(4));
        assert_eq!((v5.arm_hard_float, v5.arm_cpu_arch), (false, Some(4)));
        assert_eq!(arm(true, None).arm_cpu_arch, None);
        // The same tags with Tag_CPU_arch alone: nothing to skip.
        let plain = inspect(&ElfSpec::arm(true, Some(arm_attributes(&[6, 7]))).build()).unwrap();
        assert_eq!(plain.arm_cpu_arch, Some(7));
    }

    /// Each tag's value hides a `Tag_CPU_arch = 4` that only a misread would find: the value of
    /// the CPU level read first tells a string skipped from an integer read.
    #[test]
    fn tags_from_32_up_are_strings_when_odd_and_integers_when_even() {
        let cpu_arch = |tags: &[u8]| {
            let elf = ElfSpec::arm(true, Some(arm_attributes(tags))).build();
            inspect(&elf).unwrap().arm_cpu_arch
        };
        // 67, odd: the string "x\x06\x04" is skipped, not read as integer 120 then tag 6 = 4.
        assert_eq!(cpu_arch(&[67, b'x', 6, 4, 0, 6, 10]), Some(10));
        // 34, even: the integer 6 is read, and tag 6 = 4 follows it.
        assert_eq!(cpu_arch(&[34, 6, 6, 4, 0, 6, 10]), Some(4));
        // 9, odd below 32: an integer too.
        assert_eq!(cpu_arch(&[9, 6, 6, 4, 0, 6, 10]), Some(4));
    }

    #[test]
    fn each_arm_class_takes_its_own_and_older_code_only() {
        let cases = [
            ("arm32v7", true, 10, Ok(())),
            ("arm32v7", true, 4, Ok(())),
            ("arm32v6", true, 7, Ok(())),
            ("arm32v6", true, 8, Err("it is built for ARM v6T2 CPUs (Tag_CPU_arch 8), newer than arm32v6 allows (v6KZ at most)")),
            ("arm32v5", false, 5, Ok(())),
            ("arm32v5", false, 6, Err("it is built for ARM v6 CPUs (Tag_CPU_arch 6), newer than arm32v5 allows (v5TEJ at most)")),
            ("arm32v5", true, 4, Err("it uses the hard-float ABI, but arm32v5 needs soft-float")),
            ("arm32v7", false, 10, Err("it uses the soft-float ABI, but arm32v7 needs hard-float")),
        ];
        for (name, hard, cpu_arch, expected) in cases {
            let result = check(by_name(name).unwrap(), &arm(hard, Some(cpu_arch))).map_err(|e| e.to_string());
            assert_eq!(result, expected.map_err(str::to_string), "{name} with Tag_CPU_arch {cpu_arch}");
        }
        let err = check(by_name("arm32v7").unwrap(), &arm(true, None)).unwrap_err().to_string();
        assert!(
            err.starts_with("its ARM build attributes (Tag_CPU_arch in .ARM.attributes) cannot be read"),
            "{err}"
        );
    }

    #[test]
    fn interpreters_and_needed_libraries_are_counted_and_refused() {
        let spec = |interpreter, needed, other_dynamic| ElfSpec {
            class64: true,
            machine: EM_X86_64,
            interpreter,
            needed,
            other_dynamic,
            ..ElfSpec::default()
        };
        let facts = inspect(&spec(None, 2, 3).build()).unwrap();
        assert_eq!((facts.interpreter.clone(), facts.needed), (None, 2));
        let amd64 = by_name("amd64").unwrap();
        assert_eq!(
            check(amd64, &facts).unwrap_err().to_string(),
            "it needs 2 shared libraries (DT_NEEDED); release binaries must be static"
        );
        let facts = inspect(&spec(None, 0, 2).build()).unwrap();
        assert_eq!(facts.needed, 0);
        assert!(check(amd64, &facts).is_ok(), "a static-pie binary has PT_DYNAMIC without DT_NEEDED");
        let facts = inspect(&spec(Some("/lib/ld-musl-x86_64.so.1"), 1, 0).build()).unwrap();
        assert_eq!(facts.interpreter.as_deref(), Some("/lib/ld-musl-x86_64.so.1"));
        // The hard-float bit means nothing outside ARM.
        let x86 = ElfSpec { flags: 0x400, ..spec(None, 0, 0) };
        assert!(!inspect(&x86.build()).unwrap().arm_hard_float);
    }

    /// Each new psABI: the right header passes, and each wrong one is refused naming what the
    /// arch needs and what the binary is.
    #[test]
    fn each_64_bit_abi_takes_its_own_e_flags_and_byte_order_only() {
        use crate::project::matrix::{EM_LOONGARCH, EM_MIPS, EM_PPC64, EM_RISCV, EM_S390};
        let check_spec = |name: &str, spec: ElfSpec| {
            check(by_name(name).unwrap(), &inspect(&spec.build()).unwrap()).map_err(|e| e.to_string())
        };
        let cases: [(&str, ElfSpec, Result<(), &str>); 20] = [
            ("loongarch64", ElfSpec::elf64(EM_LOONGARCH, false, 0x43), Ok(())),
            ("loongarch64", ElfSpec::elf64(EM_LOONGARCH, false, 0x3), Ok(())),
            ("loongarch64", ElfSpec::elf64(EM_LOONGARCH, false, 0x41), Err("it uses the soft-float (LP64S) ABI (e_flags 0x41), but loongarch64 needs double-float (LP64D, e_flags & 7 = 3)")),
            ("loongarch64", ElfSpec::elf64(EM_RISCV, false, 0x5), Err("it is a Elf64 RISC-V binary, but loongarch64 needs Elf64 LoongArch")),
            ("riscv64", ElfSpec::elf64(EM_RISCV, false, 0x5), Ok(())),
            ("riscv64", ElfSpec::elf64(EM_RISCV, false, 0x1), Err("it uses the soft-float (lp64) ABI (e_flags 0x1), but riscv64 needs double-float (lp64d) with compressed instructions (e_flags 0x5)")),
            ("riscv64", ElfSpec::elf64(EM_RISCV, false, 0x3), Err("it uses the single-float (lp64f) ABI (e_flags 0x3), but riscv64 needs double-float (lp64d) with compressed instructions (e_flags 0x5)")),
            ("riscv64", ElfSpec::elf64(EM_RISCV, false, 0x4), Err("it is not built for compressed instructions (no RVC in e_flags 0x4), so it is not an RV64GC build as riscv64 expects")),
            ("riscv64", ElfSpec::elf64(EM_RISCV, false, 0x15), Err("it needs the TSO memory model (Ztso, e_flags 0x15), which riscv64 CPUs do not promise")),
            ("ppc64le", ElfSpec::elf64(EM_PPC64, false, 0x2), Ok(())),
            ("ppc64le", ElfSpec::elf64(EM_PPC64, true, 0x1), Err("it is a big-endian PowerPC64 binary, but ppc64le needs little-endian code")),
            ("ppc64le", ElfSpec::elf64(EM_PPC64, false, 0x1), Err("it uses the 64-bit PowerPC ELFv1 ABI (e_flags 0x1, big-endian ppc64's), but ppc64le needs ELFv2 (e_flags & 3 = 2)")),
            ("ppc64le", ElfSpec::elf64(EM_PPC64, false, 0x0), Err("its 64-bit PowerPC ABI version is 0 (e_flags 0x0), but ppc64le needs ELFv2 (e_flags & 3 = 2)")),
            ("s390x", ElfSpec::elf64(EM_S390, true, 0), Ok(())),
            ("s390x", ElfSpec::elf64(EM_S390, false, 0), Err("it is a little-endian IBM S/390 binary, but s390x needs big-endian code")),
            ("mips64le", ElfSpec::elf64(EM_MIPS, false, 0x8000_0007), Ok(())),
            ("mips64le", ElfSpec::elf64(EM_MIPS, true, 0x8000_0007), Err("it is a big-endian MIPS binary, but mips64le needs little-endian code")),
            ("mips64le", ElfSpec::elf64(EM_MIPS, false, 0x8000_0027), Err("it uses the n32 ABI (EF_MIPS_ABI2 in e_flags 0x80000027), but mips64le needs n64")),
            ("mips64le", ElfSpec::elf64(EM_MIPS, false, 0x8000_1007), Err("it uses the o32 ABI (e_flags 0x80001007), but mips64le needs n64")),
            ("mips64le", ElfSpec::elf64(EM_MIPS, false, 0xa000_0007), Err("it is built for MIPS64R6 (e_flags 0xa0000007), but mips64le runs 64-bit code up to MIPS64R2")),
        ];
        for (name, spec, expected) in cases {
            let flags = spec.flags;
            assert_eq!(
                check_spec(name, spec),
                expected.map_err(str::to_string),
                "{name} with e_flags {flags:#x}"
            );
        }
        // A 32-bit MIPS binary is refused on its class before its flags are read.
        let o32 = ElfSpec { machine: EM_MIPS, flags: 0x7000_1007, ..ElfSpec::default() };
        assert_eq!(
            check_spec("mips64le", o32).unwrap_err(),
            "it is a Elf32 MIPS binary, but mips64le needs Elf64 MIPS"
        );
    }
}
