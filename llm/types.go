package llm

import "encoding/json"

// Roles of a chat message.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
	RoleTool      = "tool"
)

// Message is one chat message. Parts, when set, replace Content (text and
// images in one user message). An assistant message may carry the tool
// calls the model made (ToolCalls); a tool message answers one of them
// (ToolCallID), its result in Content.
type Message struct {
	Role       string
	Content    string
	Parts      []Part
	ToolCalls  []ToolCall
	ToolCallID string
}

// Part is one piece of a multi-part user message: text, or an image by URL
// (https or data:). Detail is the vision detail level; empty means auto.
type Part struct {
	Text     string
	ImageURL string
	Detail   string
}

// ResponseFormat is the API's response_format parameter: how the endpoint
// constrains the completion. It is not the bot's reply format
// (kommbridge.ReplyFormat), which prompt maps onto it and onto tools.
type ResponseFormat int

// Response formats.
const (
	ResponseText       ResponseFormat = iota // free text
	ResponseJSONObject                       // any JSON object
	ResponseJSONSchema                       // JSON matching Request.Schema, strictly
)

// Request is one chat completion. Model empty means the endpoint's model;
// fallback endpoints always use their own.
type Request struct {
	Model       string
	Messages    []Message
	Temperature *float32
	MaxTokens   int
	Format      ResponseFormat
	SchemaName  string
	Schema      json.RawMessage
	Tools       []Tool
	// LogProbs asks for token log probabilities where the endpoint has them.
	LogProbs bool
}

// Tool is a function the model may call.
type Tool struct {
	Name        string
	Description string
	Parameters  json.RawMessage
}

// ToolCall is a function call the model made: its ID (which a tool
// message answering it names), the function and its raw JSON arguments.
type ToolCall struct {
	ID        string
	Name      string
	Arguments string
}

// Usage counts tokens.
type Usage struct {
	PromptTokens     int
	CompletionTokens int
}

// TokenProb is one generated token and its probability (0..1).
type TokenProb struct {
	Token string
	Prob  float64
}

// Response is what the model answered.
type Response struct {
	Content string
	// Refusal is what the model said instead of an answer when it refused
	// (OpenAI structured outputs); Content is then empty.
	Refusal   string
	ToolCalls []ToolCall
	// FinishReason is why the model stopped: "stop", "length" (cut at
	// the token limit), "tool_calls", "content_filter" (the answer was
	// filtered), ...
	FinishReason string
	Usage        Usage
	// Tokens are the content's tokens with probabilities; nil when the
	// endpoint returned no logprobs.
	Tokens []TokenProb
	// Endpoint and Model say who answered (a fallback, maybe).
	Endpoint string
	Model    string
	// Attempts counts the calls made, retries and fallbacks included.
	Attempts int
}
