package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/config"
	"github.com/kommbridge/kommbridge/llm"
)

// probeBots probes the primary endpoint for each model the bots use,
// prints what it honours and each bot's recommended settings, and with
// write puts them into the config file at path.
func probeBots(ctx context.Context, cfg *config.Config, model *llm.Client, path string, write bool, out io.Writer) error {
	found := map[string]llm.Features{}
	var edits []yamlEdit
	for i, b := range cfg.Bots {
		m := b.Model
		if m == "" {
			m = cfg.LLM.Model
		}
		f, ok := found[m]
		if !ok {
			f = model.Probe(ctx, 0, m)
			found[m] = f
			printFeatures(out, f)
			if f.Err != nil {
				return fmt.Errorf("probe of %s at %s: %v", m, f.Endpoint, f.Err)
			}
		}
		rec := recommend(f)
		verdict := "ok   "
		if kommbridge.ReplyFormat(b.ReplyFormat) != rec {
			verdict = "warn "
			edits = append(edits, yamlEdit{bot: i, key: "reply_format", value: string(rec)})
		}
		fmt.Fprintf(out, "%s bots[%d] (id %q): reply_format %s, recommended %s\n", verdict, i, b.ID, b.ReplyFormat, rec)
		if !f.Images && (b.Vision == nil || *b.Vision) {
			fmt.Fprintf(out, "warn  bots[%d] (id %q): %s takes no images: recommended vision: false\n", i, b.ID, m)
			edits = append(edits, yamlEdit{bot: i, key: "vision", value: "false"})
		}
		if !f.LogProbs && b.Handoff.MinTokenConfidence > 0 {
			fmt.Fprintf(out, "warn  bots[%d] (id %q): %s returns no logprobs: handoff.min_token_confidence has no effect\n", i, b.ID, m)
		}
		if f.CompletionTokens && !cfg.LLM.MaxCompletionTokens {
			fmt.Fprintf(out, "note  %s wants max_completion_tokens: kommbridge learns that by itself; llm.max_completion_tokens: true says it up front\n", m)
		}
	}
	if !write || len(edits) == 0 {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	updated, err := applyEdits(data, edits)
	if err != nil {
		return fmt.Errorf("writing the recommendations: %w", err)
	}
	if err := os.WriteFile(path, updated, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(out, "ok    wrote %d change(s) to %s\n", len(edits), path)
	return nil
}

// recommend is the reply format that suits what an endpoint honours, best
// first: the strict schema, a tool for the handoff, a JSON object, text.
func recommend(f llm.Features) kommbridge.ReplyFormat {
	switch {
	case f.JSONSchema:
		return kommbridge.FormatJSONSchema
	case f.Tools:
		return kommbridge.FormatTools
	case f.JSONObject:
		return kommbridge.FormatJSONObject
	}
	return kommbridge.FormatText
}

func printFeatures(out io.Writer, f llm.Features) {
	fmt.Fprintf(out, "probe model %s at %s: %d calls, %d tokens\n", f.Model, f.Endpoint, f.Calls, f.Tokens)
	if f.Err != nil {
		return
	}
	yes := map[bool]string{true: "yes", false: "no"}
	field := map[bool]string{true: "max_completion_tokens", false: "max_tokens"}
	for _, row := range [][2]string{
		{"json_schema (strict)", yes[f.JSONSchema]},
		{"json_object", yes[f.JSONObject]},
		{"tools", yes[f.Tools]},
		{"logprobs", yes[f.LogProbs]},
		{"image input", yes[f.Images]},
		{"token limit field", field[f.CompletionTokens]},
	} {
		fmt.Fprintf(out, "      %-22s %s\n", row[0], row[1])
	}
}

// yamlEdit sets key to value in bots[bot].
type yamlEdit struct {
	bot        int
	key, value string
}

// applyEdits changes the file's text in place, line by line, so that its
// comments and layout stay: a key present gets its value replaced on its
// line; a key absent is added under the bot's first key.
func applyEdits(data []byte, edits []yamlEdit) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("empty file")
	}
	bots := mapValue(doc.Content[0], "bots")
	if bots == nil || bots.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("no bots list in the file: add the bots it recommends for by hand")
	}
	lines := strings.Split(string(data), "\n")
	type insert struct {
		after int
		text  string
	}
	var inserts []insert
	for _, e := range edits {
		if e.bot >= len(bots.Content) || bots.Content[e.bot].Kind != yaml.MappingNode || len(bots.Content[e.bot].Content) == 0 {
			return nil, fmt.Errorf("bots[%d] is not a mapping in the file", e.bot)
		}
		bot := bots.Content[e.bot]
		if v := mapValue(bot, e.key); v != nil {
			if v.Kind != yaml.ScalarNode || v.Line < 1 || v.Line > len(lines) {
				return nil, fmt.Errorf("bots[%d].%s is not a plain value", e.bot, e.key)
			}
			line := lines[v.Line-1]
			start := v.Column - 1
			end := len(line)
			if c := strings.Index(line[start:], " #"); c >= 0 {
				end = start + c
			}
			rest := line[end:]
			pad := ""
			if rest != "" {
				pad = strings.Repeat(" ", max(1, end+1-start-len(e.value)))
				rest = strings.TrimLeft(rest, " ")
				if rest != "" {
					rest = pad + rest
				}
			}
			lines[v.Line-1] = line[:start] + e.value + rest
			continue
		}
		first := bot.Content[0]
		inserts = append(inserts, insert{after: first.Line, text: strings.Repeat(" ", first.Column-1) + e.key + ": " + e.value})
	}
	for i := len(inserts) - 1; i >= 0; i-- { // from the bottom, so line numbers hold
		in := inserts[i]
		lines = append(lines[:in.after], append([]string{in.text}, lines[in.after:]...)...)
	}
	return []byte(strings.Join(lines, "\n")), nil
}

// mapValue is the value of key in mapping node m, nil if absent.
func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}
