// Package view holds the bodies of the dead-letter admin API
// (/admin/dlq), written once: the deadletter package answers with them and
// shared/api names them for clients (api.DeadLetter is view.Letter), so
// the server and its clients cannot drift apart. Like shared/api, it needs
// nothing but the standard library, so that a client importing it brings
// in no server code.
package view

import (
	"encoding/json"
	"time"
)

// Letter is a dead letter as the admin API shows it; Headers, Data and
// DataBase64 only when read one by one.
type Letter struct {
	Sequence         uint64              `json:"sequence"`
	Subject          string              `json:"subject"`
	Consumer         string              `json:"consumer"`
	OriginalStream   string              `json:"original_stream"`
	OriginalSequence uint64              `json:"original_sequence"`
	OriginalSubject  string              `json:"original_subject"`
	Deliveries       uint64              `json:"deliveries"`
	Error            string              `json:"error"`
	DeadLetteredAt   time.Time           `json:"dead_lettered_at"`
	OrderID          string              `json:"order_id,omitempty"`
	TraceID          string              `json:"trace_id,omitempty"`
	OriginalMissing  bool                `json:"original_missing,omitempty"`
	Headers          map[string][]string `json:"headers,omitempty"`
	// Data is the payload when it is JSON, DataBase64 when it is not.
	Data       json.RawMessage `json:"data,omitempty"`
	DataBase64 string          `json:"data_base64,omitempty"`
}

// List is the body of GET /admin/dlq.
type List struct {
	Stream      string   `json:"stream"`
	Count       int      `json:"count"`
	DeadLetters []Letter `json:"dead_letters"`
}

// Replay is the outcome of one replay.
type Replay struct {
	Sequence        uint64 `json:"sequence"`
	Consumer        string `json:"consumer"`
	OriginalSubject string `json:"original_subject"`
	ReplaySequence  uint64 `json:"replay_sequence"`
	Duplicate       bool   `json:"duplicate"`
}

// Bulk is the outcome of a replay or discard by filter.
type Bulk struct {
	Replayed  []Replay  `json:"replayed,omitempty"`
	Discarded []Letter  `json:"discarded,omitempty"`
	Failed    []Failure `json:"failed"`
}

// Failure is a letter a bulk action left as it was.
type Failure struct {
	Sequence uint64 `json:"sequence"`
	Error    string `json:"error"`
}
