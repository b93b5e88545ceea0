// Package k8s holds the Kubernetes deployment of eventshop (kustomize base,
// components and overlays, and the NATS Helm chart's values). It has no code:
// its tests render every overlay with kustomize, decode each object strictly
// into the Kubernetes API types and check what every workload must have.
package k8s
