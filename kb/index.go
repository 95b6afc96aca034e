package kb

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/mapping"
	index "github.com/blevesearch/bleve_index_api"

	// The analysers a knowledge base's language may name.
	_ "github.com/blevesearch/bleve/v2/analysis/analyzer/standard"
	_ "github.com/blevesearch/bleve/v2/analysis/lang/ar"
	_ "github.com/blevesearch/bleve/v2/analysis/lang/cjk"
	_ "github.com/blevesearch/bleve/v2/analysis/lang/ckb"
	_ "github.com/blevesearch/bleve/v2/analysis/lang/da"
	_ "github.com/blevesearch/bleve/v2/analysis/lang/de"
	_ "github.com/blevesearch/bleve/v2/analysis/lang/en"
	_ "github.com/blevesearch/bleve/v2/analysis/lang/es"
	_ "github.com/blevesearch/bleve/v2/analysis/lang/fa"
	_ "github.com/blevesearch/bleve/v2/analysis/lang/fi"
	_ "github.com/blevesearch/bleve/v2/analysis/lang/fr"
	_ "github.com/blevesearch/bleve/v2/analysis/lang/hi"
	_ "github.com/blevesearch/bleve/v2/analysis/lang/hr"
	_ "github.com/blevesearch/bleve/v2/analysis/lang/hu"
	_ "github.com/blevesearch/bleve/v2/analysis/lang/it"
	_ "github.com/blevesearch/bleve/v2/analysis/lang/nl"
	_ "github.com/blevesearch/bleve/v2/analysis/lang/no"
	_ "github.com/blevesearch/bleve/v2/analysis/lang/pl"
	_ "github.com/blevesearch/bleve/v2/analysis/lang/pt"
	_ "github.com/blevesearch/bleve/v2/analysis/lang/ro"
	_ "github.com/blevesearch/bleve/v2/analysis/lang/ru"
	_ "github.com/blevesearch/bleve/v2/analysis/lang/sv"
	_ "github.com/blevesearch/bleve/v2/analysis/lang/tr"
)

// The index file is a tar archive of a manifest (manifest.json), the
// passages (chunks.json), their vectors (vectors.f32: little-endian
// float32, one row per passage, when the base has embeddings) and bleve's
// keyword index (keyword/...).
const (
	FormatName = "kommbridge-kb"
	// Version changes when a file written before cannot be read as it is.
	Version = 1
)

// Manifest describes an index file.
type Manifest struct {
	Format  string    `json:"format"`
	Version int       `json:"version"`
	Base    string    `json:"base"`
	BuiltAt time.Time `json:"built_at"`
	// Language is the keyword analyser.
	Language string `json:"language"`
	// Embedding is the model the vectors come from; nil: keyword only.
	Embedding *EmbeddingInfo `json:"embedding,omitempty"`
	// Floor is the match score kb eval --calibrate chose; nil until then.
	Floor        *float64   `json:"floor,omitempty"`
	CalibratedAt *time.Time `json:"calibrated_at,omitempty"`
	Chunks       int        `json:"chunks"`
	// Pages are what was read, for the next build: each page's validators
	// and fingerprint, and its passages.
	Pages []PageState `json:"pages"`
}

// EmbeddingInfo names the vectors' model.
type EmbeddingInfo struct {
	Model      string `json:"model"`
	Dimensions int    `json:"dimensions"`
}

// PageState is one page (or file) as the last build read it.
type PageState struct {
	// Location is the file path or the URL fetched.
	Location     string   `json:"location"`
	URL          string   `json:"url"`
	Title        string   `json:"title"`
	ETag         string   `json:"etag,omitempty"`
	LastModified string   `json:"last_modified,omitempty"`
	Fingerprint  string   `json:"fingerprint"`
	Chunks       []string `json:"chunks"`
}

// Index is a loaded index file: read-only, safe for concurrent searches.
type Index struct {
	Manifest Manifest
	Path     string
	chunks   []Chunk
	vectors  []float32 // len(chunks) rows of dims
	dims     int
	kw       bleve.Index
	reader   index.IndexReader
	analyzer analysis.Analyzer
	dir      string // where the keyword index was unpacked
}

// Chunks returns the index's passages.
func (x *Index) Chunks() []Chunk { return x.chunks }

// Vector returns passage i's vector, nil without embeddings.
func (x *Index) Vector(i int) []float32 {
	if x.dims == 0 {
		return nil
	}
	return x.vectors[i*x.dims : (i+1)*x.dims]
}

// keywordDoc is what bleve indexes of a passage.
type keywordDoc struct {
	Title   string `json:"title"`
	Heading string `json:"heading"`
	Text    string `json:"text"`
	All     string `json:"all"`
}

func keywordMapping(language string) (*mapping.IndexMappingImpl, error) {
	im := bleve.NewIndexMapping()
	im.DefaultAnalyzer = language
	im.ScoringModel = index.BM25Scoring
	doc := bleve.NewDocumentMapping()
	for _, f := range []string{"title", "heading", "text", "all"} {
		fm := bleve.NewTextFieldMapping()
		fm.Analyzer = language
		fm.Store = false
		fm.IncludeInAll = false
		doc.AddFieldMappingsAt(f, fm)
	}
	im.DefaultMapping = doc
	if err := im.Validate(); err != nil {
		return nil, fmt.Errorf("keyword analyser %q: %w", language, err)
	}
	return im, nil
}

// write writes an index file at path (through a file beside it, renamed
// into place, so that a replica never reads half a file).
func write(path string, m Manifest, chunks []Chunk, vectors [][]float32) error {
	m.Format, m.Version, m.Chunks = FormatName, Version, len(chunks)
	tmp, err := os.MkdirTemp("", "kommbridge-kb-build-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	im, err := keywordMapping(m.Language)
	if err != nil {
		return err
	}
	kwDir := filepath.Join(tmp, "keyword")
	kw, err := bleve.New(kwDir, im)
	if err != nil {
		return fmt.Errorf("keyword index: %w", err)
	}
	batch := kw.NewBatch()
	for i, c := range chunks {
		if err := batch.Index(strconv.Itoa(i), keywordDoc{Title: c.Title, Heading: c.Heading, Text: c.Text, All: c.Title + "\n" + c.Heading + "\n" + c.Text}); err != nil {
			kw.Close()
			return err
		}
		if batch.Size() >= 500 {
			if err := kw.Batch(batch); err != nil {
				kw.Close()
				return err
			}
			batch.Reset()
		}
	}
	if err := kw.Batch(batch); err != nil {
		kw.Close()
		return err
	}
	if err := kw.Close(); err != nil {
		return err
	}

	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	tw := tar.NewWriter(f)
	put := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: m.BuiltAt}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	mj, _ := json.MarshalIndent(m, "", "  ")
	cj, err := json.Marshal(chunks)
	if err != nil {
		return err
	}
	if err := put("manifest.json", mj); err != nil {
		return err
	}
	if err := put("chunks.json", cj); err != nil {
		return err
	}
	if m.Embedding != nil {
		var buf bytes.Buffer
		for _, v := range vectors {
			if len(v) != m.Embedding.Dimensions {
				return fmt.Errorf("a vector of %d dimensions among %d", len(v), m.Embedding.Dimensions)
			}
			binary.Write(&buf, binary.LittleEndian, v)
		}
		if err := put("vectors.f32", buf.Bytes()); err != nil {
			return err
		}
	}
	err = filepath.WalkDir(kwDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(tmp, p)
		return put(filepath.ToSlash(rel), data)
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// ErrNoIndex is an index file that is not there.
var ErrNoIndex = errors.New("no index file")

// Open loads the index file at path. The keyword index is unpacked into a
// directory of its own, removed by Close.
func Open(path string) (*Index, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w at %s", ErrNoIndex, path)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dir, err := os.MkdirTemp("", "kommbridge-kb-*")
	if err != nil {
		return nil, err
	}
	x := &Index{Path: path, dir: dir}
	fail := func(err error) (*Index, error) {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var vectors []byte
	var sawManifest, sawChunks bool
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail(fmt.Errorf("not an index file (%v)", err))
		}
		name := filepath.Clean(filepath.FromSlash(h.Name))
		if h.Typeflag != tar.TypeReg || strings.HasPrefix(name, "..") || filepath.IsAbs(name) {
			continue
		}
		data, err := io.ReadAll(io.LimitReader(tr, 4<<30))
		if err != nil {
			return fail(err)
		}
		switch {
		case name == "manifest.json":
			if err := json.Unmarshal(data, &x.Manifest); err != nil {
				return fail(fmt.Errorf("manifest: %w", err))
			}
			sawManifest = true
		case name == "chunks.json":
			if err := json.Unmarshal(data, &x.chunks); err != nil {
				return fail(fmt.Errorf("passages: %w", err))
			}
			sawChunks = true
		case name == "vectors.f32":
			vectors = data
		case strings.HasPrefix(name, "keyword"+string(filepath.Separator)):
			p := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return fail(err)
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				return fail(err)
			}
		}
	}
	m := x.Manifest
	switch {
	case !sawManifest || m.Format != FormatName:
		return fail(errors.New("not a kommbridge index file"))
	case m.Version != Version:
		return fail(fmt.Errorf("index format version %d; this kommbridge reads version %d: run kommbridge kb build again", m.Version, Version))
	case !sawChunks || len(x.chunks) != m.Chunks:
		return fail(fmt.Errorf("%d passages, the manifest says %d", len(x.chunks), m.Chunks))
	}
	if e := m.Embedding; e != nil {
		x.dims = e.Dimensions
		if x.dims <= 0 || len(vectors) != 4*x.dims*len(x.chunks) {
			return fail(fmt.Errorf("vectors.f32 holds %d bytes; %d passages of %d dimensions need %d", len(vectors), len(x.chunks), x.dims, 4*x.dims*len(x.chunks)))
		}
		x.vectors = make([]float32, x.dims*len(x.chunks))
		for i := range x.vectors {
			x.vectors[i] = math.Float32frombits(binary.LittleEndian.Uint32(vectors[4*i:]))
		}
	}
	kw, err := bleve.OpenUsing(filepath.Join(dir, "keyword"), map[string]any{"read_only": true})
	if err != nil {
		return fail(fmt.Errorf("keyword index: %w", err))
	}
	x.kw = kw
	adv, err := kw.Advanced()
	if err == nil {
		x.reader, err = adv.Reader()
	}
	if err != nil {
		kw.Close()
		return fail(fmt.Errorf("keyword index: %w", err))
	}
	x.analyzer = kw.Mapping().AnalyzerNamed(m.Language)
	if x.analyzer == nil {
		x.Close()
		return nil, fmt.Errorf("%s: no analyser %q", path, m.Language)
	}
	return x, nil
}

// Close releases the keyword index and its directory.
func (x *Index) Close() error {
	if x.reader != nil {
		x.reader.Close()
	}
	var err error
	if x.kw != nil {
		err = x.kw.Close()
	}
	os.RemoveAll(x.dir)
	return err
}

// SetFloor records the calibrated floor in the index file at path.
func SetFloor(path string, floor float64, at time.Time) error {
	x, err := Open(path)
	if err != nil {
		return err
	}
	defer x.Close()
	m := x.Manifest
	m.Floor, m.CalibratedAt = &floor, &at
	vectors := make([][]float32, len(x.chunks))
	for i := range x.chunks {
		vectors[i] = x.Vector(i)
	}
	return write(path, m, x.chunks, vectors)
}
