package media

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"

	"github.com/ledongthuc/pdf"
	"golang.org/x/net/html"

	"github.com/kommbridge/kommbridge"
)

// Kind is what an attachment turned out to be.
type Kind int

// Kinds of attachment.
const (
	Other    Kind = iota // a type kommbridge cannot read (zip, video, ...)
	Image                // a picture
	Document             // text extracted from PDF, text, Markdown, CSV, JSON, HTML
	Location             // a shared location
	Audio                // a voice note
)

// Item is one attachment as the model will be told of it.
type Item struct {
	Kind Kind
	Name string
	Type string // the declared type, or the sniffed one after a fetch
	// ImageURL is the image to show a vision model: the signed URL or a
	// data: URL. Empty when the model has no vision.
	ImageURL string
	// Text is a document's text or a voice note's transcript.
	Text      string
	Pages     int // PDF pages
	Truncated bool
	Lat, Lon  float64
	// Err says why the attachment could not be read; the model is told it
	// could not be, the log says why.
	Err error
}

// Transcriber turns speech into text; *llm.Client implements it.
type Transcriber interface {
	Transcribe(ctx context.Context, model, filename string, audio []byte) (string, error)
}

// Options configure a Reader.
type Options struct {
	Fetch            FetchOptions
	InlineImages     bool
	MaxDocumentChars int // [20000]
	// Bounds on one event's attachments, for ReadAll: how many are read
	// [10], how many bytes are fetched for all of them together [25 MiB],
	// and how many fetches run at once [4].
	MaxAttachments int
	MaxTotalBytes  int64
	MaxParallel    int
	// Transcriber, when set, transcribes voice notes with TranscriptionModel.
	Transcriber        Transcriber
	TranscriptionModel string
}

// Reader reads attachments. It is safe for concurrent use.
type Reader struct {
	o     Options
	fetch *Fetcher
}

// New returns a Reader for o.
func New(o Options) *Reader {
	if o.MaxDocumentChars == 0 {
		o.MaxDocumentChars = 20000
	}
	if o.TranscriptionModel == "" {
		o.TranscriptionModel = "whisper-1"
	}
	if o.MaxAttachments == 0 {
		o.MaxAttachments = 10
	}
	if o.MaxTotalBytes == 0 {
		o.MaxTotalBytes = 25 << 20
	}
	if o.MaxParallel == 0 {
		o.MaxParallel = 4
	}
	return &Reader{o: o, fetch: NewFetcher(o.Fetch)}
}

// ErrSkipped marks an attachment that was not read because the event
// had more than MaxAttachments.
var ErrSkipped = errors.New("skipped")

// ReadAll reads one event's attachments, in order, within the Reader's
// bounds: the first MaxAttachments are read, at most MaxParallel at once,
// with at most MaxTotalBytes fetched for all of them together, inside
// ctx's deadline; the rest come back with an Err matching ErrSkipped.
func (r *Reader) ReadAll(ctx context.Context, atts []kommbridge.Attachment, vision bool) []Item {
	items := make([]Item, len(atts))
	quota := &atomic.Int64{}
	quota.Store(r.o.MaxTotalBytes)
	slots := make(chan struct{}, r.o.MaxParallel)
	var wg sync.WaitGroup
	for i, a := range atts {
		if i >= r.o.MaxAttachments {
			items[i] = Item{Kind: classify(a), Name: nameOf(a), Type: a.Type,
				Err: fmt.Errorf("%w: only the first %d attachments of a message are read (media.max_attachments)", ErrSkipped, r.o.MaxAttachments)}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case slots <- struct{}{}:
				defer func() { <-slots }()
				items[i] = r.read(ctx, a, vision, quota)
			case <-ctx.Done():
				items[i] = Item{Kind: classify(a), Name: nameOf(a), Type: a.Type, Err: fmt.Errorf("not fetched in time: %w", ctx.Err())}
			}
		}()
	}
	wg.Wait()
	return items
}

func nameOf(a kommbridge.Attachment) string {
	if a.Name == "" {
		return "attachment"
	}
	return a.Name
}

// Read turns one attachment into an Item. It never fails: a problem is
// recorded in Item.Err.
func (r *Reader) Read(ctx context.Context, a kommbridge.Attachment, vision bool) Item {
	return r.read(ctx, a, vision, nil)
}

// read is Read with the bytes drawn from quota, when not nil.
func (r *Reader) read(ctx context.Context, a kommbridge.Attachment, vision bool, quota *atomic.Int64) Item {
	it := Item{Name: nameOf(a), Type: a.Type}
	switch kind := classify(a); kind {
	case Location:
		it.Kind, it.Lat, it.Lon = Location, a.Lat, a.Lon
	case Image:
		it.Kind = Image
		switch {
		case !vision:
		case !r.o.InlineImages:
			// The model's server fetches it: from inside the operator's
			// network, for a self-hosted one. The same rules as ours apply.
			if err := r.fetch.Vet(ctx, a.URL); err != nil {
				it.Err = err
				return it
			}
			it.ImageURL = a.URL
		default:
			f, err := r.fetch.fetch(ctx, a.URL, quota)
			if err == nil && !strings.HasPrefix(f.Type, "image/") {
				err = fmt.Errorf("declared an image, but the content is %s", f.Type)
			}
			if err != nil {
				it.Err = err
				return it
			}
			it.Type = f.Type
			it.ImageURL = "data:" + f.Type + ";base64," + base64.StdEncoding.EncodeToString(f.Data)
		}
	case Audio:
		it.Kind = Audio
		if r.o.Transcriber == nil {
			return it
		}
		f, err := r.fetch.fetch(ctx, a.URL, quota)
		if err != nil {
			it.Err = err
			return it
		}
		text, err := r.o.Transcriber.Transcribe(ctx, r.o.TranscriptionModel, it.Name, f.Data)
		if err != nil {
			it.Err = fmt.Errorf("transcription: %w", err)
			return it
		}
		it.Text = strings.TrimSpace(text)
	case Document:
		it.Kind = Document
		f, err := r.fetch.fetch(ctx, a.URL, quota)
		if err != nil {
			it.Err = err
			return it
		}
		text, pages, err := extract(f, a)
		if err != nil {
			it.Err = err
			return it
		}
		it.Pages = pages
		it.Text, it.Truncated = cut(strings.TrimSpace(text), r.o.MaxDocumentChars)
	default:
		it.Kind = Other
	}
	return it
}

// classify decides from the declared type and the file name, before any
// fetch; the fetched bytes are sniffed again.
func classify(a kommbridge.Attachment) Kind {
	t := a.Type
	ext := strings.ToLower(path.Ext(a.Name))
	switch {
	case t == "location":
		return Location
	case strings.HasPrefix(t, "image/"):
		return Image
	case strings.HasPrefix(t, "audio/"):
		return Audio
	case t == "application/pdf", strings.HasPrefix(t, "text/"), t == "application/json",
		ext == ".pdf", ext == ".txt", ext == ".md", ext == ".markdown", ext == ".csv", ext == ".json", ext == ".html", ext == ".htm":
		return Document
	}
	return Other
}

// extract gets the text of a fetched document, trusting the bytes over
// the declared type.
func extract(f Fetched, a kommbridge.Attachment) (string, int, error) {
	switch {
	case f.Type == "application/pdf":
		return pdfText(f.Data)
	case f.Type == "text/html" || (f.Type == "text/plain" && isHTMLName(a)):
		return htmlText(f.Data), 0, nil
	case strings.HasPrefix(f.Type, "text/"), f.Type == "application/json":
		if !utf8.Valid(f.Data) {
			return "", 0, errors.New("text is not UTF-8")
		}
		return string(f.Data), 0, nil
	}
	return "", 0, fmt.Errorf("declared %s, but the content is %s", a.Type, f.Type)
}

func isHTMLName(a kommbridge.Attachment) bool {
	ext := strings.ToLower(path.Ext(a.Name))
	return a.Type == "text/html" || ext == ".html" || ext == ".htm"
}

// PDFText is a PDF's text and page count (a help center's PDF articles
// are read with it too).
func PDFText(data []byte) (string, int, error) { return pdfText(data) }

// pdfText extracts a PDF's text page by page. A broken PDF is an error,
// not a crash.
func pdfText(data []byte) (text string, pages int, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("unreadable PDF: %v", p)
		}
	}()
	r, err := pdf.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return "", 0, fmt.Errorf("unreadable PDF: %w", err)
	}
	rd, err := r.GetPlainText()
	if err != nil {
		return "", 0, fmt.Errorf("unreadable PDF: %w", err)
	}
	b, err := io.ReadAll(rd)
	if err != nil {
		return "", 0, fmt.Errorf("unreadable PDF: %w", err)
	}
	return string(b), r.NumPage(), nil
}

// htmlText is the visible text of an HTML page: tags, scripts and styles
// dropped, whitespace collapsed.
func htmlText(data []byte) string {
	z := html.NewTokenizer(bytes.NewReader(data))
	var b strings.Builder
	skip := 0
	for {
		switch z.Next() {
		case html.ErrorToken:
			return strings.Join(strings.Fields(b.String()), " ")
		case html.StartTagToken:
			if name, _ := z.TagName(); string(name) == "script" || string(name) == "style" {
				skip++
			}
			b.WriteByte(' ')
		case html.EndTagToken:
			if name, _ := z.TagName(); (string(name) == "script" || string(name) == "style") && skip > 0 {
				skip--
			}
			b.WriteByte(' ')
		case html.TextToken:
			if skip == 0 {
				b.Write(z.Text())
			}
		}
	}
}

// cut keeps the first n characters of s.
func cut(s string, n int) (string, bool) {
	if utf8.RuneCountInString(s) <= n {
		return s, false
	}
	r := []rune(s)
	return strings.TrimRightFunc(string(r[:n]), unicode.IsSpace), true
}
