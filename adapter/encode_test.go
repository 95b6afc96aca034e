package adapter_test

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/adapter"
)

// EncodeEvent writes what DecodeEvent reads back: every field kommbridge
// reads, for every kind of event.
func TestEncodeEventRoundTrip(t *testing.T) {
	at := time.UnixMilli(1_800_000_000_000)
	for _, ev := range []kommbridge.Event{
		{BotID: "b", Key: "k1", UserID: "u", ConversationID: "42", Text: "Where is my order?", Context: map[string]string{"kmUserLocale": "de", "plan": "Pro"}},
		{BotID: "b", Key: "k2", ConversationID: "42", Name: kommbridge.EventWelcome, Context: map[string]string{"name": "Asha"}},
		{BotID: "b", Key: "k3", ConversationID: "42", Text: "Talk to human", TalkToHuman: true},
		{BotID: "b", Key: "k4", ConversationID: "42", Text: "Returns", Clicked: "quick_reply"},
		{BotID: "b", Key: "k5", ConversationID: "42", Text: "Send", Form: map[string]string{"email": "a@b.c", "topic": "Billing, Returns"}, Context: map[string]string{}},
		{BotID: "b", Key: "k6", ConversationID: "42", Name: kommbridge.EventMedia, Context: map[string]string{}, Attachments: []kommbridge.Attachment{
			{Type: "image/png", Name: "r.png", URL: "https://example.com/r.png", Size: 48213},
			{Type: "location", Lat: 12.97, Lon: 77.59},
		}},
		{BotID: "b", Key: "k7", ConversationID: "42", Name: "PRICING"},
	} {
		ev.ReceivedAt = at
		got, err := adapter.DecodeEvent(adapter.EncodeEvent(ev), at)
		if err != nil {
			t.Fatalf("%s: %v", ev.Key, err)
		}
		if diff := cmp.Diff(ev, got); diff != "" {
			t.Errorf("%s (-sent +read):\n%s", ev.Key, diff)
		}
	}
}

// Whatever the strings, what is encoded is read back as it was.
func FuzzEncodeEvent(f *testing.F) {
	f.Add("b", "k", "42", "hello", "name", "Asha", "WELCOME", "image/png", "https://example.com/x.png", "email", "a@b.c")
	f.Add("bot \"x\"", "", "0", "\u2028<b>é</b>", "k", "v\n", "", "", "", "", "")
	f.Fuzz(func(t *testing.T, bot, key, conv, text, ck, cv, name, typ, url, fk, fv string) {
		if bot == "" || conv == "" {
			return // DecodeEvent refuses these, as it should
		}
		for _, s := range []string{bot, key, conv, text, ck, cv, name, typ, url, fk, fv} {
			if !utf8.ValidString(s) {
				return // JSON carries text: invalid bytes become U+FFFD on the wire
			}
		}
		ev := kommbridge.Event{BotID: bot, Key: key, ConversationID: conv, Text: text, Name: strings.TrimSpace(name)}
		if ck != "" && ck != "attachments" && ck != "formData" && ck != "formMsgKey" {
			ev.Context = map[string]string{ck: cv}
		}
		if fk != "" {
			ev.Form = map[string]string{fk: fv}
		}
		if url != "" && typ != "location" {
			ev.Attachments = []kommbridge.Attachment{{Type: strings.ToLower(strings.TrimSpace(typ)), URL: url, Name: "f"}}
			if ev.Name == "" {
				ev.Name = kommbridge.EventMedia
			}
		}
		if (len(ev.Form) > 0 || len(ev.Attachments) > 0) && ev.Context == nil {
			ev.Context = map[string]string{}
		}
		got, err := adapter.DecodeEvent(adapter.EncodeEvent(ev), time.Time{})
		if err != nil {
			t.Fatalf("%+v: %v", ev, err)
		}
		if diff := cmp.Diff(ev, got); diff != "" {
			t.Errorf("(-sent +read):\n%s", diff)
		}
	})
}
