//! The image engines of `cargo xtask image`: buildx (a Docker daemon builds a Dockerfile
//! rendered from the image spec) and oci (images assembled directly from the dist archives).
//! Both implement `ImageEngine` and are fed one `ImageRequest`, whose `ImageSpec` is the one
//! description of the image; `publish` drives either the same way.

pub mod buildx;
pub mod oci;
mod push;
pub mod signatures;

use anyhow::{bail, Context, Result};
use camino::Utf8PathBuf;
use serde_json::json;
use xshell::Shell;

use self::oci::spec::{Blob, Index};
use crate::net::credentials;
use crate::net::registry::{Client, Target};
use crate::net::NetSettings;
use crate::project::config::BaseKind;
use crate::project::image_spec::ImageSpec;
use crate::project::matrix::normalize_platform_of;
use crate::project::matrix::Arch;
use crate::project::workspace::Workspace;
use crate::release::checksum;
use crate::release::dist_dir::DistDir;
use crate::release::manifest::{Artifact, Manifest};
use crate::sign::Signing;
use crate::util::progress;
use crate::util::staging::write_atomically;

/// Everything an engine needs, resolved and checked.
pub struct ImageRequest {
    pub repository: String,
    /// Expanded tags, e.g. ["0.1.0", "latest"]; per-arch images are `TAG-ARCH`.
    pub tags: Vec<String>,
    /// In matrix order.
    pub arches: Vec<&'static Arch>,
    /// The base asked for (`--base` or image.base); the spec holds the one the engine uses.
    pub base: BaseKind,
    /// The image, derived once from release.toml, Cargo.toml and the manifest.
    pub spec: ImageSpec,
    pub dist: DistDir,
    /// The dist folder's manifest, already verified against its files.
    pub manifest: Manifest,
    pub push: bool,
    pub signing: Signing,
    /// `--metadata-file`: where to write what was pushed (digests), as JSON.
    pub metadata_file: Option<Utf8PathBuf>,
    pub builder: Option<String>,
    /// Retries and timeouts of every registry request.
    pub network: NetSettings,
    pub dry_run: bool,
}

impl ImageRequest {
    pub fn artifact(&self, arch: &Arch) -> &Artifact {
        self.manifest
            .artifacts
            .iter()
            .find(|a| a.arch == arch.name)
            .expect("checked when the request was made")
    }

    /// `REPO:TAG-ARCH` for every tag.
    pub fn arch_refs(&self, arch: &Arch) -> Vec<String> {
        self.tags.iter().map(|tag| format!("{}:{tag}-{}", self.repository, arch.name)).collect()
    }

    /// `REPO:TAG` for every tag: the manifest lists.
    pub fn list_refs(&self) -> Vec<String> {
        self.tags.iter().map(|tag| format!("{}:{tag}", self.repository)).collect()
    }
}

/// An image engine: decides what the one `ImageRequest` asks of it, as a plan.
pub trait ImageEngine {
    /// The base its images are built on when `asked` is.
    fn built_on(&self, asked: BaseKind) -> BaseKind;
    /// Everything the engine will do for `request`, decided before anything is built.
    fn plan(&self, ws: &Workspace, request: &ImageRequest) -> Result<Box<dyn ImagePlan>>;
}

/// An engine's plan: printed, then (unless --dry-run) executed.
pub trait ImagePlan {
    /// The whole plan, every command in it (`--dry-run`, `--verbose`).
    fn render(&self, request: &ImageRequest) -> String;
    /// The one line an everyday run starts with: what is built, from where, to where.
    fn headline(&self, request: &ImageRequest) -> String;
    /// Builds the images and, with --push, publishes and signs them; prints what it did.
    fn execute(&self, sh: &Shell, ws: &Workspace, request: &ImageRequest) -> Result<()>;
}

/// Plans `request` on `engine` and prints the plan with its signing lines (or, on an
/// everyday run, its head lines); then runs that plan, unless this is a dry run.
pub fn publish(engine: &dyn ImageEngine, sh: &Shell, ws: &Workspace, request: &ImageRequest) -> Result<()> {
    let plan = engine.plan(ws, request)?;
    if request.dry_run || progress::verbose() {
        print!("{}", plan.render(request));
        print!("{}", signatures::plan_lines(request));
    } else {
        print!("{}", headline(plan.as_ref(), request));
    }
    if request.dry_run {
        return Ok(());
    }
    plan.execute(sh, ws, request)
}

/// An everyday run's head lines: the engine's headline, the arches and the signing line.
fn headline(plan: &dyn ImagePlan, request: &ImageRequest) -> String {
    let names: Vec<&str> = request.arches.iter().map(|arch| arch.name).collect();
    format!(
        "{}\n{} arch(es): {} (the whole plan: --dry-run; every command's output: --verbose)\n  {}\n",
        plan.headline(request),
        names.len(),
        names.join(" "),
        signatures::plan_line(&request.signing, request.push).trim_end_matches(':')
    )
}

/// What a push left in the registry: the index the first tag names, and its manifest for
/// each requested arch (in request order).
pub struct Published {
    pub index_digest: String,
    pub platform_digests: Vec<String>,
}

/// What an engine's push (engines/push.rs) left in the registry: every manifest and the index
/// by digest, no tag moved yet. `tags` (TAG-ARCH for each platform manifest, then the list
/// tags) move once the index is signed, so an interrupted push leaves every tag where it was
/// and no tag names an unsigned image.
pub struct Pushed<'a> {
    pub index: &'a Blob,
    pub tags: Vec<(String, &'a Blob)>,
}

/// After a push, in both engines: reads back the index by digest, signs it as the request
/// says, moves the tags, and writes the metadata file when asked.
pub fn after_push(
    sh: &Shell,
    ws: &Workspace,
    request: &ImageRequest,
    engine: &str,
    pushed: Pushed,
) -> Result<()> {
    let target = Target::parse(&request.repository);
    let credentials = credentials::lookup(&target.host)?;
    let mut client = Client::connect(target, credentials, &request.network)?;
    let reference = format!("{}@{}", request.repository, pushed.index.digest);
    let index = client
        .get_manifest(&pushed.index.digest)?
        .with_context(|| format!("{reference} is missing right after the push"))?;
    let index_digest = format!("sha256:{}", checksum::sha256_hex(&index));
    if pushed.index.digest != index_digest {
        bail!("{reference} holds {index_digest}, not the index {} just pushed", pushed.index.digest);
    }
    let published =
        Published { platform_digests: platform_digests(&index, &reference, &request.arches)?, index_digest };
    signatures::sign_published(sh, ws, request, engine, &mut client, &published)?;
    move_tags(&mut client, &request.repository, &pushed.tags)?;
    if let Some(path) = &request.metadata_file {
        write_atomically(path, metadata(request, &published).as_bytes())?;
        println!("wrote {path}");
    }
    Ok(())
}

/// Points each tag at its manifest, in order, and reads each back: a tag that does not hold
/// what was just put there (another push raced this one) stops the run.
fn move_tags(client: &mut Client, repository: &str, tags: &[(String, &Blob)]) -> Result<()> {
    for (tag, manifest) in tags {
        client.put_manifest(tag, *manifest).with_context(|| format!("moving the tag {repository}:{tag}"))?;
        let stored = client
            .get_manifest(tag)?
            .with_context(|| format!("{repository}:{tag} is missing right after it was pushed"))?;
        if Blob::new(manifest.media_type, stored).digest != manifest.digest {
            bail!("{repository}:{tag} does not hold {} right after it was pushed", manifest.digest);
        }
    }
    let names: Vec<&str> = tags.iter().map(|(tag, _)| tag.as_str()).collect();
    eprintln!("push: tags moved: {}", names.join(", "));
    Ok(())
}

/// `--metadata-file`'s JSON: what CI steps after the push need (digests to attest or deploy).
fn metadata(request: &ImageRequest, published: &Published) -> String {
    let platforms: Vec<serde_json::Value> = request
        .arches
        .iter()
        .zip(&published.platform_digests)
        .map(|(arch, digest)| json!({ "arch": arch.name, "platform": arch.platform.to_string(), "digest": digest }))
        .collect();
    let value = json!({
        "repository": request.repository,
        "tags": request.tags,
        "digest": published.index_digest,
        "platforms": platforms,
        "signed": request.signing.name(),
    });
    format!("{}\n", serde_json::to_string_pretty(&value).expect("JSON"))
}

/// The platform manifests an index lists, by arch: fails unless every arch has one.
pub fn platform_digests(index: &[u8], reference: &str, arches: &[&'static Arch]) -> Result<Vec<String>> {
    let index: Index =
        serde_json::from_slice(index).with_context(|| format!("{reference} is not an image index"))?;
    arches
        .iter()
        .map(|arch| {
            index
                .manifests
                .iter()
                .find(|m| {
                    m.platform.as_ref().is_some_and(|p| {
                        normalize_platform_of(&p.os, &p.architecture, p.variant.as_deref())
                            == arch.platform.normalized()
                    })
                })
                .map(|m| m.digest.clone())
                .with_context(|| format!("{reference} lists no {} manifest to sign", arch.platform))
        })
        .collect()
}

/// The three views of one spec, compared: the buildx engine's Dockerfile with its build args,
/// dist's Dockerfile.release, and the oci engine's image config must configure the same image.
#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::{json, Value};

    use super::*;
    use crate::fixtures;
    use crate::project::config::Config;
    use crate::project::image_spec::printf_quoted;
    use crate::project::matrix::by_name;
    use crate::release::files;

    /// Not the fixtures' defaults: every `[image]` key the image config shows is changed.
    const IMAGE: &str = "[image]\nuser = 4242\nvolume = \"/state\"\nport = 9090\n\
        command = [\"run\", \"--log-format\", \"json\"]\n\
        healthcheck = [\"healthcheck\", \"--addr\", \"127.0.0.1:9090\"]\n\
        [image.labels]\n\"org.example.flavour\" = \"json \\\"logs\\\" $x\"\n";

    fn config() -> Config {
        let text = format!(
            "[dist]\npackage = \"exonode\"\ndownload-url = \"https://example.org/{{version}}\"\n{IMAGE}"
        );
        Config::parse(&text, camino::Utf8Path::new("release.toml")).unwrap()
    }

    /// Words of a LABEL line: `key="value"` pairs split at unquoted spaces.
    fn label_pairs(text: &str) -> Vec<String> {
        let (mut words, mut word, mut quoted, mut escaped) = (Vec::new(), String::new(), false, false);
        for c in text.chars() {
            match c {
                _ if escaped => {
                    word.push('\\');
                    word.push(c);
                    escaped = false;
                }
                '\\' => escaped = true,
                '"' => {
                    quoted = !quoted;
                    word.push(c);
                }
                ' ' if !quoted => words.extend((!word.is_empty()).then(|| std::mem::take(&mut word))),
                _ => word.push(c),
            }
        }
        words.extend((!word.is_empty()).then_some(word));
        words
    }

    /// A double-quoted Dockerfile value, its build args substituted.
    fn unquote(value: &str, args: &BTreeMap<&str, String>) -> String {
        let inner = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
        let mut out = String::new();
        let mut rest = inner;
        while let Some(c) = rest.chars().next() {
            if let Some(escaped) = rest.strip_prefix('\\') {
                let next = escaped.chars().next().unwrap();
                out.push(next);
                rest = &escaped[next.len_utf8()..];
            } else if let Some(var) = rest.strip_prefix("${") {
                let (name, after) = var.split_once('}').unwrap();
                out.push_str(args.get(name).unwrap_or_else(|| panic!("no build arg {name}")));
                rest = after;
            } else {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        out
    }

    fn seconds(flag: &str) -> u64 {
        flag.trim_end_matches('s').parse::<u64>().unwrap() * 1_000_000_000
    }

    /// What Docker records in the image config for the final stage of `dockerfile`, given the
    /// build args: just enough of a Dockerfile interpreter for the instructions the views use.
    fn interpret(dockerfile: &str, args: &BTreeMap<&str, String>) -> Value {
        let joined = dockerfile.replace("\\\n", "");
        let last_stage = joined.rsplit_once("\nFROM ").unwrap().1;
        // ExposedPorts, Volumes, Cmd and Healthcheck appear only when an instruction sets them.
        let mut config = json!({"Env": [], "Labels": {}});
        for line in last_stage.lines().skip(1).filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
            let (instruction, rest) = line.split_once(' ').unwrap();
            let rest = rest.trim();
            let exec = |text: &str| serde_json::from_str::<Value>(text).unwrap();
            match instruction {
                "ARG" | "COPY" => {}
                "USER" => config["User"] = json!(unquote(rest, args)),
                "WORKDIR" => config["WorkingDir"] = json!(rest),
                "STOPSIGNAL" => config["StopSignal"] = json!(rest),
                "ENTRYPOINT" => config["Entrypoint"] = exec(rest),
                "CMD" => config["Cmd"] = exec(rest),
                "EXPOSE" => {
                    let port = if rest.contains('/') { rest.to_string() } else { format!("{rest}/tcp") };
                    config["ExposedPorts"][port] = json!({});
                }
                "VOLUME" => {
                    for volume in exec(rest).as_array().unwrap() {
                        config["Volumes"][volume.as_str().unwrap()] = json!({});
                    }
                }
                "ENV" => {
                    let (name, value) = rest.split_once('=').unwrap();
                    config["Env"]
                        .as_array_mut()
                        .unwrap()
                        .push(json!(format!("{name}={}", unquote(value, args))));
                }
                "LABEL" => {
                    for pair in label_pairs(rest) {
                        let (key, value) = pair.split_once('=').unwrap();
                        config["Labels"][key] = json!(unquote(value, args));
                    }
                }
                "HEALTHCHECK" => {
                    let (flags, test) = rest.split_once("CMD ").unwrap();
                    let flag = |name: &str| {
                        flags.split_whitespace().find_map(|f| f.strip_prefix(&format!("--{name}="))).unwrap()
                    };
                    let mut command = vec![json!("CMD")];
                    command.extend(exec(test).as_array().unwrap().iter().cloned());
                    config["Healthcheck"] = json!({
                        "Test": command,
                        "Interval": seconds(flag("interval")),
                        "Timeout": seconds(flag("timeout")),
                        "StartPeriod": seconds(flag("start-period")),
                        "Retries": flag("retries").parse::<u32>().unwrap(),
                    });
                }
                other => panic!("the test's interpreter does not know {other}: {line}"),
            }
        }
        config
    }

    #[test]
    fn every_view_configures_the_same_image_with_a_non_default_command_and_healthcheck() {
        let (oci, files) = the_views_agree(&config());
        assert_eq!(oci["Cmd"], json!(["run", "--log-format", "json"]));
        assert_eq!(
            oci["Healthcheck"]["Test"],
            json!(["CMD", "/usr/local/bin/exonode", "healthcheck", "--addr", "127.0.0.1:9090"])
        );
        assert_eq!(oci["User"], "4242:4242");
        assert_eq!(oci["ExposedPorts"], json!({"9090/tcp": {}}));
        assert_eq!(oci["Labels"]["org.example.flavour"], "json \"logs\" $x");
        for file in files {
            assert!(file.contains("chown 4242:4242 \"/out/state\""));
        }
    }

    /// A binary that is no daemon: release.toml sets none of the `[image]` keys a daemon needs.
    #[test]
    fn every_view_leaves_out_the_volume_port_command_and_healthcheck_release_toml_leaves_out() {
        let text = "[dist]\npackage = \"exonode\"\ndownload-url = \"https://example.org/{version}\"\n";
        let (oci, files) =
            the_views_agree(&Config::parse(text, camino::Utf8Path::new("release.toml")).unwrap());
        for absent in ["ExposedPorts", "Volumes", "Cmd", "Healthcheck"] {
            assert_eq!(oci.get(absent), None, "{absent} in {oci}");
        }
        for file in files {
            assert!(!file.contains("chown") && !file.contains("VOLUME"), "{file}");
        }
    }

    /// The image config the oci engine writes for `config` (its `config` object), once buildx's
    /// Dockerfile with its build args and Dockerfile.release are shown to give the same, and
    /// those two Dockerfiles.
    fn the_views_agree(config: &Config) -> (Value, [String; 2]) {
        let release = fixtures::release();
        let arch = by_name("arm32v7").unwrap();
        let manifest = Manifest::new(&release, vec![Artifact::planned(&release, arch, &"0".repeat(64))]);
        let spec = ImageSpec::new(&config.image, &fixtures::facts(), &release, BaseKind::Scratch);

        let oci = oci::build::image(&spec, arch, vec![oci::build::user_layer(&spec).unwrap()]);
        let oci: Value = serde_json::from_slice(&oci.config.bytes).unwrap();
        let oci = oci["config"].clone();

        let buildx_file = buildx::dockerfile(&spec).unwrap();
        let args: BTreeMap<&str, String> =
            buildx::build_args(&spec, arch, &manifest.artifacts[0]).into_iter().collect();
        assert_eq!(interpret(&buildx_file, &args), oci, "buildx's Dockerfile and build args");

        let release_file = files::dockerfile_release(&manifest, config, &fixtures::facts()).unwrap();
        assert_eq!(interpret(&release_file, &BTreeMap::new()), oci, "Dockerfile.release");

        // The files the Dockerfiles write are the oci engine's layer's.
        for file in [&buildx_file, &release_file] {
            assert!(file.contains(&format!("printf {} > /out/etc/passwd", printf_quoted(&spec.passwd()))));
            assert!(file.contains(&format!("printf {} > /out/etc/group", printf_quoted(&spec.group()))));
        }
        (oci, [buildx_file, release_file])
    }

    #[test]
    fn index_entries_are_matched_to_arches_by_platform() {
        let arches: Vec<&'static Arch> =
            ["amd64", "arm32v6"].iter().map(|n| crate::project::matrix::by_name(n).unwrap()).collect();
        let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [
            {"mediaType": "m", "digest": "sha256:b", "size": 1, "platform": {"architecture": "arm", "os": "linux", "variant": "v6"}},
            {"mediaType": "m", "digest": "sha256:a", "size": 1, "platform": {"architecture": "amd64", "os": "linux"}},
        ]});
        let bytes = serde_json::to_vec(&index).unwrap();
        assert_eq!(platform_digests(&bytes, "r:t", &arches).unwrap(), ["sha256:a", "sha256:b"]);
        let i386 = [crate::project::matrix::by_name("i386").unwrap()];
        let err = platform_digests(&bytes, "r:t", &i386).unwrap_err();
        assert!(format!("{err:#}").contains("r:t lists no linux/386 manifest"), "{err:#}");
    }
}
