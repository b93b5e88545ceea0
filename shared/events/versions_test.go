package events

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// A v1 event decodes into the one Go payload of its type (the upcast:
// the v2 field stays empty), a v2 event keeps its address, and a v1 event
// carrying a field only v2 has is refused by the schema and the decoder
// alike.
func TestOlderVersionsReadAsTheNewest(t *testing.T) {
	t.Parallel()
	samples := goldens(t)
	for _, typ := range []Type{OrderCreated, OrderConfirmed} {
		v1, v2 := samples[SchemaURI(typ, 1)], samples[SchemaURI(typ, 2)]
		p1, p2 := shippingAddress(t, v1), shippingAddress(t, v2)
		if p1 != nil {
			t.Errorf("%s v1 decoded with a shipping address %+v", typ, p1)
		}
		if p2 == nil || p2.Country != "GB" || p2.City != "London" {
			t.Errorf("%s v2: shipping address %+v, want the sample's", typ, p2)
		}
		// v2's data under v1's dataschema: a field v1 does not have.
		forged := []byte(strings.Replace(string(v2), "/v2.json", "/v1.json", 1))
		if _, err := DefaultRegistry().Parse(forged); err == nil {
			t.Errorf("%s: the v1 schema takes a shipping address", typ)
		}
		err := decodeAll(forged)
		if !errors.Is(err, ErrInvalidEvent) || !strings.Contains(err.Error(), "not a field of v1") {
			t.Errorf("%s: decoding v1 with a shipping address: %v, want it refused as not a field of v1", typ, err)
		}
	}
}

func shippingAddress(t *testing.T, raw []byte) *Address {
	t.Helper()
	env, err := Decode("", raw)
	if err != nil {
		t.Fatal(err)
	}
	switch env.Type {
	case OrderCreated:
		var d OrderCreatedData
		if err := env.DecodeData(&d); err != nil {
			t.Fatal(err)
		}
		return d.ShippingAddress
	default:
		var d OrderConfirmedData
		if err := env.DecodeData(&d); err != nil {
			t.Fatal(err)
		}
		return d.ShippingAddress
	}
}

// A producer emits the version contract.json names, and refuses a
// payload with a field that version does not have rather than send an
// event its readers would refuse.
func TestProducersEmitTheContractsVersion(t *testing.T) {
	t.Parallel()
	for typ, v := range ContractOf().Produce {
		if got := ProducedVersion(typ); got != v {
			t.Errorf("%s: ProducedVersion = %d, contract.json says %d", typ, got, v)
		}
	}
	p := &Publisher{source: "order-service", newID: func() string { return "e-1" }, now: time.Now}
	d := OrderConfirmedData{OrderID: "o-1", CustomerID: "c-1", TotalCents: 100, Currency: "USD",
		ShippingAddress: &Address{Name: "A", Line1: "1 Road", City: "Town", PostalCode: "1", Country: "FR"}}
	env, _, err := p.Build(OrderConfirmed, "o-1", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", d)
	switch ProducedVersion(OrderConfirmed) {
	case 1:
		if !errors.Is(err, ErrInvalidEvent) {
			t.Errorf("v1 producer built an event with a shipping address: %v", err)
		}
	default:
		if err != nil || env.DataSchema != SchemaURI(OrderConfirmed, ProducedVersion(OrderConfirmed)) {
			t.Errorf("Build = %s, %v", env.DataSchema, err)
		}
	}
}
