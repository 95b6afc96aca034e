package adapter_test

import (
	"encoding/json"
	"testing"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/adapter"
)

// An answer posted later through Kommunicate's API is the same messages
// as in a webhook answer, one request each, with nested payloads as JSON
// strings and every control key.
func TestAPIBodies(t *testing.T) {
	m := kommbridge.Message{Text: "Done. Anything else?", QuickReplies: []string{"No, thanks"}, Resolve: true, AskFile: true,
		Handoff: &kommbridge.Handoff{Team: "2841"}, Images: []kommbridge.Image{{URL: "https://acme.example/a.png"}}}
	bodies, err := adapter.APIBodies("", "bot", "7", kommbridge.ChannelWeb, m)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range bodies {
		got = append(got, string(b))
	}
	want := []string{
		`{"groupId":"7","fromUserName":"bot","message":"Done. Anything else?","metadata":{"KM_ASSIGN_TEAM":"2841","KM_ASSIGN_TO":"","KM_ENABLE_ATTACHMENT":"true","actionRequest":"resolveConversation","contentType":"300","payload":"[{\"title\":\"No, thanks\",\"message\":\"No, thanks\",\"replyMetadata\":{\"kommbridge_button\":\"quick_reply\"}}]","templateId":"6"}}`,
		`{"groupId":"7","fromUserName":"bot","message":"","metadata":{"contentType":"300","payload":"[{\"url\":\"https://acme.example/a.png\"}]","templateId":"9"}}`,
	}
	if len(got) != len(want) {
		t.Fatalf("%d bodies, want %d: %v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("body %d:\n got %s\nwant %s", i, got[i], want[i])
		}
		var v map[string]any
		if json.Unmarshal(bodies[i], &v) != nil {
			t.Errorf("body %d is not JSON", i)
		}
	}
}
