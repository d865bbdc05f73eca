#!/usr/bin/env bash
# Fetches llama.cpp with ggml's whole CPU backend (npm package llama-cpp-capacitor@0.1.5, folder cpp/) into a cache
# outside the repository, checks the tarball against a pinned sha256 (computed once, 2026-12-05) and npm's sha512
# integrity, and unpacks it. Nothing of it is ever committed. Prints the directory holding cpp/.
set -euo pipefail
PACKAGE=llama-cpp-capacitor@0.1.5
TARBALL=llama-cpp-capacitor-0.1.5.tgz
SHA256=e6fb92b2b277d75108885126be1aafaa1dbc3688b8d691f68ef46aceb7c122d5
SHA512_B64=81u2ydsd4nO70jrv4XnxgqiPekm4IJD4xX5gVlTKwROpfV8NyQBpBs+7ywG4i0eKQmGuvCkFepaixheJ6FeOgQ==
CACHE=${POSATTN_GGML_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/posattn/ggml}
mkdir -p "$CACHE"
cd "$CACHE"
if [ ! -f "$TARBALL" ]; then
  npm pack "$PACKAGE" --silent >&2
fi
# Both digests must match: a truncated or altered download never reaches the compiler.
echo "$SHA256  $TARBALL" | sha256sum --check --quiet - >&2
got512=$(openssl dgst -sha512 -binary "$TARBALL" | base64 -w0)
[ "$got512" = "$SHA512_B64" ] || { echo "fetch.sh: sha512 mismatch for $TARBALL" >&2; exit 1; }
if [ ! -f package/.unpacked ]; then
  rm -rf package
  tar xzf "$TARBALL" package/cpp package/LICENSE
  touch package/.unpacked
fi
echo "$CACHE/package"
