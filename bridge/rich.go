package bridge

import (
	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/prompt"
)

// Bounds of rich answers: what Kommunicate's widget shows well.
const (
	maxCards       = 10
	maxCardButtons = 3
	maxListItems   = 10
	maxImages      = 5
	maxRichText    = 80  // a title, subtitle or button label, in characters
	maxRichLong    = 300 // a description or caption
)

// rich keeps the rich parts of parsed that the bot allows and that are
// valid: https URLs only, titles present, within the bounds. An element
// that breaks a rule is dropped (an image or a button alone where the rest
// stands); dropped says what was, for the log. Nothing invalid reaches
// the widget.
func (p *Profile) rich(parsed prompt.Parsed) (cards []kommbridge.Card, list *kommbridge.List, images []kommbridge.Image, dropped []string) {
	drop := func(what string) { dropped = append(dropped, what) }
	if len(parsed.Cards) > 0 {
		if !p.RichKinds[prompt.RichCards] {
			drop("cards (not allowed)")
		} else {
			cards = validCards(parsed.Cards, drop)
		}
	}
	if parsed.List != nil {
		if !p.RichKinds[prompt.RichLists] {
			drop("list (not allowed)")
		} else {
			list = validList(parsed.List, drop)
		}
	}
	if len(parsed.Images) > 0 {
		if !p.RichKinds[prompt.RichImages] {
			drop("images (not allowed)")
		} else {
			images = validImages(parsed.Images, drop)
		}
	}
	return cards, list, images, dropped
}

func validCards(in []kommbridge.Card, drop func(string)) []kommbridge.Card {
	var out []kommbridge.Card
	for _, c := range in {
		if len(out) == maxCards {
			drop("cards over 10")
			break
		}
		if c.Title == "" {
			drop("a card without a title")
			continue
		}
		card := kommbridge.Card{Title: kommbridge.Clip(c.Title, maxRichText), Subtitle: kommbridge.Clip(c.Subtitle, maxRichText)}
		if c.ImageURL != "" {
			if kommbridge.SafeLink(c.ImageURL) {
				card.ImageURL = c.ImageURL
			} else {
				drop("a card image not on https")
			}
		}
		for _, b := range c.Buttons {
			if len(card.Buttons) == maxCardButtons {
				drop("card buttons over 3")
				break
			}
			if btn, ok := validButton(b); ok {
				card.Buttons = append(card.Buttons, btn)
			} else {
				drop("a card button without a label or with a link not on https")
			}
		}
		out = append(out, card)
	}
	return out
}

func validButton(b kommbridge.Button) (kommbridge.Button, bool) {
	if b.Name == "" {
		return b, false
	}
	b.Name = kommbridge.Clip(b.Name, maxRichText)
	if b.URL != "" {
		if !kommbridge.SafeLink(b.URL) {
			return b, false
		}
		b.Reply = ""
		return b, true
	}
	if b.Reply == "" {
		b.Reply = b.Name
	}
	return b, true
}

func validList(in *kommbridge.List, drop func(string)) *kommbridge.List {
	l := &kommbridge.List{Header: kommbridge.Clip(in.Header, maxRichText)}
	for _, it := range in.Items {
		if len(l.Items) == maxListItems {
			drop("list items over 10")
			break
		}
		if it.Title == "" {
			drop("a list item without a title")
			continue
		}
		item := kommbridge.ListItem{Title: kommbridge.Clip(it.Title, maxRichText), Description: kommbridge.Clip(it.Description, maxRichLong), Reply: it.Reply}
		if item.Reply == "" {
			item.Reply = it.Title
		}
		l.Items = append(l.Items, item)
	}
	if len(l.Items) == 0 {
		return nil
	}
	return l
}

func validImages(in []kommbridge.Image, drop func(string)) []kommbridge.Image {
	var out []kommbridge.Image
	for _, im := range in {
		if len(out) == maxImages {
			drop("images over 5")
			break
		}
		if !kommbridge.SafeLink(im.URL) {
			drop("an image not on https")
			continue
		}
		out = append(out, kommbridge.Image{URL: im.URL, Caption: kommbridge.Clip(im.Caption, maxRichLong)})
	}
	return out
}
