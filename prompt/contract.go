package prompt

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/llm"
)

// HandoffMarker in a text reply asks for a handoff; it is never shown.
const HandoffMarker = "[HANDOFF]"

// HandoffTool is the function a model in the tools format calls to hand
// the conversation to a person.
const HandoffTool = "handoff_to_human"

// ResolvedMarker in a text reply says the user's issue is solved; it is
// never shown.
const ResolvedMarker = "[RESOLVED]"

// ResolveTool is the function a model in the tools format calls when the
// user's issue is solved (bots with resolve: auto).
const ResolveTool = "resolve_conversation"

const resolvedSchema = `{"type":"boolean","description":"True only when the user's issue is solved and the user confirmed it."}`

// extraField is a field a bot's options add to Schema.
type extraField struct{ name, schema string }

// schemaWith is Schema with fields added before "suggested_replies" and
// required after it.
func schemaWith(fields []extraField) json.RawMessage {
	if len(fields) == 0 {
		return Schema
	}
	var props, req strings.Builder
	for _, f := range fields {
		fmt.Fprintf(&props, "%q:%s,", f.name, f.schema)
		fmt.Fprintf(&req, ",%q", f.name)
	}
	return json.RawMessage(strings.NewReplacer(
		`"suggested_replies":{"type":"array"`, props.String()+`"suggested_replies":{"type":"array"`,
		`"suggested_replies"]`, `"suggested_replies"`+req.String()+`]`,
	).Replace(string(Schema)))
}

// resolveWhen is when the model may say a conversation is resolved.
const resolveWhen = "only when the user's issue is solved and the user confirmed it (they thanked you, or said it works now); never on your own judgement alone"

// SchemaName names the JSON schema in the request.
const SchemaName = "kommbridge_reply"

// Schema is the strict JSON schema of a reply in the json_schema format.
var Schema = json.RawMessage(`{"type":"object","properties":{` +
	`"reply":{"type":"string","description":"The message shown to the user."},` +
	`"confidence":{"type":"number","description":"0 to 1: how sure you are that the reply is correct and complete."},` +
	`"handoff":{"type":"boolean","description":"True when a human teammate should take over."},` +
	`"handoff_reason":{"type":"string","description":"Why a human should take over, or empty."},` +
	`"team":{"type":"string","description":"The team to hand over to, or empty."},` +
	`"suggested_replies":{"type":"array","items":{"type":"string"},"description":"Short replies the user might send next."}},` +
	`"required":["reply","confidence","handoff","handoff_reason","team","suggested_replies"],"additionalProperties":false}`)

// Contract is what a bot's reply format asks of the model: the system
// prompt section that explains it and what goes into the request. Build it
// once per bot with NewContract.
type Contract struct {
	Format       kommbridge.ReplyFormat
	Instructions string
	Tools        []llm.Tool
	schema       json.RawMessage
}

// ContractOptions shape the instructions.
type ContractOptions struct {
	Format kommbridge.ReplyFormat
	// Teams are the team names the model may choose, sorted.
	Teams []string
	// MaxSuggested is the most suggested replies to ask for; 0 asks none.
	MaxSuggested int
	// NoVision says the model cannot see images.
	NoVision bool
	// Resolve lets the model say the user's issue is solved.
	Resolve bool
	// Rich lists the rich answer kinds the model may use (RichCards,
	// RichLists, RichImages); never in the text format.
	Rich []string
	// Forms names the forms the model may show, sorted.
	Forms []string
	// AskFile lets the model open the widget's attach button.
	AskFile bool
	// Sources asks the model to name the help-center passages it used
	// (bots with knowledge).
	Sources bool
	// Actions: the bot has actions (the request offers them as tools).
	Actions bool
}

// NewContract builds the contract for o.
func NewContract(o ContractOptions) Contract {
	c := Contract{Format: o.Format}
	var fields []extraField
	if o.Resolve {
		fields = append(fields, extraField{"resolved", resolvedSchema})
	}
	var b strings.Builder
	b.WriteString("\n\n## How to answer\n")
	team := ""
	if len(o.Teams) > 0 {
		team = fmt.Sprintf(" Teams you can hand over to: %s.", strings.Join(o.Teams, ", "))
	}
	switch o.Format {
	case kommbridge.FormatJSONSchema, kommbridge.FormatJSONObject:
		if o.Format == kommbridge.FormatJSONObject {
			b.WriteString("Answer with one JSON object and nothing else, with exactly these fields:\n")
		} else {
			b.WriteString("Answer with a JSON object with these fields:\n")
		}
		b.WriteString(`- "reply": the message the user will read, as plain text. Never put JSON in it.` + "\n")
		b.WriteString(`- "confidence": a number from 0 to 1, how sure you are that the reply is correct and complete given what you know.` + "\n")
		b.WriteString(`- "handoff": true when a human teammate should take over: the user asks for a person, is upset, or you cannot help. Otherwise false.` + "\n")
		b.WriteString(`- "handoff_reason": a few words saying why a human should take over, or "".` + "\n")
		if len(o.Teams) > 0 {
			fmt.Fprintf(&b, "- \"team\": when handing off, the team best placed to help, one of: %s; otherwise \"\".\n", strings.Join(o.Teams, ", "))
		} else {
			b.WriteString(`- "team": always "".` + "\n")
		}
		if o.MaxSuggested > 0 {
			fmt.Fprintf(&b, "- \"suggested_replies\": up to %d short replies (under 20 characters each) the user is likely to send next, or [].\n", o.MaxSuggested)
		} else {
			b.WriteString(`- "suggested_replies": always [].` + "\n")
		}
		if o.Resolve {
			b.WriteString(`- "resolved": true ` + resolveWhen + "; otherwise false.\n")
		}
		c.extras(o, &b, &fields)
		if o.Format == kommbridge.FormatJSONObject {
			b.WriteString(`Example: {"reply": "Your order shipped on Monday.", "confidence": 0.9, "handoff": false, "handoff_reason": "", "team": "", "suggested_replies": ["Track my order"]}` + "\n")
		}
		b.WriteString("If you tell the user you are connecting them with a person, set \"handoff\" to true: nothing else connects them.")
	case kommbridge.FormatTools:
		b.WriteString("Answer the user in plain text. When a human teammate should take over (the user asks for a person, is upset, or you cannot help), call the function " + HandoffTool + " with a short reason, and tell the user a teammate will join." + team + " Never promise a transfer without calling the function.")
		params := map[string]any{
			"type": "object",
			"properties": map[string]any{
				"reason": map[string]any{"type": "string", "description": "Why a human should take over."},
				"team":   map[string]any{"type": "string", "description": "The team to hand over to, or empty."},
			},
			"required": []string{"reason"},
		}
		if len(o.Teams) > 0 {
			params["properties"].(map[string]any)["team"].(map[string]any)["enum"] = append([]string{""}, o.Teams...)
		}
		raw, _ := json.Marshal(params)
		c.Tools = []llm.Tool{{Name: HandoffTool, Description: "Hand the conversation to a human teammate.", Parameters: raw}}
		if o.Resolve {
			b.WriteString("\nCall the function " + ResolveTool + " " + resolveWhen + ".")
			c.Tools = append(c.Tools, llm.Tool{Name: ResolveTool, Description: "Mark the conversation resolved: the user's issue is solved and they confirmed it.",
				Parameters: json.RawMessage(`{"type":"object","properties":{},"additionalProperties":false}`)})
		}
		c.extras(o, &b, &fields)
	default: // Text
		b.WriteString("Answer the user in plain text. When a human teammate should take over (the user asks for a person, is upset, or you cannot help), tell the user a teammate will join and put " + HandoffMarker + " at the end of your reply. Never promise a transfer without the marker.")
		if o.Resolve {
			b.WriteString("\nPut " + ResolvedMarker + " at the end of your reply " + resolveWhen + ".")
		}
		c.extras(o, &b, &fields)
	}
	c.schema = schemaWith(fields)
	if o.Actions {
		b.WriteString("\nThe functions you are given look things up or act in the business's systems. Call one only with values the user gave you (never make up an order number or the like); a function that changes something is only offered to the user to confirm with a button: never say it is done until you are told it was.")
	}
	if o.NoVision {
		b.WriteString("\nYou cannot see images. When the user sends one, you are told its name only; say so if it matters, and ask them to describe it.")
	}
	c.Instructions = b.String()
	return c
}

// Apply sets the request fields the contract needs.
func (c *Contract) Apply(r *llm.Request) {
	switch c.Format {
	case kommbridge.FormatJSONSchema:
		r.Format, r.SchemaName, r.Schema = llm.ResponseJSONSchema, SchemaName, c.schema
	case kommbridge.FormatJSONObject:
		r.Format = llm.ResponseJSONObject
	case kommbridge.FormatTools:
		// Clipped: what a request appends (a bot's actions) goes into an
		// array of its own, never into the one every event shares.
		r.Tools = slices.Clip(c.Tools)
	}
}
