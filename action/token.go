package action

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// A Pending action waits for the user's Yes: the action and its exact
// arguments, the conversation and user it was offered in, when the offer
// ends, and a nonce that makes it single-use.
type Pending struct {
	Action  string          `json:"a"`
	Args    json.RawMessage `json:"g"`
	Conv    string          `json:"c"`
	User    string          `json:"u"`
	Expires int64           `json:"e"` // unix seconds
	Nonce   string          `json:"n"`
}

// Token errors: a token that is not one of ours (or was changed), and
// one past its time.
var (
	ErrForged  = errors.New("not a valid confirmation")
	ErrExpired = errors.New("the confirmation has expired")
)

// NewPending is the offer of action with args in conv to user, for ttl.
func NewPending(action string, args map[string]any, conv, user string, now time.Time, ttl time.Duration) Pending {
	g, _ := json.Marshal(args) // map keys are sorted: the same arguments, the same bytes
	n := make([]byte, 12)
	rand.Read(n)
	return Pending{Action: action, Args: g, Conv: conv, User: user, Expires: now.Add(ttl).Unix(), Nonce: base64.RawURLEncoding.EncodeToString(n)}
}

// Sign is p as the token a Yes button carries: its JSON and its
// HMAC-SHA256 under secret, each base64url.
func Sign(secret []byte, p Pending) string {
	payload, _ := json.Marshal(p)
	m := hmac.New(sha256.New, secret)
	m.Write(payload)
	return base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Open checks a token's signature and time and returns what it offers.
func Open(secret []byte, token string, now time.Time) (Pending, error) {
	var p Pending
	body, sig, ok := strings.Cut(token, ".")
	if !ok || len(token) > 4096 {
		return p, ErrForged
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(body)
	mac, err2 := base64.RawURLEncoding.DecodeString(sig)
	if err1 != nil || err2 != nil {
		return p, ErrForged
	}
	m := hmac.New(sha256.New, secret)
	m.Write(payload)
	if !hmac.Equal(mac, m.Sum(nil)) {
		return p, ErrForged
	}
	if err := json.Unmarshal(payload, &p); err != nil || p.Nonce == "" || p.Action == "" {
		return Pending{}, ErrForged
	}
	if now.Unix() > p.Expires {
		return p, ErrExpired
	}
	return p, nil
}

// Arguments are the pending action's arguments, numbers as they were
// written (an order number past 2^53 stays that number).
func (p Pending) Arguments() map[string]any {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(p.Args))
	dec.UseNumber()
	dec.Decode(&m)
	return m
}
