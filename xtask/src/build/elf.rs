//! Checks a built binary before it is packaged: a static ELF executable for the arch's
//! machine, class and float ABI, and (for ARM) built for no newer CPU than the arch's class.

use anyhow::{bail, Context, Result};
use object::elf::{self as e, FileHeader32, FileHeader64};
use object::read::elf::{Dyn, FileHeader, ProgramHeader, SectionHeader};
use object::{Endianness, FileKind};

use crate::project::matrix::{Arch, ElfClass, FloatAbi, EM_386, EM_AARCH64, EM_ARM, EM_X86_64};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfFacts {
    pub class: ElfClass,
    pub machine: u16,
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

    let arm_hard_float = machine == EM_ARM && header.e_flags(endian) & e::EF_ARM_ABI_FLOAT_HARD != 0;
    let arm_cpu_arch = if machine == EM_ARM { arm_cpu_arch::<H>(header, endian, bytes)? } else { None };
    Ok(ElfFacts { class, machine, interpreter, needed, arm_hard_float, arm_cpu_arch })
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
}
