// Package media reads what users attach: it fetches files safely (https,
// public addresses checked at dial time, redirects re-checked, a byte
// limit enforced while reading, the type sniffed rather than trusted),
// extracts document text (PDF, text, Markdown, CSV, JSON, HTML), inlines
// images as data URLs when asked, and transcribes voice notes. prompt
// decides the words the model sees; media only says what was found.
package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// ErrRefused is a URL kommbridge will not fetch; the error says why.
var ErrRefused = errors.New("refused")

// Fetcher is the one HTTP client attachments are fetched with.
type Fetcher struct {
	client   *http.Client
	resolver *net.Resolver
	allowed  map[string]bool
	maxBytes int64
	timeout  time.Duration
}

// FetchOptions configure a Fetcher.
type FetchOptions struct {
	// MaxBytes is enforced while reading [10 MiB].
	MaxBytes int64
	// AllowedHosts may be fetched over plain http and may resolve to
	// loopback, private or link-local addresses. Every other host must be
	// https and public. Entries are host names or IPs, with or without a port.
	AllowedHosts []string
	// Timeout bounds one fetch inside the caller's deadline [10s].
	Timeout time.Duration
	// Transport, when set, replaces the default (for a proxy).
	Resolver *net.Resolver
}

// NewFetcher returns a Fetcher for o.
func NewFetcher(o FetchOptions) *Fetcher {
	if o.MaxBytes == 0 {
		o.MaxBytes = 10 << 20
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	f := &Fetcher{allowed: map[string]bool{}, maxBytes: o.MaxBytes, timeout: o.Timeout, resolver: o.Resolver}
	for _, h := range o.AllowedHosts {
		f.allowed[strings.ToLower(h)] = true
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	transport := &http.Transport{
		Proxy:                 nil, // a proxy would hide the address being checked
		DialContext:           f.dialer(dialer, o.Resolver),
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 10 * time.Second,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       30 * time.Second,
	}
	f.client = &http.Client{
		Transport: transport,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > 3 {
				return fmt.Errorf("%w: more than 3 redirects", ErrRefused)
			}
			return f.checkURL(req.URL)
		},
	}
	return f
}

func (f *Fetcher) isAllowed(hostport string) bool {
	h := strings.ToLower(hostport)
	if f.allowed[h] {
		return true
	}
	host, _, err := net.SplitHostPort(h)
	return err == nil && f.allowed[host]
}

// checkURL applies the scheme rule: https, or http for an allowed host.
func (f *Fetcher) checkURL(u *url.URL) error {
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && f.isAllowed(u.Host):
		return nil
	}
	return fmt.Errorf("%w: %s URL of a host not in media.allowed_hosts", ErrRefused, u.Scheme)
}

// Client is an HTTP client that follows the fetcher's address rules (the
// addresses checked as they are dialled, each redirect's URL held to the
// scheme rule too) with the redirect policy redirect on top.
func (f *Fetcher) Client(redirect func(req *http.Request, via []*http.Request) error) *http.Client {
	c := *f.client
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if err := f.checkURL(req.URL); err != nil {
			return err
		}
		return redirect(req, via)
	}
	return &c
}

// Vet applies the rules of a fetch to a URL that leaves the process
// without being fetched here (an image URL the model's server fetches): a
// URL with a host, https or an allowed host, and every address the host
// resolves to public unless the host is allowed.
func (f *Fetcher) Vet(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%w: not a URL", ErrRefused)
	}
	if err := f.checkURL(u); err != nil {
		return err
	}
	if f.isAllowed(u.Host) {
		return nil
	}
	host := u.Hostname()
	ips, err := f.resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("resolving %s: %w", host, err)
	}
	for _, ip := range ips {
		if why := private(ip); why != "" {
			return fmt.Errorf("%w: %s resolves to %s, a %s address", ErrRefused, host, ip, why)
		}
	}
	return nil
}

// dialer resolves the host itself and dials only an address it checked,
// so a DNS answer cannot swap in a private address after the check.
func (f *Fetcher) dialer(d *net.Dialer, r *net.Resolver) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if f.isAllowed(addr) {
			return d.DialContext(ctx, network, addr)
		}
		ips, err := r.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, err
		}
		for _, ip := range ips {
			if why := private(ip); why != "" {
				return nil, fmt.Errorf("%w: %s resolves to %s, a %s address", ErrRefused, host, ip, why)
			}
		}
		if len(ips) == 0 {
			return nil, fmt.Errorf("no address for %s", host)
		}
		return d.DialContext(ctx, network, net.JoinHostPort(ips[0].String(), port))
	}
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// private names the kind of non-public address ip is, or "".
func private(ip netip.Addr) string {
	ip = ip.Unmap()
	switch {
	case ip.IsLoopback():
		return "loopback"
	case ip.IsPrivate(), cgnat.Contains(ip):
		return "private"
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast():
		return "link-local (cloud metadata)"
	case ip.IsMulticast(), ip.IsInterfaceLocalMulticast():
		return "multicast"
	case ip.IsUnspecified():
		return "unspecified"
	}
	return ""
}

// Fetched is a downloaded file with its sniffed content type.
type Fetched struct {
	Data []byte
	Type string // sniffed, without parameters
}

// Fetch downloads url, at most MaxBytes, inside ctx's deadline.
func (f *Fetcher) Fetch(ctx context.Context, raw string) (Fetched, error) {
	return f.fetch(ctx, raw, nil)
}

// errOverTotal is a fetch stopped by its event's total byte quota.
var errOverTotal = fmt.Errorf("%w: this message's attachments are over media.max_total_bytes together", ErrRefused)

// quotaReader draws what it reads from a quota shared by one event's
// fetches. A read the quota cannot cover fails its fetch, which gives back
// all it drew, so that the others can finish.
type quotaReader struct {
	r     io.Reader
	quota *atomic.Int64
	drawn int64
}

func (q *quotaReader) Read(p []byte) (int, error) {
	n, err := q.r.Read(p)
	for {
		left := q.quota.Load()
		if left < int64(n) {
			q.quota.Add(q.drawn)
			q.drawn = 0
			return 0, errOverTotal
		}
		if q.quota.CompareAndSwap(left, left-int64(n)) {
			break
		}
	}
	q.drawn += int64(n)
	return n, err
}

func (f *Fetcher) fetch(ctx context.Context, raw string, quota *atomic.Int64) (Fetched, error) {
	p, err := f.get(ctx, raw, nil, quota)
	if err != nil {
		return Fetched{}, err
	}
	if p.Status != http.StatusOK {
		return Fetched{}, fmt.Errorf("HTTP %d", p.Status)
	}
	return p.Fetched, nil
}

// Page is what a Get answered: its status and headers, and for a 200 the
// body.
type Page struct {
	Fetched
	Status int
	Header http.Header
}

// Get fetches url as Fetch does, with the request headers h (a
// conditional request's If-None-Match); an answer other than 200 is a
// Page with its status and headers and no body, not an error.
func (f *Fetcher) Get(ctx context.Context, raw string, h http.Header) (Page, error) {
	return f.get(ctx, raw, h, nil)
}

func (f *Fetcher) get(ctx context.Context, raw string, h http.Header, quota *atomic.Int64) (Page, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return Page{}, fmt.Errorf("%w: not a URL", ErrRefused)
	}
	if err := f.checkURL(u); err != nil {
		return Page{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return Page{}, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := f.client.Do(req)
	if err != nil {
		// Keep the signed URL out of errors (and so out of logs): name the host.
		var ue *url.Error
		if errors.As(err, &ue) {
			return Page{}, fmt.Errorf("fetching from %s: %w", u.Host, ue.Err)
		}
		return Page{}, err
	}
	defer resp.Body.Close()
	p := Page{Status: resp.StatusCode, Header: resp.Header}
	if resp.StatusCode != http.StatusOK {
		return p, nil
	}
	if resp.ContentLength > f.maxBytes {
		return Page{}, fmt.Errorf("%w: %d bytes is over media.max_bytes (%d)", ErrRefused, resp.ContentLength, f.maxBytes)
	}
	var body io.Reader = resp.Body
	if quota != nil {
		if resp.ContentLength > quota.Load() {
			return Page{}, errOverTotal
		}
		body = &quotaReader{r: body, quota: quota}
	}
	data, err := io.ReadAll(io.LimitReader(body, f.maxBytes+1))
	if err != nil {
		return Page{}, err
	}
	if int64(len(data)) > f.maxBytes {
		return Page{}, fmt.Errorf("%w: over media.max_bytes (%d)", ErrRefused, f.maxBytes)
	}
	typ := http.DetectContentType(data)
	if i := strings.IndexByte(typ, ';'); i >= 0 {
		typ = typ[:i]
	}
	p.Fetched = Fetched{Data: data, Type: typ}
	return p, nil
}
