package llmtest

import (
	"strings"

	openai "github.com/sashabaranov/go-openai"
)

// Caps is what an emulated provider honours; the zero Caps honours
// everything, as OpenAI does.
type Caps struct {
	NoJSONSchema          bool // 400 on response_format json_schema
	NoJSONObject          bool // 400 on response_format json_object
	IgnoresFormat         bool // accepts response_format but answers free text
	IgnoresTools          bool // answers in text, never calls a tool
	NoLogProbs            bool // omits logprobs
	NoImages              bool // 400 on an image part
	WantsCompletionTokens bool // 400 on max_tokens, as OpenAI's reasoning models
}

// Provider answers as a provider with caps would: errors for what it
// refuses, {"ok": true} to a JSON request, a call of the first tool when
// it takes tools, logprobs when asked and honoured, and "ok" otherwise.
// Use it with Default.
func Provider(caps Caps) func(Request) Reply {
	return func(r Request) Reply {
		c := r.Chat
		//lint:ignore SA1019 the field a provider may refuse
		if caps.WantsCompletionTokens && c.MaxTokens > 0 {
			return Reply{Status: 400, Body: `{"error":{"message":"Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.","type":"invalid_request_error","param":"max_tokens","code":"unsupported_parameter"}}`}
		}
		if c.ResponseFormat != nil {
			switch c.ResponseFormat.Type {
			case openai.ChatCompletionResponseFormatTypeJSONSchema:
				if caps.NoJSONSchema {
					return Reply{Status: 400, Body: `{"error":{"message":"response_format json_schema is not supported by this model","type":"invalid_request_error","code":null}}`}
				}
			case openai.ChatCompletionResponseFormatTypeJSONObject:
				if caps.NoJSONObject {
					return Reply{Status: 400, Body: `{"error":{"message":"response_format json_object is not supported","type":"invalid_request_error","code":null}}`}
				}
			}
		}
		for _, m := range c.Messages {
			for _, p := range m.MultiContent {
				if p.ImageURL != nil && caps.NoImages {
					return Reply{Status: 400, Body: `{"error":{"message":"this model does not accept image input","type":"invalid_request_error","code":null}}`}
				}
			}
		}
		rep := Reply{Content: "ok"}
		if c.ResponseFormat != nil && c.ResponseFormat.Type != openai.ChatCompletionResponseFormatTypeText && !caps.IgnoresFormat {
			rep.Content = `{"ok": true}`
		}
		if len(c.Tools) > 0 && !caps.IgnoresTools {
			rep.Content = ""
			rep.ToolCalls = []openai.ToolCall{{ID: "call_1", Type: openai.ToolTypeFunction,
				Function: openai.FunctionCall{Name: c.Tools[0].Function.Name, Arguments: "{}"}}}
		}
		if c.LogProbs && !caps.NoLogProbs {
			rep.LogProbs = make([]float64, len(strings.Fields(rep.Content))+1)
		}
		return rep
	}
}
