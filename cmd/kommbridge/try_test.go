package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"

	"github.com/kommbridge/kommbridge/llm/llmtest"
)

func tryConfig(t *testing.T, fake *llmtest.Server) string {
	return writeConfig(t, fmt.Sprintf(`
llm: {base_url: %q, api_key: k}
bots:
  - id: support-bot
    welcome: {text: "Hi{{with .Context.name}} {{.}}{{end}}!", suggested_replies: ["Track my order"]}
    handoff: {teams: {billing: "2841"}}
`, fake.URL()))
}

func TestTryOneMessage(t *testing.T) {
	fake := llmtest.New(t)
	fake.Enqueue(llmtest.Reply{Content: llmtest.Contract("Your order shipped on Monday.", 0.9, "Track order", "Returns"),
		Usage: openai.Usage{PromptTokens: 812, CompletionTokens: 45, TotalTokens: 857}})
	var out bytes.Buffer
	err := run(context.Background(), []string{"try", "--config", tryConfig(t, fake), "--bot", "support-bot", "Where is my order?"}, env(nil), nil, &out, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"bot> Your order shipped on Monday.\n",
		"     [Track order] [Returns]\n",
		"812 tokens in, 45 out, gpt-4o-mini at 127.0.0.1",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "\x1b[") {
		t.Error("colour written to something that is not a terminal")
	}
	if fake.Last(t).Chat.Messages[1].Content != "Where is my order?" {
		t.Errorf("model got %+v", fake.Last(t).Chat.Messages)
	}
}

// An interactive session keeps one conversation, and /reset, /welcome,
// /context, /json and /quit do what they say.
func TestTryInteractive(t *testing.T) {
	fake := llmtest.New(t)
	fake.Default(func(r llmtest.Request) llmtest.Reply {
		n := len(r.Chat.Messages) - 1
		last := r.Chat.Messages[n].Content
		if last == "refund please" {
			return llmtest.Reply{Content: `{"reply":"Billing will help.","confidence":0.9,"handoff":true,"team":"billing"}`}
		}
		return llmtest.Reply{Content: llmtest.Contract(fmt.Sprintf("re: %s (history %d)", last, n-1), 0.9)}
	})
	stdin := strings.NewReader(strings.Join([]string{
		"/context name=Asha",
		"/welcome",
		"first",
		"second",
		"/reset",
		"third",
		"/json",
		"refund please",
		"/quit",
		"never sent",
	}, "\n") + "\n")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"try", "--config", tryConfig(t, fake)}, env(nil), stdin, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"(context map[name:Asha])",
		"bot> Hi Asha!\n     [Track my order]",
		"bot> re: first (history 1)",  // the welcome greeting is history
		"bot> re: second (history 3)", // welcome, first and its answer
		"(new conversation)",
		"bot> re: third (history 0)",
		"(JSON on)",
		"bot> Let me connect you with a teammate.\n     -> handed to a person (reason: model; assigned by Kommunicate's routing rules, team 2841)",
		`"KM_ASSIGN_TEAM": "2841"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "never sent") || fake.Calls() != 4 {
		t.Errorf("model calls %d, want 4 (nothing after /quit)", fake.Calls())
	}
}

func TestTryAttachmentArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"https://example.com/f/invoice.pdf?sig=1"}, "application/pdf invoice.pdf"},
		{[]string{"https://example.com/a.bin", "image/png"}, "image/png a.bin"},
		{[]string{"location", "12.97", "77.59"}, "location  12.97 77.59"},
	} {
		a, err := attachment(tc.args)
		if err != nil {
			t.Fatal(err)
		}
		got := a.Type + " " + a.Name
		if a.Type == "location" {
			got = fmt.Sprintf("%s  %g %g", a.Type, a.Lat, a.Lon)
		}
		if got != tc.want {
			t.Errorf("%v: %q, want %q", tc.args, got, tc.want)
		}
	}
	for _, bad := range [][]string{nil, {"location", "north", "1"}} {
		if _, err := attachment(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// Flags may follow the message, and the exit tells a failed model apart.
func TestTryFlagsAfterTheMessageAndExitCodes(t *testing.T) {
	fake := llmtest.New(t)
	fake.Enqueue(llmtest.Reply{Content: llmtest.Contract("Hello.", 0.9)}, llmtest.Reply{Status: 400})
	cfg := tryConfig(t, fake)
	var out bytes.Buffer
	if err := run(context.Background(), []string{"try", "--config", cfg, "hi there", "--json"}, env(nil), nil, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if got := fake.Last(t).Chat.Messages[1].Content; got != "hi there" {
		t.Errorf("the model got %q", got)
	}
	if !strings.Contains(out.String(), `"message": "Hello."`) {
		t.Errorf("--json after the message ignored:\n%s", out.String())
	}
	var errOut bytes.Buffer
	err := run(context.Background(), []string{"try", "--config", cfg, "again"}, env(nil), nil, &bytes.Buffer{}, &errOut)
	if err != errModelFailed || !strings.Contains(errOut.String(), "the model failed") {
		t.Errorf("a failed model: %v %q, want errModelFailed (exit 2)", err, errOut.String())
	}
}

// Help and version answer with exit 0, at the top and per command.
func TestHelpAndVersion(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"help", "check"}, {"check", "--help"}, {"try", "-h"}, {"serve", "--help"}, {"health", "-h"}} {
		var out bytes.Buffer
		if err := run(context.Background(), args, env(nil), nil, &out, &bytes.Buffer{}); err != nil || !strings.Contains(out.String(), "Usage") {
			t.Errorf("%v: %v %q", args, err, out.String())
		}
	}
	for _, args := range [][]string{{"version"}, {"--version"}} {
		var out bytes.Buffer
		if err := run(context.Background(), args, env(nil), nil, &out, &bytes.Buffer{}); err != nil || !strings.Contains(out.String(), ", commit ") || !strings.Contains(out.String(), "go1.") {
			t.Errorf("%v: %v %q", args, err, out.String())
		}
	}
}
