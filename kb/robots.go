package kb

import (
	"bufio"
	"regexp"
	"strings"
)

// robots is what a site's robots.txt allows kommbridge: the rules of the
// group for "kommbridge", else the group for "*".
type robots struct {
	rules []robotsRule
}

type robotsRule struct {
	allow   bool
	pattern *regexp.Regexp
	length  int // of the rule as written: the longest match wins
}

// parseRobots reads robots.txt: groups of User-agent lines and their
// Allow and Disallow rules, with * for any characters and a final $ for
// the end of the path.
func parseRobots(data string) robots {
	groups := map[string][]robotsRule{}
	var agents []string
	inRules := false
	sc := bufio.NewScanner(strings.NewReader(data))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		switch k {
		case "user-agent":
			if inRules {
				agents, inRules = nil, false
			}
			a := strings.ToLower(v)
			agents = append(agents, a)
			if _, ok := groups[a]; !ok {
				groups[a] = nil
			}
		case "allow", "disallow":
			inRules = true
			if v == "" {
				continue // "Disallow:" allows everything
			}
			expr := regexp.QuoteMeta(strings.TrimSuffix(v, "$"))
			expr = "^" + strings.ReplaceAll(expr, `\*`, ".*")
			if strings.HasSuffix(v, "$") {
				expr += "$"
			}
			re, err := regexp.Compile(expr)
			if err != nil {
				continue
			}
			for _, a := range agents {
				groups[a] = append(groups[a], robotsRule{allow: k == "allow", pattern: re, length: len(v)})
			}
		}
	}
	if r, ok := groups["kommbridge"]; ok {
		return robots{r}
	}
	return robots{groups["*"]}
}

// allowed reports whether path may be fetched: the longest matching rule
// decides, Allow winning a tie; no matching rule allows.
func (r robots) allowed(path string) bool {
	best, allow := -1, true
	for _, rule := range r.rules {
		if !rule.pattern.MatchString(path) {
			continue
		}
		if rule.length > best || (rule.length == best && rule.allow) {
			best, allow = rule.length, rule.allow
		}
	}
	return allow
}
