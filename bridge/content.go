package bridge

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/llm"
	"github.com/kommbridge/kommbridge/media"
	"github.com/kommbridge/kommbridge/prompt"
)

// Media reads an event's attachments within its bounds (how many, how
// many bytes, how many at once); *media.Reader implements it.
type Media interface {
	ReadAll(ctx context.Context, atts []kommbridge.Attachment, vision bool) []media.Item
}

// What an incoming message may have cut to its bounds (Result.Cut).
const (
	CutMessage     = "message"     // text over limits.max_message_chars
	CutAttachments = "attachments" // files past media.max_attachments, named together
)

// CutKinds lists them, for metrics.
var CutKinds = []string{CutMessage, CutAttachments}

// fetchShare is the part of the remaining budget attachments may take:
// the model always keeps the rest to answer in.
const fetchShare = 0.5

// userContent is the user's message for the model, its stand-in for
// history, and each attachment's outcome. Attachments are read at once
// (their URLs expire), in parallel, within fetchShare of what is left of
// the reply budget.
func (e *event) userContent(ctx context.Context) ([]llm.Part, string, []string) {
	b, p, ev := e.b, e.p, e.ev
	if len(ev.Attachments) == 0 {
		parts, standIn := prompt.UserContent(ev.Text, nil, "")
		return parts, standIn, nil
	}
	vision := p.Vision
	fctx := ctx
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		fctx, cancel = context.WithDeadline(ctx, b.now().Add(time.Duration(float64(dl.Sub(b.now()))*fetchShare)))
		defer cancel()
	}
	items := b.media.ReadAll(fctx, ev.Attachments, vision)
	outcomes := make([]string, len(items))
	skipped := 0
	for i, it := range items {
		switch {
		case errors.Is(it.Err, media.ErrSkipped):
			outcomes[i] = "skipped"
			skipped++
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
	if skipped > prompt.MaxSkippedNamed {
		e.cut = append(e.cut, CutAttachments)
	}
	for i := range items {
		items[i].Text = e.s.masks.Mask(items[i].Text) // a document's or a transcript's words
	}
	parts, standIn := prompt.UserContent(ev.Text, items, p.ImageDetail)
	return parts, standIn, outcomes
}
