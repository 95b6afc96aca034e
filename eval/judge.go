package eval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/llm"
)

// Exchange is one turn of a conversation as the judge reads it.
type Exchange struct{ User, Bot string }

// Judge grades an answer against a rubric that strings cannot check
// ("answers in Spanish", "does not promise a refund").
type Judge interface {
	Grade(ctx context.Context, rubric string, conversation []Exchange) (Verdict, error)
}

// Verdict is a judge's yes or no, and why.
type Verdict struct {
	Pass   bool   `json:"pass"`
	Reason string `json:"reason"`
	// Tokens the grading used.
	TokensIn, TokensOut int `json:"-"`
}

// Completer is the model call a ModelJudge makes: *llm.Client.
type Completer interface {
	Complete(ctx context.Context, r llm.Request) (llm.Response, error)
}

// ModelJudge grades with a model: the configured one, or eval.judge.
type ModelJudge struct {
	Model Completer
	// Name is the model to ask; "" for the endpoint's.
	Name string
}

const judgeSystem = `You grade one answer of a customer-support chatbot against a rubric.
Read the conversation; the answer to grade is the bot's last message.
Reply with one JSON object and nothing else: {"pass": true or false, "reason": "one short sentence"}.
"pass" is true only when the answer clearly meets the rubric.`

// Grade asks the model whether the last answer meets the rubric.
func (j ModelJudge) Grade(ctx context.Context, rubric string, conv []Exchange) (Verdict, error) {
	var b strings.Builder
	b.WriteString("Conversation:\n")
	for _, e := range conv {
		fmt.Fprintf(&b, "User: %s\nBot: %s\n", e.User, orNone(e.Bot))
	}
	fmt.Fprintf(&b, "\nRubric: %s\n", rubric)
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	t := float32(0)
	resp, err := j.Model.Complete(ctx, llm.Request{
		Model: j.Name, Temperature: &t, MaxTokens: 200, Format: llm.ResponseJSONObject,
		Messages: []llm.Message{{Role: llm.RoleSystem, Content: judgeSystem}, {Role: llm.RoleUser, Content: b.String()}},
	})
	if err != nil {
		return Verdict{}, err
	}
	v, err := parseVerdict(resp.Content)
	v.TokensIn, v.TokensOut = resp.Usage.PromptTokens, resp.Usage.CompletionTokens
	return v, err
}

// parseVerdict reads {"pass": ..., "reason": ...}, or an answer that
// starts with yes or no.
func parseVerdict(s string) (Verdict, error) {
	s = strings.TrimSpace(s)
	if i, j := strings.IndexByte(s, '{'), strings.LastIndexByte(s, '}'); i >= 0 && j > i {
		var w struct {
			Pass   json.RawMessage `json:"pass"`
			Reason string          `json:"reason"`
		}
		if json.Unmarshal([]byte(s[i:j+1]), &w) == nil && len(w.Pass) > 0 {
			p := strings.ToLower(strings.Trim(string(w.Pass), `"`))
			return Verdict{Pass: p == "true" || p == "yes", Reason: strings.TrimSpace(w.Reason)}, nil
		}
	}
	low := strings.ToLower(s)
	switch {
	case strings.HasPrefix(low, "yes"):
		return Verdict{Pass: true, Reason: s}, nil
	case strings.HasPrefix(low, "no"):
		return Verdict{Reason: s}, nil
	}
	return Verdict{}, errors.New("the judge's answer is neither yes nor no: " + kommbridge.Clip(s, 120))
}

// judge grades a turn; a judge that cannot answer fails the check.
func (tr *TurnResult) judge(ctx context.Context, j Judge, rubric string, conv []Exchange) {
	if j == nil {
		tr.Failures = append(tr.Failures, Failure{Check: "judge", Reason: "no judge in this run"})
		return
	}
	v, err := j.Grade(ctx, rubric, conv)
	switch {
	case err != nil:
		tr.Failures = append(tr.Failures, Failure{Check: "judge", Reason: "the judge failed: " + err.Error()})
	case !v.Pass:
		tr.Failures = append(tr.Failures, Failure{Check: "judge", Reason: fmt.Sprintf("%q: %s", rubric, v.Reason)})
	}
	tr.Judge = v.Reason
	tr.judgeTokens = v.TokensIn + v.TokensOut
}
