package kb

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
)

// A Chunk is one passage of an article: what is searched, and what the
// model reads. Heading is its place in the article ("Returns > Damaged
// items"); Hash changes when its words do.
type Chunk struct {
	ID      string `json:"id"`
	URL     string `json:"url"`
	Title   string `json:"title"`
	Heading string `json:"heading,omitempty"`
	Text    string `json:"text"`
	Hash    string `json:"hash"`
}

// Chunk sizes, in tokens (estimated at 3 words for 4 tokens): a passage
// holds at least minTokens unless its article is shorter, at most
// maxTokens, and a passage cut out of a long section begins with the end
// of the one before (up to overlapTokens).
const (
	minTokens     = 300
	maxTokens     = 800
	overlapTokens = 80
)

// tokens estimates s's tokens.
func tokens(s string) int { return (len(strings.Fields(s))*4 + 2) / 3 }

// embedText is what is embedded for c: where it stands, then its words.
func (c Chunk) embedText() string {
	where := c.Title
	if c.Heading != "" {
		where += " > " + c.Heading
	}
	return where + "\n\n" + c.Text
}

var headingLine = regexp.MustCompile(`^(#{1,6})\s+(.+?)\s*#*\s*$`)

// block is a heading, a paragraph (list items included) or a table.
type block struct {
	level int // a heading's level; 0 for the rest
	text  string
	table bool
}

func blocks(text string) []block {
	var out []block
	var para []string
	end := func() {
		if len(para) > 0 {
			out = append(out, block{text: strings.Join(para, "\n")})
			para = nil
		}
	}
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimRight(lines[i], " \t")
		switch m := headingLine.FindStringSubmatch(line); {
		case m != nil:
			end()
			out = append(out, block{level: len(m[1]), text: m[2]})
		case strings.HasPrefix(strings.TrimSpace(line), "|"):
			end()
			var rows []string
			for ; i < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[i]), "|"); i++ {
				rows = append(rows, strings.TrimSpace(lines[i]))
			}
			i--
			out = append(out, block{text: strings.Join(rows, "\n"), table: true})
		case strings.TrimSpace(line) == "":
			end()
		default:
			para = append(para, line)
		}
	}
	end()
	return out
}

// chunks cuts a into passages by its headings: a section starts a new
// passage once the one being filled holds minTokens; a passage that would
// pass maxTokens is ended, and the next begins with its last paragraph
// when that is short; a table too long for one passage is cut between
// rows, each part under the table's header row; a paragraph too long, at
// sentences.
func chunks(a Article, idBase string) []Chunk {
	var out []Chunk
	var path []string // headings above the current block, by level
	var cur []string
	curTok, curHeading := 0, ""
	var last block // the last paragraph of this section added, for the overlap
	pending := ""  // a heading line to write before the next block of a passage under way
	heading := func() string {
		var parts []string
		for i, h := range path {
			if h == "" || (i == 0 && strings.EqualFold(h, a.Title)) {
				continue
			}
			parts = append(parts, h)
		}
		return strings.Join(parts, " > ")
	}
	emit := func() {
		if curTok == 0 {
			return
		}
		text := strings.TrimSpace(strings.Join(cur, "\n\n"))
		c := Chunk{ID: fmt.Sprintf("%s#%d", idBase, len(out)+1), URL: a.URL, Title: a.Title, Heading: curHeading, Text: text}
		sum := sha256.Sum256([]byte(c.Title + "\n" + c.Heading + "\n" + c.Text))
		c.Hash = hex.EncodeToString(sum[:12])
		out = append(out, c)
		cur, curTok, pending = nil, 0, ""
	}
	add := func(text string) {
		if curTok == 0 {
			curHeading = heading()
		} else if pending != "" {
			cur = append(cur, pending)
		}
		pending = ""
		cur = append(cur, text)
		curTok += tokens(text)
	}
	for _, b := range blocks(a.Text) {
		if b.level > 0 {
			if curTok >= minTokens {
				emit()
			}
			for len(path) < b.level {
				path = append(path, "")
			}
			path = append(path[:b.level-1], b.text)
			if curTok > 0 {
				pending = strings.Repeat("#", b.level) + " " + b.text
			}
			last = block{}
			continue
		}
		for _, piece := range split(b) {
			n := tokens(piece)
			if curTok > 0 && curTok+n > maxTokens {
				prev := last
				emit()
				if !prev.table && prev.text != "" && tokens(prev.text) <= overlapTokens && prev.text != piece {
					add(prev.text)
				}
			}
			add(piece)
			last = block{text: piece, table: b.table}
		}
	}
	emit()
	return out
}

var sentenceEnd = regexp.MustCompile(`([.!?])\s+`)

// split cuts a block longer than maxTokens into pieces that fit.
func split(b block) []string {
	if tokens(b.text) <= maxTokens {
		return []string{b.text}
	}
	var units []string
	var header string
	if b.table {
		rows := strings.Split(b.text, "\n")
		if len(rows) > 2 && strings.Contains(rows[1], "---") {
			header, rows = rows[0]+"\n"+rows[1], rows[2:]
		}
		units = rows
	} else {
		units = strings.Split(sentenceEnd.ReplaceAllString(b.text, "$1\x00"), "\x00")
	}
	var out []string
	var cur []string
	tok := tokens(header)
	sep := " "
	if b.table {
		sep = "\n"
	}
	flush := func() {
		if len(cur) == 0 {
			return
		}
		s := strings.Join(cur, sep)
		if header != "" {
			s = header + "\n" + s
		}
		out = append(out, s)
		cur, tok = nil, tokens(header)
	}
	for _, u := range units {
		if n := tokens(u); tok+n > maxTokens && len(cur) > 0 {
			flush()
		}
		cur = append(cur, u)
		tok += tokens(u)
	}
	flush()
	return out
}
