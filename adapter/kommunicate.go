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
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/bridge"
)

// KommunicateAPI posts messages into conversations through Kommunicate's
// REST API, as the bot: the delivery of answers given after the webhook's
// window.
type KommunicateAPI struct {
	base   string
	apiKey string
	hc     *http.Client
}

// NewKommunicateAPI returns a client for base (https://services.kommunicate.io)
// with the account's API key.
func NewKommunicateAPI(base, apiKey string) *KommunicateAPI {
	return &KommunicateAPI{base: strings.TrimRight(base, "/"), apiKey: apiKey, hc: &http.Client{Timeout: 15 * time.Second}}
}

// DeliveryKey is the metadata key each message sent through the API
// carries: the delivery's mark, by which a send whose outcome is unknown
// is looked for in the conversation before it is sent again.
const DeliveryKey = "kommbridge_delivery"

// apiMessage is the body of POST /rest/ws/message/v2/send. Nested metadata
// (a rich payload) must be a JSON-encoded string there.
type apiMessage struct {
	GroupID      string            `json:"groupId"`
	FromUserName string            `json:"fromUserName"`
	Message      string            `json:"message"`
	Metadata     map[string]string `json:"metadata,omitempty"`
}

// APIBodies renders m as the send API wants it: one body per Kommunicate
// message it makes (its text, then each rich part), fitted to channel,
// the i-th marked mark/i when mark is set. Every metadata key of the
// webhook answer is sent, its value as a string (nested values
// JSON-encoded), so the two paths cannot drift apart.
func APIBodies(mark, botID, groupID, channel string, m kommbridge.Message) ([][]byte, error) {
	msgs := Render(kommbridge.Reply{Messages: []kommbridge.Message{m}, Channel: channel})
	out := make([][]byte, 0, len(msgs))
	for i, km := range msgs {
		body := apiMessage{GroupID: groupID, FromUserName: botID, Message: km.Message}
		if km.Metadata != nil {
			md, err := stringValues(km.Metadata)
			if err != nil {
				return nil, err
			}
			body.Metadata = md
		}
		if mark != "" {
			if body.Metadata == nil {
				body.Metadata = map[string]string{}
			}
			body.Metadata[DeliveryKey] = mark + "/" + strconv.Itoa(i)
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

// Send posts m (as one or more Kommunicate messages, in order) as the
// bot, mark naming this delivery (see DeliveryKey). A send is repeated,
// after a backoff that honours Retry-After, while ctx allows, only when it
// surely did not arrive: the connection failed before the request was
// written, or Kommunicate answered 429 or 5xx. A send that went out and
// got no answer is looked for in the conversation's latest messages and
// sent again only if it is not there (ErrUnsure when that cannot be
// told: bridge.ErrDeliveryUnsure). A 4xx is final.
func (k *KommunicateAPI) Send(ctx context.Context, mark, botID, groupID, channel string, m kommbridge.Message) error {
	bodies, err := APIBodies(mark, botID, groupID, channel, m)
	if err != nil {
		return err
	}
	for i, body := range bodies {
		if err := k.send(ctx, mark+"/"+strconv.Itoa(i), botID, groupID, body); err != nil {
			return err
		}
	}
	return nil
}

// sendOutcome is what one post of a message came to.
type sendOutcome int

const (
	sent    sendOutcome = iota
	notSent             // surely not delivered: worth another try
	unsure              // the request went out; no answer came
	refused             // 4xx: final
)

func (k *KommunicateAPI) send(ctx context.Context, mark, botID, groupID string, body []byte) error {
	for try := 0; ; try++ {
		outcome, wait, err := k.post(ctx, body)
		if outcome == unsure {
			there, lerr := k.delivered(ctx, botID, groupID, mark)
			switch {
			case lerr != nil:
				return fmt.Errorf("kommunicate: %w (%v; looking for it: %v)", bridge.ErrDeliveryUnsure, err, lerr)
			case there:
				return nil
			}
			outcome = notSent // looked for, and not there
		}
		switch outcome {
		case sent:
			return nil
		case refused:
			return err
		}
		wait = max(wait, backoff(try))
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return fmt.Errorf("kommunicate: send: gave up before the answer's deadline: %w", err)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("kommunicate: send: %w (last: %v)", ctx.Err(), err)
		}
	}
}

// backoff is exponential with full jitter from 250ms, up to 10s.
func backoff(try int) time.Duration {
	ceiling := min(250*time.Millisecond<<min(try, 6), 10*time.Second)
	return time.Duration(rand.Int64N(int64(ceiling))) + 50*time.Millisecond
}

// maxAPIAnswer bounds the bytes read of an answer of Kommunicate's API.
const maxAPIAnswer = 1 << 20

func (k *KommunicateAPI) post(ctx context.Context, body []byte) (sendOutcome, time.Duration, error) {
	var wrote atomic.Bool
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(true) }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodPost, k.base+"/rest/ws/message/v2/send", bytes.NewReader(body))
	if err != nil {
		return refused, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Api-Key", k.apiKey)
	resp, err := k.hc.Do(req)
	if err != nil {
		err = fmt.Errorf("kommunicate: send: %w", err)
		if wrote.Load() {
			return unsure, 0, err
		}
		return notSent, 0, err
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
	if k.apiKey != "" {
		text = bytes.ReplaceAll(text, []byte(k.apiKey), []byte("[redacted]"))
	}
	msg := kommbridge.Clip(strings.Join(strings.Fields(string(text)), " "), 300)
	switch {
	case resp.StatusCode < 300:
		return sent, 0, nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return notSent, retryAfter(resp.Header), fmt.Errorf("kommunicate: send: HTTP %d: %s", resp.StatusCode, msg)
	}
	return refused, 0, fmt.Errorf("kommunicate: send: HTTP %d: %s (check kommunicate.api_key)", resp.StatusCode, msg)
}

// retryAfter is the wait an answer asks for (seconds or a date), 0 when
// none.
func retryAfter(h http.Header) time.Duration {
	v := h.Get("Retry-After")
	if s, err := strconv.ParseFloat(v, 64); err == nil && s > 0 {
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// delivered reports whether a message marked mark is among the
// conversation's latest messages (GET /rest/ws/message/list, as the bot).
// The list's shape is read leniently: any message object whose metadata
// carries the mark counts.
func (k *KommunicateAPI) delivered(ctx context.Context, botID, groupID, mark string) (bool, error) {
	u := k.base + "/rest/ws/message/list?startIndex=0&pageSize=50&groupId=" + url.QueryEscape(groupID)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Api-Key", k.apiKey)
	req.Header.Set("Of-User-Id", botID)
	resp, err := k.hc.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("message list: HTTP %d", resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIAnswer+1))
	if err != nil {
		return false, err
	}
	if len(data) > maxAPIAnswer {
		return false, errors.New("message list: over 1 MB")
	}
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		return false, fmt.Errorf("message list: %w", err)
	}
	return carries(doc, mark), nil
}

// carries reports whether v holds an object whose metadata (an object, or
// a string holding one) has DeliveryKey set to mark.
func carries(v any, mark string) bool {
	switch x := v.(type) {
	case map[string]any:
		switch md := x["metadata"].(type) {
		case map[string]any:
			if md[DeliveryKey] == mark {
				return true
			}
		case string:
			var m map[string]any
			if json.Unmarshal([]byte(md), &m) == nil && m[DeliveryKey] == mark {
				return true
			}
		}
		for _, e := range x {
			if carries(e, mark) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if carries(e, mark) {
				return true
			}
		}
	}
	return false
}
