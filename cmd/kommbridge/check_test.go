package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

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
		`bots[0] (id "a").reply_format: must be json_schema, json_object, tools or text; got "xml"`,
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
			[]string{"FAIL  model gpt-4o-mini", "HTTP 401: the API key is wrong or lacks access: check llm.api_key (or OPENAI_API_KEY)"}, true},
		{"wrong base URL", fmt.Sprintf("base_url: %s/nothing-here\n  api_key: right", good.URL()), "memory://",
			[]string{"HTTP 404: nothing OpenAI-compatible at this base URL", "check llm.base_url"}, true},
		{"model not served", fmt.Sprintf("base_url: %s", wrongModel.URL()), "memory://",
			[]string{`model "gpt-4o-mini" is not served here (it lists llama3.1:8b, qwen2.5:7b): check the model name`}, true},
		{"nothing listening", "base_url: http://" + refused + "/v1", "memory://",
			[]string{"cannot connect", "check llm.base_url and the network"}, true},
		{"redis refused", fmt.Sprintf("base_url: %s\n  api_key: right", good.URL()), "redis://" + refused + "/0",
			[]string{"ok    model gpt-4o-mini", "FAIL  store redis://" + refused + "/0", "is Redis running there"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, fmt.Sprintf("llm:\n  %s\nstore: {url: %q}\n", tt.llm, tt.store))
			var out bytes.Buffer
			err := run(context.Background(), []string{"check", "--config", path}, env(nil), nil, &out, io.Discard)
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
