package bridge

import (
	"context"
	"sync"

	"go.uber.org/zap"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/llm"
	"github.com/kommbridge/kommbridge/media"
	"github.com/kommbridge/kommbridge/prompt"
)

// Media reads attachments; *media.Reader implements it.
type Media interface {
	Read(ctx context.Context, a kommbridge.Attachment, vision bool) media.Item
}

// userContent is the user's message for the model, its stand-in for
// history, and each attachment's outcome. Attachments are read at once
// (their URLs expire), in parallel, inside the reply budget.
func (b *Bridge) userContent(ctx context.Context, p *profile, ev *kommbridge.Event) ([]llm.Part, string, []string) {
	if len(ev.Attachments) == 0 {
		parts, standIn := prompt.UserContent(ev.Text, nil, "")
		return parts, standIn, nil
	}
	vision := p.Vision == nil || *p.Vision
	items := make([]media.Item, len(ev.Attachments))
	var wg sync.WaitGroup
	for i, a := range ev.Attachments {
		wg.Add(1)
		go func() {
			defer wg.Done()
			items[i] = b.media.Read(ctx, a, vision)
		}()
	}
	wg.Wait()
	outcomes := make([]string, len(items))
	for i, it := range items {
		switch {
		case it.Err != nil:
			outcomes[i] = "failed"
			b.log.Warn("attachment not read", zap.String("bot", ev.BotID), zap.String("conversation", ev.ConversationID),
				zap.String("type", it.Type), zap.Error(it.Err))
		case it.Kind == media.Other:
			outcomes[i] = "unsupported"
		default:
			outcomes[i] = "ok"
		}
	}
	parts, standIn := prompt.UserContent(ev.Text, items, p.ImageDetail)
	return parts, standIn, outcomes
}
