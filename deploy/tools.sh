#!/usr/bin/env bash
# Build, once, the two tools the manifest test uses: kustomize (render) and kubeconform (validate against the
# schemas in deploy/schemas). Both come from the Go module proxy via `go install`, cached under
# $FRESHRANK_DOWNLOAD_CACHE/go-bin. Prints the bin directory on stdout.
set -euo pipefail
cache="${FRESHRANK_DOWNLOAD_CACHE:-$HOME/.cache/freshrank}"
bin="$cache/go-bin"
KUSTOMIZE_VERSION="${KUSTOMIZE_VERSION:-v5.5.0}"
KUBECONFORM_VERSION="${KUBECONFORM_VERSION:-v0.6.7}"
log() { echo "[deploy-tools] $*" >&2; }
mkdir -p "$bin"
go="$(command -v go || echo /usr/local/go/bin/go)"
need() { [ -x "$bin/$1" ] && [ "$(cat "$bin/.$1.version" 2>/dev/null)" = "$2" ]; }
build() {  # build NAME VERSION MODULE
  need "$1" "$2" && return 0
  [ -x "$go" ] || { log "Go is needed once to build $1 (apt-get install golang-go, or /usr/local/go)"; exit 1; }
  log "building $1 $2 with $("$go" version | cut -d' ' -f3) (once; cached in $bin)"
  GOBIN="$bin" GOPATH="$cache/gopath" GOFLAGS=-modcacherw "$go" install "$3@$2" >&2
  echo "$2" >"$bin/.$1.version"
}
build kustomize "$KUSTOMIZE_VERSION" sigs.k8s.io/kustomize/kustomize/v5
build kubeconform "$KUBECONFORM_VERSION" github.com/yannh/kubeconform/cmd/kubeconform
echo "$bin"
