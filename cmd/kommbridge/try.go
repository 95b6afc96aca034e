package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"mime"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/adapter"
	"github.com/kommbridge/kommbridge/bridge"
	"github.com/kommbridge/kommbridge/config"
	"github.com/kommbridge/kommbridge/eval"
)

const tryHelp = `Type a message as the chat user would. Commands:
  /welcome           start a new conversation with the WELCOME event
  /reset             start a new conversation, silently
  /attach URL [TYPE] attach a file (or "location LAT LON") to the next message
  /context KEY=VALUE set a chat context key (kmUserLocale, name, plan, ...)
  /send              send the attachments given with /attach, with no text
  /json              print the exact JSON Kommunicate would get (toggle)
  /yes, /no          press the last confirmation's Yes or No (an action that changes data)
  /help              this list
  /quit              leave
`

// try runs the webhook's pipeline in-process against the configured
// model and prints what the chat user would see.
func try(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("try", flag.ContinueOnError)
	path := fs.String("config", "config.yaml", "configuration file")
	botID := fs.String("bot", "", "the botId to answer as (default: the first bot, or any for \"*\")")
	asJSON := fs.Bool("json", false, "also print the exact JSON Kommunicate would get")
	transcript := fs.String("transcript", "", "append the conversation to this file as JSON Lines (for kommbridge eval init)")
	words, err := parseFlags(fs, args, true, stdout, stderr)
	if err != nil || words == nil {
		return err
	}
	cfg, err := config.Load(*path, getenv, bridge.CheckTemplates)
	if err != nil {
		reportConfig(stderr, *path, err)
		return errSilent
	}
	// try shows every answer here, however long it takes: nothing is held
	// for delivery through Kommunicate's API (the conversation is not real).
	for i := range cfg.Bots {
		cfg.Bots[i].Async.Enabled = false
	}
	if *botID == "" {
		*botID = cfg.Bots[0].ID
		if *botID == "*" {
			*botID = "try-bot"
		}
	}
	log, err := newLogger(config.Log{Level: "error", Format: "console"}, stderr)
	if err != nil {
		return err
	}
	a, err := newApp(cfg, log, nil)
	if err != nil {
		return err
	}
	defer a.close()
	s := &session{a: a, bot: *botID, out: stdout, json: *asJSON, color: isTerminal(stdout), context: map[string]string{}}
	if *transcript != "" {
		f, err := os.OpenFile(*transcript, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		s.transcript = json.NewEncoder(f)
	}
	s.newConversation()
	if msg := strings.TrimSpace(strings.Join(words, " ")); msg != "" {
		if err := s.send(ctx, kommbridge.Event{Text: msg}); err != nil {
			return err
		}
		if s.failed != nil {
			fmt.Fprintf(stderr, "kommbridge: the model failed: %v\n", s.failed)
			return errModelFailed
		}
		return nil
	}
	fmt.Fprint(stdout, tryHelp)
	in := bufio.NewScanner(stdin)
	for {
		fmt.Fprint(stdout, s.paint("\nyou> ", "1"))
		if !in.Scan() {
			fmt.Fprintln(stdout)
			return in.Err()
		}
		line := strings.TrimSpace(in.Text())
		if line == "" {
			continue
		}
		if done, err := s.command(ctx, line); done || err != nil {
			return err
		}
	}
}

type session struct {
	a       *app
	bot     string
	conv    string
	n       int
	out     io.Writer
	json    bool
	color   bool
	context map[string]string
	pending []kommbridge.Attachment
	// confirm is the last confirmation shown, which /yes and /no press.
	confirm string
	failed  error // the model's failure behind the last answer, if any
	// transcript, when set, gets every exchange as eval.Line values.
	transcript *json.Encoder
}

func (s *session) newConversation() {
	s.conv = "try-" + strconv.FormatInt(time.Now().UnixNano(), 36)
}

// command runs one line of the interactive session; done means /quit.
func (s *session) command(ctx context.Context, line string) (done bool, err error) {
	if !strings.HasPrefix(line, "/") {
		return false, s.send(ctx, kommbridge.Event{Text: line})
	}
	fields := strings.Fields(line)
	switch fields[0] {
	case "/quit", "/exit":
		return true, nil
	case "/reset":
		s.newConversation()
		fmt.Fprintln(s.out, "(new conversation)")
	case "/welcome":
		s.newConversation()
		return false, s.send(ctx, kommbridge.Event{Name: kommbridge.EventWelcome})
	case "/json":
		s.json = !s.json
		fmt.Fprintf(s.out, "(JSON %s)\n", map[bool]string{true: "on", false: "off"}[s.json])
	case "/context":
		for _, kv := range fields[1:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				fmt.Fprintln(s.out, "usage: /context KEY=VALUE")
				continue
			}
			s.context[k] = v
		}
		fmt.Fprintf(s.out, "(context %v)\n", s.context)
	case "/attach":
		a, err := attachment(fields[1:])
		if err != nil {
			fmt.Fprintln(s.out, err)
			break
		}
		s.pending = append(s.pending, a)
		fmt.Fprintf(s.out, "(attached %s %s to the next message; send it, or an empty /send)\n", a.Type, a.Name)
	case "/send":
		return false, s.send(ctx, kommbridge.Event{})
	case "/yes", "/no":
		if s.confirm == "" {
			fmt.Fprintln(s.out, "no confirmation to press")
			return false, nil
		}
		tok, label := s.confirm, "Yes"
		if line == "/no" {
			tok, label = kommbridge.ConfirmNo, "No"
		}
		return false, s.send(ctx, kommbridge.Event{Text: label, Confirm: tok, Clicked: "confirm"})
	case "/help":
		fmt.Fprint(s.out, tryHelp)
	default:
		fmt.Fprintf(s.out, "unknown command %s\n%s", fields[0], tryHelp)
	}
	return false, nil
}

func attachment(args []string) (kommbridge.Attachment, error) {
	if len(args) == 3 && args[0] == "location" {
		lat, err1 := strconv.ParseFloat(args[1], 64)
		lon, err2 := strconv.ParseFloat(args[2], 64)
		if err1 != nil || err2 != nil {
			return kommbridge.Attachment{}, fmt.Errorf("usage: /attach location LAT LON")
		}
		return kommbridge.Attachment{Type: "location", Lat: lat, Lon: lon}, nil
	}
	if len(args) == 0 {
		return kommbridge.Attachment{}, fmt.Errorf("usage: /attach URL [TYPE] or /attach location LAT LON")
	}
	a := kommbridge.Attachment{URL: args[0], Name: path.Base(strings.SplitN(args[0], "?", 2)[0])}
	if len(args) > 1 {
		a.Type = args[1]
	} else if t := mime.TypeByExtension(path.Ext(a.Name)); t != "" {
		a.Type, _, _ = strings.Cut(t, ";")
	} else {
		a.Type = "application/octet-stream"
	}
	return a, nil
}

// send runs one event through the bridge and prints the answer.
func (s *session) send(ctx context.Context, ev kommbridge.Event) error {
	s.n++
	ev.BotID, ev.UserID, ev.ConversationID = s.bot, "try-user", s.conv
	ev.Key = fmt.Sprintf("%s-%d", s.conv, s.n)
	ev.Context = s.context
	if len(s.pending) > 0 {
		ev.Name, ev.Attachments, s.pending = kommbridge.EventMedia, s.pending, nil
	}
	ev.ReceivedAt = time.Now()
	res, err := s.a.bridge.Handle(ctx, ev)
	if err != nil {
		return err
	}
	s.failed = nil
	if res.Outcome == kommbridge.OutcomeError || res.HandoffReason == kommbridge.HandoffError || res.HandoffReason == kommbridge.HandoffTimeout {
		s.failed = res.Err
	}
	s.print(res, time.Since(ev.ReceivedAt))
	return s.record(ev, res)
}

// record appends the exchange to the transcript: the user's line, then
// the bot's answer with whether it handed off.
func (s *session) record(ev kommbridge.Event, res bridge.Result) error {
	if s.transcript == nil {
		return nil
	}
	user := eval.Line{Conversation: s.conv, Role: "user", Text: ev.Text, Context: maps.Clone(ev.Context)}
	for _, a := range ev.Attachments {
		if a.URL != "" {
			user.Attachments = append(user.Attachments, a.URL)
		}
	}
	if ev.Name == kommbridge.EventWelcome {
		user.Event = ev.Name
	}
	if ev.TalkToHuman {
		user.Text = "Talk to human"
	}
	texts := make([]string, 0, len(res.Messages))
	handoff := false
	for _, m := range res.Messages {
		texts = append(texts, m.Text)
		handoff = handoff || m.Handoff != nil
	}
	bot := eval.Line{Conversation: s.conv, Role: "bot", Text: strings.Join(texts, "\n"), Handoff: &handoff}
	if err := s.transcript.Encode(user); err != nil {
		return err
	}
	return s.transcript.Encode(bot)
}

func (s *session) print(res bridge.Result, took time.Duration) {
	if len(res.Messages) == 0 {
		fmt.Fprintln(s.out, s.paint("bot> (no answer: "+res.Outcome+")", "2"))
	}
	for _, c := range res.Actions {
		line := fmt.Sprintf("-> %s %s: %s", c.Action, c.Args, c.Kind)
		if c.Status != 0 {
			line += fmt.Sprintf(", HTTP %d", c.Status)
		}
		if c.Took > 0 {
			line += fmt.Sprintf(" in %s", c.Took.Round(time.Millisecond))
		}
		fmt.Fprintln(s.out, "     "+s.paint(line, "35"))
		if c.Told != "" {
			fmt.Fprintln(s.out, "        "+s.paint("the model was told: "+c.Told, "2"))
		}
	}
	for _, m := range res.Messages {
		fmt.Fprintln(s.out, s.paint("bot> ", "1;36")+m.Text)
		var buttons []string
		if c := m.Confirm; c != nil {
			s.confirm = c.Token
			buttons = append(buttons, "["+c.Yes+": /yes]", "["+c.No+": /no]")
		}
		for _, q := range m.QuickReplies {
			buttons = append(buttons, "["+q+"]")
		}
		for _, l := range m.Links {
			buttons = append(buttons, "["+l.Name+" -> "+l.URL+"]")
		}
		if len(buttons) > 0 {
			fmt.Fprintln(s.out, "     "+s.paint(strings.Join(buttons, " "), "36"))
		}
		for _, line := range richLines(m) {
			fmt.Fprintln(s.out, "     "+s.paint(line, "36"))
		}
		if m.Handoff != nil {
			to := "Kommunicate's routing rules"
			if m.Handoff.AssignTo != "" {
				to = m.Handoff.AssignTo
			}
			if m.Handoff.Team != "" {
				to += ", team " + m.Handoff.Team
			}
			fmt.Fprintln(s.out, "     "+s.paint(fmt.Sprintf("-> handed to a person (reason: %s; assigned by %s)", res.HandoffReason, to), "1;33"))
		}
	}
	stats := fmt.Sprintf("(%s", took.Round(time.Millisecond))
	if res.Attempts > 0 {
		stats += fmt.Sprintf(", %d tokens in, %d out, %s at %s", res.Usage.PromptTokens, res.Usage.CompletionTokens, res.Model, res.Endpoint)
	}
	if res.Violation != "" {
		stats += ", reply broke the " + string(res.Format) + " contract: " + res.Violation
	}
	if res.Err != nil {
		stats += ", error: " + res.Err.Error()
	}
	fmt.Fprintln(s.out, "     "+s.paint(stats+")", "2"))
	if s.json {
		b, _ := json.MarshalIndent(adapter.Render(res.Reply), "     ", "  ")
		fmt.Fprintln(s.out, "     "+string(b))
	}
}

// paint colours text with an ANSI code on a terminal only.
func (s *session) paint(text, code string) string {
	if !s.color {
		return text
	}
	return "\x1b[" + code + "m" + text + "\x1b[0m"
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// richLines describe a message's rich parts and widget controls for the
// terminal, one line each.
func richLines(m kommbridge.Message) []string {
	var out []string
	for _, c := range m.Cards {
		line := "[card: " + c.Title
		if c.Subtitle != "" {
			line += " - " + c.Subtitle
		}
		if c.ImageURL != "" {
			line += " (image " + c.ImageURL + ")"
		}
		for _, b := range c.Buttons {
			line += " [" + b.Name + "]"
		}
		out = append(out, line+"]")
	}
	if m.List != nil {
		items := make([]string, len(m.List.Items))
		for i, it := range m.List.Items {
			items[i] = it.Title
		}
		out = append(out, "[list: "+strings.Join(items, " | ")+"]")
	}
	for _, im := range m.Images {
		out = append(out, "[image: "+im.URL+" "+im.Caption+"]")
	}
	if m.Form != nil {
		fields := make([]string, 0, len(m.Form.Fields))
		for _, f := range m.Form.Fields {
			if f.Type != "hidden" {
				fields = append(fields, f.Label)
			}
		}
		out = append(out, "[form "+m.Form.Name+": "+strings.Join(fields, ", ")+" ["+m.Form.Submit+"]]")
	}
	if m.AskFile {
		out = append(out, "[attach button shown]")
	}
	if m.Resolve {
		out = append(out, "-> conversation closed as resolved")
	}
	return out
}
