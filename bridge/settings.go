package bridge

import (
	"sort"
	"time"

	"github.com/kommbridge/kommbridge/config"
	"github.com/kommbridge/kommbridge/prompt"
)

// settings is a configuration compiled for the hot path: each bot's
// contract instructions and normalized handoff phrases are built once.
type settings struct {
	byID         map[string]*profile
	fallback     *profile // the "*" bot, nil if none
	budget       time.Duration
	limitMessage string
	busyMessage  string
}

type profile struct {
	*config.Bot
	contract      prompt.Contract
	phrases       [][]string
	maxSuggested  int
	minConfidence float64
}

func compile(cfg *config.Config) *settings {
	s := &settings{
		byID:         make(map[string]*profile, len(cfg.Bots)),
		budget:       cfg.Server.ReplyBudget.D(),
		limitMessage: cfg.Limits.Message,
		busyMessage:  cfg.Limits.BusyMessage,
	}
	for i := range cfg.Bots {
		b := &cfg.Bots[i]
		teams := make([]string, 0, len(b.Handoff.Teams))
		for name := range b.Handoff.Teams {
			teams = append(teams, name)
		}
		sort.Strings(teams)
		p := &profile{
			Bot:           b,
			maxSuggested:  *b.SuggestedReplies.Max,
			minConfidence: *b.Handoff.MinConfidence,
		}
		p.contract = prompt.NewContract(prompt.ContractOptions{
			Format:       b.ReplyFormat,
			Teams:        teams,
			MaxSuggested: p.maxSuggested,
			NoVision:     b.Vision != nil && !*b.Vision,
		})
		for _, ph := range b.Handoff.Phrases {
			if w := words(ph); len(w) > 0 {
				p.phrases = append(p.phrases, w)
			}
		}
		if b.ID == "*" {
			s.fallback = p
		} else {
			s.byID[b.ID] = p
		}
	}
	return s
}

func (s *settings) bot(id string) *profile {
	if p, ok := s.byID[id]; ok {
		return p
	}
	return s.fallback
}
