package k8s

import (
	"fmt"
	"net/url"
	"os"
	"path"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// natsPodLabels are the labels the NATS chart puts on its server pods (its
// selector labels, for the release "nats").
var natsPodLabels = map[string]string{
	"app.kubernetes.io/name":      "nats",
	"app.kubernetes.io/instance":  "nats",
	"app.kubernetes.io/component": "nats",
}

// peer is a pod that tries to open a connection.
type peer struct {
	name      string
	namespace string
	labels    map[string]string
}

// admits reports whether the NetworkPolicies in o let from open a TCP
// connection to port of a pod labelled to in namespace, with the
// semantics of the API: a pod no policy selects for ingress accepts
// everything; a selected pod accepts what at least one rule of one
// selecting policy allows.
func admits(t testing.TB, o objects, from peer, to map[string]string, port int32) bool {
	t.Helper()
	selected := false
	for _, np := range o.netpols {
		if np.Namespace != namespace || !selects(t, np.Spec.PodSelector, to) || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
			continue
		}
		selected = true
		for _, rule := range np.Spec.Ingress {
			if portAllowed(rule.Ports, port) && peerAllowed(t, rule.From, from) {
				return true
			}
		}
	}
	return !selected
}

func portAllowed(ports []networkingv1.NetworkPolicyPort, port int32) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		if p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP {
			continue
		}
		if p.Port == nil || (p.Port.IntVal == port && p.Port.StrVal == "") {
			return true
		}
		if p.EndPort != nil && p.Port.IntVal <= port && port <= *p.EndPort {
			return true
		}
	}
	return false
}

func peerAllowed(t testing.TB, from []networkingv1.NetworkPolicyPeer, p peer) bool {
	if len(from) == 0 {
		return true
	}
	for _, f := range from {
		if f.IPBlock != nil {
			return true // an address range may hold any pod: count it as open
		}
		nsOK := p.namespace == namespace
		if f.NamespaceSelector != nil {
			nsOK = selects(t, *f.NamespaceSelector, map[string]string{"kubernetes.io/metadata.name": p.namespace})
		}
		podOK := f.PodSelector == nil || selects(t, *f.PodSelector, p.labels)
		if nsOK && podOK {
			return true
		}
	}
	return false
}

func selects(t testing.TB, s metav1.LabelSelector, l map[string]string) bool {
	t.Helper()
	sel, err := metav1.LabelSelectorAsSelector(&s)
	if err != nil {
		t.Fatalf("label selector %v: %v", s, err)
	}
	return sel.Matches(labels.Set(l))
}

// podsOf returns a peer for the pods of every Deployment in o.
func podsOf(o objects) []peer {
	var ps []peer
	for _, d := range o.deployments {
		ps = append(ps, peer{d.Name, d.Namespace, d.Spec.Template.Labels})
	}
	return ps
}

// checkNATSFence checks who reaches the NATS servers' ports and that the
// services' HTTP ports are as open as without a policy.
func checkNATSFence(t testing.TB, o objects) {
	t.Helper()
	stranger := peer{"a pod of another namespace", "default", map[string]string{"app": "x"}}
	neighbour := peer{"an unrelated pod of this namespace", namespace, map[string]string{"app": "x"}}
	prometheus := peer{"a monitoring pod", "monitoring", map[string]string{"app.kubernetes.io/name": "prometheus"}}
	natsPeer := peer{"another NATS server", namespace, natsPodLabels}
	type want struct {
		from peer
		port int32
		ok   bool
	}
	var wants []want
	for _, p := range podsOf(o) {
		_, isService := services[p.name]
		wants = append(wants,
			want{p, 4222, isService}, // the gateway simulator never talks to NATS
			want{p, 6222, false},
			want{p, 8222, true})
	}
	wants = append(wants,
		want{natsPeer, 6222, true},
		want{natsPeer, 4222, false},
		want{stranger, 4222, false}, want{stranger, 6222, false}, want{stranger, 8222, false},
		want{neighbour, 4222, false}, want{neighbour, 6222, false}, want{neighbour, 8222, true},
		want{prometheus, 8222, true}, want{prometheus, 4222, false}, want{prometheus, 6222, false},
	)
	for _, w := range wants {
		if got := admits(t, o, w.from, natsPodLabels, w.port); got != w.ok {
			t.Errorf("NATS port %d from %s (%s): admitted %v, want %v", w.port, w.from.name, w.from.namespace, got, w.ok)
		}
	}

	// The services' HTTP stays open to whoever reached it before.
	for _, d := range o.deployments {
		port := services[d.Name]
		if port == 0 {
			continue
		}
		for _, from := range []peer{stranger, neighbour, prometheus} {
			if !admits(t, o, from, d.Spec.Template.Labels, port) {
				t.Errorf("%s's HTTP port %d is closed to %s: the policies must leave it as it was", d.Name, port, from.name)
			}
		}
	}
}

// TestNetworkPolicies renders every overlay and checks, with the
// NetworkPolicy semantics of the API, who can open a connection to which
// NATS port: clients only from the five services, routes only from other
// NATS servers, monitoring only from this namespace and "monitoring".
func TestNetworkPolicies(t *testing.T) {
	t.Parallel()
	for _, dir := range []string{"base", "overlays/dev", "overlays/production"} {
		t.Run(dir, func(t *testing.T) {
			t.Parallel()
			checkNATSFence(t, render(t, dir))
		})
	}
	t.Run("gateway simulator", func(t *testing.T) {
		t.Parallel()
		o := render(t, "overlays/dev")
		gw, ok := o.deployment("payment-gateway")
		if !ok {
			t.Fatal("dev has no payment-gateway")
		}
		for _, p := range podsOf(o) {
			if got, want := admits(t, o, p, gw.Spec.Template.Labels, 8090), p.name == "payment-service"; got != want {
				t.Errorf("payment-gateway :8090 from %s: admitted %v, want %v", p.name, got, want)
			}
		}
	})
}

// TestNetworkPolicyChecksCatchOpenings breaks the policy in the ways that
// would reopen NATS and expects checkNATSFence to notice each.
func TestNetworkPolicyChecksCatchOpenings(t *testing.T) {
	t.Parallel()
	good := render(t, "base")
	tests := []struct {
		name   string
		break_ func(o *objects)
	}{
		{"no policy", func(o *objects) { o.netpols = nil }},
		{"client port from every pod of the namespace", func(o *objects) {
			o.netpols[0].Spec.Ingress[0].From = []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}
		}},
		{"route port from anyone", func(o *objects) { o.netpols[0].Spec.Ingress[1].From = nil }},
		{"monitoring from every namespace", func(o *objects) {
			o.netpols[0].Spec.Ingress[2].From = []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{}}}
		}},
		{"selects the services instead", func(o *objects) {
			o.netpols[0].Spec.PodSelector = metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/part-of": "eventshop"}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := good.deepCopy()
			if len(o.netpols) != 1 || len(o.netpols[0].Spec.Ingress) != 3 {
				t.Fatalf("base has %d NetworkPolicies; this test expects the one for NATS with 3 rules", len(o.netpols))
			}
			tt.break_(&o)
			rec := &recorder{TB: t}
			checkNATSFence(rec, o)
			if rec.errors == 0 {
				t.Error("checkNATSFence found nothing wrong")
			}
		})
	}
}

// recorder counts the errors of a check that is expected to fail.
type recorder struct {
	testing.TB
	errors int
}

func (r *recorder) Errorf(string, ...any) { r.errors++ }

// readValues reads Helm values files, later ones merged over earlier ones as
// helm does with repeated -f.
func readValues(t *testing.T, files ...string) map[string]any {
	t.Helper()
	merged := map[string]any{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if err := unmarshalStrict(data, &v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		mergeValues(merged, v)
	}
	return merged
}

func mergeValues(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				mergeValues(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

func valueAt(values map[string]any, path string) any {
	var v any = values
	for key := range strings.SplitSeq(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[key]
	}
	return v
}

// TestProductionNATSUsesTLS: in production the NATS servers require TLS on
// the client port and mutual TLS on the routes, with certificates from the
// secret manager, and every service connects over tls:// trusting the CA
// that signed them.
func TestProductionNATSUsesTLS(t *testing.T) {
	t.Parallel()
	values := readValues(t, helmValues, helmProductionValues)
	for p, want := range map[string]any{
		"config.nats.tls.enabled":         true,
		"config.nats.tls.secretName":      "eventshop-nats-tls",
		"config.cluster.tls.enabled":      true,
		"config.cluster.tls.secretName":   "eventshop-nats-tls",
		"config.cluster.tls.merge.verify": true,
		"tlsCA.enabled":                   true,
		"tlsCA.secretName":                "eventshop-nats-ca",
		"tlsCA.key":                       "ca.crt",
		"config.cluster.enabled":          true,
		"config.cluster.authorization":    nil, // the password stays out of the ConfigMap ...
		"config.cluster.routeURLs":        nil, // ... and out of the chart's route URLs
		"config.monitor.tls.enabled":      nil,
		"config.nats.tls.merge.verify":    nil, // the services log in with passwords, not certificates
	} {
		if got := valueAt(values, p); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s + %s: %s = %v, want %v", helmValues, helmProductionValues, p, got, want)
		}
	}
	contract := secretsContract(t)
	for _, s := range []struct{ name, key string }{
		{"eventshop-nats-tls", "tls.crt"}, {"eventshop-nats-tls", "tls.key"}, {"eventshop-nats-ca", "ca.crt"},
	} {
		if sec, ok := findSecret(contract, namespace, s.name); !ok || !secretHasKey(sec, s.key) {
			t.Errorf("the Secret contract (%s) lacks %s key %s, which production TLS needs", secretContract, s.name, s.key)
		}
	}

	o := render(t, "overlays/production")
	for _, d := range o.deployments {
		c := d.Spec.Template.Spec.Containers[0]
		u, _ := envValue(c, o, namespace, "NATS_URL")
		if pu, err := url.Parse(u); err != nil || pu.Scheme != "tls" {
			t.Errorf("%s: NATS_URL %q, want tls:// (the client then refuses a server without TLS)", d.Name, u)
		}
		dir, _ := envValue(c, o, namespace, "SSL_CERT_DIR")
		if !mountsCA(d.Spec.Template.Spec, c, dir) {
			t.Errorf("%s: SSL_CERT_DIR %q does not hold ca.crt of Secret eventshop-nats-ca: the service cannot verify the servers", d.Name, dir)
		}
	}
}

// mountsCA reports whether dir is where c mounts ca.crt of the Secret
// eventshop-nats-ca, read-only.
func mountsCA(spec corev1.PodSpec, c corev1.Container, dir string) bool {
	for _, m := range c.VolumeMounts {
		if path.Clean(m.MountPath) != path.Clean(dir) || dir == "" || !m.ReadOnly {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name != m.Name || v.Secret == nil || v.Secret.SecretName != "eventshop-nats-ca" {
				continue
			}
			if len(v.Secret.Items) == 0 {
				return true
			}
			for _, it := range v.Secret.Items {
				if it.Key == "ca.crt" && it.Path == "ca.crt" {
					return true
				}
			}
		}
	}
	return false
}

// TestNATSRoutePassword: a server joins the cluster only with the route
// password, which comes from a Secret (no default anywhere) and never sits
// in the chart's ConfigMap; every route the servers solicit carries it.
func TestNATSRoutePassword(t *testing.T) {
	t.Parallel()
	values := readValues(t, helmValues)
	auth, _ := valueAt(values, "config.cluster.merge.authorization").(map[string]any)
	if auth["user"] != "route" || auth["password"] != "<< $NATS_CLUSTER_PASSWORD >>" {
		t.Errorf("config.cluster.merge.authorization = %v, want user route and password << $NATS_CLUSTER_PASSWORD >>", auth)
	}
	patch, _ := valueAt(values, "config.cluster.patch").([]any)
	replaced := false
	for _, p := range patch {
		op, _ := p.(map[string]any)
		if op["op"] == "replace" && op["path"] == "/routes" && op["value"] == "<< $NATS_CLUSTER_ROUTES >>" {
			replaced = true
		}
	}
	if !replaced {
		t.Errorf("config.cluster.patch does not replace the chart's routes with $NATS_CLUSTER_ROUTES: %v", patch)
	}
	ref, _ := valueAt(values, "container.env.NATS_CLUSTER_PASSWORD.valueFrom.secretKeyRef").(map[string]any)
	s, ok := findSecret(secretsContract(t), namespace, fmt.Sprint(ref["name"]))
	if ref == nil || !ok || !secretHasKey(s, fmt.Sprint(ref["key"])) || ref["optional"] == true {
		t.Errorf("container.env.NATS_CLUSTER_PASSWORD = %v: want a required key of a Secret of the contract", ref)
	}
	routes, _ := valueAt(values, "container.env.NATS_CLUSTER_ROUTES").(string)
	replicas, _ := valueAt(values, "config.cluster.replicas").(int64)
	for i := range replicas {
		want := fmt.Sprintf("route:$(NATS_CLUSTER_PASSWORD)@nats-%d.nats-headless:6222", i)
		if !strings.Contains(routes, want) {
			t.Errorf("NATS_CLUSTER_ROUTES %q has no route %q", routes, want)
		}
	}
	if !strings.HasPrefix(routes, "[") || !strings.HasSuffix(routes, "]") {
		t.Errorf("NATS_CLUSTER_ROUTES %q: want a list, [url, url, url]", routes)
	}
	// Kubernetes expands $(NATS_CLUSTER_PASSWORD) only from a variable
	// defined before; the chart writes the env map sorted by name.
	if !(strings.Compare("NATS_CLUSTER_PASSWORD", "NATS_CLUSTER_ROUTES") < 0) {
		t.Error("NATS_CLUSTER_PASSWORD must sort before NATS_CLUSTER_ROUTES")
	}
}
