package prompt_test

import (
	"testing"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/llm"
	"github.com/kommbridge/kommbridge/prompt"
)

func BenchmarkBuild(b *testing.B) {
	c := prompt.NewContract(prompt.ContractOptions{Format: kommbridge.FormatJSONSchema, MaxSuggested: 3})
	history := make([]kommbridge.Turn, 20)
	for i := range history {
		history[i] = kommbridge.Turn{Role: []string{"user", "assistant"}[i%2], Text: "Where is my order? It was supposed to arrive on Monday."}
	}
	in := prompt.Input{System: "You are the support assistant of ACME.", Contract: &c, History: history, User: []llm.Part{{Text: "Where is my order?"}}, MaxTokens: 600}
	b.ReportAllocs()
	for b.Loop() {
		prompt.Build(in)
	}
}

func BenchmarkParse(b *testing.B) {
	r := llm.Response{Content: `{"reply":"Your order shipped on Monday and arrives on Thursday.","confidence":0.92,"handoff":false,"handoff_reason":"","team":"","suggested_replies":["Track my order","Returns"]}`}
	b.ReportAllocs()
	for b.Loop() {
		prompt.Parse(kommbridge.FormatJSONSchema, r)
	}
}

func BenchmarkRenderTemplate(b *testing.B) {
	t, _ := prompt.ParseTemplate("s", "You are the assistant of ACME. Answer in {{.Language}}.{{with .Context.name}} The user is {{.}}.{{end}}")
	v := prompt.Vars{Language: "en", Context: map[string]string{"name": "Asha"}}
	b.ReportAllocs()
	for b.Loop() {
		t.Render(v)
	}
}
