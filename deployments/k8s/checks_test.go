package k8s

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const (
	namespace = "eventshop"
	// nonRootUID is the user the images run as (USER 65532:65532 in every
	// Dockerfile).
	nonRootUID = 65532
	// defaultShutdownTimeout is what a service uses when SHUTDOWN_TIMEOUT is
	// not set.
	defaultShutdownTimeout = 20 * time.Second
)

// singleInstance are the workloads that must run as exactly one pod and
// must not be autoscaled: the audit service is the single writer of the
// hash chain, the gateway simulator keeps its charges in memory.
var singleInstance = map[string]bool{"audit-service": true, "payment-gateway": true}

// checkWorkloads returns every way the Deployments of o fall short of what
// a workload here must have. externalSecrets are the Secrets that exist in
// the cluster without being part of o (created by the secret manager).
func checkWorkloads(o objects, externalSecrets []corev1.Secret) []error {
	var errs []error
	if len(o.deployments) == 0 {
		errs = append(errs, fmt.Errorf("no Deployment at all"))
	}
	secrets := append(slices.Clone(o.secrets), externalSecrets...)
	for i := range o.deployments {
		d := &o.deployments[i]
		fail := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("Deployment %s: "+format, append([]any{d.Name}, args...)...))
		}
		checkDeployment(d, o, secrets, fail)
	}
	return errs
}

func checkDeployment(d *appsv1.Deployment, o objects, secrets []corev1.Secret, fail func(string, ...any)) {
	if d.Namespace != namespace {
		fail("namespace %q, want %q", d.Namespace, namespace)
	}
	podLabels := labels.Set(d.Spec.Template.Labels)
	if sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err != nil || sel.Empty() || !sel.Matches(podLabels) {
		fail("selector %v does not select its own pod template labels %v", d.Spec.Selector, podLabels)
	}

	pod := d.Spec.Template.Spec
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		fail("automountServiceAccountToken must be false")
	}
	checkPodSecurity(pod.SecurityContext, fail)
	if len(pod.Containers) == 0 {
		fail("no container")
	}
	for _, c := range pod.Containers {
		checkContainer(d, c, o, secrets, fail)
	}

	checkService(d, o, fail)
	checkDisruptionBudget(d, o, fail)
	checkScaling(d, o, fail)
}

func checkPodSecurity(sc *corev1.PodSecurityContext, fail func(string, ...any)) {
	if sc == nil {
		fail("no pod securityContext")
		return
	}
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		fail("pod securityContext: runAsNonRoot must be true")
	}
	if sc.RunAsUser == nil || *sc.RunAsUser != nonRootUID {
		fail("pod securityContext: runAsUser must be %d", nonRootUID)
	}
	if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		fail("pod securityContext: seccompProfile must be RuntimeDefault")
	}
}

func checkContainer(d *appsv1.Deployment, c corev1.Container, o objects, secrets []corev1.Secret, fail func(string, ...any)) {
	cfail := func(format string, args ...any) { fail("container %s: "+format, append([]any{c.Name}, args...)...) }

	if c.Image == "" || !strings.Contains(c.Image[strings.LastIndex(c.Image, "/")+1:], ":") || strings.HasSuffix(c.Image, ":latest") {
		cfail("image %q must carry an explicit tag other than latest", c.Image)
	}

	// The port the process listens on (HTTP_ADDR, or GATEWAY_ADDR for the
	// simulator) must be a declared container port, and the probes must ask
	// it: a probe on another port fails, or worse, checks something else.
	listen := int32(0)
	for _, name := range []string{"HTTP_ADDR", "GATEWAY_ADDR"} {
		if addr, ok := envValue(c, o, d.Namespace, name); ok {
			_, p, err := net.SplitHostPort(addr)
			n, err2 := strconv.Atoi(p)
			if err != nil || err2 != nil {
				cfail("%s=%q is not host:port", name, addr)
				continue
			}
			listen = int32(n)
		}
	}
	if listen == 0 {
		cfail("neither HTTP_ADDR nor GATEWAY_ADDR is set: the listen port is unknown")
	} else if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.ContainerPort == listen }) {
		cfail("listens on %d, which is not a declared container port", listen)
	}
	checkProbe(c, "liveness", c.LivenessProbe, "/health", listen, cfail)
	checkProbe(c, "readiness", c.ReadinessProbe, "/ready", listen, cfail)
	if c.StartupProbe != nil {
		checkProbe(c, "startup", c.StartupProbe, "/health", listen, cfail)
	}

	for _, kind := range []string{"requests", "limits"} {
		list := c.Resources.Requests
		if kind == "limits" {
			list = c.Resources.Limits
		}
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if q, ok := list[r]; !ok || q.Sign() <= 0 {
				cfail("resources: no %s %s", r, kind)
			}
		}
	}
	for r, req := range c.Resources.Requests {
		if lim, ok := c.Resources.Limits[r]; ok && req.Cmp(lim) > 0 {
			cfail("resources: %s request %s above its limit %s", r, req.String(), lim.String())
		}
	}

	checkContainerSecurity(c.SecurityContext, cfail)
	checkEnvRefs(c, o, d.Namespace, secrets, cfail)

	// The drain must finish before the kubelet's SIGKILL.
	shutdown := defaultShutdownTimeout
	if v, ok := envValue(c, o, d.Namespace, "SHUTDOWN_TIMEOUT"); ok {
		var err error
		if shutdown, err = time.ParseDuration(v); err != nil {
			cfail("SHUTDOWN_TIMEOUT=%q: %v", v, err)
		}
	}
	grace := d.Spec.Template.Spec.TerminationGracePeriodSeconds
	if grace == nil || time.Duration(*grace)*time.Second <= max(shutdown, defaultShutdownTimeout) {
		cfail("terminationGracePeriodSeconds %v must exceed the drain deadline SHUTDOWN_TIMEOUT %s (and 20s)", ptrValue(grace), shutdown)
	}

	// Each service is its own NATS user, with a password from a Secret.
	if user, ok := envValue(c, o, d.Namespace, "NATS_USER"); ok {
		if user != d.Name {
			cfail("NATS_USER=%q, want the service name %q", user, d.Name)
		}
		if e, ok := findEnv(c, "NATS_PASSWORD"); !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			cfail("NATS_PASSWORD must come from a Secret")
		}
	}
	for _, e := range c.Env {
		if e.Value != "" && (strings.Contains(e.Name, "PASSWORD") || strings.Contains(e.Name, "TOKEN") || strings.Contains(e.Name, "SECRET")) {
			cfail("%s is written in the manifest; it must come from a Secret", e.Name)
		}
	}
}

func checkProbe(c corev1.Container, kind string, p *corev1.Probe, path string, port int32, cfail func(string, ...any)) {
	switch {
	case p == nil:
		cfail("no %s probe", kind)
	case p.HTTPGet == nil:
		cfail("%s probe is not an httpGet", kind)
	case p.HTTPGet.Path != path:
		cfail("%s probe path %q, want %q", kind, p.HTTPGet.Path, path)
	default:
		if got, ok := resolvePort(c, p.HTTPGet.Port); !ok || got != port {
			cfail("%s probe port %s is not the port the service listens on (%d)", kind, p.HTTPGet.Port.String(), port)
		}
	}
}

// resolvePort turns a port name or number into the container port it names.
func resolvePort(c corev1.Container, p intstr.IntOrString) (int32, bool) {
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

func checkContainerSecurity(sc *corev1.SecurityContext, cfail func(string, ...any)) {
	if sc == nil {
		cfail("no securityContext")
		return
	}
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		cfail("securityContext: runAsNonRoot must be true")
	}
	if sc.RunAsUser == nil || *sc.RunAsUser != nonRootUID {
		cfail("securityContext: runAsUser must be %d", nonRootUID)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		cfail("securityContext: readOnlyRootFilesystem must be true")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		cfail("securityContext: allowPrivilegeEscalation must be false")
	}
	if sc.Privileged != nil && *sc.Privileged {
		cfail("securityContext: privileged")
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
		cfail("securityContext: capabilities must drop ALL and add none")
	}
	if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		cfail("securityContext: seccompProfile must be RuntimeDefault")
	}
}

// checkEnvRefs: every ConfigMap and Secret a container reads must exist,
// with the key it reads; a missing one leaves the pod in
// CreateContainerConfigError.
func checkEnvRefs(c corev1.Container, o objects, ns string, secrets []corev1.Secret, cfail func(string, ...any)) {
	for _, from := range c.EnvFrom {
		if r := from.ConfigMapRef; r != nil {
			if _, ok := o.configMap(ns, r.Name); !ok {
				cfail("envFrom ConfigMap %q does not exist", r.Name)
			}
		}
		if r := from.SecretRef; r != nil {
			if _, ok := findSecret(secrets, ns, r.Name); !ok {
				cfail("envFrom Secret %q does not exist", r.Name)
			}
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			continue
		}
		if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
			cm, ok := o.configMap(ns, r.Name)
			if !ok {
				cfail("%s: ConfigMap %q does not exist", e.Name, r.Name)
			} else if _, ok := cm.Data[r.Key]; !ok {
				cfail("%s: ConfigMap %q has no key %q", e.Name, r.Name, r.Key)
			}
		}
		if r := e.ValueFrom.SecretKeyRef; r != nil {
			s, ok := findSecret(secrets, ns, r.Name)
			if !ok {
				cfail("%s: Secret %q does not exist", e.Name, r.Name)
			} else if !secretHasKey(s, r.Key) {
				cfail("%s: Secret %q has no key %q", e.Name, r.Name, r.Key)
			}
		}
	}
}

func checkService(d *appsv1.Deployment, o objects, fail func(string, ...any)) {
	podLabels := labels.Set(d.Spec.Template.Labels)
	for _, s := range o.services {
		if s.Namespace != d.Namespace || len(s.Spec.Selector) == 0 || !labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels) {
			continue
		}
		for _, sp := range s.Spec.Ports {
			for _, c := range d.Spec.Template.Spec.Containers {
				if _, ok := resolvePort(c, sp.TargetPort); ok {
					return
				}
			}
		}
		fail("Service %s selects it but no port reaches a container port", s.Name)
		return
	}
	fail("no Service selects its pods")
}

func checkDisruptionBudget(d *appsv1.Deployment, o objects, fail func(string, ...any)) {
	podLabels := labels.Set(d.Spec.Template.Labels)
	for _, p := range o.pdbs {
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if p.Namespace != d.Namespace || err != nil || sel.Empty() || !sel.Matches(podLabels) {
			continue
		}
		if p.Spec.MinAvailable == nil && p.Spec.MaxUnavailable == nil {
			fail("PodDisruptionBudget %s sets neither minAvailable nor maxUnavailable", p.Name)
		}
		// One pod and minAvailable 1: no eviction is ever allowed, so every
		// node drain hangs on this pod.
		if singleInstance[d.Name] && p.Spec.MinAvailable != nil && p.Spec.MinAvailable.IntValue() >= 1 {
			fail("PodDisruptionBudget %s: minAvailable on a single pod blocks node drains; use maxUnavailable: 1", p.Name)
		}
		return
	}
	fail("no PodDisruptionBudget selects its pods")
}

func checkScaling(d *appsv1.Deployment, o objects, fail func(string, ...any)) {
	var targeting []string
	for _, h := range o.hpas {
		ref := h.Spec.ScaleTargetRef
		if h.Namespace != d.Namespace || ref.Kind != "Deployment" || ref.Name != d.Name {
			continue
		}
		targeting = append(targeting, h.Name)
		if ref.APIVersion != "apps/v1" {
			fail("HorizontalPodAutoscaler %s: scaleTargetRef apiVersion %q, want apps/v1", h.Name, ref.APIVersion)
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 || h.Spec.MaxReplicas < *h.Spec.MinReplicas {
			fail("HorizontalPodAutoscaler %s: minReplicas %v maxReplicas %d: want 2 <= min <= max", h.Name, ptrValue(h.Spec.MinReplicas), h.Spec.MaxReplicas)
		}
		if !slices.ContainsFunc(h.Spec.Metrics, func(m autoscalingv2.MetricSpec) bool {
			return m.Resource != nil && m.Resource.Name == corev1.ResourceCPU && m.Resource.Target.AverageUtilization != nil
		}) {
			fail("HorizontalPodAutoscaler %s: no CPU utilisation target", h.Name)
		}
	}

	if singleInstance[d.Name] {
		if len(targeting) > 0 {
			fail("must run as exactly one pod, but HorizontalPodAutoscaler %v scales it", targeting)
		}
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
			fail("replicas %v, want 1", ptrValue(d.Spec.Replicas))
		}
		if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
			fail("strategy %q: a rolling update briefly runs two pods; want Recreate", d.Spec.Strategy.Type)
		}
		return
	}
	switch {
	case len(targeting) == 0:
		fail("no HorizontalPodAutoscaler targets it")
	case len(targeting) > 1:
		fail("HorizontalPodAutoscalers %v all target it", targeting)
	}
	// The HPA owns the replica count; a replicas field would reset it on
	// every apply.
	if d.Spec.Replicas != nil {
		fail("replicas is set to %d, but a HorizontalPodAutoscaler owns the count", *d.Spec.Replicas)
	}
}

// envValue is the value a container sees for name: env entries (literal or
// from a ConfigMap key) win over envFrom ConfigMaps, as in the kubelet.
// Values from Secrets are not looked at.
func envValue(c corev1.Container, o objects, ns, name string) (string, bool) {
	if e, ok := findEnv(c, name); ok {
		if e.ValueFrom == nil {
			return e.Value, true
		}
		if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
			if cm, ok := o.configMap(ns, r.Name); ok {
				v, ok := cm.Data[r.Key]
				return v, ok
			}
		}
		return "", false
	}
	for i := len(c.EnvFrom) - 1; i >= 0; i-- { // a later source wins
		if r := c.EnvFrom[i].ConfigMapRef; r != nil && c.EnvFrom[i].Prefix == "" {
			if cm, ok := o.configMap(ns, r.Name); ok {
				if v, ok := cm.Data[name]; ok {
					return v, true
				}
			}
		}
	}
	return "", false
}

func findEnv(c corev1.Container, name string) (corev1.EnvVar, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e, true
		}
	}
	return corev1.EnvVar{}, false
}

func findSecret(secrets []corev1.Secret, ns, name string) (corev1.Secret, bool) {
	for _, s := range secrets {
		if (s.Namespace == ns || s.Namespace == "") && s.Name == name {
			return s, true
		}
	}
	return corev1.Secret{}, false
}

func secretHasKey(s corev1.Secret, key string) bool {
	_, inData := s.Data[key]
	_, inString := s.StringData[key]
	return inData || inString
}

func ptrValue[T any](p *T) any {
	if p == nil {
		return "unset"
	}
	return *p
}

// quantity parses a resource quantity a test writes down.
func quantity(s string) resource.Quantity { return resource.MustParse(s) }
