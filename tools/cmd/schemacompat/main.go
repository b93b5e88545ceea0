// Command schemacompat is the compatibility gate of the event schemas
// (make check-schemas, in CI): every version of an event type must accept
// the events of the versions before it (tools/schemacompat). It prints a
// table of the types and their versions and exits 1 on any break.
//
//	schemacompat [-schemas shared/events/schemas] [-golden shared/events/testdata/golden]
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/eventshop/tools/schemacompat"
)

func main() {
	fs := flag.NewFlagSet("schemacompat", flag.ExitOnError)
	schemas := fs.String("schemas", "shared/events/schemas", "directory of the event schemas (<type>.v<N>.json)")
	golden := fs.String("golden", "shared/events/testdata/golden", "directory of one golden event per type and version")
	_ = fs.Parse(os.Args[1:]) // ExitOnError
	rep, err := schemacompat.Check(os.DirFS(*schemas), os.DirFS(*golden))
	if err != nil {
		fmt.Fprintln(os.Stderr, "schemacompat:", err)
		os.Exit(2)
	}
	rep.Write(os.Stdout)
	if !rep.OK() {
		fmt.Fprintln(os.Stderr, "schemacompat: a schema version refuses events of an earlier one (docs/releasing.md, \"Compatibility\")")
		os.Exit(1)
	}
}
