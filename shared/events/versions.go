package events

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
)

// SchemaBase is where the $id of every event schema lives:
// SchemaBase + "<name>/v<N>.json", for example
// https://schemas.eventshop.dev/events/order.created/v1.json.
const SchemaBase = "https://schemas.eventshop.dev/events/"

var eventSchemaFile = regexp.MustCompile(`^((?:order|inventory|payment|notification)\.[a-z]+)\.v([0-9]+)\.json$`)

// contractFile says who produces and reads each type and which version
// producers emit (docs/releasing.md). tools/schemacompat reads the same
// file, at this tree and at the previous release.
//
//go:embed contract.json
var contractFile []byte

// Contract is the content of contract.json.
type Contract struct {
	// Produce is the version of each type producers emit: a version is
	// produced one release after every service reads it.
	Produce  map[Type]int `json:"produce"`
	Services []Party      `json:"services"`
}

// Party is one service in the contract: the types it publishes and the
// types it decodes (as a consumer or by a read of a stored event). "*"
// reads every type.
type Party struct {
	Name     string `json:"name"`
	Produces []Type `json:"produces"`
	Reads    []Type `json:"reads"`
}

// Produces reports whether the named service publishes events of type t.
func (c Contract) Produces(service string, t Type) bool {
	for _, p := range c.Services {
		if p.Name == service {
			return slices.Contains(p.Produces, t)
		}
	}
	return false
}

// Reads reports whether the named service decodes events of type t, as a
// consumer or by a read of a stored event ("*" reads every type).
func (c Contract) Reads(service string, t Type) bool {
	for _, p := range c.Services {
		if p.Name == service {
			return slices.Contains(p.Reads, t) || slices.Contains(p.Reads, "*")
		}
	}
	return false
}

// ContractOf returns the contract this build was made with.
func ContractOf() Contract { return contract }

// dataSchemas maps every event dataschema this build knows to its type and
// version, and producedSchema each type to the version producers name
// (contract.json). Both come from the embedded schema files' names, so the
// hot path needs no compiled schema; TestSchemaIDsFollowTheirFileNames
// holds every file's $id to the URI derived here.
var (
	contract                    = mustContract()
	dataSchemas, producedSchema = scanSchemas(contract)
)

// schemaVersion is one known dataschema: its type and version.
type schemaVersion struct {
	typ     Type
	version int
}

func mustContract() Contract {
	var c Contract
	if err := json.Unmarshal(contractFile, &c); err != nil {
		panic(fmt.Sprintf("embedded contract.json: %v", err))
	}
	return c
}

func scanSchemas(c Contract) (map[string]schemaVersion, map[Type]string) {
	known, produced := map[string]schemaVersion{}, map[Type]string{}
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
		uri := SchemaURI(t, v)
		known[uri] = schemaVersion{t, v}
		if c.Produce[t] == v {
			produced[t] = uri
		}
	}
	for t, v := range c.Produce {
		if _, ok := produced[t]; !ok {
			panic(fmt.Sprintf("contract.json: producers emit %s v%d, and no schema file holds it", t, v))
		}
	}
	return known, produced
}

// SchemaURI is the dataschema of version v of type t.
func SchemaURI(t Type, v int) string {
	return SchemaBase + string(t[len("shop."):]) + "/v" + strconv.Itoa(v) + ".json"
}

// ProducedVersion is the version of t producers emit: a producer fills a
// field that version has (and an older one lacks) only when it emits it.
func ProducedVersion(t Type) int { return dataSchemas[producedSchema[t]].version }

// Version returns the version of the envelope's dataschema (0 for one this
// build does not know; Decode refuses those).
func (e Envelope) Version() int { return dataSchemas[e.DataSchema].version }
