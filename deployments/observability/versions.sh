# shellcheck shell=bash disable=SC2034 # sourced
# The VictoriaMetrics release the metrics store, vmalert and the rule unit
# tests are built from (Apache-2.0; github.com/VictoriaMetrics/VictoriaMetrics).
# The compose files name the official images at the same version.
VM_PKG=github.com/VictoriaMetrics/VictoriaMetrics
VM_VERSION=v1.151.0
