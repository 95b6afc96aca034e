package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strconv"
	"sync"
	"unicode/utf8"
)

// The chat request's body, built by appending: the same bytes
// json.Marshal(toOpenAI(...)) gives (the tests hold them equal), without
// copying the messages into go-openai's types or re-encoding a bot's
// schema and tools on every call. go-openai still makes the call, handles
// its errors and decodes the response: it is given a request with only
// the model, and the HTTP client it calls through (throttleDoer) sends
// this body in place of the one it encoded.

// bodyKey carries a prepared body in the request's context.
type bodyKey struct{}

func withBody(ctx context.Context, body []byte) context.Context {
	return context.WithValue(ctx, bodyKey{}, body)
}

// useBody puts the prepared body of r's context, if any, into r. The body
// is an io.NopCloser of a *bytes.Reader, which net/http knows is in
// memory: it then writes the headers and the body's start in one write.
// (A reader of its own, e.g. to reuse buffers once closed, would cost a
// write of the headers alone.)
func useBody(r *http.Request) {
	b, ok := r.Context().Value(bodyKey{}).([]byte)
	if !ok {
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.ContentLength = int64(len(b))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

// encodeBody is the chat request for r, as json.Marshal(toOpenAI(r,
// model, completionTokens)) encodes it.
func encodeBody(r Request, model string, completionTokens bool) []byte {
	tail := fixedTail(r)
	size := len(model) + len(tail) + 96
	for _, m := range r.Messages {
		size += len(m.Content) + 32
		for _, p := range m.Parts {
			size += len(p.Text) + len(p.ImageURL) + 64
		}
	}
	b := make([]byte, 0, size+size/16)
	b = append(b, `{"model":`...)
	b = appendString(b, model)
	b = append(b, `,"messages":[`...)
	for i, m := range r.Messages {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"role":`...)
		b = appendString(b, m.Role)
		switch {
		case len(m.Parts) > 0:
			b = append(b, `,"content":[`...)
			for j, p := range m.Parts {
				if j > 0 {
					b = append(b, ',')
				}
				if p.ImageURL != "" {
					b = append(b, `{"type":"image_url","image_url":{"url":`...)
					b = appendString(b, p.ImageURL)
					if p.Detail != "" {
						b = append(b, `,"detail":`...)
						b = appendString(b, p.Detail)
					}
					b = append(b, `}}`...)
					continue
				}
				b = append(b, `{"type":"text"`...)
				if p.Text != "" {
					b = append(b, `,"text":`...)
					b = appendString(b, p.Text)
				}
				b = append(b, '}')
			}
			b = append(b, ']')
		case m.Content != "" && m.Role == RoleSystem:
			b = append(b, `,"content":`...)
			b = appendSystem(b, m.Content)
		case m.Content != "":
			b = append(b, `,"content":`...)
			b = appendString(b, m.Content)
		}
		b = append(b, '}')
	}
	b = append(b, ']')
	if r.MaxTokens != 0 {
		if completionTokens {
			b = append(b, `,"max_completion_tokens":`...)
		} else {
			b = append(b, `,"max_tokens":`...)
		}
		b = strconv.AppendInt(b, int64(r.MaxTokens), 10)
	}
	if r.Temperature != nil {
		t := *r.Temperature
		if t == 0 {
			t = math.SmallestNonzeroFloat32 // as toOpenAI: go-openai omits a zero
		}
		b = append(b, `,"temperature":`...)
		b = appendFloat32(b, t)
	}
	b = append(b, `,"stream":false`...)
	b = append(b, tail...)
	return append(b, '}')
}

// tailKey names a request's fixed part: its response format, schema,
// tools and logprobs, which come from a bot's contract and stay the same
// call after call (the schema and tools by identity).
type tailKey struct {
	format   ResponseFormat
	name     string
	schema   *byte
	nschema  int
	tools    *Tool
	ntools   int
	logprobs bool
}

var tails struct {
	sync.RWMutex
	m map[tailKey][]byte
}

// fixedTail is what follows "stream":false in r's body, encoded by
// go-openai's types once per contract and kept.
func fixedTail(r Request) []byte {
	k := tailKey{format: r.Format, name: r.SchemaName, nschema: len(r.Schema), ntools: len(r.Tools), logprobs: r.LogProbs}
	if len(r.Schema) > 0 {
		k.schema = &r.Schema[0]
	}
	if len(r.Tools) > 0 {
		k.tools = &r.Tools[0]
	}
	tails.RLock()
	t, ok := tails.m[k]
	tails.RUnlock()
	if ok {
		return t
	}
	full, err := json.Marshal(toOpenAI(Request{Format: r.Format, SchemaName: r.SchemaName, Schema: r.Schema, Tools: r.Tools, LogProbs: r.LogProbs}, "", false))
	if err != nil {
		// An invalid schema or tool: go-openai would fail the same way;
		// send what the request holds and let the endpoint say so.
		full = []byte(`{"stream":false}`)
	}
	const after = `"stream":false`
	i := bytes.Index(full, []byte(after))
	t = bytes.Clone(full[i+len(after) : len(full)-1])
	tails.Lock()
	if tails.m == nil || len(tails.m) >= 1024 { // contracts replaced by reloads go
		tails.m = map[tailKey][]byte{}
	}
	tails.m[k] = t
	tails.Unlock()
	return t
}

// appendFloat32 encodes f as encoding/json does a float32.
func appendFloat32(b []byte, f float32) []byte {
	abs := math.Abs(float64(f))
	format := byte('f')
	if abs != 0 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, float64(f), format, -1, 32)
	if format == 'e' {
		// e-09 -> e-9, as encoding/json writes it.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// plain holds the ASCII bytes encoding/json writes as they are.
var plain = func() (t [utf8.RuneSelf]bool) {
	for c := range t {
		t[c] = c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// systems keeps the encoded system messages: a bot's is the same text call
// after call (its prompt and the contract, a few KB), and encoding it was
// the body's largest part.
var systems struct {
	sync.RWMutex
	m     map[string][]byte
	bytes int
}

// The systems kept: at most 256, 4 MB in all. Prompts with values of their
// own per conversation (a user's name) are each new: past the bound the
// map starts over, as it does when reloads replace the prompts.
const maxSystems, maxSystemBytes = 256, 4 << 20

// appendSystem appends s, a system message's content, encoded as
// appendString does, from systems when it is there.
func appendSystem(b []byte, s string) []byte {
	systems.RLock()
	enc, ok := systems.m[s]
	systems.RUnlock()
	if ok {
		return append(b, enc...)
	}
	enc = appendString(nil, s)
	systems.Lock()
	if systems.m == nil || len(systems.m) >= maxSystems || systems.bytes+len(s)+len(enc) > maxSystemBytes {
		systems.m, systems.bytes = map[string][]byte{}, 0
	}
	if len(s)+len(enc) <= maxSystemBytes/16 {
		systems.m[s] = enc
		systems.bytes += len(s) + len(enc)
	}
	systems.Unlock()
	return append(b, enc...)
}

// appendString encodes s as encoding/json does: HTML-safe, invalid UTF-8
// as U+FFFD, U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if plain[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
