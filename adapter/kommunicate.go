package adapter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/kommbridge/kommbridge"
)

// KommunicateAPI posts messages into conversations through Kommunicate's
// REST API, as the bot: the delivery of answers given after the webhook's
// window.
type KommunicateAPI struct {
	base   string
	apiKey string
	hc     *http.Client
	// MaxTries bounds the attempts per message [5].
	MaxTries int
}

// NewKommunicateAPI returns a client for base (https://services.kommunicate.io)
// with the account's API key.
func NewKommunicateAPI(base, apiKey string) *KommunicateAPI {
	return &KommunicateAPI{base: strings.TrimRight(base, "/"), apiKey: apiKey, hc: &http.Client{Timeout: 15 * time.Second}, MaxTries: 5}
}

// apiMessage is the body of POST /rest/ws/message/v2/send. Nested metadata
// (a rich payload) must be a JSON-encoded string there.
type apiMessage struct {
	GroupID      string            `json:"groupId"`
	FromUserName string            `json:"fromUserName"`
	Message      string            `json:"message"`
	Metadata     map[string]string `json:"metadata,omitempty"`
}

// APIBodies renders m as the send API wants it: one body per Kommunicate
// message it makes (its text, then each rich part), fitted to channel.
// Every metadata key of the webhook answer is sent, its value as a string
// (nested values JSON-encoded), so the two paths cannot drift apart.
func APIBodies(botID, groupID, channel string, m kommbridge.Message) ([][]byte, error) {
	msgs := Render(kommbridge.Reply{Messages: []kommbridge.Message{m}, Channel: channel})
	out := make([][]byte, 0, len(msgs))
	for _, km := range msgs {
		body := apiMessage{GroupID: groupID, FromUserName: botID, Message: km.Message}
		if km.Metadata != nil {
			md, err := stringValues(km.Metadata)
			if err != nil {
				return nil, err
			}
			body.Metadata = md
		}
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// stringValues is md's JSON object with every value a string: strings as
// they are, anything else as its JSON text.
func stringValues(md *Metadata) (map[string]string, error) {
	raw, err := json.Marshal(md)
	if err != nil {
		return nil, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(fields))
	for k, v := range fields {
		out[k] = text(v)
	}
	return out, nil
}

// Send posts m (as one or more Kommunicate messages, in order), retrying
// network errors and 5xx with backoff while ctx allows; a 4xx is final.
func (k *KommunicateAPI) Send(ctx context.Context, botID, groupID, channel string, m kommbridge.Message) error {
	bodies, err := APIBodies(botID, groupID, channel, m)
	if err != nil {
		return err
	}
	for _, body := range bodies {
		if err := k.send(ctx, body); err != nil {
			return err
		}
	}
	return nil
}

func (k *KommunicateAPI) send(ctx context.Context, body []byte) error {
	var last error
	for try := 0; try < max(1, k.MaxTries); try++ {
		if try > 0 {
			wait := time.Duration(rand.Int64N(int64(250*time.Millisecond<<min(try, 5)))) + 50*time.Millisecond
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("kommunicate: send: %w (last: %v)", ctx.Err(), last)
			}
		}
		retry, err := k.post(ctx, body)
		if err == nil {
			return nil
		}
		last = err
		if !retry {
			return err
		}
	}
	return last
}

func (k *KommunicateAPI) post(ctx context.Context, body []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, k.base+"/rest/ws/message/v2/send", bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Api-Key", k.apiKey)
	resp, err := k.hc.Do(req)
	if err != nil {
		return ctx.Err() == nil, fmt.Errorf("kommunicate: send: %w", err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
	switch {
	case resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return true, fmt.Errorf("kommunicate: send: HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(text))
	}
	return false, errors.New("kommunicate: send: HTTP " + fmt.Sprint(resp.StatusCode) + ": " + string(bytes.TrimSpace(text)) + " (check kommunicate.api_key)")
}
