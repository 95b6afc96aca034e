package prompt

import (
	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/llm"
)

// Input is everything one chat request is built from.
type Input struct {
	// System is the operator's rendered system prompt.
	System string
	// Whole, when set, is System with the contract's instructions already
	// appended (a cached message); Build then uses it as it is.
	Whole    string
	Contract *Contract
	History  []kommbridge.Turn
	// User is the new user message: text and image parts, in order.
	User []llm.Part

	Model       string
	Temperature *float32
	MaxTokens   int
	LogProbs    bool
}

// Build makes the chat request: the system prompt with the contract's
// instructions, the history, then the user's message.
func Build(in Input) llm.Request {
	msgs := make([]llm.Message, 0, len(in.History)+2)
	system := in.Whole
	if system == "" {
		system = in.System + in.Contract.Instructions
	}
	msgs = append(msgs, llm.Message{Role: llm.RoleSystem, Content: system})
	for _, t := range in.History {
		msgs = append(msgs, llm.Message{Role: t.Role, Content: t.Text})
	}
	user := llm.Message{Role: llm.RoleUser}
	if len(in.User) == 1 && in.User[0].ImageURL == "" {
		user.Content = in.User[0].Text
	} else {
		user.Parts = in.User
	}
	msgs = append(msgs, user)
	r := llm.Request{
		Model:       in.Model,
		Messages:    msgs,
		Temperature: in.Temperature,
		MaxTokens:   in.MaxTokens,
		LogProbs:    in.LogProbs,
	}
	in.Contract.Apply(&r)
	return r
}
