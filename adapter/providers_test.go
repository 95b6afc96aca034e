package adapter_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/kommbridge/kommbridge/llm/llmtest"
)

// Every recorded provider answer (llm/llmtest/testdata/providers) goes
// through the whole pipeline, HTTP to the fake and back; what the user
// sees is pinned in testdata/providers/<fixture>.golden. Whatever the
// provider sent, no raw JSON and no empty answer reaches the user.
func TestProviderFixtures(t *testing.T) {
	for _, f := range llmtest.Fixtures(t) {
		t.Run(f.Name, func(t *testing.T) {
			format := f.Format
			if format == "" {
				format = "json_schema"
			}
			h := newHarness(t, botsWith(format, nil, nil), "")
			h.model.Default(func(llmtest.Request) llmtest.Reply { return f.Reply() })
			got := h.postRaw(msg("a question for " + f.Provider))
			var msgs []struct {
				Message string `json:"message"`
			}
			if err := json.Unmarshal(got, &msgs); err != nil || len(msgs) == 0 {
				t.Fatalf("%s (%s): the user got %s", f.Provider, f.Case, got)
			}
			for _, m := range msgs {
				if strings.HasPrefix(strings.TrimSpace(m.Message), "{") || strings.TrimSpace(m.Message) == "" {
					t.Errorf("%s (%s): the user sees %q", f.Provider, f.Case, m.Message)
				}
			}
			golden(t, "providers/"+f.Name+".golden", got)
		})
	}
}
