package events

import (
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
)

// SchemaBase is where the $id of every event schema lives:
// SchemaBase + "<name>/v<N>.json", for example
// https://schemas.eventshop.dev/events/order.created/v1.json.
const SchemaBase = "https://schemas.eventshop.dev/events/"

var eventSchemaFile = regexp.MustCompile(`^((?:order|inventory|payment|notification)\.[a-z]+)\.v([0-9]+)\.json$`)

// dataSchemas maps every event dataschema this build knows to its type, and
// currentSchema each type to the newest version, the one producers name.
// Both come from the embedded schema files' names, so the hot path needs no
// compiled schema; TestSchemaIDsFollowTheirFileNames holds every file's $id
// to the URI derived here.
var dataSchemas, currentSchema = scanSchemas()

func scanSchemas() (map[string]Type, map[Type]string) {
	known, current := map[string]Type{}, map[Type]string{}
	newest := map[Type]int{}
	entries, err := fs.ReadDir(schemaFS, "schemas")
	if err != nil {
		panic(fmt.Sprintf("embedded schemas: %v", err))
	}
	for _, e := range entries {
		m := eventSchemaFile.FindStringSubmatch(e.Name())
		if m == nil {
			continue // the envelope and the HTTP request bodies
		}
		t := Type("shop." + m[1])
		v, _ := strconv.Atoi(m[2])
		uri := SchemaBase + m[1] + "/v" + m[2] + ".json"
		known[uri] = t
		if v > newest[t] {
			newest[t], current[t] = v, uri
		}
	}
	return known, current
}
