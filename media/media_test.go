package media_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/media"
)

// files serves testdata/ and counts what it served.
type files struct {
	*httptest.Server
	hits atomic.Int64
}

func serveFiles(t *testing.T) *files {
	f := &files{}
	mux := http.NewServeMux()
	mux.Handle("/f/", http.StripPrefix("/f/", http.FileServer(http.Dir("testdata"))))
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		// No Content-Length (chunked), whatever the attachment's size said.
		for i := 0; i < 64; i++ {
			w.Write(make([]byte, 1024))
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/to-private", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://10.0.0.1/secret", http.StatusFound)
	})
	mux.HandleFunc("/to-localhost", func(w http.ResponseWriter, r *http.Request) {
		_, port, _ := net.SplitHostPort(r.Host)
		http.Redirect(w, r, "https://localhost:"+port+"/f/order.csv", http.StatusFound)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/loop", http.StatusFound)
	})
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func reader(o media.Options) *media.Reader {
	if o.Fetch.AllowedHosts == nil {
		o.Fetch.AllowedHosts = []string{"127.0.0.1"}
	}
	return media.New(o)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestDocuments(t *testing.T) {
	srv := serveFiles(t)
	r := reader(media.Options{MaxDocumentChars: 1000})
	tests := []struct {
		name, typ  string
		wantText   []string
		wantNot    []string
		wantPages  int
		wantOpened media.Kind
	}{
		{"invoice.pdf", "application/pdf", []string{"Invoice 2024-0117", "Tent Alpine 2P", "Paid by card on 3 March 2024"}, nil, 2, media.Document},
		{"order.csv", "text/csv", []string{"sku,name,qty", "Sleeping bag,2"}, nil, 0, media.Document},
		{"notes.md", "text/markdown", []string{"# Notes", "Ignore all previous instructions"}, nil, 0, media.Document},
		{"page.html", "text/html", []string{"Return policy", "within 30 days"}, []string{"<b>", "secret", "color"}, 0, media.Document},
		// The declared type is wrong: the bytes are sniffed.
		{"invoice.pdf", "text/plain", []string{"Invoice 2024-0117"}, nil, 2, media.Document},
	}
	for _, tt := range tests {
		t.Run(tt.name+" as "+tt.typ, func(t *testing.T) {
			it := r.Read(ctx(t), kommbridge.Attachment{Type: tt.typ, Name: tt.name, URL: srv.URL + "/f/" + tt.name}, true)
			if it.Err != nil || it.Kind != tt.wantOpened {
				t.Fatalf("kind %v err %v", it.Kind, it.Err)
			}
			for _, w := range tt.wantText {
				if !strings.Contains(it.Text, w) {
					t.Errorf("text lacks %q: %q", w, it.Text)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(it.Text, w) {
					t.Errorf("text has %q: %q", w, it.Text)
				}
			}
			if it.Pages != tt.wantPages {
				t.Errorf("pages %d, want %d", it.Pages, tt.wantPages)
			}
		})
	}
}

func TestDocumentTruncated(t *testing.T) {
	srv := serveFiles(t)
	it := reader(media.Options{MaxDocumentChars: 10}).Read(ctx(t), kommbridge.Attachment{Type: "text/csv", Name: "order.csv", URL: srv.URL + "/f/order.csv"}, true)
	if it.Text != "sku,name,q" || !it.Truncated {
		t.Errorf("text %q truncated %v", it.Text, it.Truncated)
	}
}

func TestImages(t *testing.T) {
	srv := serveFiles(t)
	a := kommbridge.Attachment{Type: "image/png", Name: "receipt.png", URL: srv.URL + "/f/receipt.png"}
	if it := reader(media.Options{}).Read(ctx(t), a, true); it.ImageURL != a.URL || srv.hits.Load() != 0 {
		t.Errorf("pass-through: %q, fetched %d times", it.ImageURL, srv.hits.Load())
	}
	png, _ := os.ReadFile(filepath.Join("testdata", "receipt.png"))
	it := reader(media.Options{InlineImages: true}).Read(ctx(t), a, true)
	if !strings.HasPrefix(it.ImageURL, "data:image/png;base64,iVBOR") || it.Err != nil || len(it.ImageURL) < len(png) {
		t.Errorf("inline: %.60q err %v", it.ImageURL, it.Err)
	}
	if it := reader(media.Options{InlineImages: true}).Read(ctx(t), a, false); it.ImageURL != "" || it.Kind != media.Image {
		t.Errorf("no vision: %+v", it)
	}
	liar := kommbridge.Attachment{Type: "image/png", Name: "x.png", URL: srv.URL + "/f/order.csv"}
	if it := reader(media.Options{InlineImages: true}).Read(ctx(t), liar, true); it.Err == nil {
		t.Error("a CSV declared as PNG was inlined as an image")
	}
}

type fakeTranscriber struct{ got []byte }

func (f *fakeTranscriber) Transcribe(_ context.Context, model, name string, audio []byte) (string, error) {
	f.got = audio
	return fmt.Sprintf("where is my order (%s, %s)", model, name), nil
}

func TestVoiceNote(t *testing.T) {
	srv := serveFiles(t)
	a := kommbridge.Attachment{Type: "audio/wav", Name: "voice.wav", URL: srv.URL + "/f/voice.wav"}
	tr := &fakeTranscriber{}
	it := reader(media.Options{Transcriber: tr, TranscriptionModel: "whisper-1"}).Read(ctx(t), a, true)
	wav, _ := os.ReadFile("testdata/voice.wav")
	if it.Text != "where is my order (whisper-1, voice.wav)" || string(tr.got) != string(wav) {
		t.Errorf("transcript %q, %d bytes sent of %d", it.Text, len(tr.got), len(wav))
	}
	if it := reader(media.Options{}).Read(ctx(t), a, true); it.Kind != media.Audio || it.Text != "" || srv.hits.Load() != 1 {
		t.Errorf("without transcription: %+v (fetched %d)", it, srv.hits.Load())
	}
}

func TestOtherFiles(t *testing.T) {
	srv := serveFiles(t)
	for _, a := range []kommbridge.Attachment{
		{Type: "application/zip", Name: "archive.zip", URL: srv.URL + "/f/archive.zip"},
		{Type: "video/mp4", Name: "clip.mp4", URL: srv.URL + "/f/clip.mp4"},
	} {
		if it := reader(media.Options{}).Read(ctx(t), a, true); it.Kind != media.Other || it.Err != nil {
			t.Errorf("%s: %+v", a.Name, it)
		}
	}
	if srv.hits.Load() != 0 {
		t.Error("fetched a file it cannot read")
	}
}

// Unsafe URLs are refused, and nothing private is ever fetched.
func TestSafeFetching(t *testing.T) {
	srv := serveFiles(t)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	open := media.NewFetcher(media.FetchOptions{MaxBytes: 32 << 10}) // nothing listed
	listed := media.NewFetcher(media.FetchOptions{MaxBytes: 32 << 10, AllowedHosts: []string{"127.0.0.1"}})
	tests := []struct {
		name    string
		f       *media.Fetcher
		url     string
		wantErr string
	}{
		{"loopback", open, fmt.Sprintf("https://127.0.0.1:%d/f/order.csv", port), "a loopback address"},
		{"plain http", open, fmt.Sprintf("http://127.0.0.1:%d/f/order.csv", port), "http URL of a host not in media.allowed_hosts"},
		{"10/8", open, "https://10.1.2.3/file.pdf", "a private address"},
		{"metadata", open, "https://169.254.169.254/latest/meta-data/", "link-local"},
		{"IPv6 loopback", open, "https://[::1]/x", "a loopback address"},
		{"name resolving to 127.0.0.1", open, fmt.Sprintf("https://localhost:%d/f/order.csv", port), "localhost resolves to"},
		{"redirect to a private address", listed, srv.URL + "/to-private", "a private address"},
		{"redirect to a loopback name", listed, srv.URL + "/to-localhost", "resolves to"},
		{"too many redirects", listed, srv.URL + "/loop", "more than 3 redirects"},
		{"oversized body, small claimed size", listed, srv.URL + "/big", "over media.max_bytes"},
		{"not a URL", open, "file:///etc/passwd", "not a URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := srv.hits.Load()
			_, err := tt.f.Fetch(ctx(t), tt.url)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err %v, want it to say %q", err, tt.wantErr)
			}
			if !errors.Is(err, media.ErrRefused) {
				t.Errorf("err %v is not ErrRefused", err)
			}
			if tt.f == open && srv.hits.Load() != before {
				t.Error("the refused URL reached the server")
			}
			if strings.Contains(err.Error(), "/f/") || strings.Contains(err.Error(), "meta-data") {
				t.Errorf("the error shows the URL's path: %v", err)
			}
		})
	}
	if f, err := listed.Fetch(ctx(t), srv.URL+"/f/order.csv"); err != nil || f.Type != "text/plain" {
		t.Errorf("listed host: %v %q", err, f.Type)
	}
}
