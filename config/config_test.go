package config_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kommbridge/kommbridge/config"
	"github.com/kommbridge/kommbridge/prompt"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestShippedConfigIsValid(t *testing.T) {
	cfg, err := config.Load("../config.yaml", env(map[string]string{"OPENAI_API_KEY": "sk"}))
	if err != nil {
		t.Fatalf("config.yaml: %v", err)
	}
	if cfg.Bots[0].ID != "*" || cfg.Server.ReplyBudget.D() != 25*time.Second {
		t.Errorf("unexpected %+v", cfg.Server)
	}
	welcome, err := prompt.ParseTemplate("welcome.text", cfg.Bots[0].Welcome.Text)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := welcome.Render(prompt.Vars{Context: map[string]string{"name": "Asha"}})
	if text != "Hi Asha! How can I help?" {
		t.Errorf("welcome %q", text)
	}
	text, _ = welcome.Render(prompt.Vars{})
	if text != "Hi! How can I help?" {
		t.Errorf("welcome without a name %q", text)
	}
}

func TestEnvironment(t *testing.T) {
	yml := `
server:
  auth: {value: "${TOKEN}"}
llm:
  api_key: "${KEY}"
  base_url: https://example.com/v1
bots:
  - id: "*"
    system_prompt: "Costs $5 and ${MISSING}."
`
	cfg, err := config.Parse([]byte(yml), "c.yaml", env(map[string]string{"TOKEN": "a: {b}", "KEY": "k1", "KOMMBRIDGE_ADDR": ":9999", "OPENAI_BASE_URL": "http://localhost:11434/v1"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Auth.Value != "a: {b}" {
		t.Errorf("auth value %q: YAML in a variable must stay text", cfg.Server.Auth.Value)
	}
	if cfg.LLM.APIKey != "k1" || cfg.Server.Addr != ":9999" || cfg.LLM.BaseURL != "https://example.com/v1" {
		t.Errorf("overrides: key %q addr %q base %q; want the file's key and base URL, the environment's address", cfg.LLM.APIKey, cfg.Server.Addr, cfg.LLM.BaseURL)
	}
	if cfg.Bots[0].SystemPrompt != "Costs $5 and ." {
		t.Errorf("prompt %q", cfg.Bots[0].SystemPrompt)
	}
	cfg2, _ := config.Parse([]byte(yml), "c.yaml", env(map[string]string{"OPENAI_API_KEY": "k2"}))
	if cfg2.LLM.APIKey != "" || cfg2.LLM.KeyFrom != "${KEY}" {
		t.Errorf("OPENAI_API_KEY replaced the file's own key: %q from %q", cfg2.LLM.APIKey, cfg2.LLM.KeyFrom)
	}
}

// OPENAI_BASE_URL stands in for the primary's URL where the file names
// none; OPENAI_API_KEY for its key only where the file names neither a key
// nor a base URL (a key written for a URL never goes elsewhere); and
// KOMMBRIDGE_WEBHOOK_TOKEN for an auth value the file leaves out; each
// origin is recorded. docs/configuration.md and config.yaml say the same.
func TestEnvironmentFillsOnlyWhatIsUnset(t *testing.T) {
	vars := env(map[string]string{"OPENAI_API_KEY": "sk-env", "OPENAI_BASE_URL": "http://localhost:11434/v1", "KOMMBRIDGE_WEBHOOK_TOKEN": "tok"})
	tests := []struct {
		yml, key, keyFrom, base, token, tokenFrom string
	}{
		{"", "sk-env", "OPENAI_API_KEY", "http://localhost:11434/v1", "tok", "KOMMBRIDGE_WEBHOOK_TOKEN"},
		{"llm: {api_key: sk-file}\n", "sk-file", "llm.api_key", "http://localhost:11434/v1", "tok", "KOMMBRIDGE_WEBHOOK_TOKEN"},
		{"llm: {base_url: \"https://openrouter.ai/api/v1\"}\n", "", "", "https://openrouter.ai/api/v1", "tok", "KOMMBRIDGE_WEBHOOK_TOKEN"},
		{"server: {auth: {value: \"${OTHER}\"}}\n", "sk-env", "OPENAI_API_KEY", "http://localhost:11434/v1", "", "${OTHER}"},
	}
	for _, tt := range tests {
		cfg, err := config.Parse([]byte(tt.yml), "c.yaml", vars)
		if err != nil {
			t.Fatal(err)
		}
		got := []string{cfg.LLM.APIKey, cfg.LLM.KeyFrom, cfg.LLM.BaseURL, cfg.Server.Auth.Value, cfg.Server.Auth.ValueFrom}
		want := []string{tt.key, tt.keyFrom, tt.base, tt.token, tt.tokenFrom}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%q: got %q, want %q", tt.yml, got, want)
		}
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := config.Parse(nil, "empty.yaml", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	b := cfg.Bots[0]
	if b.ID != "*" || b.ReplyFormat != "json_schema" || *b.SuggestedReplies.Max != 3 || *b.Handoff.MinConfidence != 0.5 ||
		b.Handoff.OnError != "handoff" || cfg.Store.URL != "memory://" || cfg.LLM.Model != "gpt-4o-mini" {
		t.Errorf("defaults: %+v %+v", b, cfg.Store)
	}
	zero, err := config.Parse([]byte("bots:\n  - id: x\n    temperature: 0\n    suggested_replies: {max: 0}\n    handoff: {min_confidence: 0}\n"), "z.yaml", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	zb := zero.Bots[0]
	if *zb.Temperature != 0 || *zb.SuggestedReplies.Max != 0 || *zb.Handoff.MinConfidence != 0 {
		t.Error("an explicit zero was replaced by a default")
	}
}

func TestEveryProblemAtOnce(t *testing.T) {
	yml := `
server:
  reply_budget: 30s
  webhook_path: hook
  max_body_bytes: 0
llm:
  base_url: "ftp://x"
  api_type: azure
  api_version: ""
  max_retries: -1
store:
  url: "postgres://db"
log: {level: loud, format: xml}
bots:
  - id: a
    system_prompt: "ok"
    system_prompt_file: "p.md"
  - id: a
    temperature: 3
    handoff: {on_error: panic, after: later, min_confidence: 2}
`
	_, err := config.Parse([]byte(yml), "c.yaml", env(nil))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"server.reply_budget: must be under 30s",
		"server.webhook_path: must start with /",
		"server.max_body_bytes: must be positive",
		"llm.base_url: must be an http(s) URL",
		"llm.max_retries: must be between 0 and 10",
		"store.url: must be memory:// or redis://",
		`c.yaml:13: level: must be debug, info, warn, error; got "loud"`,
		`c.yaml:13: format: must be json, console; got "xml"`,
		`bots[0] (id "a"): set system_prompt or system_prompt_file, not both`,
		`bots[1] (id "a").id: "a" is used by more than one bot`,
		`bots[1] (id "a").temperature: must be between 0 and 2`,
		`c.yaml:20: on_error: must be handoff, message; got "panic"`,
		`c.yaml:20: after: must be answer, silent; got "later"`,
		`bots[1] (id "a").handoff.min_confidence: must be between 0 and 1`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing problem %q in:\n%v", want, err)
		}
	}
}

func TestUnknownKeyNamesLine(t *testing.T) {
	_, err := config.Parse([]byte("llm:\n  model: x\n  modle: y\nbots:\n  - id: '*'\n    handof: {}\n"), "c.yaml", env(nil))
	for _, want := range []string{`c.yaml:3: unknown key "modle" in llm`, `c.yaml:6: unknown key "handof" in bots[]`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q, got %v", want, err)
		}
	}
}

// The keys of rich answers, forms, channels and opening hours: every
// problem named at once.
func TestKommunicateFeatureProblems(t *testing.T) {
	yml := `
bots:
  - id: a
    system_prompt: "ok"
    reply_format: text
    channel: telegram
    rich: [cards, videos]
    forms:
      contact:
        fields:
          - {name: "e mail", label: Email}
          - {name: plan, type: radio}
          - {name: plan, type: slider, regex: "("}
          - {name: pin, type: password}
      empty: {}
    handoff: {form: survey, offline_form: contact, hours: {time_zone: UTC}}
`
	_, err := config.Parse([]byte(yml), "c.yaml", env(nil))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`c.yaml:6: channel: must be auto, web, whatsapp, messenger, instagram; got "telegram"`,
		`bots[0] (id "a").rich[0]: needs reply_format json_schema, json_object or tools`,
		`c.yaml:7: rich: must be cards, lists, images; got "videos"`,
		`bots[0] (id "a").forms.contact.fields[0].name: must be set, with letters, digits, _ and - only; got "e mail"`,
		`bots[0] (id "a").forms.contact.fields[1].options: a radio field needs options`,
		`bots[0] (id "a").forms.contact.fields[2].name: "plan" is used by more than one field`,
		`c.yaml:13: type: must be text, textarea, password, hidden, radio, checkbox, dropdown; got "slider"`,
		`bots[0] (id "a").forms.contact.fields[2].regex: does not compile`,
		`bots[0] (id "a").forms.empty.fields: must list at least one field`,
		`bots[0] (id "a").handoff.form: names no form in bots[0] (id "a").forms; got "survey"`,
		`bots[0] (id "a").handoff.hours.weekly: must list the opening hours`,
		`bots[0] (id "a").handoff.offline_form: form "contact" has a password field: a handoff form's values are posted as visible text`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing problem %q in:\n%v", want, err)
		}
	}
}

// ${VAR} works in any value, numbers, booleans and durations included;
// a variable holding more than a plain value is refused, never written
// into the file's structure.
func TestVariablesInNonStrings(t *testing.T) {
	yml := "server: {reply_budget: ${BUDGET}}\nllm:\n  max_retries: \"${RETRIES}\"\n  breaker: {cooldown: ${COOLDOWN}}\nstore: {history_ttl: ${TTL}}\n"
	cfg, err := config.Parse([]byte(yml), "c.yaml", env(map[string]string{"BUDGET": "20s", "RETRIES": "4", "COOLDOWN": "1m", "TTL": "48h"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.ReplyBudget.D() != 20*time.Second || cfg.LLM.MaxRetries != 4 || cfg.LLM.Breaker.Cooldown.D() != time.Minute || cfg.Store.HistoryTTL.D() != 48*time.Hour {
		t.Errorf("got %v %d %v %v", cfg.Server.ReplyBudget.D(), cfg.LLM.MaxRetries, cfg.LLM.Breaker.Cooldown.D(), cfg.Store.HistoryTTL.D())
	}
	_, err = config.Parse([]byte("server:\n  reply_budget: ${BUDGET}\n"), "c.yaml", env(map[string]string{"BUDGET": "1s\nllm: {api_key: x}"}))
	if err == nil || !strings.Contains(err.Error(), `c.yaml:2: "${BUDGET}" is not a duration`) {
		t.Errorf("a variable holding YAML: %v", err)
	}
}
