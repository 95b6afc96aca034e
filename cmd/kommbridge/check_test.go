package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kommbridge/kommbridge/llm"
	"github.com/kommbridge/kommbridge/llm/llmtest"
)

func TestCheckConfigProblems(t *testing.T) {
	bad := writeConfig(t, "server:\n  reply_budget: 45s\n  colour: blue\nbots:\n  - id: a\n    reply_format: xml\n    welcome: {text: \"Hi {{.Name\"}\n")
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"check", "--config", bad}, env(nil), nil, &out, &errOut); err == nil {
		t.Fatal("check of a bad config succeeded")
	}
	for _, want := range []string{
		"has 4 problem(s)",
		`:3: unknown key "colour" in server`,
		"server.reply_budget: must be under 30s",
		`:6: reply_format: must be json_schema, json_object, tools, text; got "xml"`,
		`bots[0] (id "a").welcome.text: template: welcome.text:1: unclosed action`,
	} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("check output lacks %q:\n%s", want, errOut.String())
		}
	}
}

// check reaches every endpoint and the store and says what to fix.
func TestCheckEndpoints(t *testing.T) {
	good := llmtest.New(t)
	good.RequireKey("right")
	good.SetModels("gpt-4o-mini", "gpt-4o")
	wrongModel := llmtest.New(t)
	wrongModel.SetModels("llama3.1:8b", "qwen2.5:7b")
	wrongModel.Default(func(r llmtest.Request) llmtest.Reply {
		return llmtest.Reply{Status: 404, Body: `{"error":{"message":"model \"` + r.Chat.Model + `\" not found, try pulling it first"}}`}
	})
	// Gateways: Portkey answers /models with 500 and wants its headers;
	// GOModel lists models under a provider prefix and serves them
	// without it.
	portkey := llmtest.New(t)
	portkey.FailModels(500)
	portkey.Default(func(r llmtest.Request) llmtest.Reply {
		if r.Header.Get("X-Portkey-Api-Key") != "pk" {
			return llmtest.Reply{Status: 400, Body: `{"status":"failure","message":"x-portkey-api-key header is required"}`}
		}
		return llmtest.Reply{Content: "ok"}
	})
	gomodel := llmtest.New(t)
	gomodel.SetModels("up/gpt-4o-mini", "up/other")
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := ln.Addr().String()
	ln.Close()

	tests := []struct {
		name    string
		llm     string
		store   string
		want    []string
		wantErr bool
	}{
		{"all good", fmt.Sprintf("base_url: %s\n  api_key: right", good.URL()), "memory://",
			[]string{"ok    model gpt-4o-mini at 127.0.0.1", "(model gpt-4o-mini listed)", "ok    store memory://"}, false},
		{"wrong key", fmt.Sprintf("base_url: %s\n  api_key: wrong", good.URL()), "memory://",
			[]string{"FAIL  model gpt-4o-mini", "HTTP 401: the API key is wrong or lacks access: check llm.api_key"}, true},
		{"no key", fmt.Sprintf("base_url: %s\n  api_key: ${UNSET_KEY}", good.URL()), "memory://",
			[]string{"no key", "llm.api_key is empty: ${UNSET_KEY} is not set in the environment", "HTTP 401: no API key is set for this endpoint: set llm.api_key"}, true},
		{"wrong base URL", fmt.Sprintf("base_url: %s/nothing-here\n  api_key: right", good.URL()), "memory://",
			[]string{"HTTP 404: nothing OpenAI-compatible at this base URL", "check llm.base_url"}, true},
		{"model not served", fmt.Sprintf("base_url: %s", wrongModel.URL()), "memory://",
			[]string{`warn  model gpt-4o-mini at 127.0.0.1`, `model "gpt-4o-mini" is not in the model list (llama3.1:8b, qwen2.5:7b)`,
				`FAIL  model gpt-4o-mini`, `HTTP 404: nothing OpenAI-compatible at this base URL, or no such model/deployment`}, true},
		{"a gateway whose model list fails", fmt.Sprintf("base_url: %s\n  headers: {x-portkey-api-key: \"${PORTKEY_KEY}\"}", portkey.URL()), "memory://",
			[]string{`header x-portkey-api-key from ${PORTKEY_KEY}`, `warn  model gpt-4o-mini at 127.0.0.1`, `the model list failed (code internal: Internal server error)`,
				`ok    model gpt-4o-mini at 127.0.0.1`, `(a one-token completion worked)`}, false},
		{"a gateway without its headers", fmt.Sprintf("base_url: %s", portkey.URL()), "memory://",
			[]string{`FAIL  model gpt-4o-mini`, `x-portkey-api-key header is required`}, true},
		{"a gateway listing prefixed names", fmt.Sprintf("base_url: %s", gomodel.URL()), "memory://",
			[]string{`ok    model gpt-4o-mini at 127.0.0.1`, `(model gpt-4o-mini listed as up/gpt-4o-mini)`}, false},
		{"nothing listening", "base_url: http://" + refused + "/v1", "memory://",
			[]string{"cannot connect", "check llm.base_url and the network"}, true},
		{"redis refused", fmt.Sprintf("base_url: %s\n  api_key: right", good.URL()), "redis://" + refused + "/0",
			[]string{"ok    model gpt-4o-mini", "FAIL  store redis://" + refused + "/0", "is Redis running there"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, fmt.Sprintf("llm:\n  %s\nstore: {url: %q}\n", tt.llm, tt.store))
			var out bytes.Buffer
			err := run(context.Background(), []string{"check", "--config", path}, env(map[string]string{"PORTKEY_KEY": "pk"}), nil, &out, io.Discard)
			if (err != nil) != tt.wantErr {
				t.Errorf("err %v, want error %v", err, tt.wantErr)
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

func TestVersionAndUnknownCommand(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, env(nil), nil, &out, io.Discard); err != nil || !strings.HasPrefix(out.String(), "kommbridge ") {
		t.Errorf("version: %q %v", out.String(), err)
	}
	var errOut bytes.Buffer
	if err := run(context.Background(), []string{"frobnicate"}, env(nil), nil, io.Discard, &errOut); err == nil || !strings.Contains(errOut.String(), `unknown command "frobnicate"`) {
		t.Errorf("unknown command: %v %q", err, errOut.String())
	}
}

func TestCheckOffline(t *testing.T) {
	path := writeConfig(t, "llm: {base_url: \"http://127.0.0.1:1/v1\"}\n")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"check", "--offline", "--config", path}, env(nil), nil, &out, io.Discard); err != nil || strings.Contains(out.String(), "model") {
		t.Errorf("offline check: %v\n%s", err, out.String())
	}
}

// The webhook fails closed: with no token, serve refuses to start and
// check --offline fails, naming the key and the variable, unless the
// operator turned authentication off in so many words.
func TestNoTokenNoService(t *testing.T) {
	noToken := func(k string) string { return "" }
	tests := []struct {
		name, yml  string
		wantServe  string // "" means it serves
		wantCheck  string
		checkFails bool
	}{
		{"variable unset", "server: {auth: {value: \"${KOMMBRIDGE_WEBHOOK_TOKEN}\"}}\n",
			"server.auth.value is empty: ${KOMMBRIDGE_WEBHOOK_TOKEN} is not set in the environment", "FAIL  webhook auth: server.auth.value is empty", true},
		{"nothing set", "log: {level: error}\n",
			"server.auth.value is not set: set it (or KOMMBRIDGE_WEBHOOK_TOKEN)", "FAIL  webhook auth: server.auth.value is not set", true},
		{"both", "server: {auth: {value: x, disabled: true}}\n",
			"server.auth.disabled is true but server.auth.value is set", "FAIL  webhook auth", true},
		{"disabled on purpose", "server: {auth: {disabled: true}}\n", "", "warn  webhook auth: off (server.auth.disabled)", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.yml)
			var out bytes.Buffer
			err := run(context.Background(), []string{"check", "--offline", "--config", path}, noToken, nil, &out, io.Discard)
			if (err != nil) != tt.checkFails || !strings.Contains(out.String(), tt.wantCheck) {
				t.Errorf("check: %v\n%s", err, out.String())
			}
			if tt.wantServe == "" {
				return
			}
			var errOut bytes.Buffer
			err = run(context.Background(), []string{"serve", "--config", path}, noToken, nil, io.Discard, &errOut)
			if err == nil || !strings.Contains(errOut.String(), tt.wantServe) {
				t.Errorf("serve: %v\n%s", err, errOut.String())
			}
		})
	}
}

// A key goes only to the endpoint it was written for: OPENAI_API_KEY in
// the environment never replaces a key the file names, nor goes to a base
// URL the file names; check says where each key came from.
func TestKeysStayWithTheirEndpoint(t *testing.T) {
	router := llmtest.New(t) // stands in for OpenRouter
	router.RequireKey("router-key")
	router.Default(func(llmtest.Request) llmtest.Reply {
		return llmtest.Reply{Content: llmtest.Contract("from the router", 0.9)}
	})
	vars := map[string]string{"OPENAI_API_KEY": "sk-openai-secret", "OPENROUTER_API_KEY": "router-key", "KOMMBRIDGE_ADDR": "127.0.0.1:0"}
	for _, yml := range []string{
		fmt.Sprintf("llm: {base_url: %q, api_key: \"${OPENROUTER_API_KEY}\"}\n", router.URL()),
		// a file's base URL without a key: OPENAI_API_KEY is not sent there either
		fmt.Sprintf("llm: {base_url: %q, fallbacks: [{base_url: %q, api_key: \"${OPENROUTER_API_KEY}\"}]}\n", router.URL(), router.URL()),
	} {
		path := writeConfig(t, yml)
		base, stop := startRun(t, path, env(vars))
		post(t, base, `{"botId":"b","groupId":1,"message":"hi"}`)
		stop()
		var out bytes.Buffer
		run(context.Background(), []string{"check", "--offline", "--config", path}, env(vars), nil, &out, io.Discard)
		if strings.Contains(out.String(), "OPENAI_API_KEY") || !strings.Contains(out.String(), "key from ${OPENROUTER_API_KEY}") {
			t.Errorf("key sources:\n%s", out.String())
		}
	}
	for _, r := range router.Requests() {
		if got := r.Header.Get("Authorization"); got == "Bearer sk-openai-secret" {
			t.Fatalf("the OpenAI key reached the router at %s", r.Path)
		}
	}
	if router.Calls() == 0 {
		t.Fatal("the router was never called")
	}
	// With neither key nor base URL in the file, OPENAI_API_KEY and
	// OPENAI_BASE_URL are the primary's, as the OpenAI SDKs read them.
	openai := llmtest.New(t)
	openai.RequireKey("sk-openai-secret")
	path := writeConfig(t, "log: {level: error}\n")
	base, stop := startRun(t, path, env(map[string]string{"OPENAI_API_KEY": "sk-openai-secret", "OPENAI_BASE_URL": openai.URL(), "KOMMBRIDGE_ADDR": "127.0.0.1:0"}))
	defer stop()
	if got := post(t, base, `{"botId":"b","groupId":1,"message":"hi"}`); !strings.Contains(got, "ok") {
		t.Errorf("with the environment's key and URL: %s", got)
	}
}

// Azure lists models, not deployments: check makes a one-token completion
// on the deployment instead.
func TestCheckAzure(t *testing.T) {
	fake := llmtest.New(t)
	fake.SetModels("gpt-4o") // not the deployment's name
	path := writeConfig(t, fmt.Sprintf("llm:\n  base_url: %s\n  api_type: azure\n  model: my-deployment\n", strings.TrimSuffix(fake.URL(), "/v1")+"/v1"))
	var out bytes.Buffer
	if err := run(context.Background(), []string{"check", "--config", path}, env(nil), nil, &out, io.Discard); err != nil {
		t.Fatalf("check: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "ok    model my-deployment") || fake.Last(t).Path != "/v1/openai/deployments/my-deployment/chat/completions" {
		t.Errorf("output %s, last path %s", out.String(), fake.Last(t).Path)
	}
}

// ProviderCaps emulates each provider by what its documentation says it
// honours through its OpenAI-compatible endpoint (for the model named).
var providerCaps = []struct {
	provider, model string
	caps            llmtest.Caps
	recommend       string
}{
	{"OpenAI", "gpt-4o-mini", llmtest.Caps{}, "json_schema"},
	{"Azure OpenAI", "gpt-4o-mini (api-version 2024-10-21)", llmtest.Caps{}, "json_schema"},
	{"OpenAI reasoning", "o3-mini", llmtest.Caps{WantsCompletionTokens: true, NoLogProbs: true, NoImages: true}, "json_schema"},
	{"Ollama", "llama3.1:8b", llmtest.Caps{NoLogProbs: true, NoImages: true}, "json_schema"},
	{"vLLM", "Qwen2.5-7B-Instruct, no --enable-auto-tool-choice", llmtest.Caps{IgnoresTools: true, NoImages: true}, "json_schema"},
	{"Groq", "llama-3.3-70b-versatile", llmtest.Caps{NoJSONSchema: true, NoLogProbs: true, NoImages: true}, "tools"},
	{"OpenRouter", "openai/gpt-4o-mini", llmtest.Caps{}, "json_schema"},
	{"Gemini", "gemini-2.0-flash", llmtest.Caps{NoLogProbs: true}, "json_schema"},
	{"Anthropic", "claude-sonnet-4-5", llmtest.Caps{IgnoresFormat: true, NoLogProbs: true}, "tools"},
	{"LiteLLM", "a backend without tools or schemas", llmtest.Caps{NoJSONSchema: true, IgnoresTools: true, NoLogProbs: true, NoImages: true}, "json_object"},
	{"a bare completion server", "llama.cpp without grammar", llmtest.Caps{NoJSONSchema: true, NoJSONObject: true, IgnoresTools: true, NoImages: true, NoLogProbs: true}, "text"},
}

// check --probe, against the fake configured as each provider, finds what
// it honours and recommends the right reply format.
func TestCheckProbe(t *testing.T) {
	for _, p := range providerCaps {
		t.Run(p.provider, func(t *testing.T) {
			fake := llmtest.New(t)
			fake.Default(llmtest.Provider(p.caps))
			path := writeConfig(t, fmt.Sprintf("llm: {base_url: %q, api_key: k}\n", fake.URL()))
			var out bytes.Buffer
			run(context.Background(), []string{"check", "--probe", "--config", path}, env(nil), nil, &out, io.Discard)
			t.Logf("check --probe against %s (%s):\n%s", p.provider, p.model, out.String())
			wants := []string{"recommended " + p.recommend}
			if p.caps.WantsCompletionTokens {
				wants = append(wants, "token limit field      max_completion_tokens")
			}
			if p.caps.NoImages {
				wants = append(wants, "recommended vision: false")
			}
			for _, w := range wants {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			if calls := fake.Calls(); calls > 1+llm.ProbeCalls {
				t.Errorf("%d calls, over the stated %d (and the model list)", calls, llm.ProbeCalls)
			}
		})
	}
}

// --write puts the recommendation into the file, keeping its comments.
func TestCheckProbeWrite(t *testing.T) {
	fake := llmtest.New(t)
	fake.Default(llmtest.Provider(llmtest.Caps{NoJSONSchema: true, NoImages: true}))
	original := fmt.Sprintf(`# our bot
llm: {base_url: %q, api_key: k}
bots:
  - id: support          # the support bot
    reply_format: json_schema   # chosen in 2025
    system_prompt: "Be brief."
  - id: sales
    system_prompt: "Sell."
`, fake.URL())
	path := writeConfig(t, original)
	var out bytes.Buffer
	if err := run(context.Background(), []string{"check", "--probe", "--write", "--config", path}, env(nil), nil, &out, io.Discard); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	got, _ := os.ReadFile(path)
	want := fmt.Sprintf(`# our bot
llm: {base_url: %q, api_key: k}
bots:
  - id: support          # the support bot
    vision: false
    reply_format: tools         # chosen in 2025
    system_prompt: "Be brief."
  - id: sales
    reply_format: tools
    vision: false
    system_prompt: "Sell."
`, fake.URL())
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("written file (-want +got):\n%s\n%s", diff, out.String())
	}
	out.Reset()
	run(context.Background(), []string{"check", "--probe", "--config", path}, env(nil), nil, &out, io.Discard)
	if strings.Contains(out.String(), "warn ") {
		t.Errorf("after --write, check still recommends:\n%s", out.String())
	}
}

// check reaches eval.judge too, with its own key, and says where the key
// came from.
func TestCheckEvalJudge(t *testing.T) {
	bot, judge := llmtest.New(t), llmtest.New(t)
	judge.RequireKey("judge-key")
	judge.SetModels("grader")
	bot.SetModels("gpt-4o-mini")
	for _, tt := range []struct {
		key     string
		want    []string
		wantErr bool
	}{
		{"${JUDGE_KEY}", []string{": key from ${JUDGE_KEY} (eval judge)", "ok    eval judge grader at 127.0.0.1"}, false},
		{"wrong", []string{"FAIL  eval judge grader at 127.0.0.1", "check eval.judge.api_key"}, true},
	} {
		path := writeConfig(t, fmt.Sprintf("llm: {base_url: %s}\neval:\n  judge: {base_url: %s, api_key: %q, model: grader}\n", bot.URL(), judge.URL(), tt.key))
		var out bytes.Buffer
		err := run(context.Background(), []string{"check", "--config", path}, env(map[string]string{"JUDGE_KEY": "judge-key"}), nil, &out, io.Discard)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: err %v", tt.key, err)
		}
		for _, w := range tt.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("output lacks %q:\n%s", w, out.String())
			}
		}
	}
}
