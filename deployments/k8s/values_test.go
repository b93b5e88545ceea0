package k8s

import (
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
)

// authConf is the users-and-permissions file every NATS setup includes; the
// chart's values mount it (see nats/values.yaml).
const authConf = "../nats/auth.conf"

// TestNATSValues checks the NATS Helm chart's values: a 3-server JetStream
// cluster on persistent file storage that fsyncs every write, the Service
// name the services dial, and every password auth.conf needs handed to the
// servers from the Secret the services read theirs from.
func TestNATSValues(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(helmValues)
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	// Strict: a key written twice is an error, not a silent override.
	if err := unmarshalStrict(data, &values); err != nil {
		t.Fatalf("%s: %v", helmValues, err)
	}
	get := func(path string) any {
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

	for path, want := range map[string]any{
		"config.cluster.enabled":                 true,
		"config.cluster.replicas":                int64(3),
		"config.jetstream.enabled":               true,
		"config.jetstream.fileStore.enabled":     true,
		"config.jetstream.fileStore.pvc.enabled": true,
		"config.jetstream.memoryStore.enabled":   false,
		"config.jetstream.merge.sync_interval":   "always",
		"config.merge.00$include":                "auth.conf",
		"fullnameOverride":                       "nats",
		"config.monitor.enabled":                 true,
		"container.image.repository":             "nats",
	} {
		if got := get(path); got != want {
			t.Errorf("%s = %v (%T), want %v", path, got, got, want)
		}
	}
	if size, ok := get("config.jetstream.fileStore.pvc.size").(string); !ok {
		t.Errorf("config.jetstream.fileStore.pvc.size is not set")
	} else if q, err := resource.ParseQuantity(size); err != nil || q.Cmp(resource.MustParse("1Gi")) < 0 {
		t.Errorf("config.jetstream.fileStore.pvc.size %q: want a quantity of at least 1Gi", size)
	}
	if tag, _ := get("container.image.tag").(string); !atLeastMinor(tag, 2, 12) {
		t.Errorf("container.image.tag %q: consumer pause and per-message TTLs need nats-server >= 2.11; the chart pins 2.12 or newer", tag)
	}

	// The services dial the chart's client Service.
	u, err := url.Parse(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%s.%s.svc", get("fullnameOverride"), namespace); u.Hostname() != want || u.Port() != "4222" {
		t.Errorf("NATS_URL %s does not reach the chart's Service %s:4222", natsURL, want)
	}

	// Every password variable auth.conf refers to reaches the servers from
	// the Secret the services read their own key from.
	auth, err := os.ReadFile(authConf)
	if err != nil {
		t.Fatalf("%s: %v", authConf, err)
	}
	contract := secretsContract(t)
	vars := regexp.MustCompile(`\$(NATS_PASSWORD_[A-Z0-9_]+)`).FindAllStringSubmatch(string(auth), -1)
	if len(vars) == 0 {
		t.Fatalf("%s refers to no $NATS_PASSWORD_* variable", authConf)
	}
	for _, m := range vars {
		name := m[1]
		ref, _ := get("container.env." + name + ".valueFrom.secretKeyRef").(map[string]any)
		if ref == nil {
			t.Errorf("%s needs $%s, but container.env does not set it from a Secret", authConf, name)
			continue
		}
		s, ok := findSecret(contract, namespace, fmt.Sprint(ref["name"]))
		if !ok || !secretHasKey(s, fmt.Sprint(ref["key"])) {
			t.Errorf("container.env.%s reads Secret %v key %v, which the Secret contract (%s) does not have", name, ref["name"], ref["key"], secretContract)
		}
	}

	// Every service logs in as itself: auth.conf must know the user.
	users := map[string]bool{}
	for _, m := range regexp.MustCompile(`user\s*[=:]\s*"?([A-Za-z0-9_-]+)"?`).FindAllStringSubmatch(string(auth), -1) {
		users[m[1]] = true
	}
	for _, name := range serviceNames() {
		if !users[name] {
			t.Errorf("%s has no user %q, the NATS_USER of that service", authConf, name)
		}
	}
}

// atLeastMinor reports whether an image tag like "2.12-alpine" or "2.12.1"
// is version major.minor or later.
func atLeastMinor(tag string, major, minor int) bool {
	var gotMajor, gotMinor int
	if _, err := fmt.Sscanf(tag, "%d.%d", &gotMajor, &gotMinor); err != nil {
		return false
	}
	return slices.Compare([]int{gotMajor, gotMinor}, []int{major, minor}) >= 0
}
