// Command schemacompat is the compatibility gate of the event schemas
// (make check-schemas, in CI). Every version of an event type must accept
// the events of the versions before it, and shared/events/contract.json
// must name one producer and some reader of each type and a produced
// version the previous release already reads (tools/schemacompat). It
// prints the tables of the types, their versions, producers and readers,
// and exits 1 on any break.
//
//	schemacompat [-previous REV] [-schemas DIR] [-golden DIR] [-contract FILE]
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
	contractFile := fs.String("contract", "shared/events/contract.json", "who produces and reads each type, and the produced versions")
	previous := fs.String("previous", "", "git revision of the previous release: the produced versions must be ones it reads (empty: not checked)")
	_ = fs.Parse(os.Args[1:]) // ExitOnError
	if err := run(*schemas, *golden, *contractFile, *previous); err != nil {
		fmt.Fprintln(os.Stderr, "schemacompat:", err)
		os.Exit(1)
	}
}

func run(schemas, golden, contractFile, previous string) error {
	rep, err := schemacompat.Check(os.DirFS(schemas), os.DirFS(golden))
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(contractFile)
	if err != nil {
		return err
	}
	c, err := schemacompat.ParseContract(raw)
	if err != nil {
		return err
	}
	var prev *schemacompat.Release
	if previous != "" {
		r, err := schemacompat.ReleaseAt(".", previous)
		if err != nil {
			return err
		}
		prev = &r
	}
	rep.Write(os.Stdout)
	fmt.Println()
	schemacompat.WriteContract(os.Stdout, c, rep.Versions, prev)
	problems := schemacompat.CheckContract(c, rep.Versions, prev)
	for _, p := range problems {
		fmt.Println(p)
	}
	switch {
	case !rep.OK():
		return fmt.Errorf("a schema version refuses events of an earlier one (docs/releasing.md, \"Compatibility\")")
	case len(problems) > 0:
		return fmt.Errorf("%d problems with shared/events/contract.json (docs/releasing.md, \"Compatibility\")", len(problems))
	}
	return nil
}
