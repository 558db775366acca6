#!/bin/bash
# Prepares ./.gpu (git-ignored) for a device call: this machine's Node binary, the Vulkan/glvnd libraries the GPU machine lacks, and on-device.sh (scripts/build-gpu-bundle.sh runs it).
set -euo pipefail
root=$(git rev-parse --show-toplevel); cd "$root"
mkdir -p .git/info .gpu/debs .gpu/xdebs /tmp/amd64/partial
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
[ -f .gpu/node.xz ] || xz -T2 -6 -c "$(command -v node)" > .gpu/node.xz
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
apt-get $o update -qq >/dev/null 2>&1 || true
(cd .gpu/debs && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 2>&1 | grep -v unsandboxed || true)
(cd .gpu/xdebs && apt-get $o download libx11-6 libxext6 libxcb1 libxau6 libxdmcp6 libbsd0 libmd0 2>&1 | grep -v unsandboxed || true)
cp "$(dirname "$(readlink -f "$0")")/on-device.sh" .gpu/on-device.sh
du -sh .gpu
