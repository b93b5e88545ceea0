# The Jaeger build the local stack, compose's stand-in image and CI use.
# shellcheck disable=SC2034
JAEGER_PKG=github.com/jaegertracing/jaeger/cmd/jaeger
JAEGER_VERSION=v1.75.0
# The official image of the same release (module v1.75.0 is Jaeger v2.12.0).
JAEGER_IMAGE_TAG=2.12.0
