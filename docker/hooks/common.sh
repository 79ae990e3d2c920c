# shellcheck shell=sh
# Shared by docker/hooks/build and push (sourced, not a hook itself): the arch table and the
# image names. Docker Hub sets DOCKER_REPO (e.g. index.docker.io/org/exonode) and DOCKER_TAG.
# ARCHES may name a subset of the arches (space-separated); HOOK_DRY_RUN=1 prints the docker
# commands instead of running them.

: "${DOCKER_REPO:?DOCKER_REPO must name the image repository, e.g. index.docker.io/org/exonode}"
: "${DOCKER_TAG:?DOCKER_TAG must name the tag, e.g. latest}"
# shellcheck disable=SC2034 # used by the hooks that source this file
REPO=${DOCKER_REPO#index.docker.io/}

# arch, its Docker platform, and its base: Docker Hub's busybox for that arch (Skycoin's IMAGE_FROM).
# Generated from xtask/src/project/matrix.rs by its tests: change the matrix, not this table.
ARCH_TABLE='amd64 linux/amd64 busybox
arm64v8 linux/arm64/v8 arm64v8/busybox
arm32v7 linux/arm/v7 arm32v7/busybox
arm32v6 linux/arm/v6 arm32v6/busybox
arm32v5 linux/arm/v5 arm32v5/busybox
i386 linux/386 i386/busybox
riscv64 linux/riscv64 riscv64/busybox
ppc64le linux/ppc64le ppc64le/busybox
s390x linux/s390x s390x/busybox
mips64le linux/mips64le mips64le/busybox'
ALL_ARCHES=$(echo "$ARCH_TABLE" | cut -d' ' -f1 | tr '\n' ' ')
ARCHES=${ARCHES:-$ALL_ARCHES}

# The arch's column $2 (2 = platform, 3 = base image); an unknown arch stops the hook.
arch_field() {
  found=$(echo "$ARCH_TABLE" | awk -v arch="$1" -v col="$2" '$1 == arch { print $col }')
  [ -n "$found" ] || { echo "unknown arch $1 in ARCHES: choose from $ALL_ARCHES" >&2; exit 1; }
  echo "$found"
}

# Runs (or with HOOK_DRY_RUN=1 prints) one command.
step() {
  if [ "${HOOK_DRY_RUN:-}" = 1 ]; then
    echo "$*"
  else
    echo "+ $*" >&2
    "$@"
  fi
}

for arch in $ARCHES; do
  arch_field "$arch" 2 >/dev/null
done
