#!/usr/bin/env bash
# The test command: brings up what the tests need on a Debian host (as root: Docker engine,
# buildx, qemu-user binfmt, a loopback registry, busybox base images), then runs every test.
# The six-arch dist is built once by the tests and shared between them.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -eq 0 ]; then
  ci/setup-host.sh
elif command -v sudo >/dev/null 2>&1; then
  sudo ci/setup-host.sh
else
  echo "ci/test.sh: run as root (or with sudo) so ci/setup-host.sh can install and start the test host" >&2
  exit 1
fi

# Cross builds of the arm32 arches are CPU-bound; two test threads keep 2-core machines busy
# without oversubscribing them.
cargo test --workspace --locked -- --test-threads "${TEST_THREADS:-2}"
