package bridge

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/config"
	"github.com/kommbridge/kommbridge/llm"
	"github.com/kommbridge/kommbridge/prompt"
)

// summarySettings are a bot's handoff notes, compiled.
type summarySettings struct {
	model        string
	maxWords     int
	timeout      time.Duration
	notifyURL    string
	notifySecret string
}

func newSummary(s config.Summary, model string) *summarySettings {
	if !s.Enabled {
		return nil
	}
	return &summarySettings{model: cmp.Or(s.Model, model), maxWords: s.MaxWords, timeout: s.Timeout.D(), notifyURL: s.NotifyURL, notifySecret: s.NotifySecret}
}

// NoteResults are the fates of a handoff note: posted (with the model's
// part), posted_known_only (the model's part failed or was slow), failed
// (not delivered).
var NoteResults = []string{"posted", "posted_known_only", "failed"}

// Note is the handoff note for the agent: what kommbridge knows without
// asking, and what a model read in the transcript.
type Note struct {
	Conversation string `json:"conversation"`
	Bot          string `json:"bot"`
	Known        Known  `json:"known"`
	// Summary is the model's part; nil when it failed.
	Summary *prompt.NoteSummary `json:"summary,omitempty"`
	// Text is the note as the agent reads it.
	Text string `json:"text"`
}

// Known is the part of a handoff note kommbridge knows without a model.
type Known struct {
	Reason      string            `json:"reason"`
	Team        string            `json:"team,omitempty"`
	ModelWords  string            `json:"model_words,omitempty"`
	Confidence  *float64          `json:"confidence,omitempty"`
	Form        map[string]string `json:"form,omitempty"`
	Files       []string          `json:"files,omitempty"`
	Articles    []string          `json:"articles,omitempty"`
	OutOfHours  bool              `json:"out_of_hours"`
	Messages    int               `json:"messages"`
	LastMessage string            `json:"last_message,omitempty"`
}

// reasonWords say why a conversation was handed off, as an agent reads it.
var reasonWords = map[string]string{
	kommbridge.HandoffButton:        "pressed Talk to human",
	kommbridge.HandoffUserRequest:   "asked for a person",
	kommbridge.HandoffModel:         "the bot could not help",
	kommbridge.HandoffLowConfidence: "the bot was unsure of its answer",
	kommbridge.HandoffError:         "the bot's model failed",
	kommbridge.HandoffTimeout:       "the bot's model did not answer in time",
	kommbridge.HandoffRefusal:       "the bot's model refused",
	kommbridge.HandoffContentFilter: "the provider's content filter withheld the answer",
	kommbridge.HandoffDelivery:      "the bot's answer could not be delivered",
	kommbridge.HandoffNotInKB:       "not in the help center",
	kommbridge.HandoffPromise:       "the bot told the user a person would take over",
}

// summarize writes and posts the handoff note for r, in the background:
// the webhook's answer has gone out unchanged. It never touches the
// handoff; a note that cannot be delivered is logged and counted.
func (e *event) summarize(r *Result) {
	s := e.p.Summary
	if s == nil || r.HandoffReason == "" || r.Outcome == kommbridge.OutcomeDuplicate {
		return
	}
	b, ev := e.b, *e.ev
	known := Known{Reason: cmp.Or(reasonWords[r.HandoffReason], r.HandoffReason), ModelWords: r.ModelReason, Confidence: e.confidence, OutOfHours: r.Offline}
	for _, m := range r.Messages {
		if m.Handoff != nil {
			known.Team = m.Handoff.Team
		}
	}
	if len(ev.Form) > 0 {
		known.Form = ev.Form // passwords were taken out into ev.Secrets
	}
	for _, a := range ev.Attachments {
		known.Files = append(known.Files, cmp.Or(a.Name, a.Type))
	}
	if k := e.kres; k != nil {
		for _, c := range k.Cited {
			known.Articles = append(known.Articles, strings.TrimSpace(c.Title+" "+c.URL))
		}
	}
	known.LastMessage = kommbridge.Clip(ev.Text, 300)
	b.jobs.Add(1)
	go func() {
		defer b.jobs.Done()
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout+time.Minute)
		defer cancel()
		log := b.log.With(zap.String("bot", ev.BotID), zap.String("conversation", e.conv), zap.String("handoff_reason", r.HandoffReason))
		history, err := b.store.History(ctx, e.conv)
		if err != nil {
			log.Warn("handoff note written without the transcript: the store failed", zap.Error(err))
		}
		for _, t := range history {
			if t.Role == llm.RoleUser {
				known.Messages++
			}
		}
		note := Note{Conversation: e.conv, Bot: ev.BotID, Known: known}
		note.Summary = e.noteSummary(ctx, s, history)
		note.Text = note.text(s.maxWords)
		result := "posted"
		if note.Summary == nil {
			result = "posted_known_only"
		}
		if b.deliver != nil {
			mark := "note/" + e.conv + "/" + cmp.Or(ev.Key, time.Now().Format(time.RFC3339Nano))
			if err := b.deliver.Send(ctx, mark, ev.BotID, ev.ConversationID, kommbridge.ChannelWeb, kommbridge.Message{Text: note.Text, Hidden: true}); err != nil {
				log.Error("handoff note not delivered", b.errField(err))
				result = "failed"
			}
		}
		if s.notifyURL != "" {
			if err := notify(ctx, b.notifyClient, s, note); err != nil {
				log.Warn("handoff note not sent to notify_url", zap.Error(err))
			}
		}
		if b.onNote != nil {
			b.onNote(result)
		}
		log.Info("handoff note", zap.String("result", result))
	}()
}

// noteSummary asks the model for the note's second part, within the
// bot's summary timeout; nil when it fails.
func (e *event) noteSummary(ctx context.Context, s *summarySettings, history []kommbridge.Turn) *prompt.NoteSummary {
	if len(history) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := e.b.model.Complete(ctx, prompt.NoteRequest(s.model, history))
	if err != nil {
		e.b.log.Warn("handoff note's summary not written; the note holds what kommbridge knows", zap.String("conversation", e.conv), e.b.errField(err))
		return nil
	}
	return prompt.ParseNote(resp)
}

// text is the note as the agent reads it: what kommbridge knows, then
// the model's part cut to maxWords words.
func (n Note) text(maxWords int) string {
	k := n.Known
	var b strings.Builder
	b.WriteString("Handoff note (kommbridge, not shown to the user)\n")
	head := []string{"Reason: " + k.Reason}
	if k.Team != "" {
		head = append(head, "team "+k.Team)
	}
	if k.OutOfHours {
		head = append(head, "out of hours")
	}
	head = append(head, fmt.Sprintf("%d messages from the user", k.Messages))
	b.WriteString(strings.Join(head, "; ") + "\n")
	if s := n.Summary; s != nil {
		var part strings.Builder
		line := func(label, v string) {
			if strings.TrimSpace(v) != "" {
				part.WriteString(label + ": " + strings.TrimSpace(v) + "\n")
			}
		}
		line("Intent", s.Intent)
		line("Tried", s.Tried)
		line("Facts", strings.Join(s.Facts, "; "))
		line("Open question", s.OpenQuestion)
		line("Sentiment", s.Sentiment)
		b.WriteString(clipWords(part.String(), maxWords))
	} else {
		b.WriteString("(No summary: the model did not write one in time.)\n")
	}
	if k.ModelWords != "" {
		b.WriteString("The bot's reason: " + k.ModelWords + "\n")
	}
	if k.Confidence != nil {
		fmt.Fprintf(&b, "The bot's confidence: %.2f\n", *k.Confidence)
	}
	if len(k.Form) > 0 {
		var f []string
		for _, key := range slices.Sorted(maps.Keys(k.Form)) {
			f = append(f, key+": "+k.Form[key])
		}
		b.WriteString("Form: " + strings.Join(f, "; ") + "\n")
	}
	if len(k.Files) > 0 {
		b.WriteString("Files: " + strings.Join(k.Files, ", ") + "\n")
	}
	if len(k.Articles) > 0 {
		b.WriteString("Help-center articles shown: " + strings.Join(k.Articles, "; ") + "\n")
	}
	if k.LastMessage != "" {
		b.WriteString("Last message: " + k.LastMessage + "\n")
	}
	return strings.TrimSpace(b.String())
}

// clipWords keeps the first n words of s, lines kept.
func clipWords(s string, n int) string {
	var out strings.Builder
	count := 0
	for _, line := range strings.SplitAfter(s, "\n") {
		words := strings.Fields(line)
		if count+len(words) > n {
			out.WriteString(strings.Join(words[:max(n-count, 0)], " ") + " ...\n")
			break
		}
		count += len(words)
		out.WriteString(line)
	}
	return out.String()
}

// notify posts the note as JSON to the bot's notify_url, signed:
// X-Kommbridge-Signature is "sha256=" and the hex HMAC-SHA256 of the body
// under notify_secret.
func notify(ctx context.Context, hc *http.Client, s *summarySettings, n Note) error {
	body, _ := json.Marshal(n)
	m := hmac.New(sha256.New, []byte(s.notifySecret))
	m.Write(body)
	var last error
	for try := range 2 {
		if try > 0 {
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.notifyURL, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Kommbridge-Signature", "sha256="+hex.EncodeToString(m.Sum(nil)))
		resp, err := hc.Do(req)
		if err != nil {
			last = err
			continue
		}
		resp.Body.Close()
		if resp.StatusCode < 300 {
			return nil
		}
		last = fmt.Errorf("HTTP %d", resp.StatusCode)
		if resp.StatusCode < 500 {
			return last
		}
	}
	return last
}
