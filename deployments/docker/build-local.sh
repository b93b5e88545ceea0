#!/usr/bin/env bash
# build-local.sh builds every eventshop image from binaries compiled on this
# host, for machines whose Docker engine cannot pull (no registry reachable):
# the per-service Dockerfiles start FROM golang:..., which such an engine does
# not have, so here Go runs on the host and Dockerfile.prebuilt packs each
# static binary into the same runtime stage (FROM scratch, CA bundle, USER
# 65532, HEALTHCHECK, ENTRYPOINT) the per-service Dockerfiles end with.
#
# It also builds a NATS stand-in tagged nats:2.12. Why: the compose files
# name the official image (${NATS_IMAGE:-nats:2.12}; JetStream atomic batch
# publish needs server >= 2.12), which cannot be pulled here. The stand-in is
# the real nats-server, built from its Go module at the version tools/go.mod
# pins, in a FROM scratch image with the official image's layout and CLI
# (Dockerfile.nats-standin), so the compose files run unchanged. Where a
# registry is reachable, pull the official image instead.
#
# Images: eventshop/<name>:${TAG:-dev} (and eventshop/nats-exporter), ${NATS_IMAGE:-nats:2.12},
# ${VM_IMAGE:-victoriametrics/victoria-metrics:v1.151.0}, ${VMALERT_IMAGE:-victoriametrics/vmalert:v1.151.0}
# and ${JAEGER_IMAGE:-jaegertracing/jaeger:2.12.0}.
# Usage: deployments/docker/build-local.sh            (from anywhere)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
tag="${TAG:-dev}"
nats_image="${NATS_IMAGE:-nats:2.12}"
ctx="$root/.data/docker/context" # .data is git- and docker-ignored
go="${GO:-go}"

# name, module dir, main package (relative to the module)
images=(
	"order-service order-service ./cmd/order-service"
	"inventory-service inventory-service ./cmd/inventory-service"
	"payment-service payment-service ./cmd/payment-service"
	"notification-service notification-service ./cmd/notification-service"
	"audit-service audit-service ./cmd/audit-service"
	"payment-gateway payment-service ./cmd/payment-gateway"
)

ca=/etc/ssl/certs/ca-certificates.crt
if [[ ! -s "$ca" ]]; then
	echo "build-local: $ca is missing (install Debian's ca-certificates)" >&2
	exit 1
fi

rm -rf "$ctx"
mkdir -p "$ctx"
cp "$ca" "$ctx/ca-certificates.crt"

# Static binaries: no cgo, no host paths in them, no symbol tables. Each
# service module builds alone (GOWORK=off), exactly as in its Dockerfile,
# with gin's unused MessagePack codec left out (nomsgpack: 6 MB less).
build() { # out-name module-dir package [build flags]
	echo "== go build $1"
	(cd "$root/$2" && GOWORK=off CGO_ENABLED=0 "$go" build "${@:4}" -trimpath -ldflags="-s -w" -o "$ctx/$1" "$3")
}
for spec in "${images[@]}"; do
	read -r name dir pkg <<<"$spec"
	build "$name" "$dir" "$pkg" -tags nomsgpack
done
# The real nats-server, at the version tools/go.mod pins (>= 2.12: JetStream
# atomic batch publish); tools/ already requires the module for devstack.
build nats-server tools github.com/nats-io/nats-server/v2

# The NATS exporter of the metrics store (deployments/observability).
build natsexporter tools ./cmd/natsexporter
# VictoriaMetrics and vmalert for the metrics store, from their Go module at
# deployments/observability/versions.sh's version: built once into .data/bin
# (static) and copied here, packed as stand-ins for the official images.
# shellcheck source=../observability/versions.sh
source "$root/deployments/observability/versions.sh"
for app in victoria-metrics vmalert; do
	cp "$("$root/scripts/gobin" "$VM_PKG/app/$app@$VM_VERSION")" "$ctx/$app"
done
vm_image="${VM_IMAGE:-victoriametrics/victoria-metrics:$VM_VERSION}"
# Jaeger v2 for the traces (deployments/tracing), likewise; the official
# image's tag is the v2 release the module version ships as.
# shellcheck source=../tracing/versions.sh
source "$root/deployments/tracing/versions.sh"
cp "$("$root/scripts/gobin" "$JAEGER_PKG@$JAEGER_VERSION")" "$ctx/jaeger"
jaeger_image="${JAEGER_IMAGE:-jaegertracing/jaeger:$JAEGER_IMAGE_TAG}"
vmalert_image="${VMALERT_IMAGE:-victoriametrics/vmalert:$VM_VERSION}"

# The official image's default configuration, for `docker run nats:2.12`
# without -c; compose always passes its own.
cat >"$ctx/nats-server.conf" <<'CONF'
port: 4222
monitor_port: 8222
CONF

# docker build, quiet unless it fails: this engine's legacy builder prints a
# deprecation notice on every build otherwise.
dbuild() {
	local out
	if ! out="$(docker build -q "$@" 2>&1)"; then
		echo "$out" >&2
		return 1
	fi
}
for spec in "${images[@]}"; do
	read -r name _ <<<"$spec"
	echo "== docker build eventshop/$name:$tag"
	dbuild -f "$root/deployments/docker/Dockerfile.prebuilt" --target "$name" -t "eventshop/$name:$tag" "$ctx"
done
echo "== docker build eventshop/nats-exporter:$tag"
dbuild -f "$root/deployments/docker/Dockerfile.prebuilt" --target nats-exporter -t "eventshop/nats-exporter:$tag" "$ctx"
echo "== docker build $nats_image (stand-in for the official image)"
dbuild -f "$root/deployments/docker/Dockerfile.nats-standin" -t "$nats_image" "$ctx"
echo "== docker build $vm_image and $vmalert_image (stand-ins for the official images)"
dbuild -f "$root/deployments/docker/Dockerfile.victoriametrics-standin" --target victoria-metrics -t "$vm_image" "$ctx"
dbuild -f "$root/deployments/docker/Dockerfile.victoriametrics-standin" --target vmalert -t "$vmalert_image" "$ctx"
echo "== docker build $jaeger_image (stand-in for the official image: no UI)"
dbuild -f "$root/deployments/docker/Dockerfile.jaeger-standin" -t "$jaeger_image" "$ctx"
# Each rebuild leaves the previous images untagged; drop those (ours only).
docker image prune -f --filter label=io.eventshop.build=local >/dev/null

docker images --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' |
	grep -E "^(eventshop/[a-z-]+:$tag|$nats_image|$vm_image|$vmalert_image|$jaeger_image)\b" | sort
