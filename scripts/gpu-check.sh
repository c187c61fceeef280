#!/usr/bin/env bash
# The encoder on a GPU execution provider and on the CPU over the same images: max abs diff of the
# vectors and img/s of each (scripts/gpu-check.ts). Exit 2: the GPU provider did not load.
#   scripts/gpu-check.sh [provider=cuda|tensorrt] [images=64] [batch=16]
# Needs onnxruntime-node installed with its GPU binaries (Dockerfile.gpu does that; on a bare machine
# `npm_config_onnxruntime_node_install=cuda12 pnpm install` with network). On a machine without network
# (a lent GPU box), carry node, node_modules (onnxruntime-node's linux-x64 binaries + CUDA provider,
# sharp) and the cached encoder (~/.cache/capflow/encoders, 87 MB: compress it, or let the script
# convert it again from nsfwjs there) — mind the size limit of what travels.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
exec node --import "$root/node_modules/tsx/dist/loader.mjs" scripts/gpu-check.ts "$@"
