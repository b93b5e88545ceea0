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

// SchemaFile parses the name of an event schema file (or of its golden
// sample), "<name>.v<N>.json" such as "order.created.v1.json", into the
// event's name ("order.created") and version; ok is false for any other
// file.
func SchemaFile(file string) (name string, version int, ok bool) {
	m := eventSchemaFile.FindStringSubmatch(file)
	if m == nil {
		return "", 0, false
	}
	v, err := strconv.Atoi(m[2])
	return m[1], v, err == nil
}

func scanSchemas() (map[string]Type, map[Type]string) {
	known, current := map[string]Type{}, map[Type]string{}
	newest := map[Type]int{}
	entries, err := fs.ReadDir(schemaFS, "schemas")
	if err != nil {
		panic(fmt.Sprintf("embedded schemas: %v", err))
	}
	for _, e := range entries {
		name, v, ok := SchemaFile(e.Name())
		if !ok {
			continue // the envelope and the HTTP request bodies
		}
		t := Type("shop." + name)
		uri := SchemaBase + name + "/v" + strconv.Itoa(v) + ".json"
		known[uri] = t
		if v > newest[t] {
			newest[t], current[t] = v, uri
		}
	}
	return known, current
}
