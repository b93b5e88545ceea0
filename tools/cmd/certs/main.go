// Command certs makes the TLS material of the NATS servers (tools/certs):
// a private CA and a server certificate for the names the servers are
// reached by, ECDSA P-256, with only Go:
//
//	go run ./tools/cmd/certs -out .data/nats-tls
//
// then, for Kubernetes (deployments/k8s/README.md):
//
//	kubectl -n eventshop create secret generic eventshop-nats-tls \
//	  --from-file=tls.crt=.data/nats-tls/tls.crt --from-file=tls.key=.data/nats-tls/tls.key
//	kubectl -n eventshop create secret generic eventshop-nats-ca \
//	  --from-file=ca.crt=.data/nats-tls/ca.crt
//
// ca.key signs nothing else: keep it offline (or delete it and make a new
// CA at the next rotation).
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/eventshop/tools/certs"
)

func main() {
	out := flag.String("out", ".data/nats-tls", "directory to write ca.crt, ca.key, tls.crt, tls.key into (must not hold them yet)")
	names := flag.String("names", strings.Join(certs.DefaultNames, ","), "comma-separated DNS names and IP addresses of the server certificate")
	days := flag.Int("days", 365, "validity of the server certificate, in days (the CA: ten times that)")
	flag.Parse()
	d := time.Duration(*days) * 24 * time.Hour
	err := certs.Make(*out, certs.Options{Names: strings.Split(*names, ","), Now: time.Now(), CAFor: 10 * d, CertFor: d})
	if err != nil {
		fmt.Fprintln(os.Stderr, "certs:", err)
		os.Exit(1)
	}
	fmt.Printf("wrote %s/{ca.crt,ca.key,tls.crt,tls.key}\n", *out)
}
