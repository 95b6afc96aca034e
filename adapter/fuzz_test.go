package adapter_test

import (
	"errors"
	"testing"
	"time"

	"github.com/kommbridge/kommbridge/adapter"
)

// FuzzDecodeEvent: any body either decodes or yields a BadRequest with a
// reason; nothing panics.
func FuzzDecodeEvent(f *testing.F) {
	for _, s := range []string{
		`{"botId":"b","groupId":1,"message":"hi"}`,
		`{"botId":"b","groupId":"1","metadata":{"KM_CHAT_CONTEXT":"{\"kmUserLocale\":\"en\"}"}}`,
		`{"botId":"b","groupId":1,"eventName":"KOMMUNICATE_MEDIA_EVENT","metadata":{"KM_CHAT_CONTEXT":{"attachments":[{"type":"location","payload":{"lat":"1","lon":2}},{"type":"image/png","payload":{"url":"https://x/y.png","size":5}}]}}}`,
		`{"botId":true}`, `[]`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := adapter.DecodeEvent(body, time.Unix(0, 0))
		if err != nil {
			var br *adapter.BadRequest
			if !errors.As(err, &br) || br.Reason == "" {
				t.Fatalf("error without a reason: %v", err)
			}
			return
		}
		if ev.BotID == "" || ev.ConversationID == "" {
			t.Fatalf("decoded without botId or groupId: %+v", ev)
		}
		for _, a := range ev.Attachments {
			if a.Type != "location" && a.URL == "" {
				t.Fatalf("attachment without a URL: %+v", a)
			}
		}
	})
}

// FuzzAttachments: any attachments array decodes to attachments with a
// URL, or a location, or nothing.
func FuzzAttachments(f *testing.F) {
	for _, s := range []string{
		`[{"type":"image/png","payload":{"name":"a.png","url":"https://x/a.png","size":"12"}}]`,
		`[{"type":"location","payload":{"lat":"12.97","lon":77.59}}]`,
		`[{"type":"location","payload":{"lat":"north"}}, 5, null, "x"]`,
		`{"not":"a list"}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, list string) {
		body := `{"botId":"b","groupId":1,"metadata":{"KM_CHAT_CONTEXT":{"attachments":` + list + `}}}`
		ev, err := adapter.DecodeEvent([]byte(body), time.Unix(0, 0))
		if err != nil {
			return // the list broke the JSON around it: a 400, tested elsewhere
		}
		for _, a := range ev.Attachments {
			if a.Type != "location" && a.URL == "" {
				t.Fatalf("attachment without a URL: %+v", a)
			}
		}
	})
}
