package natsconn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// msgGetNotFound is the JetStream API error code of a missing message.
const msgGetNotFound = 10037

// Last returns the last message on subject in the stream name, or an error
// wrapping jetstream.ErrMsgNotFound. It reads by direct get, which any
// replica of a replicated stream may answer, and a replica may lag behind
// writes already acknowledged. So a miss on a replicated stream is asked
// again of the stream's leader (LeaderLast): a message that an event seen
// by the caller proves stored is never reported missing.
func (s *Streams) Last(ctx context.Context, name, subject string) (*jetstream.RawStreamMsg, error) {
	h, err := s.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	msg, err := h.GetLastMsgForSubject(ctx, subject)
	cfg := h.CachedInfo().Config
	if !errors.Is(err, jetstream.ErrMsgNotFound) || !cfg.AllowDirect || cfg.Replicas < 2 {
		return msg, err
	}
	return LeaderLast(ctx, s.js.Conn(), name, subject)
}

// LeaderLast reads the last message on subject in stream through the
// stream's message-get API ($JS.API.STREAM.MSG.GET), which only the
// stream's leader answers, so the read reflects every write acknowledged
// before it. A subject with no message gives an error wrapping
// jetstream.ErrMsgNotFound.
func LeaderLast(ctx context.Context, nc *nats.Conn, stream, subject string) (*jetstream.RawStreamMsg, error) {
	req, err := json.Marshal(struct {
		LastBySubject string `json:"last_by_subj"`
	}{subject})
	if err != nil {
		return nil, fmt.Errorf("get %s from %s: %w", subject, stream, err)
	}
	reply, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+stream, req)
	if err != nil {
		return nil, fmt.Errorf("get %s from %s: %w", subject, stream, err)
	}
	var resp struct {
		Message *struct {
			Subject string    `json:"subject"`
			Seq     uint64    `json:"seq"`
			Headers []byte    `json:"hdrs"`
			Data    []byte    `json:"data"`
			Time    time.Time `json:"time"`
		} `json:"message"`
		Error *struct {
			Code        int    `json:"code"`
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return nil, fmt.Errorf("get %s from %s: decode reply: %w", subject, stream, err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrCode == msgGetNotFound:
		return nil, fmt.Errorf("get %s from %s: %w", subject, stream, jetstream.ErrMsgNotFound)
	case resp.Error != nil:
		return nil, fmt.Errorf("get %s from %s: %s (%d/%d)", subject, stream, resp.Error.Description, resp.Error.Code, resp.Error.ErrCode)
	case resp.Message == nil:
		return nil, fmt.Errorf("get %s from %s: empty reply", subject, stream)
	}
	m := resp.Message
	return &jetstream.RawStreamMsg{Subject: m.Subject, Sequence: m.Seq, Header: parseHeader(m.Headers), Data: m.Data, Time: m.Time}, nil
}

// parseHeader reads a stored message's header block ("NATS/1.0" and then
// "Key: value" lines), keeping the keys' case as nats.Header does.
func parseHeader(raw []byte) nats.Header {
	if len(raw) == 0 {
		return nil
	}
	h := nats.Header{}
	lines := strings.Split(string(bytes.TrimRight(raw, "\r\n")), "\r\n")
	for _, line := range lines[1:] {
		k, v, ok := strings.Cut(line, ":")
		if !ok || k == "" {
			continue
		}
		h[k] = append(h[k], strings.TrimSpace(v))
	}
	return h
}
