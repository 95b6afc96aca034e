package media_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/media"
)

// One event's attachments are read within bounds: how many, how many at
// once, how many bytes in all, and inside the caller's deadline.
func TestReadAllBounds(t *testing.T) {
	var inFlight, most atomic.Int64
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		switch r.URL.Path {
		case "/wait":
			<-release
		case "/trickle":
			for i := 0; i < 100; i++ {
				if _, err := w.Write([]byte("slow ")); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
			return
		case "/600k":
			w.Write([]byte(strings.Repeat("a", 600<<10)))
			return
		}
		fmt.Fprint(w, "text of ", r.URL.Path)
	}))
	defer srv.Close()
	doc := func(path string) kommbridge.Attachment {
		return kommbridge.Attachment{Type: "text/plain", Name: path[1:] + ".txt", URL: srv.URL + path}
	}
	r := reader(media.Options{MaxAttachments: 3, MaxParallel: 2, MaxTotalBytes: 1 << 20, Fetch: media.FetchOptions{MaxBytes: 1 << 20}})

	t.Run("at most MaxAttachments, the rest named as skipped", func(t *testing.T) {
		var atts []kommbridge.Attachment
		for i := 0; i < 3000; i++ {
			atts = append(atts, doc(fmt.Sprintf("/d%d", i)))
		}
		items := r.ReadAll(ctx(t), atts, true)
		for i, it := range items {
			switch {
			case i < 3 && (it.Err != nil || it.Text != fmt.Sprintf("text of /d%d", i)):
				t.Errorf("item %d: %q %v", i, it.Text, it.Err)
			case i >= 3 && !errors.Is(it.Err, media.ErrSkipped):
				t.Fatalf("item %d read: %v", i, it.Err)
			}
		}
		if items[2999].Name != "d2999.txt" {
			t.Errorf("skipped item named %q", items[2999].Name)
		}
	})
	t.Run("at most MaxParallel fetches at once", func(t *testing.T) {
		most.Store(0)
		done := make(chan []media.Item)
		go func() {
			done <- r.ReadAll(ctx(t), []kommbridge.Attachment{doc("/wait"), doc("/wait"), doc("/wait")}, true)
		}()
		for inFlight.Load() < 2 {
			time.Sleep(time.Millisecond)
		}
		close(release)
		<-done
		if most.Load() != 2 {
			t.Errorf("%d fetches at once, want 2", most.Load())
		}
	})
	t.Run("at most MaxTotalBytes in all", func(t *testing.T) {
		items := r.ReadAll(ctx(t), []kommbridge.Attachment{doc("/600k"), doc("/600k")}, true)
		failed := 0
		for _, it := range items {
			if it.Err != nil {
				failed++
				if !strings.Contains(it.Err.Error(), "max_total_bytes") {
					t.Errorf("error %v does not name the bound", it.Err)
				}
			}
		}
		if failed != 1 {
			t.Errorf("%d of two 600 KiB files refused under a 1 MiB total, want 1", failed)
		}
	})
	t.Run("inside the deadline", func(t *testing.T) {
		c, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		items := r.ReadAll(c, []kommbridge.Attachment{doc("/trickle"), doc("/fast")}, true)
		if took := time.Since(start); took > time.Second {
			t.Errorf("took %v past a 300ms deadline", took)
		}
		if items[0].Err == nil || items[1].Err != nil {
			t.Errorf("trickle err %v, fast err %v", items[0].Err, items[1].Err)
		}
	})
}

// An image URL passed to the model (inline_images off) meets the rules of
// a fetch: the model's server would fetch it from inside the operator's
// network. A refused one is never passed on.
func TestImageURLsPassTheAddressRules(t *testing.T) {
	r := media.New(media.Options{}) // no allowed hosts
	for _, u := range []string{
		"file:///etc/passwd",
		"http://169.254.169.254/latest/meta-data/",
		"http://10.0.0.5/internal.png",
		"https://10.0.0.5/internal.png",
		"https://169.254.169.254/x.png",
		"https://127.0.0.1/x.png",
		"https://[::1]/x.png",
		"https://localhost/x.png",
		"gopher://example.com/x",
		"not a url",
	} {
		it := r.Read(ctx(t), kommbridge.Attachment{Type: "image/png", Name: "x.png", URL: u}, true)
		if it.ImageURL != "" || it.Err == nil {
			t.Errorf("%s: passed to the model (%q, %v)", u, it.ImageURL, it.Err)
		}
	}
	allowed := media.New(media.Options{Fetch: media.FetchOptions{AllowedHosts: []string{"files.internal"}}})
	u := "http://files.internal/photo.png"
	if it := allowed.Read(ctx(t), kommbridge.Attachment{Type: "image/png", Name: "p.png", URL: u}, true); it.ImageURL != u || it.Err != nil {
		t.Errorf("an allowed host's image: %q %v", it.ImageURL, it.Err)
	}
}
