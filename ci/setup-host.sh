#!/usr/bin/env bash
# Brings up, idempotently, what the image tests need on a Debian 12 host (as root) where no
# container image can be pulled: a Docker engine, the buildx plugin, qemu-user binfmt handlers,
# a registry on 127.0.0.1:5000, and busybox base images named like Docker Hub's, made from
# Debian's busybox-static packages. Parts that already work are left exactly as they are.
set -euo pipefail

REGISTRY_ADDR=127.0.0.1:5000
STATE_DIR=/var/lib/exotool-host
LOG_DIR=/var/log/exotool-host
# Base image name, Debian architecture, Docker platform (normalized).
# Generated from xtask/src/project/matrix.rs by its tests: change the matrix, not this table.
BASE_IMAGES=(
  "busybox amd64 linux/amd64"
  "arm64v8/busybox arm64 linux/arm64"
  "arm32v7/busybox armhf linux/arm/v7"
  "arm32v6/busybox armel linux/arm/v6"
  "arm32v5/busybox armel linux/arm/v5"
  "i386/busybox i386 linux/386"
  "riscv64/busybox riscv64 linux/riscv64"
  "ppc64le/busybox ppc64el linux/ppc64le"
  "s390x/busybox s390x linux/s390x"
  "mips64le/busybox mips64el linux/mips64le"
)
# The qemu-user binfmt handlers foreign-arch containers need (generated from matrix.rs).
QEMU_BINFMT=(qemu-aarch64 qemu-arm qemu-riscv64 qemu-ppc64le qemu-s390x qemu-mips64el)
# Debian's archive keys: every package this script fetches is checked against them.
DEBIAN_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg


say() { printf 'setup-host: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (it installs packages and starts dockerd)"
command -v apt-get >/dev/null || die "needs a Debian host with apt-get"
mkdir -p "$STATE_DIR" "$LOG_DIR"
# Every temporary folder lives under one, removed on every exit (a failure or a signal too).
WORK_ROOT=$(mktemp -d)
trap 'rm -rf "$WORK_ROOT"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
new_work() { mktemp -d -p "$WORK_ROOT"; }

# The services this script starts record their pid here; only those pids are ever stopped.
DOCKERD_PID="$STATE_DIR/dockerd.pid"
REGISTRY_PID="$STATE_DIR/registry.pid"
# Stops the process a pid file names, if it still runs the program named (a pid file outliving
# its process may name another one by now), and removes the file.
# A process that exited but was not reaped yet (a zombie) is not alive.
alive() { [ -e "/proc/$1" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }
stop_recorded() {
  local file=$1 program=$2 pid
  [ -r "$file" ] || return 0
  pid=$(cat "$file")
  if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$program"; then
    say "stopping $program (pid $pid, recorded in $file)"
    kill "$pid" 2>/dev/null || true
    kill -CONT "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do alive "$pid" || break; sleep 1; done
    alive "$pid" && die "$program (pid $pid) did not stop"
  fi
  rm -f "$file"
}

APT_UPDATED=""
apt_update_once() {
  if [ -z "$APT_UPDATED" ]; then
    say "apt-get update"
    apt-get update -qq
    APT_UPDATED=1
  fi
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

apt_install() {
  local missing=()
  for pkg in "$@"; do installed "$pkg" || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  apt_update_once
  say "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

engine_up() { timeout 10 docker info >/dev/null 2>&1; }

# BuildKit before Docker 23 rejects `RUN --network=none`, which docker/Dockerfile.source uses
# to prove its compile step downloads nothing; bookworm's dockerd is 20.10.
DOCKERD=/usr/local/sbin/dockerd
engine_modern() {
  local version
  version=$(timeout 10 docker version --format '{{.Server.Version}}' 2>/dev/null) || return 1
  [ "${version%%.*}" -ge 23 ]
}

stop_engine() {
  say "stopping the running docker engine (too old for RUN --network)"
  if command -v systemctl >/dev/null && systemctl is-active --quiet docker 2>/dev/null; then
    systemctl stop docker docker.socket || true
  fi
  # Not started by systemd: by us (its pid recorded), or by someone else, whose dockerd wrote
  # its own pid file.
  stop_recorded "$DOCKERD_PID" dockerd
  stop_recorded /var/run/docker.pid dockerd
  for _ in $(seq 1 30); do engine_up || return 0; sleep 1; done
  die "the old docker engine did not stop; stop it (systemctl stop docker, or its dockerd) and run again"
}

setup_engine() {
  if engine_modern; then say "docker engine: $(docker version --format '{{.Server.Version}}'), running"; return; fi
  # bookworm's docker.io brings containerd, runc, tini and iptables; its dockerd is replaced by
  # trixie's (a Go binary needing only libc6 >= 2.34, libsystemd0 and bookworm's containerd).
  apt_install docker.io
  if [ ! -x "$DOCKERD" ]; then
    local work
    work=$(new_work)
    (cd "$work" && private_apt_download trixie amd64 docker.io)
    dpkg -x "$work"/docker.io_*.deb "$work/root"
    install -D -m 755 "$work/root/usr/sbin/dockerd" "$DOCKERD"
    install -D -m 755 "$work/root/usr/sbin/docker-proxy" /usr/local/sbin/docker-proxy
  fi
  if engine_up; then stop_engine; fi
  # A dockerd stopped with the machine leaves its pid file behind, and dockerd refuses to start
  # while any process holds that pid.
  if ! pgrep -x dockerd >/dev/null; then rm -f /var/run/docker.pid; fi
  say "starting dockerd ($($DOCKERD --version))"
  setsid "$DOCKERD" --userland-proxy-path /usr/local/sbin/docker-proxy >"$LOG_DIR/dockerd.log" 2>&1 < /dev/null &
  echo $! >"$DOCKERD_PID"
  for _ in $(seq 1 60); do engine_up && break; sleep 1; done
  engine_up || die "dockerd did not come up; see $LOG_DIR/dockerd.log"
  engine_modern || die "dockerd $(docker version --format '{{.Server.Version}}') is running, but 23 or newer is needed"
  say "docker engine: $(docker version --format '{{.Server.Version}}')"
}

# Downloads Debian packages (for any architecture, from any suite) into the current directory
# through a private apt configuration, so the system's sources, architectures and lists stay
# untouched. Usage: private_apt_download SUITE ARCHES PACKAGE...
private_apt_download() {
  local suite=$1 arches=$2; shift 2
  local mirror state="$STATE_DIR/apt-$suite"
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  mkdir -p "$state/lists/partial" "$state/cache/archives/partial"
  [ -r "$DEBIAN_KEYRING" ] || apt_install debian-archive-keyring
  echo "deb [signed-by=$DEBIAN_KEYRING arch=$arches] $mirror $suite main" >"$state/sources.list"
  local opts=(-o "Dir::Etc::SourceList=$state/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$state/lists" -o "Dir::Cache=$state/cache" -o APT::Sandbox::User=root
    -o "APT::Architectures=$arches")
  say "fetching $* from Debian $suite ($mirror)"
  local attempt
  for attempt in 1 2 3; do
    apt-get "${opts[@]}" -qq update && break
    [ "$attempt" -eq 3 ] && die "apt-get update for $suite failed three times"
    sleep 5
  done
  apt-get "${opts[@]}" -qq download "$@" >/dev/null
}

setup_buildx() {
  if docker buildx version >/dev/null 2>&1; then say "buildx: $(docker buildx version)"; return; fi
  # bookworm has no docker-buildx; trixie's is a static binary (needs only libc6 >= 2.34).
  local work
  work=$(new_work)
  (cd "$work" && private_apt_download trixie amd64 docker-buildx)
  dpkg -x "$work"/docker-buildx_*.deb "$work/root"
  install -D -m 755 "$work/root/usr/libexec/docker/cli-plugins/docker-buildx" \
    /usr/libexec/docker/cli-plugins/docker-buildx
  docker buildx version >/dev/null || die "buildx plugin installed but does not run"
  say "buildx: $(docker buildx version)"
}

# cosign, to check that what the xtask signs natively is what cosign accepts. Debian 12 has
# none; trixie's package is one static Go binary.
setup_cosign() {
  if command -v cosign >/dev/null 2>&1; then say "cosign: $(cosign version 2>/dev/null | awk '/GitVersion/ {print $2}')"; return; fi
  local work
  work=$(new_work)
  (cd "$work" && private_apt_download trixie amd64 cosign)
  dpkg -x "$work"/cosign_*.deb "$work/root"
  install -D -m 755 "$work/root/usr/bin/cosign" /usr/local/bin/cosign
  cosign version >/dev/null 2>&1 || die "cosign installed but does not run"
  say "cosign: $(cosign version 2>/dev/null | awk '/GitVersion/ {print $2}')"
}

# gitlab-ci-local, which runs .gitlab-ci.yml's jobs on this host for the GitLab test and checks
# the file against GitLab's schema for `cargo xtask lint`. Pinned: 4.73.0 is the newest that
# runs on Debian 12's Node 20 (4.74 needs Node 22). It needs rsync for its job folders.
GITLAB_CI_LOCAL_VERSION=4.73.0
setup_gitlab_ci_local() {
  apt_install rsync git
  # A Node that came with its own npm (NodeSource's) is kept: Debian's npm would conflict.
  command -v npm >/dev/null 2>&1 || apt_install nodejs npm
  if [ "$(gitlab-ci-local --version 2>/dev/null)" != "$GITLAB_CI_LOCAL_VERSION" ]; then
    say "installing gitlab-ci-local $GITLAB_CI_LOCAL_VERSION from npm"
    npm install --global --no-fund --no-audit --loglevel=error "gitlab-ci-local@$GITLAB_CI_LOCAL_VERSION" >/dev/null
  fi
  say "gitlab-ci-local: $(gitlab-ci-local --version)"
}

setup_binfmt() {
  apt_install qemu-user-static
  if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  fi
  for emu in "${QEMU_BINFMT[@]}"; do
    if [ -e "/proc/sys/fs/binfmt_misc/$emu" ]; then
      say "binfmt: $emu already registered"
    else
      cat "/usr/lib/binfmt.d/$emu.conf" >/proc/sys/fs/binfmt_misc/register
      say "binfmt: registered $emu"
    fi
  done
}

registry_up() { curl -fsS --max-time 5 -o /dev/null "http://$REGISTRY_ADDR/v2/" 2>/dev/null; }

setup_registry() {
  if registry_up; then say "registry: already answering on $REGISTRY_ADDR"; return; fi
  apt_install docker-registry
  # The package may have started its own service on :5000 bound to all addresses; ours is
  # loopback only.
  if command -v systemctl >/dev/null && systemctl is-active --quiet docker-registry 2>/dev/null; then
    systemctl stop docker-registry
  fi
  # Ours from an earlier run that no longer answers.
  stop_recorded "$REGISTRY_PID" docker-registry
  mkdir -p "$STATE_DIR/registry"
  cat >"$STATE_DIR/registry.yml" <<YAML
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $STATE_DIR/registry}
  delete: {enabled: true}
http: {addr: $REGISTRY_ADDR}
YAML
  say "starting registry on $REGISTRY_ADDR"
  setsid docker-registry serve "$STATE_DIR/registry.yml" >"$LOG_DIR/registry.log" 2>&1 < /dev/null &
  echo $! >"$REGISTRY_PID"
  for _ in $(seq 1 30); do registry_up && break; sleep 1; done
  registry_up || die "registry did not come up; see $LOG_DIR/registry.log"
}

# Prints "os/arch[/variant]" of a local image, or nothing if it does not exist.
image_platform() {
  docker image inspect --format '{{.Os}}/{{.Architecture}}{{if .Variant}}/{{.Variant}}{{end}}' "$1" 2>/dev/null || true
}

normalize_platform() {
  case "$1" in
    linux/arm64/v8) echo linux/arm64 ;;
    *) echo "$1" ;;
  esac
}

# The builder image's base, named like Docker Hub's (docker/Dockerfile.builder's BASE_IMAGE
# default): a Debian bookworm rootfs made by debootstrap from Debian's packages.
DEBIAN_BASE=debian:bookworm-slim
setup_debian_base() {
  if [ "$(image_platform "$DEBIAN_BASE")" = linux/amd64 ]; then
    say "base image $DEBIAN_BASE (linux/amd64): present"
    return
  fi
  apt_install debootstrap
  local mirror work
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  work=$(new_work)
  say "making base image $DEBIAN_BASE with debootstrap (minbase) from $mirror"
  debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$LOG_DIR/debootstrap.log" 2>&1 \
    || die "debootstrap failed; see $LOG_DIR/debootstrap.log"
  # As the slim image: no apt lists, no downloaded packages, no device nodes (the engine
  # provides /dev), and the mirror the image will use.
  rm -rf "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/dev/"*
  echo "deb $mirror bookworm main" >"$work/rootfs/etc/apt/sources.list"
  tar -C "$work/rootfs" -c . | docker import --change 'CMD ["bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$DEBIAN_BASE" >/dev/null
  [ "$(image_platform "$DEBIAN_BASE")" = linux/amd64 ] || die "base image $DEBIAN_BASE was not made"
}

# The .deb tests' systemd host: the Debian base plus systemd (as PID 1 in a privileged
# container) and curl, from Debian's packages.
SYSTEMD_IMAGE=exotool-test/bookworm-systemd
setup_systemd_image() {
  if [ "$(image_platform "$SYSTEMD_IMAGE")" = linux/amd64 ]; then
    say "image $SYSTEMD_IMAGE: present"
    return
  fi
  say "making image $SYSTEMD_IMAGE (systemd from Debian's packages on $DEBIAN_BASE)"
  printf 'FROM %s\nRUN apt-get update -qq && apt-get install -y -qq --no-install-recommends systemd systemd-sysv curl >/dev/null && rm -rf /var/lib/apt/lists/*\n' \
    "$DEBIAN_BASE" | docker build -q -t "$SYSTEMD_IMAGE" - >"$LOG_DIR/systemd-image.log" 2>&1 \
    || die "cannot build $SYSTEMD_IMAGE; see $LOG_DIR/systemd-image.log"
}

# The Debian suite whose busybox-static serves a Debian architecture.
busybox_suite() {
  case "$1" in
    riscv64) echo trixie ;;
    *) echo bookworm ;;
  esac
}

setup_base_images() {
  local pending=()
  for row in "${BASE_IMAGES[@]}"; do
    read -r image debarch platform <<<"$row"
    if [ "$(normalize_platform "$(image_platform "$image")")" = "$platform" ]; then
      say "base image $image ($platform): present"
    else
      pending+=("$row")
    fi
  done
  [ ${#pending[@]} -eq 0 ] && return 0

  local work suite debarch
  work=$(new_work)
  # busybox-static of each pending arch (and the host's, for its applet list) from the suite
  # that has it: bookworm, but riscv64 arrived in trixie.
  local -A wanted=([bookworm]=amd64)
  for row in "${pending[@]}"; do
    read -r _ debarch _ <<<"$row"
    suite=$(busybox_suite "$debarch")
    [[ " ${wanted[$suite]:-} " == *" $debarch "* ]] || wanted[$suite]="${wanted[$suite]:+${wanted[$suite]} }$debarch"
  done
  for suite in "${!wanted[@]}"; do
    local packages=()
    for debarch in ${wanted[$suite]}; do packages+=("busybox-static:$debarch"); done
    (cd "$work" && private_apt_download "$suite" "$(echo "${wanted[$suite]}" | tr ' ' ,)" "${packages[@]}")
  done
  dpkg -x "$work"/busybox-static_*_amd64.deb "$work/host-busybox"
  printf '#!/bin/sh\nexec %s --list\n' "$work/host-busybox/bin/busybox" >"$work/applets"
  chmod +x "$work/applets"
  for row in "${pending[@]}"; do
    read -r image debarch platform <<<"$row"
    say "making base image $image ($platform) from busybox-static:$debarch"
    local dir="$work/$debarch-${platform//\//-}"
    mkdir -p "$dir/rootfs/bin" "$dir/rootfs/etc" "$dir/rootfs/tmp"
    dpkg -x "$work"/busybox-static_*_"$debarch".deb "$dir/extract"
    # bookworm ships it in /bin, trixie (merged /usr) in /usr/bin.
    local binary="$dir/extract/bin/busybox"
    [ -e "$binary" ] || binary="$dir/extract/usr/bin/busybox"
    cp "$binary" "$dir/rootfs/bin/busybox"
    # Every applet, as on Docker Hub's busybox images; the list is read from the host's copy.
    for applet in $("$work/applets"); do
      [ "$applet" = busybox ] || ln -sf busybox "$dir/rootfs/bin/$applet"
    done
    chmod 1777 "$dir/rootfs/tmp"
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$dir/rootfs/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$dir/rootfs/etc/group"
    printf 'FROM scratch\nCOPY rootfs/ /\nENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nCMD ["sh"]\n' >"$dir/Dockerfile"
    docker buildx build --quiet --platform "$platform" -t "$image" --load "$dir" >/dev/null
    [ "$(normalize_platform "$(image_platform "$image")")" = "$platform" ] \
      || die "base image $image has platform $(image_platform "$image"), expected $platform"
  done
}

main() {
  apt_install curl ca-certificates
  # The oci engine's tests read its layouts with skopeo and umoci, and protect a second
  # registry with an htpasswd file (bcrypt, from apache2-utils).
  apt_install skopeo umoci apache2-utils
  # The run-check tests compile a static C program (`cc -static`) that is not a daemon.
  apt_install gcc libc6-dev
  # The .deb quality gates: lintian, and systemd-analyze (verify, security) from systemd.
  apt_install lintian systemd
  # The .rpm checks: rpm (-qp, -K, --root installs), rpm2cpio, rpmlint, and dnf with
  # createrepo_c for installs from a local repository.
  apt_install rpm rpm2cpio rpmlint dnf createrepo-c
  # Test servers on loopback (python3: HTTP and a token service that signs with openssl), and
  # the slow-link test's network namespace shaped with tc (iproute2).
  apt_install python3 openssl iproute2
  setup_gitlab_ci_local
  setup_engine
  setup_buildx
  setup_cosign
  setup_binfmt
  setup_registry
  setup_base_images
  setup_debian_base
  setup_systemd_image
  say "host ready"
}

main "$@"
