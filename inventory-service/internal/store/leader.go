package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// msgGetNotFound is the JetStream API error code of a missing message.
const msgGetNotFound = 10037

// leaderGet reads the last value of key through the stream's message-get
// API, which only the stream's leader answers, so the read reflects every
// write acknowledged before it. It returns jetstream.ErrKeyNotFound for a
// key never written or deleted.
func (s *Store) leaderGet(ctx context.Context, key string) ([]byte, uint64, error) {
	req, err := json.Marshal(struct {
		LastBySubject string `json:"last_by_subj"`
	}{s.putPrefix + key})
	if err != nil {
		return nil, 0, fmt.Errorf("get %s: %w", key, err)
	}
	reply, err := s.js.Conn().RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET.KV_"+Bucket, req)
	if err != nil {
		return nil, 0, fmt.Errorf("get %s: %w", key, err)
	}
	var resp struct {
		Message *struct {
			Seq     uint64 `json:"seq"`
			Headers []byte `json:"hdrs"`
			Data    []byte `json:"data"`
		} `json:"message"`
		Error *struct {
			Code        int    `json:"code"`
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return nil, 0, fmt.Errorf("get %s: decode reply: %w", key, err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrCode == msgGetNotFound:
		return nil, 0, jetstream.ErrKeyNotFound
	case resp.Error != nil:
		return nil, 0, fmt.Errorf("get %s: %s (%d/%d)", key, resp.Error.Description, resp.Error.Code, resp.Error.ErrCode)
	case resp.Message == nil:
		return nil, 0, fmt.Errorf("get %s: empty reply", key)
	case bytes.Contains(resp.Message.Headers, []byte("KV-Operation")): // a delete or purge marker
		return nil, 0, jetstream.ErrKeyNotFound
	}
	return resp.Message.Data, resp.Message.Seq, nil
}
