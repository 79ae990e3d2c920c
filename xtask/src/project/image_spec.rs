//! The container image, described once. The buildx engine's Dockerfile and build args, the oci
//! engine's image config and dist's Dockerfile.release are views of one `ImageSpec`, derived
//! from release.toml's `[image]` section, Cargo.toml's package facts and the release (the dist
//! manifest); none of them holds an image value of its own, so they cannot disagree.
//!
//! It lives in `project/` because both `release/` (Dockerfile.release) and `engines/` read it.

use anyhow::Context as _;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::project::config::{BaseKind, ImageSection};
use crate::project::matrix::{self, Arch};
use crate::project::workspace::{rfc3339, ProjectFacts, Release};

/// The base of an image that holds nothing but the binary and its few files.
pub const SCRATCH: &str = "scratch";
/// Where the binary lives in the image.
pub const BIN_DIR: &str = "/usr/local/bin";
/// BuildKit's default PATH for images FROM scratch. The Dockerfiles set it explicitly, so the
/// image does not depend on the builder's default or on the base image's.
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const LABEL_PREFIX: &str = "org.opencontainers.image.";

pub const IMAGE_STAGES_TEMPLATE_PATH: &str = "xtask/templates/image-stages.in";
const IMAGE_STAGES_TEMPLATE: &str = include_str!("../../templates/image-stages.in");

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    /// The binary's name (`dist.binary`): the entrypoint, and the user's name in /etc/passwd.
    pub binary: String,
    /// The non-root uid, and gid, the container runs as (`image.user`).
    pub user: u32,
    /// The state folder, a volume owned by `user` (`image.volume`). Like the port, the command
    /// and the health check, absent unless release.toml sets it, and then absent from every view.
    pub volume: Option<String>,
    /// Exposed TCP port (`image.port`).
    pub port: Option<u16>,
    /// Default arguments after the entrypoint (`image.command`); empty: no CMD.
    pub cmd: Vec<String>,
    /// `image.healthcheck`; none when it is absent or `[]`.
    pub healthcheck: Option<Healthcheck>,
    pub stop_signal: &'static str,
    /// `(name, value)`, in order.
    pub env: Vec<(String, String)>,
    pub working_dir: &'static str,
    /// The only date in the image: file times and `created`.
    pub source_date_epoch: u64,
    /// RFC 3339 of `source_date_epoch`.
    pub created: String,
    pub version: String,
    pub commit: String,
    pub project: ProjectFacts,
    /// `image.labels`: labels beyond the ones derived here.
    pub extra_labels: BTreeMap<String, String>,
    /// FROM per arch name: `scratch`, or the arch's busybox.
    from: BTreeMap<&'static str, String>,
}

/// Docker's HEALTHCHECK: the binary run with `args`, on a fixed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    /// Arguments after the binary (`image.healthcheck`).
    pub args: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub retries: u32,
}

/// One image label. `arg` names the build arg docker/Dockerfile reads it from when its value
/// changes per release or arch; labels release.toml fixes are written into the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub key: String,
    pub value: String,
    pub arg: Option<&'static str>,
}

/// How a Dockerfile view gets the values that change per release or arch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Values<'a> {
    /// As `${ARG}`: docker/Dockerfile, the same file for every release.
    BuildArgs,
    /// Written in, for an image built FROM `from`: Dockerfile.release, generated per release.
    Literal { from: &'a str },
}

impl ImageSpec {
    /// `base` is what the engine builds on: the oci engine and Dockerfile.release always build
    /// FROM scratch, buildx builds on `image.base` or `--base`.
    pub fn new(image: &ImageSection, project: &ProjectFacts, release: &Release, base: BaseKind) -> ImageSpec {
        let from = matrix::MATRIX
            .iter()
            .map(|arch| {
                let from = match base {
                    BaseKind::Busybox => image.base_image(arch).to_string(),
                    BaseKind::Scratch => SCRATCH.to_string(),
                };
                (arch.name, from)
            })
            .collect();
        ImageSpec {
            binary: release.name.clone(),
            user: image.user,
            volume: image.volume.clone(),
            port: image.port,
            cmd: image.command.clone(),
            healthcheck: (!image.healthcheck.is_empty()).then(|| Healthcheck {
                args: image.healthcheck.clone(),
                interval: Duration::from_secs(30),
                timeout: Duration::from_secs(5),
                start_period: Duration::from_secs(5),
                retries: 3,
            }),
            stop_signal: "SIGTERM",
            env: vec![("PATH".to_string(), PATH.to_string())],
            working_dir: "/",
            source_date_epoch: release.source_date_epoch,
            created: rfc3339(release.source_date_epoch),
            version: release.version.clone(),
            commit: release.commit.clone(),
            project: project.clone(),
            extra_labels: image.labels.clone(),
            from,
        }
    }

    /// What the image is built on for `arch`.
    pub fn from(&self, arch: &Arch) -> &str {
        self.from.get(arch.name).map_or(SCRATCH, String::as_str)
    }

    pub fn binary_path(&self) -> String {
        format!("{BIN_DIR}/{}", self.binary)
    }

    pub fn entrypoint(&self) -> Vec<String> {
        vec![self.binary_path()]
    }

    /// `uid:gid`, the same number twice.
    pub fn user_and_group(&self) -> String {
        format!("{0}:{0}", self.user)
    }

    /// As image configs key it: `7070/tcp`.
    pub fn exposed_port(&self) -> Option<String> {
        self.port.map(|port| format!("{port}/tcp"))
    }

    /// `NAME=value`, as image configs list them.
    pub fn env_list(&self) -> Vec<String> {
        self.env.iter().map(|(name, value)| format!("{name}={value}")).collect()
    }

    /// The health check's command line: the binary and `image.healthcheck`.
    pub fn healthcheck_argv(&self) -> Option<Vec<String>> {
        let check = self.healthcheck.as_ref()?;
        Some(std::iter::once(self.binary_path()).chain(check.args.iter().cloned()).collect())
    }

    /// The user's home in /etc/passwd: the volume, or Debian's name for no home.
    fn home(&self) -> &str {
        self.volume.as_deref().unwrap_or("/nonexistent")
    }

    /// The labels of an image built FROM `from`: the `org.opencontainers.image.*` ones, in the
    /// order Dockerfiles list them, then `image.labels`.
    pub fn labels(&self, from: &str) -> Vec<Label> {
        let derived = [
            ("title", self.binary.clone(), None),
            ("description", self.project.description.clone(), Some("DESCRIPTION")),
            ("version", self.version.clone(), Some("VERSION")),
            ("revision", self.commit.clone(), Some("GIT_COMMIT")),
            ("created", self.created.clone(), Some("CREATED")),
            ("source", self.project.source.clone(), Some("SOURCE")),
            ("licenses", self.project.licenses.clone(), Some("LICENSES")),
            ("base.name", from.to_string(), Some("IMAGE_FROM")),
        ];
        let derived = derived.into_iter().map(|(key, value, arg)| Label {
            key: format!("{LABEL_PREFIX}{key}"),
            value,
            arg,
        });
        let extra = self.extra_labels.iter().map(|(key, value)| Label {
            key: key.clone(),
            value: value.clone(),
            arg: None,
        });
        derived.chain(extra).collect()
    }

    pub fn label_map(&self, from: &str) -> BTreeMap<String, String> {
        self.labels(from).into_iter().map(|label| (label.key, label.value)).collect()
    }

    /// One line for the plans both engines print.
    pub fn summary(&self) -> String {
        let none = || "none".to_string();
        format!(
            "User {}, Entrypoint [{}], Cmd {:?}, Volume {}, Port {}, StopSignal {}, Healthcheck {}",
            self.user_and_group(),
            self.entrypoint().join(" "),
            self.cmd,
            self.volume.clone().unwrap_or_else(none),
            self.exposed_port().unwrap_or_else(none),
            self.stop_signal,
            self.healthcheck_argv().map_or_else(none, |argv| argv.join(" "))
        )
    }

    /// The values both Dockerfile templates fill in for the image's files (binary, volume, passwd)
    /// and configuration (USER to LABEL, literal or as build args per `values`).
    pub fn template_values(&self, values: Values) -> Vec<(&'static str, String)> {
        vec![
            ("binary", self.binary.clone()),
            ("binary_path", self.binary_path()),
            ("bin_dir", BIN_DIR.to_string()),
            ("volume_dir", self.volume.as_ref().map_or(String::new(), |v| format!(" \"/out{v}\""))),
            ("chown_volume", self.chown_volume()),
            ("passwd", printf_quoted(&self.passwd())),
            ("group", printf_quoted(&self.group())),
            ("config", self.dockerfile_config(values)),
        ]
    }

    /// The verify and final stages every image Dockerfile shares (templates/image-stages.in):
    /// `verify_input` puts the archive and its .sha256 in /in, and `archive_name` is the shell
    /// statement that leaves the archive's file name in ARCHIVE.
    pub fn image_stages(&self, verify_input: &str, archive_name: &str) -> anyhow::Result<String> {
        let mut values = self.template_values(Values::BuildArgs);
        values.push(("verify_input", verify_input.to_string()));
        values.push(("archive_name", archive_name.to_string()));
        crate::util::template::render(IMAGE_STAGES_TEMPLATE, &values)
            .with_context(|| format!("cannot render {IMAGE_STAGES_TEMPLATE_PATH}"))
    }

    /// /etc/passwd: root, and the binary's user whose home is the volume (without one, none).
    pub fn passwd(&self) -> String {
        let (uid, name, home) = (self.user, &self.binary, self.home());
        format!("root:x:0:0:root:/root:/bin/sh\n{name}:x:{uid}:{uid}:{name}:{home}:/sbin/nologin\n")
    }

    /// The shell command (as a `; \`-joined continuation of the one before it) that gives the
    /// volume to the user in the Dockerfiles' staging folder; nothing without a volume.
    fn chown_volume(&self) -> String {
        match &self.volume {
            Some(volume) => format!("; \\\n    chown {} \"/out{volume}\"", self.user_and_group()),
            None => String::new(),
        }
    }

    /// /etc/group: root, and the binary's group.
    pub fn group(&self) -> String {
        format!("root:x:0:\n{}:x:{}:\n", self.binary, self.user)
    }

    /// The Dockerfile instructions that make the image config, for the final stage once the
    /// files are in place: USER through LABEL. Docker takes no build args in the exec forms
    /// (ENTRYPOINT, CMD, HEALTHCHECK CMD), so those are always written in.
    pub fn dockerfile_config(&self, values: Values) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "USER {}", self.user_and_group());
        for (name, value) in &self.env {
            let _ = writeln!(out, "ENV {name}=\"{}\"", dockerfile_quoted(value));
        }
        let _ = writeln!(out, "WORKDIR {}", self.working_dir);
        if let Some(volume) = &self.volume {
            let _ = writeln!(out, "VOLUME {}", exec_form(std::slice::from_ref(volume)));
        }
        if let Some(port) = self.exposed_port() {
            let _ = writeln!(out, "EXPOSE {port}");
        }
        let _ = writeln!(out, "STOPSIGNAL {}", self.stop_signal);
        if let (Some(h), Some(argv)) = (&self.healthcheck, self.healthcheck_argv()) {
            let _ = writeln!(
                out,
                "HEALTHCHECK --interval={}s --timeout={}s --start-period={}s --retries={} \\\n  CMD {}",
                h.interval.as_secs(),
                h.timeout.as_secs(),
                h.start_period.as_secs(),
                h.retries,
                exec_form(&argv)
            );
        }
        let _ = writeln!(out, "ENTRYPOINT {}", exec_form(&self.entrypoint()));
        if !self.cmd.is_empty() {
            let _ = writeln!(out, "CMD {}", exec_form(&self.cmd));
        }
        let from = match values {
            Values::BuildArgs => "",
            Values::Literal { from } => from,
        };
        let labels: Vec<String> = self
            .labels(from)
            .into_iter()
            .map(|label| {
                let value = match (values, label.arg) {
                    (Values::BuildArgs, Some(arg)) => format!("${{{arg}}}"),
                    _ => dockerfile_quoted(&label.value),
                };
                format!("{}=\"{value}\"", label.key)
            })
            .collect();
        let _ = write!(out, "LABEL {}", labels.join(" \\\n      "));
        out
    }
}

/// Text for inside a double-quoted Dockerfile value: no quote ends it, no `$` expands.
pub fn dockerfile_quoted(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"").replace('$', "\\$")
}

/// A Dockerfile exec form (a JSON array), spaced as people write it: `["a", "b"]`.
pub fn exec_form(words: &[String]) -> String {
    let words: Vec<String> =
        words.iter().map(|w| serde_json::to_string(w).expect("strings serialize")).collect();
    format!("[{}]", words.join(", "))
}

/// `text` as one single-quoted `printf` format for a Dockerfile RUN line: newlines as `\n`.
pub fn printf_quoted(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('%', "%%").replace('\n', "\\n").replace('\'', "'\\''");
    format!("'{escaped}'")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::config::{Config, DERIVED_LABELS};

    fn release() -> Release {
        Release {
            name: "exonode".into(),
            version: "1.2.3".into(),
            commit: "c0ffee".into(),
            source_date_epoch: 86400,
        }
    }

    fn facts() -> ProjectFacts {
        ProjectFacts {
            source: "https://example.org/src".into(),
            licenses: "MIT".into(),
            description: "A \"node\" for $HOME".into(),
        }
    }

    fn spec(image: &str, base: BaseKind) -> ImageSpec {
        let config = Config::parse(
            &format!("[dist]\npackage = \"exonode\"\n[image]\n{image}"),
            camino::Utf8Path::new("release.toml"),
        )
        .unwrap();
        ImageSpec::new(&config.image, &facts(), &release(), base)
    }

    #[test]
    fn release_toml_values_and_the_release_land_in_the_spec() {
        let s = spec(
            "user = 4242\nvolume = \"/state\"\nport = 9000\ncommand = [\"run\", \"--log-format\", \"json\"]\n\
             healthcheck = [\"healthcheck\", \"--addr\", \"127.0.0.1:9000\"]\n[image.labels]\n\"org.example.team\" = \"edge\"\n",
            BaseKind::Scratch,
        );
        assert_eq!(s.entrypoint(), ["/usr/local/bin/exonode"]);
        assert_eq!(s.cmd, ["run", "--log-format", "json"]);
        assert_eq!(
            s.healthcheck_argv().unwrap(),
            ["/usr/local/bin/exonode", "healthcheck", "--addr", "127.0.0.1:9000"]
        );
        assert_eq!(
            (s.user_and_group().as_str(), s.exposed_port().as_deref()),
            ("4242:4242", Some("9000/tcp"))
        );
        assert_eq!(s.created, "1970-01-02T00:00:00Z");
        assert_eq!(
            s.passwd(),
            "root:x:0:0:root:/root:/bin/sh\nexonode:x:4242:4242:exonode:/state:/sbin/nologin\n"
        );
        assert_eq!(s.group(), "root:x:0:\nexonode:x:4242:\n");
        let labels = s.label_map(SCRATCH);
        assert_eq!(labels["org.opencontainers.image.revision"], "c0ffee");
        assert_eq!(labels["org.opencontainers.image.base.name"], "scratch");
        assert_eq!(labels["org.example.team"], "edge");
        // The derived labels are exactly the ones release.toml may not set.
        let derived: Vec<String> = s
            .labels(SCRATCH)
            .into_iter()
            .filter(|l| l.key.starts_with(LABEL_PREFIX))
            .map(|l| l.key)
            .collect();
        let expected: Vec<String> = DERIVED_LABELS.iter().map(|k| format!("{LABEL_PREFIX}{k}")).collect();
        assert_eq!(derived, expected);
    }

    #[test]
    fn the_base_is_per_arch_for_busybox_and_scratch_otherwise() {
        let arm32v5 = matrix::by_name("arm32v5").unwrap();
        let busybox = spec("[image.base-images]\narm32v5 = \"registry.example/bb:1\"\n", BaseKind::Busybox);
        assert_eq!(busybox.from(arm32v5), "registry.example/bb:1");
        assert_eq!(busybox.from(matrix::by_name("arm32v7").unwrap()), "arm32v7/busybox");
        assert_eq!(spec("", BaseKind::Scratch).from(arm32v5), "scratch");
    }

    #[test]
    fn dockerfile_config_writes_in_what_release_toml_fixes_and_takes_the_rest_as_build_args() {
        let s = spec(
            "command = [\"run\", \"--log-format\", \"json\"]\nhealthcheck = [\"healthcheck\"]\n",
            BaseKind::Scratch,
        );
        let args = s.dockerfile_config(Values::BuildArgs);
        assert!(args.contains("CMD [\"run\", \"--log-format\", \"json\"]\n"), "{args}");
        assert!(args.contains("  CMD [\"/usr/local/bin/exonode\", \"healthcheck\"]\n"), "{args}");
        assert!(args.contains("org.opencontainers.image.title=\"exonode\""), "{args}");
        assert!(args.contains("org.opencontainers.image.version=\"${VERSION}\""), "{args}");
        assert!(!args.contains("1.2.3") && !args.contains("c0ffee") && !args.contains("HOME"), "{args}");
        let literal = s.dockerfile_config(Values::Literal { from: SCRATCH });
        assert!(literal.contains("org.opencontainers.image.version=\"1.2.3\""), "{literal}");
        assert!(literal.contains("org.opencontainers.image.base.name=\"scratch\""), "{literal}");
        assert!(literal.contains(r#"description="A \"node\" for \$HOME""#), "{literal}");
        assert!(literal.ends_with("org.opencontainers.image.base.name=\"scratch\""), "{literal}");
    }

    #[test]
    fn what_release_toml_leaves_out_is_absent_from_every_view() {
        let s = spec("healthcheck = []\n", BaseKind::Scratch);
        assert_eq!((&s.volume, s.port, &s.healthcheck), (&None, None, &None));
        let config = s.dockerfile_config(Values::Literal { from: SCRATCH });
        for absent in ["VOLUME", "EXPOSE", "HEALTHCHECK", "CMD"] {
            assert!(!config.contains(absent), "{absent} in {config}");
        }
        assert!(config.contains("ENTRYPOINT [\"/usr/local/bin/exonode\"]\n"), "{config}");
        let stages = s.image_stages("COPY in /in/", "ARCHIVE=x").unwrap();
        assert!(stages.contains("/out/etc; \\\n") && !stages.contains("chown"), "{stages}");
        assert!(s.passwd().contains(":/nonexistent:/sbin/nologin"), "{}", s.passwd());
        assert!(s.summary().contains("Volume none, Port none") && s.summary().ends_with("Healthcheck none"));
        let with = spec("volume = \"/state\"\n", BaseKind::Scratch)
            .image_stages("COPY in /in/", "ARCHIVE=x")
            .unwrap();
        assert!(with.contains("/out/etc \"/out/state\"; \\\n"), "{with}");
        assert!(with.contains("> /out/etc/group; \\\n    chown 10001:10001 \"/out/state\"\n"), "{with}");
    }

    #[test]
    fn quoting_helpers_keep_text_literal() {
        assert_eq!(exec_form(&["a b".into(), "q\"".into()]), r#"["a b", "q\""]"#);
        assert_eq!(exec_form(&[]), "[]");
        assert_eq!(printf_quoted("a%b\\c\nd'e"), r"'a%%b\\c\nd'\''e'");
    }
}
