package eval

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/kommbridge/kommbridge"
)

// Line is one message of a transcript: `kommbridge try --transcript`
// writes them, and exports of conversations (one message per line) are
// read leniently into them.
type Line struct {
	Conversation string `json:"conversation"`
	// Role is "user" or "bot".
	Role string `json:"role"`
	Text string `json:"text"`
	// Event is an event's name (WELCOME), for a user line.
	Event string `json:"event,omitempty"`
	// Handoff: the bot's answer handed off; nil when the export does not
	// say.
	Handoff *bool `json:"handoff,omitempty"`
	// Attachments are the files a user line sent (URLs), and Context the
	// chat context it was sent with (try's /attach and /context), so that
	// a case made from it sends the same.
	Attachments []string          `json:"attachments,omitempty"`
	Context     map[string]string `json:"context,omitempty"`
}

// Conversation is a transcript's messages of one conversation, in order.
type Conversation struct {
	ID    string
	Lines []Line
}

// ReadTranscripts reads JSON Lines of messages: try's transcripts, or an
// export whose lines name the conversation (conversation, groupId,
// conversationId), who spoke (role, sender, type: user, customer,
// visitor / bot, assistant, agent; a line without one, such as a logged
// Kommunicate webhook, is the user's) and the text (text, message,
// content). Lines that are not JSON objects are errors naming their
// number; lines with no text and no event are skipped.
func ReadTranscripts(r io.Reader) ([]Conversation, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4<<20)
	var convs []Conversation
	index := map[string]int{}
	n := 0
	for sc.Scan() {
		n++
		raw := strings.TrimSpace(sc.Text())
		if raw == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			return nil, fmt.Errorf("line %d: not a JSON object: %v", n, err)
		}
		l := Line{
			Conversation: str(m, "conversation", "groupId", "conversationId", "conversation_id", "group_id"),
			Text:         strings.TrimSpace(str(m, "text", "message", "content")),
			Event:        str(m, "event", "eventName"),
		}
		switch strings.ToLower(str(m, "role", "sender", "type", "author")) {
		case "bot", "assistant", "agent", "ai":
			l.Role = "bot"
		default:
			l.Role = "user"
		}
		if h, ok := m["handoff"].(bool); ok {
			l.Handoff = &h
		}
		if as, ok := m["attachments"].([]any); ok {
			for _, a := range as {
				if u, ok := a.(string); ok && u != "" {
					l.Attachments = append(l.Attachments, u)
				}
			}
		}
		if ctx, ok := m["context"].(map[string]any); ok {
			l.Context = map[string]string{}
			for k, v := range ctx {
				l.Context[k] = fmt.Sprint(v)
			}
		}
		if l.Text == "" && l.Event == "" && len(l.Attachments) == 0 {
			continue
		}
		i, ok := index[l.Conversation]
		if !ok {
			i = len(convs)
			index[l.Conversation] = i
			convs = append(convs, Conversation{ID: l.Conversation})
		}
		convs[i].Lines = append(convs[i].Lines, l)
	}
	return convs, sc.Err()
}

func str(m map[string]any, keys ...string) string {
	for _, k := range keys {
		switch v := m[k].(type) {
		case string:
			if v != "" {
				return v
			}
		case float64:
			return strconv.FormatFloat(v, 'f', -1, 64)
		}
	}
	return ""
}

// WriteStarter writes a starter suite from conversations: a case per
// conversation with user messages (at most max cases, skipping ones that
// open with the same words), each turn noting what the bot answered and
// expecting the handoff the transcript shows, where it shows one. The
// operator adds the expectations that matter.
func WriteStarter(w io.Writer, convs []Conversation, bot, source string, max int) (int, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "# Starter suite from %s, written by `kommbridge eval init`.\n", source)
	b.WriteString("# Each turn notes what the bot answered then. Add what the user must see: handoff, contains,\n")
	b.WriteString("# not_contains, matches, buttons, judge, ... (see docs/eval.md), then run\n")
	b.WriteString("#   kommbridge eval --config config.yaml evals/\n")
	if bot != "" {
		fmt.Fprintf(&b, "bot: %s\n", strconv.Quote(bot))
	}
	b.WriteString("cases:\n")
	seen, names, cases := map[string]bool{}, map[string]int{}, 0
	for _, c := range convs {
		if cases == max {
			break
		}
		var turns strings.Builder
		first := ""
		context := map[string]string{}
		for i, l := range c.Lines {
			if l.Role != "user" {
				continue
			}
			switch {
			case strings.EqualFold(l.Event, "WELCOME"):
				turns.WriteString("      - welcome: true\n")
			case l.Text == "" && len(l.Attachments) == 0:
				continue
			default:
				if first == "" {
					first = cmp.Or(l.Text, "(attachments)")
				}
				fmt.Fprintf(&turns, "      - user: %s\n", strconv.Quote(l.Text))
				if len(l.Attachments) > 0 {
					quoted := make([]string, len(l.Attachments))
					for j, a := range l.Attachments {
						quoted[j] = strconv.Quote(a)
					}
					fmt.Fprintf(&turns, "        attachments: [%s]\n", strings.Join(quoted, ", "))
				}
			}
			if changed := newKeys(context, l.Context); len(changed) > 0 {
				var kv []string
				for _, k := range changed {
					kv = append(kv, strconv.Quote(k)+": "+strconv.Quote(l.Context[k]))
					context[k] = l.Context[k]
				}
				fmt.Fprintf(&turns, "        context: {%s}\n", strings.Join(kv, ", "))
			}
			if i+1 < len(c.Lines) && c.Lines[i+1].Role == "bot" {
				answer := c.Lines[i+1]
				fmt.Fprintf(&turns, "        # the bot answered: %s\n", oneLine(answer.Text, 160))
				if answer.Handoff != nil {
					fmt.Fprintf(&turns, "        expect: {handoff: %v}\n", *answer.Handoff)
				}
			}
		}
		key := strings.ToLower(strings.Join(strings.Fields(first), " "))
		if first == "" || seen[key] {
			continue
		}
		seen[key] = true
		name := oneLine(first, 60)
		names[name]++
		if names[name] > 1 {
			name = fmt.Sprintf("%s (%d)", name, names[name])
		}
		fmt.Fprintf(&b, "  - name: %s\n    turns:\n%s", strconv.Quote(name), turns.String())
		cases++
	}
	if cases == 0 {
		return 0, fmt.Errorf("no conversation with a user message in %s", source)
	}
	_, err := io.WriteString(w, b.String())
	return cases, err
}

// newKeys are the keys of next whose values differ from was, sorted.
func newKeys(was, next map[string]string) []string {
	var out []string
	for k, v := range next {
		if old, ok := was[k]; !ok || old != v {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// oneLine is s on one line, cut to n characters.
func oneLine(s string, n int) string {
	return kommbridge.Clip(strings.Join(strings.Fields(s), " "), n)
}
