# The exonode builder: the pinned Rust toolchains, zig and qemu-user that `cargo xtask dist`
# needs, so every arch builds where there is Docker and no Rust. Generated from
# rust-toolchain.toml and release.toml by the xtask (template: xtask/templates/Dockerfile.builder.in);
# do not edit: `cargo test -p xtask` rewrites it when a pin changes. Its tag is derived from
# the pins (rust1.95.0-nightly-2026-05-20-zig0.17.1-zigbuild0.24.0), so changing a pin changes the tag.
#
#   cargo xtask builder                 # this host's platform, loaded as ghcr.io/exotool/exonode-builder:rust1.95.0-nightly-2026-05-20-zig0.17.1-zigbuild0.24.0
#   cargo xtask builder --push          # linux/amd64 + linux/arm64 and a manifest list
#   docker buildx build -f docker/Dockerfile.builder -t ghcr.io/exotool/exonode-builder:rust1.95.0-nightly-2026-05-20-zig0.17.1-zigbuild0.24.0 --load docker/
#
# It runs as the non-root user `builder` (uid/gid 1000; change them with --build-arg USER_UID
# and USER_GID). The toolchains and cargo's home are writable by any uid, so `docker run -u
# "$(id -u):$(id -g)"` with the checkout bind-mounted writes files the caller owns.

# Any Debian bookworm image (the official one in production).
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG USER_UID=1000
ARG USER_GID=1000
ARG RUST_STABLE=1.95.0
ARG RUST_NIGHTLY=nightly-2026-05-20
ARG ZIG_VERSION=0.17.1
ARG CARGO_ZIGBUILD_VERSION=0.24.0
ARG RUSTUP_VERSION=1.29.0
ENV RUSTUP_HOME=/usr/local/rustup \
    CARGO_HOME=/usr/local/cargo \
    EXOTOOL_TOOLS_DIR=/opt/exotool-tools \
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# gcc for crates that compile C (the xtask's TLS), git for the commit and date of a build,
# qemu-user for the run checks of foreign arches, python3-pip for zig from PyPI. Not pinned to
# versions: the base's point release decides them, and its security updates replace them.
# hadolint ignore=DL3008
RUN set -eux; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates curl gcc git libc6-dev python3 python3-pip qemu-user-static; \
    rm -rf /var/lib/apt/lists/*; \
    git config --system safe.directory '*'; \
    groupadd --gid "${USER_GID}" builder; \
    useradd --uid "${USER_UID}" --gid "${USER_GID}" --create-home --shell /bin/bash builder

# rustup-init at a pinned version, checked against its published SHA-256 before it runs.
# Behind a TLS-inspecting proxy, pass the CA bundle to trust as the secret `ca-bundle`
# (`--secret id=ca-bundle,src=/etc/ssl/certs/ca-certificates.crt`): it is used by the steps
# that download, and is not kept in the image.
RUN --mount=type=secret,id=ca-bundle,target=/etc/ssl/certs/ca-certificates.crt \
    set -eux; \
    case "$(dpkg --print-architecture)" in \
      amd64) triple=x86_64-unknown-linux-gnu; sha256=4acc9acc76d5079515b46346a485974457b5a79893cfb01112423c89aeb5aa10 ;; \
      arm64) triple=aarch64-unknown-linux-gnu; sha256=9732d6c5e2a098d3521fca8145d826ae0aaa067ef2385ead08e6feac88fa5792 ;; \
      *) echo "no pinned rustup-init for $(dpkg --print-architecture)" >&2; exit 1 ;; \
    esac; \
    curl -fsSL --retry 3 -o /tmp/rustup-init \
      "https://static.rust-lang.org/rustup/archive/${RUSTUP_VERSION}/${triple}/rustup-init"; \
    echo "${sha256}  /tmp/rustup-init" | sha256sum -c -; \
    chmod 755 /tmp/rustup-init; \
    /tmp/rustup-init -y --no-modify-path --profile minimal --default-toolchain "${RUST_STABLE}" \
      --component rustfmt --component clippy; \
    rm /tmp/rustup-init; \
    for target in x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf arm-unknown-linux-musleabihf armv5te-unknown-linux-musleabi i686-unknown-linux-musl riscv64gc-unknown-linux-musl powerpc64le-unknown-linux-musl s390x-unknown-linux-musl mips64el-unknown-linux-muslabi64; do \
      rustup target add "${target}" \
        || echo "rustup has no rust-std for ${target} here: dist builds it with -Zbuild-std"; \
    done; \
    rustup toolchain install "${RUST_NIGHTLY}" --profile minimal --component rust-src; \
    # -Zbuild-std compiles std, whose dependencies come from crates.io: fetched now, so builds
    # work offline.
    cargo "+${RUST_NIGHTLY}" fetch --manifest-path \
      "$(rustc "+${RUST_NIGHTLY}" --print sysroot)/lib/rustlib/src/rust/library/Cargo.toml"; \
    chmod -R a+rwX "${RUSTUP_HOME}" "${CARGO_HOME}"

# zig and cargo-zigbuild where the xtask looks for them (EXOTOOL_TOOLS_DIR), as it installs them.
RUN --mount=type=secret,id=ca-bundle,target=/etc/ssl/certs/ca-certificates.crt \
    set -eux; \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt python3 -m pip install --quiet --no-cache-dir --disable-pip-version-check --no-warn-script-location \
      --only-binary :all: --target "${EXOTOOL_TOOLS_DIR}/zig-${ZIG_VERSION}-cargo-zigbuild-${CARGO_ZIGBUILD_VERSION}" \
      "ziglang==${ZIG_VERSION}" "cargo-zigbuild==${CARGO_ZIGBUILD_VERSION}"; \
    chmod -R a+rwX "${EXOTOOL_TOOLS_DIR}"

LABEL org.opencontainers.image.title="exonode-builder" \
      org.opencontainers.image.description="Pinned Rust 1.95.0 + nightly-2026-05-20 (rust-src), zig 0.17.1, cargo-zigbuild 0.24.0 and qemu-user for cargo xtask dist" \
      org.opencontainers.image.source="https://github.com/exotool/exotool" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
# Recorded as built_with.image in dist-manifest.json and the SBOM of what is built here.
ENV EXOTOOL_BUILDER_IMAGE=ghcr.io/exotool/exonode-builder:rust1.95.0-nightly-2026-05-20-zig0.17.1-zigbuild0.24.0
USER ${USER_UID}:${USER_GID}
WORKDIR /src
CMD ["bash"]
