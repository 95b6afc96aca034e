// Package eval runs conversation suites through kommbridge's pipeline and
// reports what the user would see against what each turn expects: the
// regression suite for a support bot's prompt, model and settings.
package eval

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/config"
)

// Suite is one suite file: cases of one or more turns.
type Suite struct {
	// Path is the file it was read from.
	Path string `yaml:"-"`
	// Bot is the botId the cases talk to, unless a case names its own.
	Bot string `yaml:"bot"`
	// Context is the chat context every case starts with.
	Context map[string]string `yaml:"context"`
	// Actions answer the bot's action calls in place of the business's
	// APIs, by action name; eval never calls a real API.
	Actions map[string]Stubs `yaml:"actions"`
	Cases   []Case           `yaml:"cases"`
}

// ExpectCall is an action call a turn expects.
type ExpectCall struct {
	Action string         `yaml:"action"`
	Args   map[string]any `yaml:"args"`
}

// Stubs are an action's stubbed answers: the first whose args the call's
// arguments hold answers it.
type Stubs []Stub

// Stub is one stubbed answer: for calls whose arguments include Args (all
// calls when empty), the status (200) and JSON body.
type Stub struct {
	Args   map[string]any `yaml:"args"`
	Status int            `yaml:"status"`
	Body   any            `yaml:"body"`
}

// UnmarshalYAML reads one stub or a list of them.
func (s *Stubs) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.MappingNode {
		var one Stub
		if err := n.Decode(&one); err != nil {
			return err
		}
		*s = Stubs{one}
		return nil
	}
	var list []Stub
	if err := n.Decode(&list); err != nil {
		return err
	}
	*s = list
	return nil
}

// Case is one conversation.
type Case struct {
	Name    string            `yaml:"name"`
	Bot     string            `yaml:"bot"`
	Context map[string]string `yaml:"context"`
	Turns   []Turn            `yaml:"turns"`
}

// Turn is one thing the user does, and what they should see.
type Turn struct {
	// User is the message's text.
	User string `yaml:"user"`
	// Welcome opens the conversation (Kommunicate's WELCOME event).
	Welcome bool `yaml:"welcome"`
	// TalkToHuman presses the widget's "Talk to human" button.
	TalkToHuman bool `yaml:"talk_to_human"`
	// Event is a custom event's name.
	Event string `yaml:"event"`
	// Attachments are files sent with the message: local paths (relative
	// to the suite file) or https URLs.
	Attachments []string `yaml:"attachments"`
	// Form submits a form's values (a post-back).
	Form map[string]string `yaml:"form"`
	// Context adds chat context keys from this turn on.
	Context map[string]string `yaml:"context"`
	// Press presses the last confirmation shown: yes or no.
	Press  string `yaml:"press"`
	Expect Expect `yaml:"expect"`
}

// Expect is what the user should see after a turn. Unset fields are not
// checked.
type Expect struct {
	Handoff     *bool    `yaml:"handoff"`
	Reason      string   `yaml:"reason"`
	Team        string   `yaml:"team"`
	Contains    []string `yaml:"contains"`
	NotContains []string `yaml:"not_contains"`
	// Matches is a regular expression the answer's text must match.
	Matches    string          `yaml:"matches"`
	Buttons    *ButtonsExpect  `yaml:"buttons"`
	Resolved   *bool           `yaml:"resolved"`
	Outcome    string          `yaml:"outcome"`
	Judge      string          `yaml:"judge"`
	MaxLatency config.Duration `yaml:"max_latency"`
	MaxTokens  int             `yaml:"max_tokens"`
	// What kommbridge renders beyond text: the form shown (its name), the
	// attach button opened, cards, a list, images, link buttons (URLs).
	Form   string       `yaml:"form"`
	Attach *bool        `yaml:"attach"`
	Cards  *PartsExpect `yaml:"cards"`
	List   *PartsExpect `yaml:"list"`
	Images *PartsExpect `yaml:"images"`
	Links  []string     `yaml:"links"`
	// Cites are articles (URL or title) the answer must cite, from the
	// bot's help center; NotInKB, when set, says whether the help center
	// must have found nothing for the message.
	Cites   []string `yaml:"cites"`
	NotInKB *bool    `yaml:"not_in_kb"`
	// Calls are action calls the model must make (its arguments holding
	// Args); NoCalls actions that must not run (reach the API or a stub).
	Calls   []ExpectCall `yaml:"calls"`
	NoCalls []string     `yaml:"no_calls"`
	// NoFalsePromise: the model's reply must not promise a person without
	// handing off (whatever the bot's on_false_promise then does).
	NoFalsePromise bool `yaml:"no_false_promise"`

	matches *regexp.Regexp
}

// PartsExpect checks rich parts: how many, and the titles (a card's, a
// list item's, an image's caption or URL) they include.
type PartsExpect struct {
	Count  *int     `yaml:"count"`
	Titles []string `yaml:"titles"`
}

// ButtonsExpect checks the answer's buttons (quick replies, links, list
// rows): the labels it includes, and how many there are.
type ButtonsExpect struct {
	Includes []string `yaml:"includes"`
	Count    *int     `yaml:"count"`
	Min      *int     `yaml:"min"`
	Max      *int     `yaml:"max"`
}

// Load reads suite files; a directory stands for the .yaml and .yml files
// in it. Every problem of every file is reported at once, each naming its
// file, case and turn. A suite's local attachments must be inside its
// folder (LoadWith allows others).
func Load(paths ...string) ([]*Suite, error) { return LoadWith(LoadOptions{}, paths...) }

// LoadOptions change what Load accepts.
type LoadOptions struct {
	// AllowFiles lets a suite attach local files outside its own folder
	// (absolute paths, "..", symbolic links leading out).
	AllowFiles bool
}

// LoadWith is Load with options.
func LoadWith(o LoadOptions, paths ...string) ([]*Suite, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		for _, pattern := range []string{"*.yaml", "*.yml"} {
			m, _ := filepath.Glob(filepath.Join(p, pattern))
			files = append(files, m...)
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no suite files in %s", strings.Join(paths, ", "))
	}
	slices.Sort(files)
	var suites []*Suite
	var errs []error
	for _, f := range slices.Compact(files) {
		s, err := loadFile(f, o)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		suites = append(suites, s)
	}
	return suites, errors.Join(errs...)
}

func loadFile(path string, o LoadOptions) (*Suite, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s := &Suite{Path: path}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if errs := unknownKeys(path, &doc); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, s.validate(o)
}

func (s *Suite) validate(o LoadOptions) error {
	var errs []error
	bad := func(where, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s: %s", s.Path, where, fmt.Sprintf(format, args...)))
	}
	if len(s.Cases) == 0 {
		bad("cases", "the suite has no cases")
	}
	names := map[string]bool{}
	for i := range s.Cases {
		c := &s.Cases[i]
		where := fmt.Sprintf("cases[%d]", i)
		switch {
		case strings.TrimSpace(c.Name) == "":
			bad(where+".name", "every case needs a name")
		case names[c.Name]:
			bad(where+".name", "%q is used by more than one case", c.Name)
		}
		names[c.Name] = true
		if c.Name != "" {
			where = fmt.Sprintf("case %q", c.Name)
		}
		if len(c.Turns) == 0 {
			bad(where, "has no turns")
		}
		for j := range c.Turns {
			t := &c.Turns[j]
			tw := fmt.Sprintf("%s turn %d", where, j+1)
			kinds := 0
			for _, set := range []bool{t.User != "" || len(t.Attachments) > 0 || len(t.Form) > 0, t.Welcome, t.TalkToHuman, t.Event != "", t.Press != ""} {
				if set {
					kinds++
				}
			}
			if kinds != 1 {
				bad(tw, "needs exactly one of user (with attachments or a form), welcome, talk_to_human, event or press")
			}
			if t.Press != "" && t.Press != "yes" && t.Press != "no" {
				bad(tw+".press", "must be yes or no; got %q", t.Press)
			}
			for _, a := range t.Attachments {
				if IsURL(a) {
					continue
				}
				if _, err := os.Stat(s.Resolve(a)); err != nil {
					bad(tw+".attachments", "%s: %v", a, err)
				} else if err := s.inside(a); err != nil && !o.AllowFiles {
					bad(tw+".attachments", "%s: %v (run with --allow-files to attach it anyway)", a, err)
				}
			}
			e := &t.Expect
			if e.Matches != "" {
				re, err := regexp.Compile(e.Matches)
				if err != nil {
					bad(tw+".expect.matches", "%v", err)
				}
				e.matches = re
			}
			if e.Reason != "" && !slices.Contains(kommbridge.HandoffReasons, e.Reason) {
				bad(tw+".expect.reason", "must be one of %s; got %q", strings.Join(kommbridge.HandoffReasons, ", "), e.Reason)
			}
			if e.Outcome != "" && !slices.Contains(kommbridge.Outcomes, e.Outcome) {
				bad(tw+".expect.outcome", "must be one of %s; got %q", strings.Join(kommbridge.Outcomes, ", "), e.Outcome)
			}
			if e.MaxLatency < 0 || e.MaxTokens < 0 {
				bad(tw+".expect", "max_latency and max_tokens must not be negative")
			}
		}
	}
	return errors.Join(errs...)
}

// Resolve is a path from the suite file, relative to its directory.
func (s *Suite) Resolve(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(s.Path), p)
}

// inside reports why the local attachment p is not a file within the
// suite's folder, nil when it is: an absolute path, a ".." out of it, or a
// symbolic link leading out.
func (s *Suite) inside(p string) error {
	if filepath.IsAbs(p) || !filepath.IsLocal(filepath.Clean(p)) {
		return fmt.Errorf("outside the suite's folder")
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(s.Path))
	if err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(s.Resolve(p))
	if err != nil {
		return err
	}
	if rel, err := filepath.Rel(dir, real); err != nil || !filepath.IsLocal(rel) {
		return fmt.Errorf("a link to %s, outside the suite's folder", real)
	}
	return nil
}

// IsURL reports whether an attachment is a URL, fetched as it is; any
// other is a local file, beside the suite (Resolve).
func IsURL(attachment string) bool {
	return strings.HasPrefix(attachment, "http://") || strings.HasPrefix(attachment, "https://")
}

// LocalFiles are the local files the suite's turns attach, resolved.
func (s *Suite) LocalFiles() []string {
	var files []string
	for _, c := range s.Cases {
		for _, t := range c.Turns {
			for _, a := range t.Attachments {
				if !IsURL(a) {
					files = append(files, s.Resolve(a))
				}
			}
		}
	}
	return files
}
