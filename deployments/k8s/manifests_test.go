package k8s

import (
	"os"
	"slices"
	"strings"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// services are the five eventshop services and the port each listens on.
var services = map[string]int32{
	"order-service":        8080,
	"inventory-service":    8081,
	"payment-service":      8082,
	"notification-service": 8083,
	"audit-service":        8084,
}

const (
	natsURL        = "nats://nats.eventshop.svc:4222"
	natsTLSURL     = "tls://nats.eventshop.svc:4222"
	simulatorURL   = "http://payment-gateway:8090"
	secretContract = "components/placeholder-secrets/secrets.yaml"
	partOfLabel    = "app.kubernetes.io/part-of"
)

// secretsContract are the Secrets the secret manager must create in
// production. The placeholder component is their single description: same
// names, same keys.
func secretsContract(t *testing.T) []corev1.Secret {
	t.Helper()
	data, err := os.ReadFile(secretContract)
	if err != nil {
		t.Fatal(err)
	}
	o, err := decodeObjects(data)
	if err != nil {
		t.Fatalf("%s: %v", secretContract, err)
	}
	for i := range o.secrets {
		o.secrets[i].Namespace = namespace
	}
	return o.secrets
}

func serviceNames(extra ...string) []string {
	names := slices.Clone(extra)
	for n := range services {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// TestOverlays renders the base and each overlay as `kubectl apply -k`
// would and checks every workload in it, then what is particular to each.
func TestOverlays(t *testing.T) {
	t.Parallel()
	contract := secretsContract(t)
	tests := []struct {
		name            string
		dir             string
		wantDeployments []string
		// shipsSecrets: the placeholder Secrets are part of the build. When
		// false the build must hold no Secret at all, and secret references
		// resolve against the contract instead.
		shipsSecrets       bool
		wantImageTag       string
		wantStreamReplicas string
		wantGatewayURL     func(string) bool
		wantNATSURL        string
	}{
		{
			name:               "base",
			wantNATSURL:        natsURL,
			dir:                "base",
			wantDeployments:    serviceNames(),
			wantImageTag:       "dev",
			wantStreamReplicas: "3",
			wantGatewayURL:     isRealProcessor,
		},
		{
			name:               "dev",
			wantNATSURL:        natsURL,
			dir:                "overlays/dev",
			wantDeployments:    serviceNames("payment-gateway"),
			shipsSecrets:       true,
			wantImageTag:       "dev",
			wantStreamReplicas: "1",
			wantGatewayURL:     func(u string) bool { return u == simulatorURL },
		},
		{
			name:               "production",
			wantNATSURL:        natsTLSURL,
			dir:                "overlays/production",
			wantDeployments:    serviceNames(),
			wantImageTag:       "v1.0.0",
			wantStreamReplicas: "3",
			wantGatewayURL:     isRealProcessor,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := render(t, tt.dir)

			external := contract
			if tt.shipsSecrets {
				external = nil
			} else if len(o.secrets) > 0 {
				t.Errorf("ships %d Secret(s): applying it would overwrite the secret manager's", len(o.secrets))
			}
			for _, err := range checkWorkloads(o, external) {
				t.Error(err)
			}

			var got []string
			for _, d := range o.deployments {
				got = append(got, d.Name)
				for _, c := range d.Spec.Template.Spec.Containers {
					if want := "eventshop/" + d.Name + ":" + tt.wantImageTag; c.Image != want {
						t.Errorf("Deployment %s: image %q, want %q", d.Name, c.Image, want)
					}
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.wantDeployments) {
				t.Errorf("Deployments %v, want %v", got, tt.wantDeployments)
			}

			checkNamespaces(t, o)
			checkServicePorts(t, o)

			// The shared configuration, as the order service sees it.
			d, ok := o.deployment("order-service")
			if !ok {
				t.Fatal("no order-service")
			}
			c := d.Spec.Template.Spec.Containers[0]
			for name, want := range map[string]string{
				"NATS_URL":         tt.wantNATSURL,
				"STREAM_REPLICAS":  tt.wantStreamReplicas,
				"SHUTDOWN_TIMEOUT": "20s",
			} {
				if v, _ := envValue(c, o, namespace, name); v != want {
					t.Errorf("order-service %s=%q, want %q", name, v, want)
				}
			}
			if pd, ok := o.deployment("payment-service"); ok {
				if v, _ := envValue(pd.Spec.Template.Spec.Containers[0], o, namespace, "GATEWAY_URL"); !tt.wantGatewayURL(v) {
					t.Errorf("payment-service GATEWAY_URL=%q is not what %s wants", v, tt.name)
				}
			}
		})
	}
}

// isRealProcessor: outside dev the payment service charges a real
// processor over TLS, never the simulator.
func isRealProcessor(u string) bool {
	return strings.HasPrefix(u, "https://") && !strings.Contains(u, "payment-gateway")
}

// checkNamespaces: everything lives in the one namespace and carries the
// part-of label (`kubectl get all -l app.kubernetes.io/part-of=eventshop`,
// `kubectl apply --prune -l ...` rely on it).
func checkNamespaces(t *testing.T, o objects) {
	t.Helper()
	if len(o.namespaces) != 1 || o.namespaces[0].Name != namespace {
		t.Errorf("want exactly the Namespace %q, got %d", namespace, len(o.namespaces))
	}
	check := func(kind string, m metav1.ObjectMeta, namespaced bool) {
		if namespaced && m.Namespace != namespace {
			t.Errorf("%s %s: namespace %q, want %q", kind, m.Name, m.Namespace, namespace)
		}
		if m.Labels[partOfLabel] != "eventshop" {
			t.Errorf("%s %s: label %s=%q, want eventshop", kind, m.Name, partOfLabel, m.Labels[partOfLabel])
		}
	}
	for _, v := range o.namespaces {
		check("Namespace", v.ObjectMeta, false)
	}
	for _, v := range o.deployments {
		check("Deployment", v.ObjectMeta, true)
		check("Deployment pod template of", metav1.ObjectMeta{Name: v.Name, Namespace: v.Namespace, Labels: v.Spec.Template.Labels}, true)
	}
	for _, v := range o.services {
		check("Service", v.ObjectMeta, true)
	}
	for _, v := range o.configMaps {
		check("ConfigMap", v.ObjectMeta, true)
	}
	for _, v := range o.secrets {
		check("Secret", v.ObjectMeta, true)
	}
	for _, v := range o.pdbs {
		check("PodDisruptionBudget", v.ObjectMeta, true)
	}
	for _, v := range o.hpas {
		check("HorizontalPodAutoscaler", v.ObjectMeta, true)
	}
}

// checkServicePorts: each service is reached on its agreed port, under its
// own name (other services and the compose setup use these addresses).
func checkServicePorts(t *testing.T, o objects) {
	t.Helper()
	want := withPort(services, "payment-gateway", 8090)
	for _, s := range o.services {
		port, ok := want[s.Name]
		if !ok {
			t.Errorf("Service %s: not one of the agreed services", s.Name)
			continue
		}
		if len(s.Spec.Ports) != 1 || s.Spec.Ports[0].Port != port {
			t.Errorf("Service %s: ports %v, want only %d", s.Name, s.Spec.Ports, port)
		}
	}
	for _, d := range o.deployments {
		if _, ok := want[d.Name]; !ok {
			t.Errorf("Deployment %s: not one of the agreed services", d.Name)
			continue
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.ContainerPort == want[d.Name] }) {
				t.Errorf("Deployment %s: container %s does not declare port %d", d.Name, c.Name, want[d.Name])
			}
		}
	}
}

// withPort returns a copy of m with k added.
func withPort(m map[string]int32, k string, v int32) map[string]int32 {
	c := map[string]int32{k: v}
	for mk, mv := range m {
		c[mk] = mv
	}
	return c
}

// TestProductionRaisesCapacity: production runs more of each scaled
// service and gives every pod more room than the base.
func TestProductionRaisesCapacity(t *testing.T) {
	t.Parallel()
	base, prod := render(t, "base"), render(t, "overlays/production")
	for _, pd := range prod.deployments {
		bd, ok := base.deployment(pd.Name)
		if !ok {
			t.Errorf("Deployment %s: not in the base", pd.Name)
			continue
		}
		b, p := bd.Spec.Template.Spec.Containers[0].Resources, pd.Spec.Template.Spec.Containers[0].Resources
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			pReq, pLim, bReq, bLim := p.Requests[r], p.Limits[r], b.Requests[r], b.Limits[r]
			if pReq.Cmp(bReq) <= 0 || pLim.Cmp(bLim) <= 0 {
				t.Errorf("Deployment %s: production %s %s/%s not above the base's %s/%s",
					pd.Name, r, pReq.String(), pLim.String(), bReq.String(), bLim.String())
			}
		}
	}
	for _, h := range prod.hpas {
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 3 {
			t.Errorf("HorizontalPodAutoscaler %s: minReplicas %v, want at least 3 in production", h.Name, ptrValue(h.Spec.MinReplicas))
		}
	}
}

// TestChecksCatchBrokenWorkloads breaks one thing at a time in the rendered
// production manifests and expects checkWorkloads to say so: a check that
// cannot fail proves nothing.
func TestChecksCatchBrokenWorkloads(t *testing.T) {
	t.Parallel()
	prod := render(t, "overlays/production")
	contract := secretsContract(t)
	if errs := checkWorkloads(prod, contract); len(errs) > 0 {
		t.Fatalf("the unbroken manifests must pass first: %v", errs)
	}

	ctr := func(o *objects, name string) *corev1.Container {
		d, ok := o.deployment(name)
		if !ok {
			t.Fatalf("no Deployment %s", name)
		}
		return &d.Spec.Template.Spec.Containers[0]
	}
	dropHPA := func(o *objects, name string) {
		o.hpas = slices.DeleteFunc(o.hpas, func(h autoscalingv2.HorizontalPodAutoscaler) bool { return h.Spec.ScaleTargetRef.Name == name })
	}
	tests := []struct {
		name   string
		mutate func(o *objects)
		want   string
	}{
		{"no liveness probe", func(o *objects) { ctr(o, "order-service").LivenessProbe = nil }, "no liveness probe"},
		{"no readiness probe", func(o *objects) { ctr(o, "audit-service").ReadinessProbe = nil }, "no readiness probe"},
		{"readiness on /health", func(o *objects) { ctr(o, "payment-service").ReadinessProbe.HTTPGet.Path = "/health" }, `readiness probe path "/health"`},
		{"liveness on another port", func(o *objects) {
			ctr(o, "inventory-service").LivenessProbe.HTTPGet.Port = intstr.FromInt32(9999)
		}, "liveness probe port 9999"},
		{"listens elsewhere", func(o *objects) {
			c := ctr(o, "notification-service")
			c.Env[slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "HTTP_ADDR" })].Value = ":9000"
		}, "listens on 9000"},
		{"no memory limit", func(o *objects) { delete(ctr(o, "order-service").Resources.Limits, corev1.ResourceMemory) }, "no memory limits"},
		{"no cpu request", func(o *objects) { delete(ctr(o, "audit-service").Resources.Requests, corev1.ResourceCPU) }, "no cpu requests"},
		{"request above limit", func(o *objects) {
			ctr(o, "order-service").Resources.Requests[corev1.ResourceMemory] = quantity("1Gi")
		}, "memory request 1Gi above its limit"},
		{"root allowed in the pod", func(o *objects) {
			d, _ := o.deployment("order-service")
			d.Spec.Template.Spec.SecurityContext.RunAsNonRoot = ptr.To(false)
		}, "pod securityContext: runAsNonRoot"},
		{"no pod seccomp", func(o *objects) {
			d, _ := o.deployment("payment-service")
			d.Spec.Template.Spec.SecurityContext.SeccompProfile = nil
		}, "pod securityContext: seccompProfile"},
		{"writable root filesystem", func(o *objects) {
			ctr(o, "order-service").SecurityContext.ReadOnlyRootFilesystem = ptr.To(false)
		}, "readOnlyRootFilesystem"},
		{"privilege escalation", func(o *objects) {
			ctr(o, "order-service").SecurityContext.AllowPrivilegeEscalation = nil
		}, "allowPrivilegeEscalation"},
		{"capabilities kept", func(o *objects) { ctr(o, "audit-service").SecurityContext.Capabilities.Drop = nil }, "drop ALL"},
		{"another user", func(o *objects) { ctr(o, "audit-service").SecurityContext.RunAsUser = ptr.To[int64](0) }, "runAsUser must be"},
		{"service account token mounted", func(o *objects) {
			d, _ := o.deployment("inventory-service")
			d.Spec.Template.Spec.AutomountServiceAccountToken = nil
		}, "automountServiceAccountToken"},
		{"grace period equal to the drain", func(o *objects) {
			d, _ := o.deployment("order-service")
			d.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr.To[int64](20)
		}, "terminationGracePeriodSeconds 20"},
		{"drain longer than the grace period", func(o *objects) {
			for i := range o.configMaps {
				o.configMaps[i].Data["SHUTDOWN_TIMEOUT"] = "45s"
			}
		}, "must exceed the drain deadline SHUTDOWN_TIMEOUT 45s"},
		{"no PDB", func(o *objects) {
			o.pdbs = slices.DeleteFunc(o.pdbs, func(p policyv1.PodDisruptionBudget) bool { return p.Name == "notification-service" })
		}, "Deployment notification-service: no PodDisruptionBudget"},
		{"PDB blocking drains of the single audit pod", func(o *objects) {
			for i := range o.pdbs {
				if o.pdbs[i].Name == "audit-service" {
					o.pdbs[i].Spec.MaxUnavailable, o.pdbs[i].Spec.MinAvailable = nil, ptr.To(intstr.FromInt32(1))
				}
			}
		}, "blocks node drains"},
		{"no HPA", func(o *objects) { dropHPA(o, "payment-service") }, "Deployment payment-service: no HorizontalPodAutoscaler"},
		{"HPA on the single audit writer", func(o *objects) {
			h := *o.hpas[0].DeepCopy()
			h.Name, h.Spec.ScaleTargetRef.Name = "audit-service", "audit-service"
			o.hpas = append(o.hpas, h)
		}, "exactly one pod"},
		{"two audit writers", func(o *objects) {
			d, _ := o.deployment("audit-service")
			d.Spec.Replicas = ptr.To[int32](2)
		}, "replicas 2, want 1"},
		{"replicas fighting the HPA", func(o *objects) {
			d, _ := o.deployment("order-service")
			d.Spec.Replicas = ptr.To[int32](2)
		}, "a HorizontalPodAutoscaler owns the count"},
		{"no Service", func(o *objects) {
			o.services = slices.DeleteFunc(o.services, func(s corev1.Service) bool { return s.Name == "order-service" })
		}, "Deployment order-service: no Service"},
		{"missing ConfigMap", func(o *objects) {
			ctr(o, "inventory-service").EnvFrom[0].ConfigMapRef.Name = "no-such-config"
		}, `envFrom ConfigMap "no-such-config" does not exist`},
		{"missing Secret key", func(o *objects) {
			c := ctr(o, "payment-service")
			c.Env[slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "NATS_PASSWORD" })].ValueFrom.SecretKeyRef.Key = "NATS_PASSWORD_NOPE"
		}, `has no key "NATS_PASSWORD_NOPE"`},
		{"password in the manifest", func(o *objects) {
			c := ctr(o, "payment-service")
			i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "NATS_PASSWORD" })
			c.Env[i].ValueFrom, c.Env[i].Value = nil, "hunter2"
		}, "NATS_PASSWORD is written in the manifest"},
		{"another service's NATS user", func(o *objects) {
			c := ctr(o, "payment-service")
			c.Env[slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "NATS_USER" })].Value = "admin"
		}, `NATS_USER="admin"`},
		{"latest image", func(o *objects) { ctr(o, "order-service").Image = "eventshop/order-service:latest" }, "explicit tag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := prod.deepCopy()
			tt.mutate(&o)
			errs := checkWorkloads(o, contract)
			for _, err := range errs {
				if strings.Contains(err.Error(), tt.want) {
					return
				}
			}
			t.Errorf("no error contains %q; got %v", tt.want, errs)
		})
	}
}
