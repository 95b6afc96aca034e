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

// APIBody renders m as the send API wants it.
func APIBody(botID, groupID string, m kommbridge.Message) ([]byte, error) {
	out := apiMessage{GroupID: groupID, FromUserName: botID, Message: m.Text}
	if md := metadata(m); md != nil {
		out.Metadata = map[string]string{}
		if md.ContentType != "" {
			out.Metadata["contentType"] = md.ContentType
			out.Metadata["templateId"] = md.TemplateID
			payload, err := json.Marshal(md.Payload)
			if err != nil {
				return nil, err
			}
			out.Metadata["payload"] = string(payload)
		}
		if md.AssignTo != nil {
			out.Metadata["KM_ASSIGN_TO"] = *md.AssignTo
		}
		if md.AssignTeam != "" {
			out.Metadata["KM_ASSIGN_TEAM"] = md.AssignTeam
		}
	}
	return json.Marshal(out)
}

// Send posts m, retrying network errors and 5xx with backoff while ctx
// allows; a 4xx is final.
func (k *KommunicateAPI) Send(ctx context.Context, botID, groupID string, m kommbridge.Message) error {
	body, err := APIBody(botID, groupID, m)
	if err != nil {
		return err
	}
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
